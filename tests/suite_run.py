"""Run the conformance suite in a subprocess, as a user would, with outputs kept in tmp."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_suite(tmp_path: Path, *args: str, timeout: int = 900) -> tuple[int, str, dict]:
    """(exit code, output, results.json) of `pytest ARGS` with reports and bundles in tmp."""
    report = tmp_path / "results.json"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=",
               "-o", "junit_family=xunit1", f"--report-json={report}",
               f"--bundle-dir={tmp_path / 'bundles'}", "-q", *args]
    run = subprocess.run(command, cwd=ROOT, env=dict(os.environ), capture_output=True,
                         text=True, timeout=timeout, check=False)
    results = json.loads(report.read_text()) if report.is_file() else {}
    return run.returncode, run.stdout + run.stderr, results
