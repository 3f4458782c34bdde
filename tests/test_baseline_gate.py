"""The baseline gate: every declared metric a case emits, judged in its bad direction."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from conformance.baseline import baseline_regressions, missing_cases

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(autouse=True)
def _bare_inner_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    # Inner sessions load only the plugins named with -p: autoloading every installed
    # plugin (hypothesis, benchmark, ...) costs seconds per in-process run.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")

CASE = ("latency", "deeplabv3plus_mnv3_lite", "onnx", "cpu")


def write_baseline(path: Path, metrics: dict, case: tuple = CASE) -> Path:
    suite, model, fmt, profile = case
    path.write_text(json.dumps({"schema": "segconform.results/1", "results": [
        {"suite": suite, "model": model, "format": fmt, "profile": profile,
         "metrics": metrics}]}))
    return path


def gate(path: Path, allowances: dict, metrics: dict, case: tuple = CASE):
    config = SimpleNamespace(getoption=lambda name: str(path), stash=pytest.Stash())
    found = baseline_regressions(config, {"baseline": allowances}, *case, metrics)
    return found, config


def test_lower_is_better_metric_that_rose_fails(tmp_path: Path) -> None:
    baseline = write_baseline(tmp_path / "b.json", {"p50_ms": 10.0, "speedup_vs_eager": 2.0})
    found, _ = gate(baseline, {"p50_ms": 1.0}, {"p50_ms": 12.5, "speedup_vs_eager": 2.0})
    assert found == [f"p50_ms rose from 10 to 12.5 (2.5 worse > allowed 1) since {baseline}"]
    found, _ = gate(baseline, {"p50_ms": 1.0}, {"p50_ms": 7.0, "speedup_vs_eager": 2.0})
    assert found == []  # faster is better, whatever the size of the change


def test_metric_without_allowance_takes_default_else_zero(tmp_path: Path) -> None:
    baseline = write_baseline(tmp_path / "b.json", {"speedup_vs_eager": 2.0})
    assert gate(baseline, {}, {"speedup_vs_eager": 1.99})[0], "no default: any worsening fails"
    assert gate(baseline, {"default": 0.05}, {"speedup_vs_eager": 1.99})[0] == []
    assert gate(baseline, {"default": 0.0, "speedup_vs_eager": float("inf")},
                {"speedup_vs_eager": 0.1})[0] == []


def test_informational_and_undeclared_metrics_are_not_compared(tmp_path: Path) -> None:
    case = ("accuracy", "m", "onnx", "cpu")
    baseline = write_baseline(tmp_path / "b.json",
                              {"reference_miou": 0.9, "made_up": 1.0, "miou": 0.5}, case)
    found, _ = gate(baseline, {}, {"reference_miou": 0.1, "made_up": 0.0, "miou": 0.5}, case)
    assert found == []


def test_nan_and_infinities_from_results_json(tmp_path: Path) -> None:
    case = ("parity", "m", "torchscript", "cpu")
    baseline = write_baseline(tmp_path / "b.json", {"snr_db": "inf", "cosine": 1.0}, case)
    assert gate(baseline, {}, {"snr_db": float("inf"), "cosine": 1.0}, case)[0] == []
    found, _ = gate(baseline, {"snr_db": 5.0}, {"snr_db": 90.0, "cosine": float("nan")}, case)
    assert [f.split(" since")[0] for f in found] == [
        "snr_db fell from inf to 90 (infinitely worse > allowed 5)",
        "cosine fell from 1 to nan (infinitely worse > allowed 0)"]


def test_case_missing_from_the_baseline_is_recorded(tmp_path: Path) -> None:
    baseline = write_baseline(tmp_path / "b.json", {"p50_ms": 10.0})
    other = ("latency", "fastsam_s", "onnx", "cpu")
    found, config = gate(baseline, {}, {"p50_ms": 99.0}, other)
    assert found == []
    assert missing_cases(config) == [other]


INNER = '''
from conformance.baseline import baseline_regressions


def test_case_not_in_baseline(pytestconfig):
    assert baseline_regressions(pytestconfig, {}, "latency", "fastsam_s", "onnx", "cpu",
                                {"p50_ms": 3.0}) == []
'''


def test_missing_case_is_listed_in_the_terminal_summary(pytester: pytest.Pytester,
                                                         tmp_path: Path) -> None:
    baseline = write_baseline(tmp_path / "b.json", {"p50_ms": 10.0})
    pytester.syspathinsert(ROOT)
    pytester.makepyfile(test_inner=INNER)
    run = pytester.runpytest("-p", "conformance.options", "-p", "no:cacheprovider",
                             f"--baseline={baseline}")
    run.assert_outcomes(passed=1)
    run.stdout.fnmatch_lines([f"*--baseline {baseline}: 1 case(s) not in the baseline, "
                              "not compared*", "latency fastsam_s onnx cpu"])
