"""One context per conformance test: what the case is and what judges it, resolved once.

Suite, model, format, profile, budget and known failure are settled before anything is
exported; the test records its figures and gets its verdict through the context. The
collection-time budget check and the report's rows for cases skipped before they ran read the
same identity (`case_identity`), so the three cannot disagree on a name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from conformance.baseline import baseline_regressions
from conformance.budgets import (
    KnownFailure,
    budget_for,
    find_known_failure,
    output_budgets,
    settle,
)
from conformance.matrix import Case
from conformance.options import active_profile
from conformance.results import CaseResult, attach_figure, record_case


@dataclass(frozen=True)
class CaseIdentity:
    """Which suite judges which model in which format, for which profile."""

    suite: str
    model: str
    format: str
    profile: str
    task: str

    def result(self, nodeid: str = "") -> CaseResult:
        """An empty result under this identity (for a case skipped before it ran)."""
        return CaseResult(suite=self.suite, model=self.model, format=self.format,
                          profile=self.profile, nodeid=nodeid)


def case_identity(item: pytest.Item) -> tuple[CaseIdentity, Case] | None:
    """The identity of a parametrized conformance test (module SUITE x `case`), else None."""
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("case") if callspec else None
    suite = getattr(getattr(item, "module", None), "SUITE", None)
    if not isinstance(case, Case) or not isinstance(suite, str):
        return None
    profile = case.profile(active_profile(item.config))
    return CaseIdentity(suite, case.model, case.format, profile, case.spec.task), case


@dataclass
class CaseContext:
    """A running case: its identity, budget and known failure, and the result it records."""

    request: pytest.FixtureRequest
    identity: CaseIdentity
    budgets: dict  # the whole table, for the baseline's allowances
    budget: dict[str, float]
    known: KnownFailure | None
    result: CaseResult
    case: Case | None = None
    output_budget: dict[str, dict[str, float]] = field(default_factory=dict)  # by output name

    @property
    def model(self) -> str:
        return self.identity.model

    @property
    def format(self) -> str:
        return self.identity.format

    @property
    def profile(self) -> str:
        return self.identity.profile

    def __str__(self) -> str:
        return str(self.case) if self.case else f"{self.model}-{self.format}"

    def record(self, metrics: dict[str, float] | None = None,
               info: dict[str, Any] | None = None) -> CaseResult:
        """Add figures and facts to this case's result (JUnit properties, JSON, HTML)."""
        return record_case(self.request, suite=self.identity.suite, model=self.model,
                           format=self.format, profile=self.profile, metrics=metrics,
                           info=info)

    def attach(self, caption: str, png: bytes) -> None:
        """Embed a figure next to this case's result."""
        attach_figure(self.request, caption, png)

    def regressions(self, metrics: dict[str, float]) -> list[str]:
        """What got worse against --baseline (empty without one)."""
        return baseline_regressions(self.request.config, self.budgets, self.identity.suite,
                                    self.model, self.format, self.profile, metrics)

    def settle(self, metrics: dict[str, float], failure: str | None) -> None:
        """The verdict: `failure` fails, unless this case's known failure band holds it."""
        settle(self.known, metrics, failure)


def open_case(request: pytest.FixtureRequest, budgets: dict, references: Any,
              fixture_weights: bool | None = None) -> CaseContext:
    """Resolve the running test's case before it exports anything.

    Known failures describe the suite's own exports of its fixture weights: they do not apply
    when the user gave a checkpoint for the model or their own file for the format.
    """
    found = case_identity(request.node)
    if found is None:
        raise RuntimeError(f"{request.node.nodeid}: not a conformance case (no SUITE x case)")
    identity, case = found
    budget = budget_for(budgets, identity.suite, identity.format, identity.profile,
                        identity.task)
    if fixture_weights is None:
        fixture_weights = references.judges_fixture(case.spec, case.format)
    known = find_known_failure(budgets, identity.suite, identity.model, identity.format,
                               fixture_weights)
    per_output = output_budgets(budgets, identity.suite, identity.format, identity.profile,
                                identity.task)
    result = record_case(request, suite=identity.suite, model=identity.model,
                         format=identity.format, profile=identity.profile, budgets=budget,
                         info={"output_budgets": per_output} if per_output else None)
    if known is not None:  # the report shows the band the verdict was judged against
        result.info["known_failure"] = known.as_info()
    return CaseContext(request, identity, budgets, budget, known, result, case, per_output)


def open_bundle_case(request: pytest.FixtureRequest, budgets: dict, suite: str,
                     manifest: dict, profile: str, info: dict[str, Any]) -> CaseContext:
    """The context of an on-device bundle, from its manifest (no PyTorch, no known failure)."""
    identity = CaseIdentity(suite, manifest["model"], manifest["format"], profile,
                            manifest.get("task", "semantic"))
    budget = budget_for(budgets, suite, identity.format, profile, identity.task)
    if suite == "latency":  # no PyTorch on the device: the host suite measures the ratio
        budget.pop("min_speedup_vs_eager", None)
    per_output = output_budgets(budgets, suite, identity.format, profile, identity.task)
    result = record_case(request, suite=suite, model=identity.model, format=identity.format,
                         profile=profile, budgets=budget, info=info)
    return CaseContext(request, identity, budgets, budget, None, result,
                       output_budget=per_output)
