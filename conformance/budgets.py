"""Budgets as data (budgets.toml), command-line overrides, and verdicts that carry numbers."""

from __future__ import annotations

import fnmatch
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

BUDGETS_FILE = Path(__file__).with_name("budgets.toml")


@dataclass(frozen=True)
class Violation:
    """One metric outside its budget."""

    metric: str
    value: float
    bound: str  # "<=" or ">="
    budget: float

    def __str__(self) -> str:
        return f"{self.metric} = {self.value:.6g} (budget {self.bound} {self.budget:.6g})"


def load_budgets(path: Path = BUDGETS_FILE, overrides: list[str] | None = None) -> dict:
    """The budget table with `suite.format.key=value` overrides applied."""
    with open(path, "rb") as handle:
        table = tomllib.load(handle)
    for item in overrides or []:
        key, sep, value = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) < 2:
            raise ValueError(f"--budget {item!r}: expected SUITE.FORMAT.KEY=VALUE "
                             "(e.g. parity.tflite_int8.min_argmax_agreement=0.95)")
        try:
            number = float(value)
        except ValueError as err:
            raise ValueError(f"--budget {item!r}: {value!r} is not a number") from err
        node = table
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if not parts[-1].startswith(("min_", "max_")):
            raise ValueError(f"--budget {item!r}: budget keys start with min_ or max_")
        node[parts[-1]] = number
    return table


def budget_for(table: dict, suite: str, fmt: str, profile: str | None = None) -> dict[str, float]:
    """Budget of (suite, format), with a [suite.format.profile] table layered on top."""
    section = dict(table.get(suite, {}).get(fmt, {}))
    nested = {k: v for k, v in section.items() if isinstance(v, dict)}
    flat = {k: float(v) for k, v in section.items() if not isinstance(v, dict)}
    if profile and profile in nested:
        flat.update({k: float(v) for k, v in nested[profile].items()})
    return flat


def violations(metrics: dict[str, float], budget: dict[str, float]) -> list[Violation]:
    """Metrics outside budget; a missing or NaN metric under a budget is a violation."""
    found = []
    for key, limit in budget.items():
        kind, metric = key.split("_", 1)
        value = metrics.get(metric, float("nan"))
        bound = "<=" if kind == "max" else ">="
        ok = value <= limit if kind == "max" else value >= limit
        if math.isnan(value) or not ok:
            found.append(Violation(metric, value, bound, limit))
    return found


def explain(title: str, metrics: dict[str, float], budget: dict[str, float],
            hint: str = "") -> str:
    """A failure message: what failed, every figure against its budget, where to look next."""
    bad = violations(metrics, budget)
    lines = [f"{title}: {len(bad)} budget(s) failed: " + "; ".join(str(v) for v in bad)]
    lines.append("all figures: " + ", ".join(f"{k}={v:.6g}" for k, v in sorted(metrics.items())))
    if hint:
        lines.append(hint)
    return "\n".join(lines)


def known_failure(table: dict, suite: str, model: str, fmt: str,
                  fixture_weights: bool = True) -> str | None:
    """The declared reason if (suite, model, format) is a known failure.

    An entry with `weights = "fixture"` applies only to the suite's own fixture weights,
    never to a user's checkpoint.
    """
    for entry in table.get("known_failure", []):
        if entry.get("weights") == "fixture" and not fixture_weights:
            continue
        if (entry.get("suite") == suite and fnmatch.fnmatch(model, entry.get("model", "*"))
                and fnmatch.fnmatch(fmt, entry.get("format", "*"))):
            return str(entry["reason"])
    return None


def mark_known_failure(request, table: dict, suite: str, model: str, fmt: str,
                       fixture_weights: bool = True) -> None:
    """Turn a declared known failure into a strict xfail of the running test."""
    import pytest

    reason = known_failure(table, suite, model, fmt, fixture_weights)
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
