"""Fixtures shared by the harness's own tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def bare_inner_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process (pytester) sessions load only the plugins named with -p: autoloading every
    installed plugin (hypothesis, benchmark, ...) costs seconds per run."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
