"""Budgets as data (budgets.toml), command-line overrides, and verdicts that carry numbers."""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from conformance.metric_catalog import METRICS, SUITES, budget_key_problem
from models.formats import FORMATS, PRECISIONS, REFERENCE_FORMAT, precision_of

BUDGETS_FILE = Path(__file__).with_name("budgets.toml")


@dataclass(frozen=True)
class Violation:
    """One metric outside its budget."""

    metric: str
    value: float
    bound: str  # "<=" or ">="
    budget: float
    output: str = ""  # the output it was judged on, when judged by output name

    def __str__(self) -> str:
        where = f"output {self.output!r}: " if self.output else ""
        return f"{where}{self.metric} = {self.value:.6g} (budget {self.bound} {self.budget:.6g})"


def known_formats() -> tuple[str, ...]:
    """Format names a budget may name: every format row, and PyTorch eager (latency)."""
    return (REFERENCE_FORMAT, *FORMATS)


def budget_path_problem(suite: str, fmt: str, profile: str | None, key: str) -> str | None:
    """Why [suite.format(.profile)] key is not a valid budget (None when it is); `fmt` may
    also be a precision class (float32, float16, int8)."""
    from conformance.profiles import load_profiles

    if suite not in SUITES:
        return f"unknown suite {suite!r}; known: {', '.join(SUITES)}"
    if fmt not in known_formats() and fmt not in PRECISIONS:
        return (f"unknown format or precision class {fmt!r}; known formats: "
                f"{', '.join(known_formats())}; precision classes: {', '.join(PRECISIONS)}")
    if profile is not None and profile not in load_profiles() and profile not in TASKS:
        return (f"unknown profile or task {profile!r}; known: "
                f"{', '.join([*load_profiles(), *TASKS])}")
    return budget_key_problem(key, suite)


def load_budgets(path: Path = BUDGETS_FILE, overrides: list[str] | None = None) -> dict:
    """The budget table with `suite.format[.profile].key=value` overrides applied.

    An override naming an unknown suite, format, profile or metric, or a budget pointing the
    wrong way (min_ on a lower-is-better metric), raises ValueError with one line.
    """
    with open(path, "rb") as handle:
        table = tomllib.load(handle)
    for item in overrides or []:
        key, sep, value = item.partition("=")
        parts = key.strip().split(".")
        # SUITE.FORMAT[.LAYER][.outputs.NAME].KEY: the layer is what precedes `outputs`.
        head = [*parts[: parts.index(OUTPUTS)], parts[-1]] if OUTPUTS in parts else parts
        output_path = parts[len(head) - 1 : -1] if OUTPUTS in parts else []
        if (not sep or len(head) not in (3, 4) or not all(parts)
                or (output_path and len(output_path) != 2)):
            raise ValueError(f"--budget {item!r}: expected SUITE.FORMAT[.PROFILE]"
                             "[.outputs.NAME].KEY=VALUE (e.g. parity.tflite_int8."
                             "min_argmax_agreement=0.95; FORMAT may be a precision class: "
                             "float32, float16, int8)")
        problem = budget_path_problem(head[0], head[1], head[2] if len(head) == 4 else None,
                                      parts[-1])
        if problem:
            raise ValueError(f"--budget {item!r}: {problem}")
        try:
            number = float(value)
        except ValueError as err:
            raise ValueError(f"--budget {item!r}: {value!r} is not a number") from err
        name = budget_table(table, parts[0], parts[1])
        if name != parts[1]:  # one key overridden: the class's other budgets still apply
            table[parts[0]][parts[1]] = copy.deepcopy(table[parts[0]][name])
        node = table
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = number
    known_failures(table)  # a malformed entry is a usage error before any test runs
    return table


def table_problems(table: dict, source: str = "budgets.toml") -> list[str]:
    """Every name in a budget table that the metric catalog, formats or profiles do not know."""
    problems = []
    for suite, section in table.items():
        if suite == "known_failure":
            problems += [f"{source} [[known_failure]] {entry.get('model')}: unknown suite "
                         f"{entry['suite']!r}" for entry in section
                         if "suite" in entry and entry["suite"] not in SUITES]
        elif suite == "baseline":
            problems += [f"{source} [baseline] {name}: {problem}"
                         for name, problem in baseline_problems(section).items()]
        elif suite not in SUITES:
            problems.append(f"{source} [{suite}]: unknown suite; known: {', '.join(SUITES)}")
        else:
            for fmt, budgets in section.items():
                problems += _format_problems(source, suite, fmt, budgets)
    return problems


def _format_problems(source: str, suite: str, fmt: str, budgets: dict,
                     layer: str | None = None) -> list[str]:
    found = []
    for key, value in budgets.items():
        if key == OUTPUTS and isinstance(value, dict):
            for output, keys in value.items():
                if not isinstance(keys, dict):
                    found.append(f"{source} {suite}.{fmt}.{OUTPUTS}.{output}: a table of "
                                 "budgets is expected ([...outputs.NAME] min_cosine = ...)")
                    continue
                found += _format_problems(source, suite, fmt, keys,
                                          ".".join(filter(None, [layer, OUTPUTS, output])))
            continue
        if isinstance(value, dict) and layer is None:
            layers = (*TASKS, *_profile_names())
            if key in layers:
                found += _format_problems(source, suite, fmt, value, key)
            else:
                found.append(f"{source} {suite}.{fmt}.{key}: unknown profile or task {key!r}; "
                             f"known: {', '.join(layers)}")
            continue
        where = ".".join(filter(None, [suite, fmt, layer, key]))
        problem = budget_path_problem(suite, fmt, None, key)
        if problem:
            found.append(f"{source} {where}: {problem}")
    return found


def _profile_names() -> tuple[str, ...]:
    from conformance.profiles import load_profiles

    return tuple(load_profiles())


def baseline_problems(section: dict) -> dict[str, str]:
    """Problems of the [baseline] table: allowed drops per declared metric, plus `default`."""
    problems = {}
    for name, value in section.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            problems[name] = f"allowed drop must be a number >= 0 (inf: not gated), got {value!r}"
        elif name == "default":
            continue
        elif name not in METRICS:
            problems[name] = f"unknown metric; known: {', '.join(sorted(METRICS))}"
        elif METRICS[name].informational or METRICS[name].better is None:
            problems[name] = "informational metric: the baseline gate does not compare it"
    return problems



TASKS = ("semantic", "prompt_masks")  # the registry's Task values: a budget layer each
OUTPUTS = "outputs"  # the sub-table of budgets for single outputs, by output name
# Figures that need a class axis: a model without one (prompt masks) is not budgeted on them.
DECISION_METRICS = ("argmax_agreement", "agreement_miou", "pixel_agreement", "tie_exempt_fraction")


class MissingBudget(LookupError):
    """A case whose suite declares no budget for it: it cannot be judged, so it cannot pass."""


def budget_table(table: dict, suite: str, fmt: str) -> str:
    """NAME of the [suite.NAME] table a format's budget comes from: the format when it has a
    table of its own, else its precision class when that has one, else the format (absent)."""
    tables = table.get(suite, {})
    precision = precision_of(fmt)
    if fmt in tables or precision is None or precision not in tables:
        return fmt
    return precision


def budget_for(table: dict, suite: str, fmt: str, profile: str | None = None,
               task: str = "semantic") -> dict[str, float]:
    """Budget of (suite, format) from `budget_table`: the table's own keys, then its [.TASK]
    and [.PROFILE] sub-tables layered on top; never empty (MissingBudget)."""
    name = budget_table(table, suite, fmt)
    section = dict(table.get(suite, {}).get(name, {}))
    nested = {k: v for k, v in section.items() if isinstance(v, dict)}
    flat = {k: float(v) for k, v in section.items() if not isinstance(v, dict)}
    if task != "semantic":
        flat = {k: v for k, v in flat.items() if not k.endswith(DECISION_METRICS)}
    for layer in (task, profile):
        if layer and layer in nested:
            flat.update({k: float(v) for k, v in nested[layer].items()
                         if not isinstance(v, dict)})
    if not flat:
        precision = precision_of(fmt)
        tables = [f"[{suite}.{name}]", f"[{suite}.{name}.{task}]"]
        if precision and name == fmt and fmt not in table.get(suite, {}):
            tables.append(f"the precision class's [{suite}.{precision}]")
        raise MissingBudget(
            f"no budget for {suite}.{fmt} (precision {precision}, task {task}, profile "
            f"{profile}): [{suite}.{name}] gives none; declare {' or '.join(tables)} in "
            f"{BUDGETS_FILE}; a case with nothing to judge cannot pass")
    return flat


def output_budgets(table: dict, suite: str, fmt: str, profile: str | None = None,
                   task: str = "semantic") -> dict[str, dict[str, float]]:
    """Budgets of single outputs by name, `[SUITE.FORMAT(.TASK)(.PROFILE).outputs.NAME]`,
    layered as `budget_for` layers; each goes on top of the case's budget for that output."""
    section = table.get(suite, {}).get(budget_table(table, suite, fmt), {})
    layers = [section] + [section.get(layer, {}) for layer in (task, profile) if layer]
    found: dict[str, dict[str, float]] = {}
    for layer in layers:
        for name, keys in layer.get(OUTPUTS, {}).items():
            found.setdefault(name, {}).update({k: float(v) for k, v in keys.items()})
    return found


def judge_outputs(metrics: dict[str, float], by_output: dict[str, dict[str, float]],
                  budget: dict[str, float],
                  per_output: dict[str, dict[str, float]] | None = None) -> list[Violation]:
    """Every output judged by name on its own figures, as Polygraphy's comparators do: the
    case's budget with that output's `outputs.NAME` keys on top. Figures no single output has
    (agreement mIoU pools class maps over images) are judged on the case. An output budget
    naming an output the case does not have is a violation, not a pass."""
    per_output = per_output or {}
    judged = set().union(*by_output.values()) if by_output else set()
    found = violations(metrics, {k: v for k, v in budget.items()
                                 if k.split("_", 1)[1] not in judged})
    for name, figures in by_output.items():
        own = {k: v for k, v in budget.items() if k.split("_", 1)[1] in figures}
        own.update(per_output.get(name, {}))
        found += [dataclasses.replace(v, output=name) for v in violations(figures, own)]
    for name in sorted(set(per_output) - set(by_output)):
        found += [dataclasses.replace(v, output=name) for v in violations({}, per_output[name])]
    return found


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
            hint: str = "", found: list[Violation] | None = None) -> str:
    """A failure message: what failed (`found`, else the case's figures against `budget`),
    every figure, where to look next."""
    bad = violations(metrics, budget) if found is None else found
    lines = [f"{title}: {len(bad)} budget(s) failed: " + "; ".join(str(v) for v in bad)]
    lines.append("all figures: " + ", ".join(f"{k}={v:.6g}" for k, v in sorted(metrics.items())))
    if hint:
        lines.append(hint)
    return "\n".join(lines)


@dataclass(frozen=True)
class KnownFailure:
    """A declared, understood failure with the band of values it was measured at."""

    suite: str
    model: str
    format: str
    reason: str
    expect: dict[str, tuple[float, float]]
    weights: str | None = None

    def matches(self, suite: str, model: str, fmt: str, fixture_weights: bool) -> bool:
        if self.weights == "fixture" and not fixture_weights:
            return False
        return (self.suite == suite and fnmatch.fnmatch(model, self.model)
                and fnmatch.fnmatch(fmt, self.format))

    def moved(self, metrics: dict[str, float]) -> list[str]:
        """Each declared metric outside its band (or missing), with value and band."""
        found = []
        for metric, (low, high) in sorted(self.expect.items()):
            value = metrics.get(metric, float("nan"))
            if not low <= value <= high:
                found.append(f"{metric} = {value:.6g}, declared band [{low:.6g}, {high:.6g}]")
        return found

    def as_info(self) -> dict:
        """The entry as a case's info: reason and band per metric, for the report."""
        return {"reason": self.reason,
                "band": {m: [lo, hi] for m, (lo, hi) in sorted(self.expect.items())}}

    def band_text(self) -> str:
        return ", ".join(f"{m} in [{lo:.6g}, {hi:.6g}]"
                         for m, (lo, hi) in sorted(self.expect.items()))


def known_failures(table: dict) -> list[KnownFailure]:
    """The [[known_failure]] entries; each must declare the band it was measured at."""
    entries = []
    for index, entry in enumerate(table.get("known_failure", [])):
        where = f"{BUDGETS_FILE.name} known_failure #{index + 1} ({entry.get('suite')}, " \
                f"{entry.get('model')}, {entry.get('format')})"
        expect = entry.get("expect")
        if not isinstance(expect, dict) or not expect:
            raise ValueError(f"{where}: no `expect` band (e.g. expect = {{ argmax_agreement = "
                             "[0.86, 0.92] }); a known failure without a band hides regressions")
        bands = {}
        for metric, band in expect.items():
            if (not isinstance(band, list) or len(band) != 2
                    or not all(isinstance(v, (int, float)) for v in band) or band[0] > band[1]):
                raise ValueError(f"{where}: expect.{metric} = {band!r} is not a band [low, high]")
            bands[metric] = (float(band[0]), float(band[1]))
        entries.append(KnownFailure(suite=entry["suite"], model=entry.get("model", "*"),
                                    format=entry.get("format", "*"), reason=str(entry["reason"]),
                                    expect=bands, weights=entry.get("weights")))
    return entries


def find_known_failure(table: dict, suite: str, model: str, fmt: str,
                       fixture_weights: bool = True) -> KnownFailure | None:
    """The declared known failure of (suite, model, format), if any.

    An entry with `weights = "fixture"` applies only to the suite's own fixture weights,
    never to a user's checkpoint.
    """
    for entry in known_failures(table):
        if entry.matches(suite, model, fmt, fixture_weights):
            return entry
    return None


def settle(known: KnownFailure | None, metrics: dict[str, float], failure: str | None) -> None:
    """The verdict of a measured case.

    Without a known failure: `failure` (a message) fails the test. With one: inside its band
    the case is an expected failure showing its numbers; outside the band, in either
    direction, it fails as `known failure moved`, so a regression inside a known failure is
    caught and a fix is announced.
    """
    import pytest

    if known is None:
        if failure:
            pytest.fail(failure, pytrace=False)
        return
    moved = known.moved(metrics)
    if moved:
        verdict = failure or "the case now passes its budgets: remove the known_failure entry"
        pytest.fail(f"known failure moved: {'; '.join(moved)}\n{verdict}\n"
                    f"declared reason: {known.reason}", pytrace=False)
    if not failure:
        pytest.fail(f"known failure declared ({known.band_text()}) but the case passes its "
                    "budgets: the band overlaps the passing side; fix the entry", pytrace=False)
    figures = ", ".join(f"{m} = {metrics[m]:.6g}" for m in sorted(known.expect))
    pytest.xfail(f"known failure, inside its band ({figures}; {known.band_text()}): "
                 f"{known.reason}")
