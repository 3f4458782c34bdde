"""Argmax agreement: real flips count, ties within float noise do not."""

from __future__ import annotations

import numpy as np
import pytest

from conformance.metrics.parity import (
    argmax_agreement,
    class_decision_metrics,
    parity_figures,
    tie_mask,
)
from conformance.metrics.segmentation import agreement_miou


def test_flips_between_distinct_logits_count_as_disagreement() -> None:
    ref = np.random.default_rng(0).normal(size=(1, 5, 16, 16)).astype(np.float32)
    assert not tie_mask(ref).any()
    assert argmax_agreement(ref, ref) == 1.0
    assert argmax_agreement(ref, -ref) == 0.0


def test_a_tie_within_float_noise_is_not_an_export_error() -> None:
    ref = np.full((1, 3, 4, 4), -1.0, np.float32)
    # PyTorch's own top-2 differ by a few float32 ulps (not exactly equal): a tie in noise.
    ref[0, 0], ref[0, 1] = 2.0, np.float32(2.0) + np.float32(1e-6)
    got = ref.copy()
    got[0, 0] += np.float32(2e-6)  # the export breaks the tie the other way
    assert tie_mask(ref).all()
    assert argmax_agreement(ref, got) == 1.0
    ref2 = ref.copy()
    ref2[0, 1] = 2.5  # class 1 clearly wins in PyTorch; the export says class 0
    assert argmax_agreement(ref2, got) == 0.0


def test_the_tie_margin_is_each_pixels_own_not_the_outputs_largest_logit() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(1, 4, 8, 8)).astype(np.float32)
    # Small logits with a real gap of 1e-3 between the top two classes everywhere...
    ref[0, 0], ref[0, 1] = 0.101, 0.100
    ref[0, 2:] = 0.0
    # ...and one outlier logit far away: a margin scaled by the global max would call every
    # pixel a tie (1e-5 x 1e4 = 0.1 > 1e-3) and pass any export.
    ref[0, 3, 0, 0] = 1e4
    assert tie_mask(ref).sum() == 0
    flipped = ref.copy()
    flipped[0, 1] += 0.01
    figures = class_decision_metrics(ref, flipped)
    assert figures["argmax_agreement"] == 1 / 64  # only the outlier pixel keeps its class
    assert figures["tie_exempt_fraction"] == 0.0


def test_a_dead_reference_is_all_ties_and_reports_it() -> None:
    ref = np.zeros((1, 3, 4, 4), np.float32)
    figures = class_decision_metrics(ref, np.random.default_rng(0).normal(size=ref.shape))
    assert figures["tie_exempt_fraction"] == 1.0


def test_agreement_miou_averages_over_the_classes_pytorch_predicts() -> None:
    ref_map = np.zeros((10, 10), int)
    ref_map[:, 8:] = 1  # 80% class 0, 20% class 1
    constant = np.zeros_like(ref_map)
    # Pixel agreement would be 0.8; class 1 is lost entirely.
    assert agreement_miou(ref_map, constant, 2) == (0.8 + 0.0) / 2
    assert agreement_miou(ref_map, ref_map, 2) == 1.0


def test_parity_agreement_miou_pools_the_images() -> None:
    """A class PyTorch predicts as a whole object on one image and on two boundary pixels of
    another weighs as that class over the set, not as a lost class of the second image."""
    first = np.zeros((8, 8), int)
    first[:, 4:] = 2  # class 2 as an object (32 pixels), kept by the export
    second = np.zeros((8, 8), int)
    second[:, 4:] = 1
    sliver = second.copy()
    sliver[0, :2] = 2  # two pixels of class 2, flipped to class 0 by the export
    one_hot = np.eye(3)
    expected = [{"logits": one_hot[m].transpose(2, 0, 1)[None]} for m in (first, sliver)]
    got = [{"logits": one_hot[m].transpose(2, 0, 1)[None]} for m in (first, second)]
    metrics, _ = parity_figures(expected, got, class_axis=1)
    pooled = (62 / 64 + 1.0 + 32 / 34) / 3  # classes 0, 1, 2 over both images
    assert metrics["agreement_miou"] == pytest.approx(pooled)
    per_image_worst = (30 / 32 + 1.0 + 0.0) / 3
    assert per_image_worst < 0.7 < pooled


def _two_outputs() -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    from conformance.metrics.parity import figures_by_output, parity_figures

    rng = np.random.default_rng(0)
    expected = [{"output0": rng.normal(size=(1, 37, 50)).astype(np.float32),
                 "proto": rng.normal(size=(1, 8, 16, 16)).astype(np.float32)} for _ in range(2)]
    got = [{"output0": e["output0"] + rng.normal(scale=0.3, size=e["output0"].shape),
            "proto": e["proto"] + 1e-4} for e in expected]
    metrics, reports = parity_figures(expected, got)
    return metrics, figures_by_output(reports)


def test_a_failing_output_is_named_with_its_figures() -> None:
    from conformance.budgets import judge_outputs

    metrics, by_output = _two_outputs()
    assert set(by_output) == {"output0", "proto"}
    assert by_output["proto"]["cosine"] > 0.999 > by_output["output0"]["cosine"]
    # agreement mIoU is pooled per case: it is judged on the case, not asked of an output.
    found = judge_outputs({**metrics, "agreement_miou": 1.0}, by_output,
                          {"min_cosine": 0.98, "min_agreement_miou": 0.9})
    assert [v.output for v in found] == ["output0"]
    assert str(found[0]).startswith("output 'output0': cosine = 0.9")
    assert str(found[0]).endswith("(budget >= 0.98)")
    assert judge_outputs(metrics, by_output, {"min_cosine": 0.5}) == []


def test_an_output_budget_by_name_goes_on_top_of_the_case_budget() -> None:
    from conformance.budgets import judge_outputs

    metrics, by_output = _two_outputs()
    loose = {"min_cosine": 0.5}
    # proto's own, stricter budget fails proto alone; output0 is held to the case's budget.
    found = judge_outputs(metrics, by_output, loose, {"proto": {"min_snr_db": 200.0}})
    assert [(v.output, v.metric) for v in found] == [("proto", "snr_db")]
    # output0 may be looser than the case budget by name, proto still judged by the case's.
    assert judge_outputs(metrics, by_output, {"min_cosine": 0.98},
                         {"output0": {"min_cosine": 0.5}}) == []
    # A budget for an output the case does not have is a failure, never a pass.
    found = judge_outputs(metrics, by_output, loose, {"protoo": {"min_cosine": 0.9}})
    assert [(v.output, str(v.value)) for v in found] == [("protoo", "nan")]


def test_output_budgets_are_declared_by_name_and_layered() -> None:
    from conformance.budgets import budget_for, output_budgets, table_problems

    table = {"parity": {"int8": {
        "min_cosine": 0.98,
        "outputs": {"proto": {"min_cosine": 0.99}},
        "prompt_masks": {"outputs": {"proto": {"min_snr_db": 15.0},
                                     "output0": {"max_max_abs_err": 1.0}}}}}}
    assert budget_for(table, "parity", "tflite_int8", task="prompt_masks") == {"min_cosine": 0.98}
    assert output_budgets(table, "parity", "tflite_int8", task="prompt_masks") == {
        "proto": {"min_cosine": 0.99, "min_snr_db": 15.0}, "output0": {"max_max_abs_err": 1.0}}
    assert output_budgets(table, "parity", "tflite_int8") == {"proto": {"min_cosine": 0.99}}
    assert table_problems(table) == []
    table["parity"]["int8"]["outputs"]["proto"]["min_cosinee"] = 0.9
    assert any("parity.int8.outputs.proto.min_cosinee" in p for p in table_problems(table))


def test_part_figures_show_a_row_the_whole_outputs_figures_hide() -> None:
    # FastSAM-s's int8 file with box rows in pixels: the score row is rounded to 0, yet the
    # whole output0 keeps a cosine near 1 (the box rows dominate it).
    from conformance.metrics.parity import part_figures

    rng = np.random.default_rng(0)
    expected = {"output0": np.concatenate([rng.uniform(0, 512, (1, 4, 50)),
                                           rng.uniform(0.2, 1, (1, 1, 50)),
                                           rng.normal(size=(1, 32, 50))], axis=1)}
    got = {"output0": expected["output0"].copy()}
    got["output0"][:, 4] = 0.0
    whole, _ = parity_figures([expected], [got])
    parts = part_figures([expected], [got], {"output0": (4, 1, 32)})
    assert list(parts) == ["output0[0:4]", "output0[4:5]", "output0[5:37]"]
    assert whole["cosine"] > 0.99
    assert parts["output0[0:4]"]["cosine"] == pytest.approx(1.0)
    assert parts["output0[4:5]"]["cosine"] == pytest.approx(0.0), parts["output0[4:5]"]
