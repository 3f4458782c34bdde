"""Model registry: one `ModelSpec` per model; the conformance matrix is built from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from models.formats import FORMATS

if TYPE_CHECKING:
    import numpy as np
    import torch

Task = Literal["semantic", "prompt_masks"]
Tier = Literal["fast", "slow"]

# A spec's default formats: every row of models/formats.py when the registry is imported.
# Opt-in rows (tflite_w8a16, tflite_int8_mixed) only for the models that list them.
ALL_FORMATS: tuple[str, ...] = tuple(name for name, row in FORMATS.items() if not row.opt_in)


@dataclass(frozen=True)
class InputSpec:
    """One named model input, NCHW float32 unless said otherwise."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class SlidingWindowInference:
    """A semantic model's published inference, in pixels: resize the short side, slide
    `window`-sized crops by `stride`, average the overlapping logits."""

    short_side: int
    window: int
    stride: int


@dataclass(frozen=True)
class MaskThresholds:
    """Confidence and NMS IoU thresholds a prompt-mask model's masks are decoded with."""

    conf: float
    iou: float


# A batch of fixture images (count, 3, H, W) float32 in [0, 1] at size (H, W).
ImageMaker = Callable[[tuple[int, int], int], "np.ndarray"]
# Reads a user's file's outputs on the example input: (convert or None, what was found).
OutputConvention = Callable[
    [dict[str, "np.ndarray"], "ModelSpec"],
    tuple[Callable[[dict[str, "np.ndarray"]], dict[str, "np.ndarray"]] | None, str],
]


@dataclass(frozen=True)
class ModelSpec:
    """Everything the suite needs to know about one model.

    `build` returns a seeded, randomly initialised module in eval mode.
    `fixture_weights` turns that into reference weights whose predictions are non-trivial
    (random init often predicts one class everywhere); it receives the module and a batch
    of fixture images (N, 3, H, W) float32 in [0, 1] and returns the module.
    `preprocess` maps such [0, 1] RGB images to the model's input tensor(s).
    `rewrites` names converter workarounds; each applies only to the formats it declares.
    `weights_label` is what the report says about the fixture weights.
    `fixture_images` / `calibration_images` replace the suite's default evaluation and
    calibration images (fixtures/images.py) for models trained on other scenes.
    `sliding_window` replaces the plain resize of semantic inference (conformance/inference.py).
    `mask_thresholds` is required for task "prompt_masks".
    `output_convention` adapts a user's file whose outputs use another convention
    (models/user_artifact.py).
    """

    name: str
    family: str
    build: Callable[[], torch.nn.Module]
    inputs: tuple[InputSpec, ...]
    output_names: tuple[str, ...]
    task: Task
    num_classes: int
    expected_params: int | None
    formats: tuple[str, ...] = ALL_FORMATS
    tier: Tier = "fast"
    load_checkpoint: Callable[[torch.nn.Module, Path], torch.nn.Module] | None = None
    fixture_weights: Callable[[torch.nn.Module, np.ndarray], torch.nn.Module] | None = None
    preprocess: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None
    # Named export rewrites (models/export/rewrites.py) this model's conversions apply.
    rewrites: tuple[str, ...] = ()
    description: str = ""
    weights_label: str = "seeded random init"
    fixture_images: ImageMaker | None = None
    calibration_images: ImageMaker | None = None
    sliding_window: SlidingWindowInference | None = None
    mask_thresholds: MaskThresholds | None = None
    output_convention: OutputConvention | None = None
    # The mixed-precision int8 recipe found for the fixture weights (tflite_int8_mixed).
    int8_recipe: Path | None = None
    # Outputs a converted file may deliver in parts along axis 1 (an export rewrite splits
    # them so each part gets its own int8 scale): (name, channels per part), in order.
    output_parts: tuple[tuple[str, tuple[int, ...]], ...] = ()
    # Regex over TFLite tensor names whose int8 ranges are the true min/max over the
    # calibration images (models/export/int8_recipe.py); the rest keep the moving average.
    int8_min_max_scope: str | None = None

    @property
    def input_size(self) -> tuple[int, int]:
        """(H, W) of the first input."""
        shape = self.inputs[0].shape
        return int(shape[-2]), int(shape[-1])

    def __str__(self) -> str:
        return self.name


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a spec; names are unique and its formats are rows of models/formats.py."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is registered twice")
    unknown = [f for f in spec.formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"model {spec.name!r}: unknown format(s) {', '.join(unknown)}; "
                         f"known: {', '.join(FORMATS)}")
    if spec.task == "prompt_masks" and spec.mask_thresholds is None:
        raise ValueError(f"model {spec.name!r}: a prompt_masks model needs mask_thresholds")
    _REGISTRY[spec.name] = spec
    return spec


def _load_families() -> None:
    # Imported for their register() side effects; late so that `models.registry` stays cheap.
    from models import deeplabv3plus  # noqa: F401

    for optional in ("models.semivl", "models.fastsam"):
        try:
            __import__(optional)
        except ModuleNotFoundError as err:
            if err.name != optional:
                raise


def all_specs() -> list[ModelSpec]:
    """Every registered spec, in registration order."""
    # Not "if the registry is empty": importing one family module registers it alone.
    _load_families()
    return list(_REGISTRY.values())


def get_spec(name: str) -> ModelSpec:
    """The spec called `name`, or a KeyError listing the known names."""
    specs = {s.name: s for s in all_specs()}
    if name not in specs:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(specs))}")
    return specs[name]


def count_parameters(module: torch.nn.Module) -> int:
    """Number of parameters (not buffers)."""
    return sum(p.numel() for p in module.parameters())
