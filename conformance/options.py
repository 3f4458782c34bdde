"""Command-line options of the suite and the session-wide objects built from them."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conformance.profiles import ASSUME_DEVICE_ENV, DEVICE_MARKERS, load_profiles

# model -> format -> a user's exported file, parsed once from --artifact at configure time.
USER_ARTIFACTS = pytest.StashKey[dict]()
INT8_RECIPES = pytest.StashKey[dict]()  # model -> Int8Recipe, loaded once at configure
_ENV_BEFORE = pytest.StashKey[dict[str, "str | None"]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("segconform", "segmentation export conformance")
    group.addoption("--profile", default=None, choices=sorted(load_profiles()),
                    help="device profile to judge against (default: from -m, else cpu)")
    group.addoption("--assume-device", default=None, choices=sorted(load_profiles()),
                    metavar="PROFILE",
                    help="treat this host as PROFILE's device, so its latency budgets apply "
                         "(for a board the detection misses)")
    group.addoption("--budget", action="append", default=[], metavar="SUITE.FORMAT.KEY=VALUE",
                    help="override a budget from conformance/budgets.toml (repeatable)")
    group.addoption("--checkpoint", action="append", default=[], metavar="MODEL=PATH",
                    help="use a user's checkpoint for MODEL instead of fixture weights")
    group.addoption("--trust-checkpoint", action="append", default=[], metavar="PATH",
                    help="allow unpickling this checkpoint file (pickle can run code; "
                         "repeatable); other files load weights-only")
    group.addoption("--artifact", action="append", default=[],
                    metavar="MODEL[:FORMAT]=PATH",
                    help="test a user's exported file for MODEL in place of the suite's export "
                         "(format from the file when omitted; repeatable)")
    group.addoption("--images", default=None, metavar="DIR",
                    help="evaluate on the images in DIR instead of the fixture images")
    group.addoption("--calibration", default=None, metavar="DIR",
                    help="calibrate int8 exports on the images in DIR (default: the fixture "
                         "calibration photos, disjoint from the evaluation images)")
    group.addoption("--calibration-count", type=int, default=None, metavar="N",
                    help="calibrate on the first N images (default 16)")
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
    group.addoption("--extended", action="store_true", default=False,
                    help="also run the extended harness tests (emulated CPUs, third-party "
                         "exporters, parallel workers); only those: -m extended")
    group.addoption("--export-cache", default=None, metavar="DIR",
                    help="artifact cache (default $SEGCONFORM_CACHE or .cache/segconform)")
    group.addoption("--int8-recipe", action="append", default=[], metavar="MODEL=FILE",
                    help="the mixed-precision int8 recipe (JSON, as --int8-repair saves it) "
                         "that format tflite_int8_mixed of MODEL converts with")
    group.addoption("--int8-repair", action="store_true", default=False,
                    help="when a quantised TFLite case fails its parity budget, search the "
                         "fewest layers to keep at int16/float that pass it, and save the recipe")
    group.addoption("--require-formats", action="store_true", default=False,
                    help="fail, not skip, a format the active profile lists whose runtime "
                         "package is not installed")


@pytest.hookimpl(tryfirst=True)  # before pytest-html creates its report's folder
def pytest_configure(config: pytest.Config) -> None:
    """Refuse bad options with one line before any test runs."""
    device = config.getoption("--assume-device")
    if device:  # an environment variable, so that child pytest processes assume it too
        _set_env(config, ASSUME_DEVICE_ENV, device)
    cache = config.getoption("--export-cache")
    if cache:
        _set_env(config, "SEGCONFORM_CACHE", str(Path(cache).resolve()))
    from conformance.baseline import load_baseline
    from conformance.budgets import load_budgets

    try:  # a typo in an override must stop the run before any test, not error each one
        load_budgets(overrides=config.getoption("--budget"))
        if config.getoption("--baseline"):
            load_baseline(str(config.getoption("--baseline")))
    except ValueError as err:
        raise pytest.UsageError(str(err)) from err
    parse_pairs(config.getoption("--checkpoint"), "--checkpoint")
    config.stash[INT8_RECIPES] = parse_recipes(config.getoption("--int8-recipe"),
                                               active_profile(config))
    problem = calibration_problem(config.getoption("--calibration"),
                                  config.getoption("--calibration-count"),
                                  config.getoption("--images"))
    if problem:
        raise pytest.UsageError(problem)
    if config.getoption("--artifact"):  # models are imported only when asked for
        config.stash[USER_ARTIFACTS] = parse_artifacts(config.getoption("--artifact"))
    for option, value, path, folder in _output_paths(config):
        reason = unwritable(path, folder)
        if reason:
            raise pytest.UsageError(f"{option} {value}: cannot write there ({reason})")


def _set_env(config: pytest.Config, name: str, value: str) -> None:
    # Put back at unconfigure: a session run inside another (pytest.main, pytester) must not
    # change its host's environment.
    config.stash.setdefault(_ENV_BEFORE, {}).setdefault(name, os.environ.get(name))
    os.environ[name] = value


def pytest_unconfigure(config: pytest.Config) -> None:
    """Put the environment variables options set back as they were."""
    for name, before in config.stash.get(_ENV_BEFORE, {}).items():
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def calibration_problem(folder: str | None, count: int | None,
                        images: str | None) -> str | None:
    """One line on what is wrong with --calibration / --calibration-count, else None."""
    if count is not None and count < 1:
        return f"--calibration-count {count}: must be at least 1"
    if folder is None:
        return None
    from fixtures.images import image_files
    from models.export.cache import file_sha256

    try:
        files = image_files(Path(folder), "--calibration")
    except FileNotFoundError as err:
        return str(err)
    if images:
        try:
            evaluated = {file_sha256(p): p.name for p in image_files(Path(images), "--images")}
        except FileNotFoundError as err:
            return str(err)
        shared = [p.name for p in files[:count] if file_sha256(p) in evaluated]
        if shared:
            # Calibrating on the images a case is judged on flatters int8.
            return (f"--calibration {folder}: {len(shared)} image(s) also in --images "
                    f"{images} ({', '.join(shared[:5])}); calibrate on other images")
    return None


def _output_paths(config: pytest.Config) -> list[tuple[str, str, Path, bool]]:
    """(option, value, resolved path, is a folder) of everything the run will write."""
    here = config.invocation_params.dir
    found = []
    for option, dest in (("--junitxml", "xmlpath"), ("--html", "htmlpath"),
                         ("--report-json", "report_json")):
        value = config.getoption(dest, None)  # None too when that plugin is not loaded
        if value:
            found.append((option, value, here / os.path.expanduser(os.path.expandvars(value)),
                          False))
    if not config.getoption("report_json", None):
        try:  # like --junitxml the option is relative to where pytest runs, the ini to rootdir
            ini = config.getini("report_json")
        except ValueError:  # the report plugin is not loaded
            ini = ""
        if ini:
            found.append(("ini report_json", ini, config.rootpath / os.path.expanduser(ini),
                          False))
    bundles = config.getoption("--bundle-dir")
    if bundles:
        found.append(("--bundle-dir", bundles, here / os.path.expanduser(bundles), True))
    return found


def unwritable(path: Path, folder: bool = False) -> str | None:
    """Why a file (or a folder) cannot be written at `path`; None when it can."""
    if path.exists():
        if path.is_dir() != folder:
            return f"{path} is a {'file' if folder else 'folder'}"
        return None if os.access(path, os.W_OK) else f"{path} is not writable"
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is a file, not a folder"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{ancestor} is not writable"
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """--require-formats: a missing runtime package of a format the profile lists fails."""
    try:
        return (yield)
    except pytest.skip.Exception as skipped:
        package = getattr(skipped, "missing_package", None)  # conformance.runners
        if package and item.config.getoption("--require-formats"):
            profile = active_profile(item.config)
            if skipped.format in load_profiles()[profile].formats:
                raise pytest.fail.Exception(
                    f"{skipped.msg} (--require-formats: profile {profile} lists "
                    f"{skipped.format}; missing package {package})", pytrace=False) from None
        raise


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """List the cases --baseline could not compare: a gate must not pass them silently."""
    from conformance.baseline import missing_cases

    missing = missing_cases(config)
    if missing:
        terminalreporter.write_sep("-", f"--baseline {config.getoption('--baseline')}: "
                                   f"{len(missing)} case(s) not in the baseline, not compared",
                                   yellow=True)
        for suite, model, fmt, profile in missing:
            terminalreporter.write_line(f"{suite} {model} {fmt} {profile}", yellow=True)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # With --bundle only the bundle suite runs: on a device, torch is absent.
    if config.getoption("--bundle") and collection_path.suffix == ".py" \
            and collection_path.name.startswith("test_") \
            and collection_path != Path(__file__).with_name("test_bundle.py"):
        return True
    return None


# Tiers outside the default run: marker -> (whether it runs, the skip reason).
def _tiers(config: pytest.Config) -> dict[str, tuple[bool, str]]:
    return {
        "slow": (config.getoption("--runslow") or os.environ.get("SEGCONFORM_SLOW") == "1",
                 "slow tier (full-size model): run with --runslow"),
        # Harness tests whose cost is another CPU emulated, a third-party exporter or parallel
        # workers: they keep the default tier short, and CI runs them after it.
        # `-m extended` (or any -m naming it) opts in: selected and then skipped, it would
        # report a green run that tested nothing.
        "extended": (config.getoption("--extended")
                     or "extended" in (config.getoption("-m") or ""),
                     "extended tier (harness test: emulated CPU, third-party exporter or "
                     "parallel workers): run with --extended"),
    }


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, (runs, reason) in _tiers(config).items():
        if runs:
            continue
        skip = pytest.mark.skip(reason=reason)
        for item in items:
            if item.get_closest_marker(marker):
                item.add_marker(skip)


def parse_pairs(values: list[str], option: str) -> dict[str, Path]:
    """MODEL=PATH pairs from a repeatable option; a one-line UsageError otherwise."""
    pairs = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise pytest.UsageError(f"{option} {value!r}: expected MODEL=PATH")
        require_known_model(name, option, value)
        if not Path(path).exists():
            raise pytest.UsageError(f"{option} {value!r}: {path} does not exist")
        pairs[name] = Path(path)
    return pairs


def parse_recipes(values: list[str], profile: str = "cpu") -> dict:
    """MODEL=FILE pairs of --int8-recipe, each loaded; a one-line UsageError otherwise, also
    when nothing in this run would convert with the recipe (it would judge nothing, silently)."""
    from conformance.profiles import load_profiles
    from models.export.int8_recipe import RecipeError, load_recipe
    from models.formats import MIXED_FORMAT as MIXED
    from models.registry import all_specs, get_spec

    recipes = {}
    for name, path in parse_pairs(values, "--int8-recipe").items():
        if MIXED not in get_spec(name).formats:
            rows = [s.name for s in all_specs() if MIXED in s.formats]
            raise pytest.UsageError(
                f"--int8-recipe {name}={path}: {name} has no {MIXED} row to judge the recipe "
                f"(models with one: {', '.join(rows)}); add {MIXED} to its formats in "
                "models/ to replay a recipe for it")
        runs = load_profiles().get(profile)
        if runs is not None and MIXED not in runs.formats:
            raise pytest.UsageError(
                f"--int8-recipe {name}={path}: profile {profile} runs no {MIXED} (its "
                f"formats: {', '.join(runs.formats)}); judge the recipe with -m cpu or -m pi5")
        try:
            recipes[name] = load_recipe(path, name)
        except RecipeError as err:
            raise pytest.UsageError(f"--int8-recipe {name}={path}: {err}") from None
    return recipes


def parse_trusted(values: list[str], option: str = "--trust-checkpoint") -> frozenset[Path]:
    """Resolved paths of the files a user allows to be unpickled; a UsageError if one is absent."""
    for value in values:
        if not Path(value).is_file():
            raise pytest.UsageError(f"{option} {value!r}: no such file")
    return frozenset(Path(value).resolve() for value in values)


def require_known_model(name: str, option: str, value: str) -> None:
    """A one-line UsageError naming the option, the value and the registered models."""
    from models.registry import all_specs

    known = [spec.name for spec in all_specs()]
    if name not in known:
        raise pytest.UsageError(f"{option} {value!r}: unknown model {name!r}; "
                                f"known: {', '.join(known)}")
def parse_artifacts(values: list[str]) -> dict[str, dict[str, Path]]:
    """MODEL:FORMAT=PATH / MODEL=PATH pairs; a UsageError naming the option value otherwise."""
    from models.formats import FORMATS
    from models.registry import all_specs
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
        if fmt not in FORMATS:
            raise pytest.UsageError(f"{where}: unknown format {fmt!r}; known: "
                                    f"{', '.join(FORMATS)}")
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
    chosen = config.getoption("--profile", None)  # None in a session without our plugin
    if chosen:
        return chosen
    expression = config.getoption("-m") or ""
    named = [m for m in DEVICE_MARKERS if re.search(rf"\b{m}\b", expression)]
    negated = re.search(r"\bnot\b", expression)
    return named[0] if len(named) == 1 and not negated else "cpu"
