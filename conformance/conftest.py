"""Session fixtures shared by the conformance suites."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.budgets import MissingBudget, budget_for, load_budgets, output_budgets
from conformance.case_context import CaseContext, case_identity, open_case
from conformance.options import (
    INT8_RECIPES,
    USER_ARTIFACTS,
    active_profile,
    parse_pairs,
    parse_trusted,
)
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
    from conformance.reference import CALIBRATION_COUNT, ReferenceStore

    images = pytestconfig.getoption("--images")
    calibration = pytestconfig.getoption("--calibration")
    return ReferenceStore(
        checkpoints=parse_pairs(pytestconfig.getoption("--checkpoint"), "--checkpoint"),
        trusted=parse_trusted(pytestconfig.getoption("--trust-checkpoint")),
        images_dir=Path(images) if images else None,
        threads=load_profiles()["cpu"].threads,
        artifacts=pytestconfig.stash.get(USER_ARTIFACTS, {}),
        calibration_dir=Path(calibration) if calibration else None,
        calibration_count=pytestconfig.getoption("--calibration-count") or CALIBRATION_COUNT,
        int8_recipes=pytestconfig.stash.get(INT8_RECIPES, {}),
    )


@pytest.fixture(scope="session")
def voc_samples(pytestconfig: pytest.Config):
    """Labelled evaluation samples: --voc-root's val split, else our synthetic VOC set."""
    from fixtures.voc import SYNTHETIC_VERSION, DatasetError, read_voc_split, write_voc_dataset
    from models.export.cache import cache_root, key_lock

    root = pytestconfig.getoption("--voc-root")
    limit = pytestconfig.getoption("--voc-limit")
    if root:
        try:
            return "VOC2012 val", read_voc_split(Path(root), "val", limit=limit)
        except (DatasetError, FileNotFoundError) as err:
            raise pytest.UsageError(f"--voc-root: {err}") from err
    folder = cache_root() / f"voc_synthetic_v{SYNTHETIC_VERSION}"
    # val.txt is written last: a set cut short by an interrupted run is written again.
    listing = folder / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation" / "val.txt"
    with key_lock(folder):  # xdist workers: one writes the set, the others wait and read it
        if not listing.exists():
            write_voc_dataset(folder, count=8, size=256, seed=7)
    name = f"synthetic VOC v{SYNTHETIC_VERSION} (8 held-out images, seed 7)"
    return name, read_voc_split(folder / "VOCdevkit", "val")


@pytest.fixture(scope="session")
def eager_predictions(references, voc_samples):
    """PyTorch eager class maps per model on the evaluation samples, computed once."""
    from conformance.inference import semantic_prediction
    from conformance.reference import run_eager

    cache: dict[str, list] = {}

    def predictions(spec):
        if spec.name not in cache:
            ref = references.get(spec)
            name, out = spec.inputs[0].name, spec.output_names[0]

            def run(x):
                return run_eager(ref.model, spec, {name: x})[out]

            cache[spec.name] = [semantic_prediction(run, spec, s.image, s.label.shape)
                                for s in voc_samples[1]]
        return cache[spec.name]

    return predictions


@pytest.fixture
def context(request: pytest.FixtureRequest, budgets: dict, references) -> CaseContext:
    """The running case's suite, model, format, profile, budget and known failure, resolved
    before it exports; record figures and settle the verdict through it."""
    return open_case(request, budgets, references)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every collected case resolves a non-empty budget, or the run stops before any test."""
    table = load_budgets(overrides=config.getoption("--budget"))
    missing = []
    for item in items:
        found = case_identity(item)
        if found is None:
            continue
        identity, case = found
        try:
            budget_for(table, identity.suite, identity.format, identity.profile, identity.task)
        except MissingBudget as err:
            missing.append(f"{item.nodeid}: {err}")
        named = output_budgets(table, identity.suite, identity.format, identity.profile,
                               identity.task)
        unknown = sorted(set(named) - set(case.spec.output_names))
        if unknown:
            missing.append(f"{item.nodeid}: budgets.toml budgets output(s) {unknown} that "
                           f"{case.model} does not have (its outputs: "
                           f"{', '.join(case.spec.output_names)})")
    if missing:
        raise pytest.UsageError(f"{len(missing)} case(s) cannot be judged as declared; "
                                f"first: {missing[0]}")
