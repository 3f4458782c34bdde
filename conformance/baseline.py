"""The regression gate: compare this run's figures with an earlier run's results.json.

Allowed drops are data ([baseline] in budgets.toml); a drop larger than allowed fails the
case with both numbers.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest


@cache
def _load(path: str) -> dict[tuple[str, str, str, str], dict[str, float]]:
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or "results" not in data:
        raise pytest.UsageError(f"--baseline {path}: not a segconform results.json")
    table = {}
    for row in data["results"]:
        key = (row["suite"], row["model"], row["format"], row["profile"])
        table[key] = {k: v for k, v in row.get("metrics", {}).items()
                      if isinstance(v, (int, float))}
    return table


def baseline_regressions(config: pytest.Config, budgets: dict, suite: str, model: str,
                         fmt: str, profile: str, metrics: dict[str, float]) -> list[str]:
    """Metrics that dropped more than allowed since the --baseline run ([] without one)."""
    path = config.getoption("--baseline")
    if not path:
        return []
    if not Path(path).is_file():
        raise pytest.UsageError(f"--baseline {path}: file not found")
    before = _load(str(path)).get((suite, model, fmt, profile))
    if before is None:
        return []
    allowed = budgets.get("baseline", {})
    found = []
    for metric, max_drop in allowed.items():
        if metric in before and metric in metrics:
            drop = before[metric] - metrics[metric]
            if drop > float(max_drop):
                found.append(f"{metric} fell from {before[metric]:.6g} to {metrics[metric]:.6g} "
                             f"(drop {drop:.6g} > allowed {max_drop}) since {path}")
    return found
