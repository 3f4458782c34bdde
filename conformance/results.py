"""What a conformance test measured: one `CaseResult` per test, read by the report writer.

Tests call `record_case(request, ...)`; the numbers go to JUnit properties at once and to the
JSON/HTML reports at the end of the session (see `conformance/report.py`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest

from conformance.profiles import device_label, load_profiles

RESULT_KEY = pytest.StashKey["CaseResult"]()


@dataclass
class CaseResult:
    """Metrics of one test case against its budgets.

    `figures` are PNG images (bytes) with a caption, embedded in the HTML report.
    `outcome` is filled in by the report plugin from pytest's own verdict.
    """

    suite: str
    model: str
    format: str
    profile: str
    metrics: dict[str, float] = field(default_factory=dict)
    budgets: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    figures: list[tuple[str, bytes]] = field(default_factory=list)
    outcome: str = "unknown"
    message: str = ""
    nodeid: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict (figures left out; NaN/inf become strings)."""
        data = asdict(self)
        data.pop("figures")
        data["metrics"] = {k: _json_number(v) for k, v in self.metrics.items()}
        data["budgets"] = {k: _json_number(v) for k, v in self.budgets.items()}
        return data


def _json_number(value: float) -> float | str:
    value = float(value)
    return value if math.isfinite(value) else str(value)


def record_case(
    request: pytest.FixtureRequest,
    *,
    suite: str,
    model: str,
    format: str,
    profile: str,
    metrics: dict[str, float] | None = None,
    budgets: dict[str, float] | None = None,
    info: dict[str, Any] | None = None,
) -> CaseResult:
    """Attach a result to the running test; call again to add metrics to the same result."""
    node = request.node
    result = node.stash.get(RESULT_KEY, None)
    if result is None:
        result = CaseResult(suite=suite, model=model, format=format, profile=profile,
                            nodeid=node.nodeid)
        label = device_label(profile) if profile in load_profiles() else None
        if label:  # figures from another host than the profile's device say so
            result.info["measured_on"] = label
        # Under pytest -n: which worker measured it (merged by the controller). From the
        # config, not the environment: a session started inside a worker is not one.
        workerinput = getattr(request.config, "workerinput", None)
        if workerinput:
            result.info["worker"] = workerinput["workerid"]
        node.stash[RESULT_KEY] = result
        for key in ("suite", "model", "format", "profile"):
            node.user_properties.append((key, getattr(result, key)))
    for key, value in (metrics or {}).items():
        result.metrics[key] = float(value)
        node.user_properties.append((f"metric.{key}", _json_number(value)))
    for key, value in (budgets or {}).items():
        result.budgets[key] = float(value)
        node.user_properties.append((f"budget.{key}", _json_number(value)))
    for key, value in (info or {}).items():
        result.info[key] = value
        node.user_properties.append((f"info.{key}", str(value)))
    return result


def attach_figure(request: pytest.FixtureRequest, caption: str, png: bytes) -> None:
    """Embed a PNG in the HTML report next to this test's result (record_case first)."""
    result = request.node.stash.get(RESULT_KEY, None)
    if result is None:
        raise RuntimeError("attach_figure before record_case")
    result.figures.append((caption, png))
