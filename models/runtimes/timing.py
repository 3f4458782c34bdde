"""How often to run a call when timing it: the usual rounds, or fewer for a slow call.

A call over SLOW_CALL_S (int16 activations on TFLite's reference kernels take ~2 s) costs
seconds per round while its run-to-run noise is small against it, so three rounds give its
median; the usual rounds stay for fast calls, whose noise needs them. One loop for the host
latency suite, the on-device bundles and the op profile.
"""

from __future__ import annotations

import time
from collections.abc import Callable

SLOW_CALL_S = 0.5
SLOW_WARMUP, SLOW_ROUNDS = 0, 3  # after the probe call, which is itself a warm-up


def timing_plan(call: Callable[[], object], warmup: int, rounds: int) -> tuple[int, int]:
    """Run `call` once (the first warm-up) and return the (warm-up, rounds) still to run."""
    start = time.perf_counter()
    call()
    if time.perf_counter() - start > SLOW_CALL_S:
        return SLOW_WARMUP, SLOW_ROUNDS
    return max(warmup - 1, 0), rounds


def time_calls(call: Callable[[], object], warmup: int, rounds: int) -> tuple[list[float], int]:
    """Seconds per timed call under `timing_plan`, and the warm-up calls made (probe included)."""
    warmup, rounds = timing_plan(call, warmup, rounds)
    for _ in range(warmup):
        call()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times, warmup + 1


def interleaved_ratio(first: Callable[[], object], second: Callable[[], object],
                      warmup: int, rounds: int) -> float:
    """p50 of `first` over p50 of `second`, timed alternately so background load hits both."""
    import numpy as np

    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(warmup):
        first(), second()
    for _ in range(rounds):
        for fn, seconds in zip((first, second), times, strict=True):
            start = time.perf_counter()
            fn()
            seconds.append(time.perf_counter() - start)
    return float(np.median(times[0]) / np.median(times[1]))
