"""Repair a failing int8 case: the fewest layers, most sensitive first, kept at higher precision.

The TFLite quantization debugger stops at a per-layer table and a denylist the user writes;
here the loop is closed against the case's own budget. Layers are ranked by their own error
(conformance/metrics/quant_sensitivity.py). For each precision of the ladder (int16 activations,
then float), the search keeps the k most sensitive layers at that precision, doubling k until
the trial passes the budget, then bisects down to the smallest passing k. Every rung is
searched: int16 keeps the model integer (what an NPU needs) but runs on TFLite's reference
kernels on a CPU, float keeps XNNPACK; the caller picks by speed. Bisection assumes that
keeping more of the ranked layers never hurts (it is not always so: the figures of every trial
are kept); each trial is judged for real, so a returned recipe always passed. The search runs
on the parity images; the recipe is then proven on the held-out accuracy images as format
`tflite_int8_mixed`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from models.export.int8_recipe import Int8Recipe

LADDER = ("int16", "float")


@dataclass(frozen=True)
class Trial:
    """One quantised candidate and its verdict."""

    precision: str
    layers: int
    passed: bool
    metrics: dict[str, float]
    seconds: float
    note: str = ""  # why a trial could not be judged (e.g. the runtime refused the file)

    def to_json(self) -> dict:
        """JSON-safe row for the report."""
        return {"precision": self.precision, "layers": self.layers, "passed": self.passed,
                "metrics": {k: round(float(v), 6) for k, v in self.metrics.items()},
                "seconds": round(self.seconds, 1), **({"note": self.note} if self.note else {})}


@dataclass
class Repair:
    """The search's trials and the smallest passing recipe (None when nothing passed)."""

    model: str
    candidates: int  # ranked layers the search could keep
    trials: list[Trial] = field(default_factory=list)
    found: dict[str, Int8Recipe] = field(default_factory=dict)  # smallest passing, per rung
    recipe: Int8Recipe | None = None  # the one chosen (the first rung's unless the caller picks)

    def summary(self) -> str:
        """One line: what was found, or what was tried."""
        if self.recipe is None:
            tried = ", ".join(f"{t.precision} x{t.layers}" for t in self.trials)
            return f"no recipe passed the budget (tried {tried or 'nothing'})"
        return (f"{self.recipe.summary()} passes the budget "
                f"({len(self.trials)} trials, {sum(t.seconds for t in self.trials):.0f} s)")

    def to_json(self) -> dict:
        """JSON-safe summary for the report and results.json."""
        return {"summary": self.summary(), "candidates": self.candidates,
                "trials": [t.to_json() for t in self.trials],
                "found": {p: r.summary() for p, r in self.found.items()},
                "recipe": self.recipe.to_json() if self.recipe else None}


def recipe_for(model: str, precision: str, tensors: Sequence[str], found_by: str = "",
               ) -> Int8Recipe:
    """A recipe keeping `tensors` at `precision` ("int16" or "float")."""
    if precision not in LADDER:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(LADDER)}")
    return Int8Recipe(model=model, found_by=found_by, **{precision: tuple(tensors)})


def search_repair(model: str, ranked_tensors: Sequence[str],
                  trial: Callable[[Int8Recipe], tuple[bool, dict[str, float] | str]],
                  ladder: Sequence[str] = LADDER) -> Repair:
    """Smallest prefix of `ranked_tensors` that passes, at the first precision that can.

    `trial(recipe)` quantises with the recipe and judges the result: (passed, metrics), or
    (False, reason) when the file cannot be judged; such a trial counts as failing.
    """
    tensors = list(ranked_tensors)
    repair = Repair(model=model, candidates=len(tensors))
    if not tensors:
        return repair

    def attempt(precision: str, k: int) -> bool:
        start = time.perf_counter()
        passed, metrics = trial(recipe_for(model, precision, tensors[:k]))
        note = metrics if isinstance(metrics, str) else ""
        repair.trials.append(Trial(precision, k, passed and not note, {} if note else metrics,
                                   time.perf_counter() - start, note))
        return passed

    for precision in ladder:
        failing, passing, k = 0, None, 1
        while passing is None:
            if attempt(precision, k):
                passing = k
            elif k >= len(tensors):
                break
            else:
                failing, k = k, min(2 * k, len(tensors))
        if passing is None:
            continue
        while passing - failing > 1:  # bisect between the last failing and first passing k
            middle = (failing + passing) // 2
            if attempt(precision, middle):
                passing = middle
            else:
                failing = middle
        found_by = (f"int8 repair search: the {passing} most sensitive layers (own error) at "
                    f"{precision}")
        repair.found[precision] = recipe_for(model, precision, tensors[:passing], found_by)
        repair.recipe = repair.recipe or repair.found[precision]
    return repair
