"""pytest-xdist support: latency cases are timed alone while the other workers wait.

Under `pytest -n N` every test runs holding a shared (read) lock of the run, and a test marked
`timed_alone` (the latency suite) holds it exclusively: while a case is timed no other worker
runs numerics on the same cores, so p50, p90 and the interleaved speed-up mean what they mean
in a serial run. The other workers' tests queue behind it; nothing is skipped. The lock is
filelock's SQLite-backed ReadWriteLock in the temp dir, named after xdist's run uid, so each
run, and each host of an execnet sweep, has its own.

pytest-benchmark switches itself off under xdist because workers share the cores; with the
exclusive lock that reason no longer holds, so workers switch it back on unless the user asked
for `--benchmark-disable` or `--benchmark-skip`. Its own table and JSON are then per worker;
the merged latency figures are in reports/results.json.
"""

from __future__ import annotations

import tempfile
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

TIMED_ALONE = "timed_alone"
_LOCK_KEY = pytest.StashKey[Any]()


def run_lock_path(run_uid: str) -> Path:
    """The lock database shared by the workers of one xdist run on this host."""
    return Path(tempfile.gettempdir()) / f"segconform-run-{run_uid}.lock.db"


def is_worker(config: pytest.Config) -> bool:
    """True in an xdist worker process."""
    return hasattr(config, "workerinput")


@pytest.hookimpl(trylast=True)  # after pytest-benchmark has made (and disabled) its session
def pytest_configure(config: pytest.Config) -> None:
    """On an xdist worker: open the run's lock and switch pytest-benchmark back on."""
    if not is_worker(config):
        return
    from filelock import ReadWriteLock

    uid = config.workerinput.get("testrunuid", "")  # type: ignore[attr-defined]
    config.stash[_LOCK_KEY] = ReadWriteLock(run_lock_path(uid), is_singleton=False)
    session = getattr(config, "_benchmarksession", None)  # pytest-benchmark's, if loaded
    if session is not None and not (config.getoption("benchmark_disable", False)
                                    or config.getoption("benchmark_skip", False)):
        session.disabled = False


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[
        None, Any, Any]:
    """Hold the run's lock through setup, call and teardown: shared, or alone if timed."""
    lock = item.config.stash.get(_LOCK_KEY, None)
    if lock is None:
        return (yield)
    alone = item.get_closest_marker(TIMED_ALONE) is not None
    with lock.write_lock() if alone else lock.read_lock():
        return (yield)
