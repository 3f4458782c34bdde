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


def test_time_calls_times_a_slow_call_over_the_slow_rounds_and_counts_its_probe() -> None:
    calls: list[int] = []

    def slow() -> None:
        calls.append(1)
        time.sleep(timing.SLOW_CALL_S + 0.05)

    times, warmup = timing.time_calls(slow, 3, 7)
    assert len(times) == timing.SLOW_ROUNDS and warmup == timing.SLOW_WARMUP + 1
    assert len(calls) == warmup + len(times)
    assert min(times) > timing.SLOW_CALL_S


def test_time_calls_keeps_the_usual_rounds_for_a_fast_call() -> None:
    calls: list[int] = []
    times, warmup = timing.time_calls(lambda: calls.append(1), 3, 7)
    assert (len(times), warmup, len(calls)) == (7, 3, 10)


def test_interleaved_ratio_is_first_p50_over_second_p50_with_calls_alternating() -> None:
    order: list[str] = []

    def slow() -> None:
        order.append("slow")
        time.sleep(0.02)

    def fast() -> None:
        order.append("fast")
        time.sleep(0.005)

    ratio = timing.interleaved_ratio(slow, fast, warmup=1, rounds=5)
    assert ratio > 2.0  # 20 ms over 5 ms, whatever the sleep overshoot
    assert order == ["slow", "fast"] * 6
