"""Latency figures and their judgement, shared by the latency suite and the on-device bundles.

Absolute milliseconds belong to the profile's device: they are judged only on that host
(profiles.host_matches, or --assume-device). Elsewhere the case reports the local figure and
skips; ratios measured in one run (speed-up vs eager) hold anywhere and are judged anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from conformance.budgets import KnownFailure, explain, settle, violations
from conformance.profiles import host_description, host_matches, load_profiles

WARMUP, ROUNDS = 3, 7  # TorchScript's profiling executor optimises over the first runs


def latency_figures(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p90, mean (ms) and the p90/p50 spread of single-call times in seconds."""
    data = np.asarray(seconds, dtype=np.float64) * 1000.0
    metrics = {"p50_ms": float(np.percentile(data, 50)), "p90_ms": float(np.percentile(data, 90)),
               "mean_ms": float(data.mean())}
    metrics["p90_over_p50"] = metrics["p90_ms"] / metrics["p50_ms"]
    return metrics


def judge_latency(title: str, metrics: dict[str, float], budget: dict[str, float],
                  profile_name: str, known: KnownFailure | None = None) -> None:
    """Fail on a violated budget (a known failure inside its band is an expected failure);
    skip with the local figure where ms budgets do not apply."""
    device_budget = {k: v for k, v in budget.items() if k.endswith("_ms")}
    if device_budget and not host_matches(profile_name):
        general = {k: v for k, v in budget.items() if k not in device_budget}
        if violations(metrics, general):
            settle(known, metrics, explain(title, metrics, general))
        limits = ", ".join(f"{k} {v:g}" for k, v in device_budget.items())
        pytest.skip(f"{profile_name} latency budget ({limits}) applies on a "
                    f"{load_profiles()[profile_name].description}; measured here "
                    f"on {host_description()}: p50 {metrics['p50_ms']:.1f} ms, "
                    f"p90 {metrics['p90_ms']:.1f} ms")
    settle(known, metrics, explain(title, metrics, budget) if violations(metrics, budget)
           else None)
