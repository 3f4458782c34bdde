"""Tiers outside the default run: each skipped by default with the option that runs it."""

from __future__ import annotations

from pathlib import Path

EXTENDED_FILES = {"test_int8_across_cpus.py", "test_parallel.py", "test_third_party_exports.py"}


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
