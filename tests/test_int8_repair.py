"""The int8 repair loop on a small model with one layer made deliberately sensitive.

`wide`'s output carries one outlier channel (a bias of 400) beside channels of about ±1 that the
head reads: one per-tensor int8 scale for that tensor rounds the small channels to zero, so the
full-int8 model loses the head's decisions. The per-layer table must rank `wide` first, the
search must keep it (and only it) at higher precision, and the repaired file must then pass
the real int8 parity budget of budgets.toml.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_quantizer")

from torch import nn  # noqa: E402

from conformance.budgets import budget_for, load_budgets, violations  # noqa: E402
from conformance.int8_repair import search_repair  # noqa: E402
from conformance.metrics.parity import parity_figures  # noqa: E402
from conformance.metrics.quant_sensitivity import layer_sensitivity, ranked  # noqa: E402
from models.export.int8_recipe import (  # noqa: E402
    Int8Recipe,
    RecipeError,
    load_recipe,
    quantize_static,
)
from models.export.request import ExportRequest  # noqa: E402
from models.export.tflite import export_tflite_fp32  # noqa: E402
from models.registry import InputSpec, ModelSpec  # noqa: E402
from models.runtimes.base import IOSpec  # noqa: E402
from models.runtimes.tflite import TFLiteRunner  # noqa: E402

SIZE = 32


class Sensitive(nn.Module):
    """stem -> wide (one outlier channel) -> head that ignores the outlier."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.wide = nn.Conv2d(8, 8, 1)
        self.head = nn.Conv2d(8, 4, 1)
        with torch.no_grad():
            self.wide.weight.copy_(torch.eye(8).reshape(8, 8, 1, 1))  # passes the stem through
            self.wide.bias.zero_()
            self.wide.bias[0] = 400.0  # ... beside one outlier channel
            self.head.weight[:, 0] = 0.0  # that the head never reads
            self.head.bias.zero_()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.wide(self.stem(image)))


def _images(seed: int, count: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    # Centred, so that the head's decisions spread over its classes.
    return [{"image": rng.random((1, 3, SIZE, SIZE), dtype=np.float32) * 2 - 1}
            for _ in range(count)]


@pytest.fixture(scope="module")
def sensitive(tmp_path_factory) -> dict:
    """fp32 file, its full-int8 twin, PyTorch's outputs and a judge with the real budget."""
    folder = tmp_path_factory.mktemp("repair")
    model = Sensitive().eval()
    spec = ModelSpec(name="sensitive", family="test", build=Sensitive,
                     inputs=(InputSpec("image", (1, 3, SIZE, SIZE)),), output_names=("logits",),
                     task="semantic", num_classes=4, expected_params=None)
    evaluation, calibration = _images(1, 4), _images(2, 8)
    fp32 = folder / "fp32.tflite"
    export_tflite_fp32(ExportRequest(spec=spec, model=model, example=evaluation[0],
                                     out_path=fp32))
    samples = [{"args_0": c["image"]} for c in calibration]
    int8 = folder / "int8.tflite"
    quantize_static(fp32, int8, samples, Int8Recipe("sensitive").aeq_recipe())
    with torch.no_grad():
        expected = [{"logits": model(torch.from_numpy(x["image"])).numpy()} for x in evaluation]
    budget = budget_for(load_budgets(), "parity", "tflite_int8")
    io = IOSpec(inputs={"image": (1, 3, SIZE, SIZE)}, outputs=("logits",))

    def judge(path: Path) -> tuple[bool, dict[str, float]]:
        runner = TFLiteRunner(path, io, threads=1)
        metrics, _ = parity_figures(expected, [runner.run(x) for x in evaluation], class_axis=1)
        return not violations(metrics, budget), metrics

    def trial(recipe: Int8Recipe) -> tuple[bool, dict[str, float]]:
        out = folder / f"trial-{recipe.digest()}.tflite"
        quantize_static(fp32, out, samples, recipe.aeq_recipe())
        return judge(out)

    return {"fp32": fp32, "int8": int8, "evaluation": evaluation, "judge": judge,
            "trial": trial, "folder": folder, "spec": spec, "expected": expected,
            "calibration": calibration, "budget": budget}


def test_full_int8_fails_the_budget_because_of_the_outlier_layer(sensitive) -> None:
    passed, metrics = sensitive["judge"](sensitive["int8"])
    assert not passed, f"the planted sensitivity did not break int8: {metrics}"


def test_sensitivity_ranks_the_outlier_layer_first(sensitive) -> None:
    rows = layer_sensitivity(sensitive["fp32"], sensitive["int8"], sensitive["evaluation"],
                             ["image"])
    order = [r.layer for r in ranked(rows)]
    # The outlier tensor's producer, then its consumer (whose int8 input it is).
    assert order[:2] == ["wide", "head"], [(r.layer, round(r.own_db, 1)) for r in ranked(rows)]
    wide, head = (next(r for r in rows if r.layer == name) for name in ("wide", "head"))
    assert wide.own_snr_db < 20 and head.input_snr_db == wide.own_snr_db, (wide, head)
    # What the head carries is wrecked, although its own weights quantise well.
    assert head.carried_snr_db < 20 < head.weight_snr_db, head


def test_repair_keeps_the_sensitive_layer_and_passes_the_budget(sensitive, tmp_path) -> None:
    rows = ranked(layer_sensitivity(sensitive["fp32"], sensitive["int8"],
                                    sensitive["evaluation"], ["image"]))
    repair = search_repair("sensitive", [r.tensor for r in rows], sensitive["trial"])
    assert repair.recipe is not None, repair.summary()
    # int16 activations for the outlier's producer and consumer; nothing else.
    assert repair.recipe.int16 == (rows[0].tensor, rows[1].tensor), repair.to_json()
    assert not repair.recipe.float
    assert repair.trials[-1].passed or any(t.passed for t in repair.trials)
    # Saved and replayed (--int8-recipe): the same file passes again.
    replayed = load_recipe(repair.recipe.save(tmp_path / "recipe.json"), "sensitive")
    passed, metrics = sensitive["trial"](replayed)
    assert passed, metrics


def test_on_the_float_rung_the_sensitive_layers_are_kept_in_float_and_pass(sensitive) -> None:
    # The ladder's last rung alone (where int16 activations cannot help or are not wanted):
    # the same two layers, now in float, bring the case inside its budget.
    rows = ranked(layer_sensitivity(sensitive["fp32"], sensitive["int8"],
                                    sensitive["evaluation"], ["image"]))
    repair = search_repair("sensitive", [r.tensor for r in rows], sensitive["trial"],
                           ladder=("float",))
    assert repair.recipe is not None, repair.summary()
    assert repair.recipe.float == (rows[0].tensor, rows[1].tensor), repair.to_json()
    assert not repair.recipe.int16
    passed, metrics = sensitive["trial"](repair.recipe)
    assert passed, metrics


def test_a_failing_case_gets_its_recipe_saved_with_its_speed_cost_and_shown(sensitive,
                                                                           tmp_path) -> None:
    """The path a real run takes (--int8-repair on a failing parity case): search, save,
    time against full int8, and the report's repair section."""
    from types import SimpleNamespace

    from conformance.int8_case import repair_case
    from conformance.matrix import Case
    from conformance.report_html import _repair_html

    rows = ranked(layer_sensitivity(sensitive["fp32"], sensitive["int8"],
                                    sensitive["evaluation"], ["image"]))
    case = Case(sensitive["spec"], "tflite_int8")
    ref = SimpleNamespace(inputs=sensitive["evaluation"], outputs=sensitive["expected"],
                          output_shapes={"logits": sensitive["expected"][0]["logits"].shape})
    session = SimpleNamespace(calibration=sensitive["calibration"])
    int8 = tmp_path / "int8.tflite"  # the case's artifact: the search works beside it
    int8.write_bytes(sensitive["int8"].read_bytes())
    data = repair_case(case, ref, session, SimpleNamespace(path=int8), sensitive["fp32"],
                       sensitive["budget"], {"ranked": [r.tensor for r in rows]}, class_axis=1,
                       folder=tmp_path / "recipes")
    # Both rungs pass with the same two layers; the fastest of the passing recipes is kept.
    speeds = data["speed_vs_int8_by_precision"]
    assert set(speeds) == {"int16", "float"} and data["speed_vs_int8"] == max(speeds.values())
    kept = data["recipe"]["int16"] + data["recipe"]["float"]
    assert kept == [rows[0].tensor, rows[1].tensor], data["summary"]
    # Searched against the budget with headroom.
    assert data["searched_budget"]["min_argmax_agreement"] > sensitive["budget"][
        "min_argmax_agreement"]
    saved = Path(data["saved"])
    assert saved == tmp_path / "recipes" / "sensitive.json"
    passed, metrics = sensitive["trial"](load_recipe(saved, "sensitive"))
    assert passed, metrics
    html = _repair_html({"int8_repair": data})
    assert f"replay with <code>--int8-recipe sensitive={saved}</code>" in html
    assert html.count('<tr class="sc-trial-') == len(data["trials"]) >= 2
    assert '<tr class="sc-trial-pass">' in html and '<tr class="sc-trial-fail">' in html


def test_without_the_ranking_the_first_layer_kept_does_not_repair(sensitive) -> None:
    # The mechanism removed: keeping the least sensitive layer instead fails, so the ranking
    # is what found the repair.
    rows = ranked(layer_sensitivity(sensitive["fp32"], sensitive["int8"],
                                    sensitive["evaluation"], ["image"]))
    passed, _ = sensitive["trial"](Int8Recipe("sensitive", float=(rows[-1].tensor,)))
    assert not passed


def test_a_recipe_for_another_model_is_refused_in_one_line(tmp_path) -> None:
    path = Int8Recipe("other", float=("x",)).save(tmp_path / "r.json")
    with pytest.raises(RecipeError, match=r"r.json: a recipe for model 'other', not 'sensitive'"):
        load_recipe(path, "sensitive")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(RecipeError, match=r"bad\.json: not an int8 recipe JSON"):
        load_recipe(tmp_path / "bad.json")


def test_search_headroom_raises_a_fraction_but_never_to_an_unreachable_one() -> None:
    from conformance.int8_case import tightened

    target = tightened({"min_argmax_agreement": 0.95, "min_cosine": 0.98, "min_snr_db": 20.0,
                        "max_max_rel_err": 0.1})
    assert target["min_argmax_agreement"] == pytest.approx(0.97)  # + 0.02
    assert target["min_cosine"] == pytest.approx(0.99)  # half its gap to 1, not 1.0
    assert target["min_snr_db"] == pytest.approx(20.4)
    assert target["max_max_rel_err"] == pytest.approx(0.098)


def test_an_unknown_calibration_statistic_is_refused_in_one_line(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown calibration statistic 'median'; known: "
                                         "moving_average, min_max"):
        quantize_static(tmp_path / "in.tflite", tmp_path / "out.tflite", [], [], "median")
