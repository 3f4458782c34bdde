"""The regression gate: compare this run's figures with an earlier run's results.json.

Every declared metric a case emits is compared (conformance/metric_catalog.py), except
informational ones; how much worse it may get is data: `[baseline]` in budgets.toml, one
allowance per metric in the metric's unit, else `default`, else 0 (`inf` leaves a metric to
its budgets). A case the baseline does not have is listed in the terminal summary.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conformance.metric_catalog import METRICS

Key = tuple[str, str, str, str]  # suite, model, format, profile
_MISSING = pytest.StashKey[list[Key]]()
_LOADED = pytest.StashKey[dict[Key, dict[str, float]]]()


def load_baseline(path: str) -> dict[Key, dict[str, float]]:
    """Metrics per (suite, model, format, profile) of a results.json; ValueError if not one."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as err:
        raise ValueError(f"--baseline {path}: file not found") from err
    except (OSError, ValueError) as err:
        raise ValueError(f"--baseline {path}: not readable JSON ({err})") from err
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ValueError(f"--baseline {path}: not a segconform results.json (no 'results' list)")
    table = {}
    for row in data["results"]:
        key = (row["suite"], row["model"], row["format"], row["profile"])
        table[key] = {k: _number(v) for k, v in row.get("metrics", {}).items()
                      if _number(v) is not None}
    return table


def _number(value: object) -> float | None:
    # results.json writes NaN and infinities as the strings "nan", "inf", "-inf".
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if value in ("nan", "inf", "-inf"):
        return float(value)
    return None


def allowed_worsening(allowances: dict, metric: str) -> float:
    """The [baseline] allowance of `metric`: its own entry, else `default`, else 0."""
    return float(allowances.get(metric, allowances.get("default", 0.0)))


def baseline_regressions(config: pytest.Config, budgets: dict, suite: str, model: str,
                         fmt: str, profile: str, metrics: dict[str, float]) -> list[str]:
    """Metrics that got worse by more than allowed since the --baseline run ([] without one)."""
    path = config.getoption("--baseline")
    if not path:
        return []
    if _LOADED not in config.stash:
        # Once per session, not per process: the file may change between two sessions run
        # in one interpreter.
        try:
            config.stash[_LOADED] = load_baseline(str(path))
        except ValueError as err:  # pytest_configure checks it first; this is a second line
            raise pytest.UsageError(str(err)) from err
    before = config.stash[_LOADED].get((suite, model, fmt, profile))
    if before is None:
        config.stash.setdefault(_MISSING, []).append((suite, model, fmt, profile))
        return []
    allowances = budgets.get("baseline", {})
    found = []
    for name, now in metrics.items():
        metric = METRICS.get(name)
        if metric is None or metric.informational or metric.better is None or name not in before:
            continue
        then, allowed = before[name], allowed_worsening(allowances, name)
        worse = metric.worsening(then, float(now))
        if worse > allowed:
            direction = "fell" if metric.better == "higher" else "rose"
            found.append(f"{name} {direction} from {then:.6g} to {now:.6g} "
                         f"({_amount(worse)} worse > allowed {allowed:g}) since {path}")
    return found


def _amount(value: float) -> str:
    return "infinitely" if math.isinf(value) else f"{value:.6g}"


def missing_cases(config: pytest.Config) -> list[Key]:
    """Cases this session compared against --baseline that the baseline did not have."""
    return list(config.stash.get(_MISSING, []))
