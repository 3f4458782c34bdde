"""pytest -n (pytest-xdist): results merged in the controller, each artifact converted once."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from conformance.report import _plain
from tests.suite_run import run_suite

pytest.importorskip("xdist", reason="pytest-xdist not installed")

# Two suites over one artifact; with --dist loadscope each module goes to its own worker, so
# both workers need the TorchScript file at the same moment (the cheapest conversion).
SLICE = ("conformance/test_parity.py", "conformance/test_accuracy.py", "-m", "cpu",
         "-k", "deeplabv3plus_mnv3_lite-torchscript]")


def _run_slice(tmp_path: Path, *distribution: str) -> tuple[list[dict], Path, Path, str]:
    junit, page = tmp_path / "junit.xml", tmp_path / "report.html"
    code, output, results = run_suite(
        tmp_path, *distribution, "--dist", "loadscope", f"--junitxml={junit}",
        f"--html={page}", "--self-contained-html", *SLICE)
    assert code == 0, output[-3000:]
    cases = results["results"]
    assert results["summary"]["total"] == len(cases) == 2, output[-2000:]
    assert {r["outcome"] for r in cases} == {"passed"}, [(r["nodeid"], r["message"])
                                                         for r in cases]
    assert len({r["info"]["worker"] for r in cases}) == 2, "not spread over 2 workers"
    # The controller's JUnit file and HTML page hold every worker's cases.
    testcases = ET.parse(junit).getroot().iter("testcase")
    assert len([t for t in testcases if t.get("classname", "").startswith("conformance")]) == 2
    text = page.read_text(encoding="utf-8")
    assert all(r["nodeid"].split("::")[-1] in text for r in cases)
    return cases, junit, page, output


def _conversions(cache: Path) -> list[dict]:
    log = cache / "conversions.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.extended
def test_two_workers_merge_reports_and_convert_each_artifact_once(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cases, *_ = _run_slice(tmp_path, "-n", "2", f"--export-cache={cache}")
    conversions = _conversions(cache)
    per_key = Counter(c["key"] for c in conversions)
    assert [c["format"] for c in conversions] == ["torchscript"], f"per key: {per_key}"
    # Both workers ran a case on the same file: one converted it, the other waited for it.
    workers_per_artifact = {r["info"]["artifact"]: set() for r in cases}
    for r in cases:
        workers_per_artifact[r["info"]["artifact"]].add(r["info"]["worker"])
    assert [len(w) for w in workers_per_artifact.values()] == [2], workers_per_artifact


@pytest.mark.extended
def test_execnet_gateways_each_with_its_own_cache(tmp_path: Path) -> None:
    """Two hosts of a sweep, here two popen gateways: each converts into its own cache."""
    python = sys.executable
    caches = [tmp_path / "host-a", tmp_path / "host-b"]
    gateways = [arg for cache in caches for arg in (
        "--tx", f"popen//python={python}//env:SEGCONFORM_CACHE={cache}")]
    _run_slice(tmp_path, *gateways)
    assert [[c["format"] for c in _conversions(cache)] for cache in caches] == [
        ["torchscript"], ["torchscript"]]


class _TorchVersionLike(str):
    """Like torch.__version__: a str subclass, which execnet refuses to send."""


def test_report_payload_holds_builtin_types_only() -> None:
    import numpy as np

    payload = _plain({"version": _TorchVersionLike("2.14.1"), "n": np.int64(3),
                      "x": np.float32(0.5), "y": np.float64(0.25), "path": Path("/tmp/a"),
                      "flag": np.bool_(True),
                      "nan": float("nan"), "items": (1, _TorchVersionLike("a"))})
    assert payload == {"version": "2.14.1", "n": 3, "x": 0.5, "y": 0.25, "path": "/tmp/a",
                       "flag": True,
                       "nan": "nan", "items": [1, "a"]}

    def builtin_only(value) -> bool:
        if isinstance(value, dict):
            return all(type(k) is str and builtin_only(v) for k, v in value.items())
        if isinstance(value, list):
            return all(builtin_only(v) for v in value)
        return type(value) in (str, int, float, bool, type(None))

    assert builtin_only(payload)
