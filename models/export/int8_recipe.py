"""Mixed-precision int8 recipes: full int8, except named layers at int16 activations or in float.

A recipe is reviewed data (JSON, `--int8-recipe MODEL=FILE`): the model it was found for, the
output tensors (as ai-edge-quantizer's regex scopes select ops) kept at int16 activations and
those kept in float, and how it was found. It turns into an ai-edge-quantizer recipe: the
`static_wi8_ai8` scope for every op, then one scope per precision that overrides it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

SCHEMA = "segconform.int8_recipe/1"


class RecipeError(ValueError):
    """A recipe file that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Int8Recipe:
    """Which layers leave full int8, and why."""

    model: str
    int16: tuple[str, ...] = ()  # output tensor names kept at int16 activations (int8 weights)
    float: tuple[str, ...] = ()  # output tensor names left unquantised
    found_by: str = ""  # e.g. the repair search's summary, or "hand-written"

    def summary(self) -> str:
        """'3 layers at int16 activations, 1 in float' (or 'full int8')."""
        parts = [f"{len(self.int16)} at int16 activations" if self.int16 else "",
                 f"{len(self.float)} in float" if self.float else ""]
        return ", ".join(p for p in parts if p) or "full int8"

    def digest(self) -> str:
        """Content hash of the layers it changes (part of the artifact key)."""
        data = json.dumps([self.model, sorted(self.int16), sorted(self.float)])
        return hashlib.sha256(data.encode()).hexdigest()[:16]

    def to_json(self) -> dict:
        """The file's content."""
        return {"schema": SCHEMA, **asdict(self), "int16": list(self.int16),
                "float": list(self.float)}

    def save(self, path: Path) -> Path:
        """Write the recipe as JSON; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return path

    def aeq_recipe(self) -> list[dict]:
        """The ai-edge-quantizer recipe (a list of scope configs; the last match wins)."""
        from ai_edge_quantizer import algorithm_manager, qtyping, recipe_manager

        manager = recipe_manager.RecipeManager()
        every = qtyping.TFLOperationName.ALL_SUPPORTED
        manager.add_static_config(".*", every, activation_num_bits=8, weight_num_bits=8)
        if self.int16:
            manager.add_static_config(_scope(self.int16), every, activation_num_bits=16,
                                      weight_num_bits=8)
        if self.float:
            manager.add_quantization_config(
                _scope(self.float), every, None, algorithm_manager.AlgorithmName.NO_QUANTIZE)
        return manager.get_quantization_recipe()


def _scope(tensors: tuple[str, ...]) -> str:
    # ai-edge-quantizer matches scopes with re.search on each op's scope: its output tensor
    # names joined by ';' with a trailing ';' (tfl_flatbuffer_utils.get_op_scope).
    return "^(?:" + "|".join(re.escape(t) for t in tensors) + ");"


def load_recipe(path: Path, model: str | None = None) -> Int8Recipe:
    """A recipe from its JSON file; RecipeError in one line when unusable or for another model."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RecipeError(f"{path}: int8 recipe not found") from None
    except (OSError, ValueError) as err:
        raise RecipeError(f"{path}: not an int8 recipe JSON ({err})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise RecipeError(f"{path}: not an int8 recipe (expected \"schema\": \"{SCHEMA}\")")
    layers = {k: data.get(k, []) for k in ("int16", "float")}
    if not all(isinstance(v, list) and all(isinstance(t, str) for t in v)
               for v in layers.values()):
        raise RecipeError(f"{path}: 'int16' and 'float' must be lists of tensor names")
    if model is not None and data.get("model") != model:
        raise RecipeError(f"{path}: a recipe for model {data.get('model')!r}, not {model!r}")
    return Int8Recipe(model=str(data.get("model")), int16=tuple(layers["int16"]),
                      float=tuple(layers["float"]), found_by=str(data.get("found_by", "")))


# "moving_average": ai-edge-quantizer's own calibration (the suite's int8 files), each tensor's
# min/max smoothed over the samples in order (min = 0.95 min + 0.05 sample min): after 16
# samples the first still weighs 46%, so a range that varies by image is clipped and the file
# depends on the order of the images. "min_max": the true min and max over every sample,
# whatever their order. Canary: test_aeq_calibration_range_still_depends_on_sample_order.
# Not a default: on FastSAM-s, min_max lifts output0's cosine from 0.973 to 0.995 but its
# wider ranges cost the masks (mean IoU 0.864 against 0.966), which are what the task needs.
CALIBRATION_STATISTICS = ("moving_average", "min_max")


def quantize_static(fp32_path: Path, out_path: Path, samples: list[dict], recipe: list[dict],
                    statistic: str = "moving_average", min_max_scope: str | None = None) -> int:
    """Calibrate and quantise `fp32_path` with an ai-edge-quantizer recipe into `out_path`.

    `min_max_scope`: a regex (re.search) over tensor names whose ranges are the true min/max
    while the others keep `statistic`'s. Returns how many tensors took min/max ranges that way.
    """
    from ai_edge_quantizer import quantizer

    if statistic not in CALIBRATION_STATISTICS:
        raise ValueError(f"unknown calibration statistic {statistic!r}; known: "
                         f"{', '.join(CALIBRATION_STATISTICS)}")
    qt = quantizer.Quantizer(str(fp32_path))
    qt.load_quantization_recipe(recipe)
    if statistic == "moving_average" and not min_max_scope:
        result = qt.calibrate({"serving_default": samples})
    else:  # one calibration of each image gives both statistics
        smoothed, widest = per_sample_calibration(qt, samples)
        result = smoothed if statistic == "moving_average" else widest
    scoped = 0
    if min_max_scope:
        scope = re.compile(min_max_scope)
        for tensor, qsv in widest.items():
            if qsv and scope.search(tensor):
                result[tensor], scoped = qsv, scoped + 1
        if not scoped:  # a scope that selects nothing would be a silent no-op
            raise ValueError(f"min/max scope {min_max_scope!r} matches no calibrated tensor "
                             f"of {fp32_path}")
    qt.quantize(calibration_result=result).export_model(str(out_path), overwrite=True)
    return scoped


def per_sample_calibration(qt, samples: list[dict]) -> tuple[dict, dict]:
    """(moving-average, min/max) ranges from calibrating each sample alone (public API): the
    moving average folded in order as ai-edge-quantizer's own calibrate folds it (the same
    bits: tests/test_calibration.py), the min/max merged whatever the order. For min/max
    statistics only (static_wi8_ai8/ai16 recipes); other algorithms merge other fields."""
    from ai_edge_quantizer.utils.qsv_utils import min_max_update, moving_average_update

    smoothed: dict = {}
    widest: dict = {}
    for sample in samples:
        for tensor, qsv in qt.calibrate({"serving_default": [sample]}).items():
            smoothed.setdefault(tensor, {})  # a tensor without a range stays empty
            widest.setdefault(tensor, {})
            if qsv:
                smoothed[tensor] = moving_average_update(smoothed[tensor], qsv)
                widest[tensor] = min_max_update(widest[tensor], qsv)
    return smoothed, widest


def missing_tensors(recipe: Int8Recipe, tflite_path: Path) -> list[str]:
    """Tensors the recipe names that the float file does not have (a recipe for other code)."""
    from models.runtimes.tflite import make_interpreter

    names = {d["name"] for d in make_interpreter(tflite_path).get_tensor_details()}
    return [t for t in (*recipe.int16, *recipe.float) if t not in names]
