"""pytest -n (pytest-xdist): results merged in the controller, each artifact converted once."""

from __future__ import annotations

import json
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


def test_two_workers_merge_reports_and_convert_each_artifact_once(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    junit, page = tmp_path / "junit.xml", tmp_path / "report.html"
    code, output, results = run_suite(
        tmp_path, "-n", "2", "--dist", "loadscope", f"--export-cache={cache}",
        f"--junitxml={junit}", f"--html={page}", "--self-contained-html", *SLICE)
    assert code == 0, output[-3000:]

    cases = results["results"]
    assert results["summary"]["total"] == len(cases) == 2, output[-2000:]
    assert {r["outcome"] for r in cases} == {"passed"}, [(r["nodeid"], r["message"])
                                                         for r in cases]
    assert {r["info"]["worker"] for r in cases} == {"gw0", "gw1"}, "not spread over 2 workers"
    # The JUnit file and the HTML page hold every worker's cases too.
    testcases = ET.parse(junit).getroot().iter("testcase")
    assert len([t for t in testcases if t.get("classname", "").startswith("conformance")]) == 2
    text = page.read_text(encoding="utf-8")
    assert all(r["nodeid"].split("::")[-1] in text for r in cases)

    conversions = [json.loads(line) for line in
                   (cache / "conversions.jsonl").read_text().splitlines()]
    per_key = Counter(c["key"] for c in conversions)
    assert per_key and max(per_key.values()) == 1, f"converted more than once: {per_key}"
    assert [c["format"] for c in conversions] == ["torchscript"]
    # Both workers ran a case on the same converted file: one converted, one waited.
    by_artifact = {}
    for r in cases:
        if "artifact" in r["info"]:
            by_artifact.setdefault(r["info"]["artifact"], set()).add(r["info"]["worker"])
    assert any(len(workers) == 2 for workers in by_artifact.values()), by_artifact


class _TorchVersionLike(str):
    """Like torch.__version__: a str subclass, which execnet refuses to send."""


def test_report_payload_holds_builtin_types_only() -> None:
    import numpy as np

    payload = _plain({"version": _TorchVersionLike("2.14.1"), "n": np.int64(3),
                      "x": np.float32(0.5), "path": Path("/tmp/a"), "flag": np.bool_(True),
                      "nan": float("nan"), "items": (1, _TorchVersionLike("a"))})
    assert payload == {"version": "2.14.1", "n": 3, "x": 0.5, "path": "/tmp/a", "flag": True,
                       "nan": "nan", "items": [1, "a"]}

    def builtin_only(value) -> bool:
        if isinstance(value, dict):
            return all(type(k) is str and builtin_only(v) for k, v in value.items())
        if isinstance(value, list):
            return all(builtin_only(v) for v in value)
        return type(value) in (str, int, float, bool, type(None))

    assert builtin_only(payload)
