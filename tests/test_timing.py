"""How often a call is timed: the usual rounds for a fast call, three for a slow one."""

from __future__ import annotations

import time

from models.runtimes import timing


def test_a_fast_call_keeps_the_usual_rounds_and_its_probe_counts_as_a_warm_up() -> None:
    calls: list[int] = []
    assert timing.timing_plan(lambda: calls.append(1), 3, 7) == (2, 7)
    assert calls == [1]


def test_a_slow_call_is_timed_over_fewer_rounds() -> None:
    def slow() -> None:
        time.sleep(timing.SLOW_CALL_S + 0.05)

    assert timing.timing_plan(slow, 3, 7) == (timing.SLOW_WARMUP, timing.SLOW_ROUNDS)
