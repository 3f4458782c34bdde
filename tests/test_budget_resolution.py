"""Budgets resolve by suite, format (else its precision class), task and profile, and never
to nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.budgets import MissingBudget, budget_for, budget_table, known_formats, load_budgets
from conformance.metric_catalog import SUITES
from conformance.profiles import load_profiles
from models.formats import PRECISIONS, ExportFormat

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


# --- by format, then by precision class ---------------------------------------------------

CLASSES = {"parity": {"int8": {"min_argmax_agreement": 0.8, "prompt_masks": {"min_cosine": 0.9},
                               "coral": {"min_argmax_agreement": 0.85}},
                      "float32": {"min_snr_db": 50.0},
                      "onnx": {"min_snr_db": 60.0}}}


def test_a_format_without_a_table_takes_its_precision_class_table() -> None:
    assert budget_for(CLASSES, "parity", "edgetpu", "cpu") == {"min_argmax_agreement": 0.8}
    assert budget_for(CLASSES, "parity", "tflite_fp32", "cpu") == {"min_snr_db": 50.0}


def test_the_class_table_brings_its_task_and_profile_layers() -> None:
    assert budget_for(CLASSES, "parity", "edgetpu", "coral") == {"min_argmax_agreement": 0.85}
    assert budget_for(CLASSES, "parity", "tflite_int8", "cpu", "prompt_masks") == {
        "min_cosine": 0.9}


def test_a_format_table_replaces_its_class_table_whole() -> None:
    # Not merged: [parity.onnx] says all that onnx is judged on.
    assert budget_for(CLASSES, "parity", "onnx", "cpu") == {"min_snr_db": 60.0}
    assert budget_table(CLASSES, "parity", "onnx") == "onnx"
    assert budget_table(CLASSES, "parity", "torchscript") == "float32"


def test_no_format_and_no_class_table_is_refused_naming_both() -> None:
    with pytest.raises(MissingBudget) as caught:
        budget_for(CLASSES, "parity", "tflite_fp16", "cpu")
    message = str(caught.value)
    assert "[parity.tflite_fp16]" in message and "[parity.float16]" in message, message


def test_an_override_of_a_class_budgeted_format_keeps_the_other_class_budgets(
        tmp_path: Path) -> None:
    path = tmp_path / "budgets.toml"
    path.write_text("[parity.int8]\nmin_argmax_agreement = 0.8\nmin_agreement_miou = 0.7\n")
    table = load_budgets(path, ["parity.edgetpu.min_argmax_agreement=0.95"])
    assert budget_for(table, "parity", "edgetpu") == {"min_argmax_agreement": 0.95,
                                                     "min_agreement_miou": 0.7}
    assert budget_for(table, "parity", "tflite_int8") == {"min_argmax_agreement": 0.8,
                                                         "min_agreement_miou": 0.7}


def test_budgets_toml_class_tables_change_no_budget_of_a_format_with_its_own() -> None:
    table = load_budgets()
    without_classes = {suite: {name: section for name, section in tables.items()
                               if name not in PRECISIONS}
                       if isinstance(tables, dict) else tables for suite, tables in table.items()}
    compared = 0
    for suite in SUITES:
        for fmt in known_formats():
            for task in ("semantic", "prompt_masks"):
                for profile in load_profiles():
                    try:
                        before = budget_for(without_classes, suite, fmt, profile, task)
                    except MissingBudget:
                        continue
                    assert budget_for(table, suite, fmt, profile, task) == before
                    compared += 1
    assert compared > 100, compared


def test_a_row_must_name_a_known_precision_class_that_is_not_a_format_name() -> None:
    with pytest.raises(ValueError, match="unknown precision 'quantised'"):
        ExportFormat("npz", ".npz", "m:f", "m:C", "quantised")
    with pytest.raises(ValueError, match="the name of a precision class"):
        ExportFormat("int8", ".npz", "m:f", "m:C", "int8")


def test_a_budget_for_an_output_the_model_lacks_stops_the_run(tmp_path, inline_suite) -> None:
    """Output budgets are declared by output name; a name no case of that format has (a typo)
    would judge nothing, so collection refuses it and names the model's outputs."""
    code, out, _ = inline_suite(tmp_path, "conformance/test_parity.py", "--collect-only",
                                "--budget=parity.tflite_int8.prompt_masks.outputs.prot.min_cosine=0.99")
    assert code == 4, out[-2000:]
    assert "budgets output(s) ['prot'] that fastsam_s does not have" in out, out[-2000:]
    assert "its outputs: output0, proto" in out
    code, out, _ = inline_suite(tmp_path, "conformance/test_parity.py", "--collect-only",
                                "--budget=parity.tflite_int8.prompt_masks.outputs.proto.min_cosine=0.99")
    assert code == 0, out[-2000:]
