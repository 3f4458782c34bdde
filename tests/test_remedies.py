"""Remedies as data: each pair exists in the matrix, and every failed quantised case gets a row."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.remedies import REMEDIES, Remedy, repair_advice, repair_rows
from conformance.report_remedies import remedies_html
from conformance.report_schema import REPAIR_SCHEMA, validate
from models.registry import all_specs


def _result(suite: str, model: str, fmt: str, outcome: str, **metrics: float) -> dict[str, Any]:
    return {"suite": suite, "model": model, "format": fmt, "profile": "cpu", "outcome": outcome,
            "metrics": metrics, "budgets": {}, "info": {}, "message": "",
            "nodeid": f"t::{suite}-{model}-{fmt}"}


def test_every_remedy_is_a_pair_of_cases_the_matrix_runs() -> None:
    formats = {spec.name: spec.formats for spec in all_specs()}
    for remedy in REMEDIES:
        for model, fmt in (remedy.before, remedy.after):
            assert fmt in formats.get(model, ()), f"{remedy.name}: {model} has no {fmt} row"


def test_every_unrewritten_twin_and_recipe_format_is_the_side_of_a_remedy() -> None:
    # A model kept without its rewrites exists to be a before; a recipe format to be an after.
    befores = {r.before for r in REMEDIES}
    afters = {r.after for r in REMEDIES}
    for spec in all_specs():
        for fmt in spec.formats:
            if spec.name.endswith("_official"):
                assert (spec.name, fmt) in befores, f"{spec.name} {fmt}: no remedy declared"
            if fmt in ("tflite_int8_mixed", "tflite_w8a16"):
                assert (spec.name, fmt) in afters, f"{spec.name} {fmt}: no remedy declared"


def test_a_remedy_names_known_formats_and_what_it_fixes() -> None:
    with pytest.raises(ValueError, match="unknown format 'tflite_int4'"):
        Remedy("x", ("m", "tflite_int8"), ("m", "tflite_int4"), "change", "accuracy")
    with pytest.raises(ValueError, match="fixes must be accuracy or speed"):
        Remedy("x", ("m", "tflite_int8"), ("m", "tflite_int8_mixed"), "change", "size")


def test_a_failed_int8_case_gets_a_repair_row_with_its_remedies_outcomes() -> None:
    results = [_result("parity", "semivl_small", "tflite_int8", "xfailed", argmax_agreement=0.95),
               _result("parity", "semivl_small", "tflite_int8_mixed", "passed"),
               _result("parity", "semivl_small", "tflite_w8a16", "failed"),
               _result("parity", "semivl_small", "tflite_fp32", "passed"),
               _result("parity", "semivl_small", "onnx", "failed"),  # float: no repair row
               _result("accuracy", "semivl_small", "tflite_fp16", "passed")]
    rows = repair_rows(results)
    assert [(r["suite"], r["format"]) for r in rows] == [("parity", "tflite_int8"),
                                                        ("parity", "tflite_w8a16")]
    assert rows[0]["remedies"] == [
        {"name": "int8 recipe fixtures/int8_recipes/semivl_small.json",
         "after": "semivl_small/tflite_int8_mixed", "outcome": "passed"},
        {"name": "int16 activations (w8a16)", "after": "semivl_small/tflite_w8a16",
         "outcome": "failed"}]
    assert rows[1]["remedies"] == []
    assert repair_advice(rows[1]).startswith("no remedy declared: pytest --int8-repair")
    slow = repair_rows([_result("latency", "semivl_small", "tflite_w8a16", "xfailed")])[0]
    assert repair_advice(slow).endswith("op profile names the ops outside XNNPACK")
    for row in rows:
        assert validate(row, REPAIR_SCHEMA) == []


def test_a_remedy_not_run_says_so_and_a_search_or_tpu_answer_is_carried() -> None:
    searched = _result("parity", "semivl_small", "tflite_int8", "failed")
    searched["info"]["int8_repair"] = {"summary": "no recipe passed the budget (tried int16 x1)"}
    tpu = _result("edgetpu", "deeplabv3plus_mnv3_lite", "edgetpu", "xfailed")
    tpu["info"]["layers_to_change"] = [{"layer": "aspp.branches.4"}, {"layer": "TOP.forward"}]
    rows = repair_rows([searched, tpu])
    assert rows[1]["remedies"][0]["outcome"] == "not run"
    assert repair_advice(rows[1]) == "repair search: no recipe passed the budget (tried int16 x1)"
    assert rows[0]["layers_to_change"] == 2
    assert repair_advice(rows[0]).startswith("full integer only")


def test_a_failure_whose_float_upstream_fails_too_is_not_blamed_on_int8() -> None:
    results = [_result("parity", "semivl_small_official", "tflite_int8", "xfailed"),
               _result("parity", "semivl_small_official", "tflite_fp32", "xfailed"),
               _result("parity", "semivl_small", "tflite_int8", "xfailed")]
    row = next(r for r in repair_rows(results) if r["model"] == "semivl_small_official")
    assert row["upstream"] == "tflite_fp32 xfailed"
    assert row["remedies"][0]["outcome"] == "xfailed"
    assert "fails too: the error comes before quantisation" in repair_advice(row)


def test_report_sets_before_and_after_side_by_side_from_this_run() -> None:
    before, after = ("deeplabv3plus_mnv3_lite_official", "tflite_int8"), \
        ("deeplabv3plus_mnv3_lite", "tflite_int8")
    parity = _result("parity", *after, "passed", argmax_agreement=0.9981, agreement_miou=0.9974)
    parity["info"]["fixture_photos"] = {"images": 4.0, "argmax_agreement": 0.97,
                                        "agreement_miou": 0.91,
                                        "reference_top_class_share": 0.62}
    results = [parity,
               _result("latency", *before, "passed", p50_ms=32.3, speedup_vs_eager=2.0,
                       speedup_vs_fp32=2.02),
               _result("latency", *after, "passed", p50_ms=23.4, speedup_vs_eager=2.8,
                       speedup_vs_fp32=2.79),
               _result("latency", "deeplabv3plus_mnv3_lite", "tflite_fp32", "passed",
                       p50_ms=65.3)]
    for result in results[1:]:
        result["info"].update(cpu="AMD EPYC 7B13", cpu_isa="avx avx2 fma avx512f avx512_vnni")
    # Not the table's timings: a case outside it, and a parity result; both on another CPU.
    elsewhere = _result("latency", "deeplabv3plus_mnv3_conventional", "tflite_int8", "passed",
                        p50_ms=40.0)
    elsewhere["info"].update(cpu="Other CPU")
    parity["info"].update(cpu="Other CPU")
    table = remedies_html([*results, elsewhere])
    # Speed-ups depend on the CPU's int8 instructions: the table names where it was timed.
    assert "<p>Timed on: AMD EPYC 7B13 (avx avx2 fma avx512f avx512_vnni)</p>" in table
    # A row skipped before it was timed names no CPU either.
    untimed = _result("latency", *before, "skipped")
    untimed["info"].update(cpu="Other CPU")
    assert "Other CPU" not in remedies_html([untimed, *results[2:]])
    assert "export rewrite hardswish_as_mul_relu6" in table
    assert "<td>0.9981 / 0.9974 (passed)</td>" in table.replace(' class="sc-cell sc-passed"', "")
    assert "0.97 / 0.91 (62%)" in table
    # Each file's own speed-up over its fp32 upstream, timed alternately (not a ratio of p50s
    # taken at different moments of the run: 65.3 / 32.3 would also read 2.02x here).
    assert "<td>2.02x</td>" in table and "<td>2.79x</td>" in table
    results[1]["metrics"].pop("speedup_vs_fp32")
    assert "<td>2.02x</td>" not in remedies_html(results)
    assert "not run" in table  # the before's parity and the Edge TPU suite are absent here
    assert "Repair rows" not in table  # nothing quantised failed


def test_a_mask_model_remedy_shows_prompt_mask_figures_and_its_raw_output_cosine(
        monkeypatch) -> None:
    import conformance.report_remedies as report_remedies

    before, after = ("fastsam_s", "tflite_int8"), ("fastsam_s", "edgetpu")
    remedy = Remedy("output split", before=before, after=after, change="split output0",
                    fixes="accuracy")
    monkeypatch.setattr(report_remedies, "REMEDIES", (remedy,))
    results = [_result("parity", *before, "xfailed", cosine=0.9734, snr_db=12.5),
               _result("prompt_masks", *before, "passed", mask_iou_mean=0.966,
                       mask_iou_large=0.938, mask_iou_small=0.99, mask_missing_rate=0.0),
               _result("accuracy", *after, "passed", miou_ratio=0.5, agreement_miou=0.5)]
    results[0]["info"]["fixture_photos"] = {
        "images": 4.0, "cosine": 0.9945, "snr_db": 19.55,
        "part_cosine": {"output0[0:4]": 0.9998, "output0[4:5]": 0.0}}
    results[1]["info"]["fixture_photos"] = {"mask_iou_mean": 0.0, "mask_iou_large": 0.0,
                                            "mask_iou_small": 0.0, "mask_missing_rate": 1.0,
                                            "n_masks": 48.0}
    table = remedies_html(results).replace(' class="sc-cell sc-passed"', "").replace(
        ' class="sc-cell sc-xfailed"', "")
    # On the fixture photos: the prompt masks and the raw output, each part's cosine apart.
    assert ("<td>masks 0 / 0 / 0 / 1 (48 prompts); cosine 0.9945 / SNR 19.55 dB (parts: "
            "output0[0:4] 0.9998, output0[4:5] 0)</td>") in table
    assert "<td>not measured</td>" in table  # the after side recorded nothing on the photos
    # No argmax figures on a mask model: the parity cell falls back to cosine / SNR.
    assert "<td>0.9734 / 12.5 (xfailed)</td>" in table
    # The held-out cell of a mask model is its prompt masks, not a semantic accuracy case.
    assert "<td>0.966 / 0.938 / 0.99 / 0 (passed)</td>" in table
    assert "0.5 / 0.5" in table  # the after side has no prompt-mask case: its accuracy shows


def test_photo_figures_measure_agreement_with_pytorch_on_the_fixture_photos(tmp_path) -> None:
    import numpy as np

    from conformance.matrix import Case
    from conformance.reference import ReferenceStore
    from conformance.test_parity import photo_figures
    from models.registry import get_spec

    spec = get_spec("deeplabv3plus_mnv3_lite")
    store = ReferenceStore(cache_dir=tmp_path)
    inputs, outputs = store.photos(spec)
    by_input = {id(x): y for x, y in zip(inputs, outputs, strict=True)}

    class Faithful:  # returns PyTorch's own outputs
        def run(self, x):
            return by_input[id(x)]

    class Background:  # class 0 everywhere: the constant predictor
        def run(self, x):
            logits = np.zeros_like(by_input[id(x)]["logits"])
            logits[:, 0] = 1.0
            return {"logits": logits}

    case = Case(spec, "tflite_int8")
    same = photo_figures(case, store, Faithful())
    assert len(inputs) == same["images"] == 4
    assert same["argmax_agreement"] == same["agreement_miou"] == 1.0
    flat = photo_figures(case, store, Background())
    # Parity figures are the worst image's: here, the photo with the least background.
    background = min(float(np.mean(o["logits"].argmax(1) == 0)) for o in outputs)
    # Pixels whose PyTorch top-2 logits tie within float noise count as agreeing (3e-5 here).
    assert background <= flat["argmax_agreement"] <= background + 1e-4
    assert flat["agreement_miou"] < 0.2  # most of PyTorch's classes are lost


def test_mask_photo_figures_measure_each_part_and_the_masks_on_the_fixture_photos(
        tmp_path) -> None:

    from conformance.matrix import Case
    from conformance.reference import ReferenceStore
    from conformance.test_parity import photo_figures
    from conformance.test_prompt_masks import masks_of, prompt_set
    from models.registry import get_spec

    spec = get_spec("fastsam_s")
    store = ReferenceStore(cache_dir=tmp_path)
    assert store.evaluates_synthetic(spec)  # shape scenes: the photos are a second set
    inputs, outputs = store.photos(spec)
    by_input = {id(x): y for x, y in zip(inputs, outputs, strict=True)}

    class Faithful:  # returns PyTorch's own outputs
        def run(self, x):
            return by_input[id(x)]

    class ScoresZeroed:  # what one int8 scale over pixel boxes and scores does to output0
        def run(self, x):
            out = dict(by_input[id(x)])
            out["output0"] = out["output0"].copy()
            out["output0"][:, 4] = 0.0
            return out

    case = Case(spec, "tflite_int8")
    same, zeroed = photo_figures(case, store, Faithful()), photo_figures(case, store,
                                                                         ScoresZeroed())
    assert same["images"] == len(inputs) == 4
    assert same["cosine"] == pytest.approx(1.0) and set(same["part_cosine"]) == {
        "output0[0:4]", "output0[4:5]", "output0[5:37]"}
    assert zeroed["part_cosine"]["output0[4:5]"] == 0.0  # the lost row, named
    assert zeroed["part_cosine"]["output0[0:4]"] == pytest.approx(1.0)
    prompts = prompt_set(spec, store.photo_images(spec), outputs)
    _, kept = masks_of(case, Faithful(), inputs, prompts)
    _, lost = masks_of(case, ScoresZeroed(), inputs, prompts)
    assert kept.n_masks > 0 and kept.mean_iou == 1.0 and kept.missing_rate == 0.0
    assert lost.n_masks == kept.n_masks and lost.missing_rate == 1.0
