"""Budgets resolve by suite, format, task and profile, and never to nothing."""

from __future__ import annotations

import pytest

from conformance.budgets import MissingBudget, budget_for

TABLE = {"parity": {"tflite_int8": {"min_argmax_agreement": 0.9, "min_agreement_miou": 0.9,
                                    "prompt_masks": {"min_cosine": 0.98},
                                    "pi5": {"min_argmax_agreement": 0.95}},
                    "onnx": {"min_snr_db": 60.0, "min_argmax_agreement": 0.999}}}


def test_a_missing_section_is_refused_naming_the_table() -> None:
    with pytest.raises(MissingBudget, match=r"no budget for parity\.tflite_fp16 .*"
                                            r"\[parity\.tflite_fp16\]"):
        budget_for(TABLE, "parity", "tflite_fp16", "cpu")


def test_decision_budgets_do_not_apply_without_a_class_axis() -> None:
    assert budget_for(TABLE, "parity", "onnx", "cpu", "prompt_masks") == {"min_snr_db": 60.0}
    assert budget_for(TABLE, "parity", "tflite_int8", "cpu", "prompt_masks") == {
        "min_cosine": 0.98}


def test_a_task_whose_budgets_all_need_a_class_axis_has_nothing_to_judge() -> None:
    table = {"parity": {"edgetpu": {"min_argmax_agreement": 0.9}}}
    with pytest.raises(MissingBudget):
        budget_for(table, "parity", "edgetpu", "cpu", "prompt_masks")


def test_the_profile_layer_overrides_the_format_layer() -> None:
    assert budget_for(TABLE, "parity", "tflite_int8", "pi5")["min_argmax_agreement"] == 0.95
    assert budget_for(TABLE, "parity", "tflite_int8", "cpu")["min_argmax_agreement"] == 0.9
