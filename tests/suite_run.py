"""Run the conformance suite as a user would, with outputs kept in tmp.

`run_suite` starts a fresh interpreter: for what needs one (pytest -n, a second process to
compare with). `run_suite_in_process` runs the same command line inside this interpreter,
so torch and the converters are imported once, not once per run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# An inner (pytester) session with the suite's plugins only: with PYTEST_DISABLE_PLUGIN_AUTOLOAD
# (tests/conftest.py bare_inner_sessions) nothing else loads.
SUITE_PLUGINS = ("-p", "conformance.report", "-p", "conformance.options",
                 "-p", "pytest_html.plugin", "-p", "pytest_metadata.plugin",
                 "-p", "no:cacheprovider")

def suite_arguments(tmp_path: Path, *args: str) -> list[str]:
    """The command line: no addopts (no HTML/JUnit), JSON report and bundles under tmp."""
    return ["-p", "no:cacheprovider", "-o", "addopts=", "-o", "junit_family=xunit1",
            f"--report-json={tmp_path / 'results.json'}",
            f"--bundle-dir={tmp_path / 'bundles'}", "-q", *args]


# Set in an xdist worker's environment; a suite run started from a test is its own session,
# not a worker (pytest-benchmark would switch itself off, results would name a worker).
XDIST_WORKER_VARIABLES = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT",
                          "PYTEST_XDIST_TESTRUNUID")


def _results(tmp_path: Path) -> dict:
    report = tmp_path / "results.json"
    return json.loads(report.read_text()) if report.is_file() else {}


def run_suite(tmp_path: Path, *args: str, timeout: int = 900) -> tuple[int, str, dict]:
    """(exit code, output, results.json) of `pytest ARGS` in a new interpreter."""
    command = [sys.executable, "-m", "pytest", *suite_arguments(tmp_path, *args)]
    env = {k: v for k, v in os.environ.items() if k not in XDIST_WORKER_VARIABLES}
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=timeout, check=False)
    return run.returncode, run.stdout + run.stderr, _results(tmp_path)


def run_suite_in_process(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                         tmp_path: Path, *args: str) -> tuple[int, str, dict]:
    """(exit code, output, results.json) of `pytest ARGS` run inside this interpreter.

    `pytest.main`, not pytester's inline run: that one drops every module the run imported
    when it ends, and torch's lazily imported submodules cannot be imported twice.
    """
    monkeypatch.chdir(ROOT)
    for name in XDIST_WORKER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    capsys.readouterr()
    code = pytest.main(suite_arguments(tmp_path, *args))
    out, err = capsys.readouterr()
    return int(code), out + err, _results(tmp_path)
