"""Tiers outside the default run: each skipped by default with the option that runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.suite_run import SUITE_PLUGINS

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[1]
EXTENDED_FILES = {"test_int8_across_cpus.py", "test_parallel.py", "test_third_party_exports.py",
                  "test_fixture_weights.py"}


def test_extended_tests_skip_by_default_naming_the_option(tmp_path: Path, inline_suite) -> None:
    code, out, _ = inline_suite(tmp_path, "tests/test_parallel.py", "-rs")
    assert code == 0, out[-2000:]
    assert "1 passed, 2 skipped" in out  # the two-worker runs skip; the payload check runs
    assert out.count("extended tier (harness test: emulated CPU, third-party exporter or "
                     "parallel workers): run with --extended") == 2, out[-2000:]


def test_extended_marker_selects_exactly_the_extended_files(tmp_path: Path,
                                                            inline_suite) -> None:
    code, out, _ = inline_suite(tmp_path, "tests", "-m", "extended", "--extended",
                                "--collect-only")
    assert code == 0, out[-2000:]
    ids = [line for line in out.splitlines() if "::" in line]
    assert ids and {Path(i.split("::")[0]).name for i in ids} == EXTENDED_FILES, ids


@pytest.mark.usefixtures("bare_inner_sessions")
@pytest.mark.parametrize(("args", "outcome"), [
    ((), "1 skipped"), (("--extended",), "1 passed"), (("-m", "extended"), "1 passed"),
    (("-m", "not extended"), "1 deselected")])
def test_extended_runs_with_the_option_or_when_selected(pytester: pytest.Pytester,
                                                       args: tuple, outcome: str) -> None:
    # `-m extended` alone opts in: selected and then skipped, it would be a green run of nothing.
    pytester.syspathinsert(ROOT)
    pytester.makeini("[pytest]\nmarkers =\n    extended: costly harness test\n")
    pytester.makepyfile(test_inner="import pytest\n\n@pytest.mark.extended\n"
                                   "def test_costly():\n    pass\n")
    run = pytester.runpytest(*SUITE_PLUGINS, *args)
    assert outcome in run.stdout.str(), run.stdout.str()[-1500:]
