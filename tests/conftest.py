"""Fixtures shared by the harness's own tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def bare_inner_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process (pytester) sessions load only the plugins named with -p: autoloading every
    installed plugin (hypothesis, benchmark, ...) costs seconds per run."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture
def inline_suite(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """`run(tmp_path, *args) -> (exit code, output, results.json)`: the suite run inside this
    interpreter (tests/suite_run.py), for tests that need no fresh process."""
    from tests.suite_run import run_suite_in_process

    def run(tmp_path, *args: str):
        return run_suite_in_process(capsys, monkeypatch, tmp_path, *args)

    return run
