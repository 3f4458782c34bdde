"""Session fixtures shared by the conformance suites."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.budgets import load_budgets
from conformance.options import active_profile, parse_pairs
from conformance.profiles import load_profiles


@pytest.fixture(scope="session")
def budgets(pytestconfig: pytest.Config) -> dict:
    """The budget table with command-line overrides."""
    try:
        return load_budgets(overrides=pytestconfig.getoption("--budget"))
    except ValueError as err:
        raise pytest.UsageError(str(err)) from err


@pytest.fixture(scope="session")
def profile_name(pytestconfig: pytest.Config) -> str:
    """The profile this run is judged against."""
    return active_profile(pytestconfig)


@pytest.fixture(scope="session")
def references(pytestconfig: pytest.Config, profile_name: str):
    """PyTorch references and export sessions, built once per model."""
    from conformance.reference import ReferenceStore

    images = pytestconfig.getoption("--images")
    return ReferenceStore(
        checkpoints=parse_pairs(pytestconfig.getoption("--checkpoint"), "--checkpoint"),
        images_dir=Path(images) if images else None,
        threads=load_profiles()["cpu"].threads,
    )
