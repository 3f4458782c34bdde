"""The CI gate: budgets from the command line, the baseline comparison, device latency."""

from __future__ import annotations

import json
from pathlib import Path

CASE = "conformance/test_parity.py::test_parity[deeplabv3plus_mnv3_lite-onnx]"


def test_budget_lowered_below_the_measurement_turns_the_run_red(
        tmp_path: Path, inline_suite) -> None:
    code, out, results = inline_suite(tmp_path, CASE, "--budget",
                                      "parity.onnx.min_snr_db=1000")
    assert code == 1, out[-2000:]
    message = results["results"][0]["message"]
    for part in ("deeplabv3plus_mnv3_lite-onnx", "snr_db = ", "budget >= 1000"):
        assert part in message, message
    assert "parity" in out and "snr_db" in out


def test_malformed_budget_override_is_a_usage_error(
        tmp_path: Path, inline_suite) -> None:
    code, out, _ = inline_suite(tmp_path, CASE, "--budget", "parity.onnx.snr=3")
    assert code == 4, out[-2000:]
    assert "budget keys start with min_ or max_" in out


def test_baseline_gate_fails_on_a_drop_larger_than_allowed(
        tmp_path: Path, inline_suite) -> None:
    code, out, results = inline_suite(tmp_path, CASE)
    assert code == 0, out[-2000:]
    row = results["results"][0]
    assert row["metrics"]["argmax_agreement"] == 1.0
    # An earlier run that claimed a better agreement than is possible now: a regression.
    better = {**results, "results": [{**row, "metrics": {**row["metrics"],
                                                           "argmax_agreement": 1.5}}]}
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(better))
    code, out, results = inline_suite(tmp_path, CASE, f"--baseline={baseline}")
    assert code == 1, out[-2000:]
    assert "argmax_agreement fell from 1.5 to 1" in results["results"][0]["message"]
    # Within the allowed delta (0.005): passes.
    close = {**results, "results": [{**row, "metrics": {**row["metrics"],
                                                          "argmax_agreement": 1.004}}]}
    baseline.write_text(json.dumps(close))
    code, out, _ = inline_suite(tmp_path, CASE, f"--baseline={baseline}")
    assert code == 0, out[-2000:]


def test_pi5_latency_budget_skips_off_device_with_the_local_figure(
        tmp_path: Path, inline_suite) -> None:
    code, out, results = inline_suite(
        tmp_path, "conformance/test_latency.py", "-m", "pi5", "-k",
        "deeplabv3plus_mnv3_lite and (torch_eager or tflite_int8)", "-rs")
    assert code == 0, out[-2000:]
    rows = {r["format"]: r for r in results["results"]}
    int8 = rows["tflite_int8"]
    assert int8["outcome"] == "skipped", int8
    assert "applies on a Raspberry Pi 5" in int8["message"]
    assert f"p50 {int8['metrics']['p50_ms']:.1f} ms" in int8["message"]
