"""Command-line options of the suite and the session-wide objects built from them."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conformance.profiles import DEVICE_MARKERS, load_profiles

# model -> format -> a user's exported file, parsed once from --artifact at configure time.
USER_ARTIFACTS = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("segconform", "segmentation export conformance")
    group.addoption("--profile", default=None, choices=sorted(load_profiles()),
                    help="device profile to judge against (default: from -m, else cpu)")
    group.addoption("--budget", action="append", default=[], metavar="SUITE.FORMAT.KEY=VALUE",
                    help="override a budget from conformance/budgets.toml (repeatable)")
    group.addoption("--checkpoint", action="append", default=[], metavar="MODEL=PATH",
                    help="use a user's checkpoint for MODEL instead of fixture weights")
    group.addoption("--artifact", action="append", default=[],
                    metavar="MODEL[:FORMAT]=PATH",
                    help="test a user's exported file for MODEL in place of the suite's export "
                         "(format from the file when omitted; repeatable)")
    group.addoption("--images", default=None, metavar="DIR",
                    help="evaluate on the images in DIR instead of the fixture images")
    group.addoption("--voc-root", default=None, metavar="PATH",
                    help="a VOCdevkit folder for mIoU against real ground truth")
    group.addoption("--voc-limit", type=int, default=None, metavar="N",
                    help="evaluate only the first N images of the split")
    group.addoption("--bundle", default=None, metavar="PATH",
                    help="verify exported bundles under PATH (needs only numpy + the runtime)")
    group.addoption("--bundle-dir", default=None, metavar="DIR",
                    help="where parity cases write device bundles (default reports/bundles)")
    group.addoption("--baseline", default=None, metavar="RESULTS_JSON",
                    help="fail on drops since an earlier run's results.json ([baseline] budgets)")
    group.addoption("--runslow", action="store_true", default=False,
                    help="also run the slow tier (full-size models)")
    group.addoption("--export-cache", default=None, metavar="DIR",
                    help="artifact cache (default $SEGCONFORM_CACHE or .cache/segconform)")


def pytest_configure(config: pytest.Config) -> None:
    cache = config.getoption("--export-cache")
    if cache:
        os.environ["SEGCONFORM_CACHE"] = str(Path(cache).resolve())
    from conformance.budgets import load_budgets

    try:  # a typo in an override must stop the run before any test, not error each one
        load_budgets(overrides=config.getoption("--budget"))
    except ValueError as err:
        raise pytest.UsageError(str(err)) from err
    if config.getoption("--artifact"):  # models are imported only when asked for
        config.stash[USER_ARTIFACTS] = parse_artifacts(config.getoption("--artifact"))
    reports = Path(config.rootpath) / "reports"
    if not os.access(reports if reports.exists() else config.rootpath, os.W_OK):
        raise pytest.UsageError(f"{reports}: reports folder is not writable")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # With --bundle only the bundle suite runs: on a device, torch is absent.
    if config.getoption("--bundle") and collection_path.suffix == ".py" \
            and collection_path.name.startswith("test_") \
            and collection_path != Path(__file__).with_name("test_bundle.py"):
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow") or os.environ.get("SEGCONFORM_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow tier (full-size model): run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def parse_pairs(values: list[str], option: str) -> dict[str, Path]:
    """NAME=PATH pairs from a repeatable option; a clear UsageError otherwise."""
    pairs = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise pytest.UsageError(f"{option} {value!r}: expected NAME=PATH")
        if not Path(path).exists():
            raise pytest.UsageError(f"{option} {value!r}: {path} does not exist")
        pairs[name] = Path(path)
    return pairs


def parse_artifacts(values: list[str]) -> dict[str, dict[str, Path]]:
    """MODEL:FORMAT=PATH / MODEL=PATH pairs; a UsageError naming the option value otherwise."""
    from models.registry import ALL_FORMATS, all_specs
    from models.runtimes import ArtifactError, RuntimeUnavailable
    from models.user_artifact import infer_format

    specs = {spec.name: spec for spec in all_specs()}
    parsed: dict[str, dict[str, Path]] = {}
    for value in values:
        target, sep, raw = value.partition("=")
        model, _, fmt = target.partition(":")
        where = f"--artifact {value!r}"
        if not sep or not model or not raw:
            raise pytest.UsageError(f"{where}: expected MODEL:FORMAT=PATH or MODEL=PATH")
        if model not in specs:
            raise pytest.UsageError(f"{where}: unknown model {model!r}; known: "
                                    f"{', '.join(sorted(specs))}")
        path = Path(raw)
        if not path.is_file():
            raise pytest.UsageError(f"{where}: {path} does not exist")
        if not fmt:
            try:
                fmt = infer_format(path)
            except (ArtifactError, RuntimeUnavailable) as err:
                raise pytest.UsageError(f"{where}: {err}") from err
        if fmt not in ALL_FORMATS:
            raise pytest.UsageError(f"{where}: unknown format {fmt!r}; known: "
                                    f"{', '.join(ALL_FORMATS)}")
        if fmt not in specs[model].formats:
            raise pytest.UsageError(f"{where}: {model} is not tested as {fmt} (its formats: "
                                    f"{', '.join(specs[model].formats)})")
        if fmt in parsed.get(model, {}):
            raise pytest.UsageError(f"{where}: a file for {model} as {fmt} is already given "
                                    f"({parsed[model][fmt]})")
        parsed.setdefault(model, {})[fmt] = path
    return parsed


def active_profile(config: pytest.Config) -> str:
    """--profile, else the only device marker named in -m, else 'cpu'."""
    chosen = config.getoption("--profile")
    if chosen:
        return chosen
    expression = config.getoption("-m") or ""
    named = [m for m in DEVICE_MARKERS if re.search(rf"\b{m}\b", expression)]
    negated = re.search(r"\bnot\b", expression)
    return named[0] if len(named) == 1 and not negated else "cpu"
