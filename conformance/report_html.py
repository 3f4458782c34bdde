"""The HTML report's own part: verdict matrix, one section per case, runtimes, latency, regressions.

Everything here is rendering: it reads the results the plugin (`conformance/report.py`)
collected and returns HTML. Metric names, directions and units come from
`conformance/metric_catalog.py`; budgets and known-failure bands from each result. Charts are
inline SVG (no matplotlib, no script, nothing fetched), so the page renders offline and on a
device host with only numpy and pytest.
"""

from __future__ import annotations

import html
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from conformance.metric_catalog import METRICS, budget_key
from conformance.report_schema import OUTCOMES
from models.formats import FORMATS, REFERENCE_FORMAT

FORMAT_ORDER = (REFERENCE_FORMAT, *FORMATS)  # the rows' order in models/formats.py
PROFILE_ORDER = ("gpu", "cpu", "pixel2", "pi5", "coral")
SUITE_ORDER = ("parity", "accuracy", "prompt_masks", "latency", "edgetpu")
# Worst first: the colour of a matrix cell is that of its worst entry.
SEVERITY = ("error", "failed", "xpassed", "xfailed", "skipped", "passed")

# The metric shown in a matrix cell, by suite; every name is declared in
# conformance/metric_catalog.py and emitted by that suite (tests/test_metric_catalog.py).
# A budgeted metric from this list wins, then any budgeted metric, then the list, then the
# first metric. A test can name its own with info={"key_metric": name}.
KEY_METRICS: dict[str, tuple[str, ...]] = {
    "parity": ("argmax_agreement", "agreement_miou", "pixel_agreement", "cosine", "snr_db",
               "max_abs_err"),
    "accuracy": ("miou_drop", "miou_ratio", "agreement_miou", "pixel_agreement", "miou"),
    "prompt_masks": ("mask_iou_mean", "mask_missing_rate"),
    "latency": ("p50_ms", "p90_ms", "speedup_vs_eager"),
    "edgetpu": ("unsupported_ops", "tpu_op_fraction"),
}
# The latency plot: bars p50 with a p90 whisker, each with its budget line where one is set;
# the speed-up plot: the interleaved in-test ratio test_latency.py records, and its budget.
LATENCY_METRIC = "p50_ms"
LATENCY_SPREAD_METRIC = "p90_ms"
SPEEDUP_METRIC = "speedup_vs_eager"

# The runtime table's fixed columns: (title, info keys joined in the cell).
RUNTIME_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("artifact", ("artifact",)),
    ("converter", ("converter",)),
    ("runtime", ("runtime", "version")),
    ("delegate · threads", ("delegate", "threads")),
    ("weights sha256", ("weights_sha256",)),
    ("cache", ("cache",)),
)
# Info the case section draws as something other than a key/value line.
_DRAWN_INFO = ("per_class_iou", "layer_table", "known_failure", "key_metric",
               "first_divergent_layer", "localised_image", "op_counts", "per_output", "per_part",
               "int8_sensitivity", "int8_repair", "op_profile", "layers_to_change")
# The figures a repair trial shows (the decision metrics its budget judges).
REPAIR_SHOWN = ("argmax_agreement", "agreement_miou", "cosine", "snr_db")
_IDENTITY_INFO = ("artifact", "weights_sha256", "weights", "converter", "rewrites", "runtime",
                  "version", "device", "providers", "delegate", "threads", "cache")

CaseKey = tuple[str, str, str]  # model, format, profile
Figure = Sequence[str]  # caption, MIME type, base64 data


def summary_html(results: Iterable[Mapping[str, Any]],
                 figures: Mapping[str, Sequence[Figure]] | None = None,
                 baseline: str | None = None) -> str:
    """The whole summary block: verdict, matrix, regressions, remedies, latency, runtimes,
    cases."""
    results = [dict(r) for r in results]
    figures = figures or {}
    # report_remedies builds on this module's helpers: imported here, not at the top.
    from conformance.report_remedies import remedies_html

    parts = [_CSS, '<div id="segconform-summary">', verdict_html(results),
             verdict_matrix_html(results)]
    if baseline:
        parts.append(regression_html(results, baseline))
    parts.append(remedies_html(results))
    parts += [latency_html(results), runtimes_html(results), cases_html(results, figures),
              "</div>"]
    return "".join(parts)


# --- verdict and matrix --------------------------------------------------------------------


def verdict_html(results: list[dict[str, Any]]) -> str:
    """Counts per outcome and, first, the cases that stop a release, each linked."""
    counts = Counter(r["outcome"] for r in results)
    badges = " ".join(f'<span class="sc-badge sc-{o}">{counts[o]} {o}</span>'
                      for o in OUTCOMES if counts.get(o))
    blocking = sorted({_case_key(r) for r in results if r["outcome"] in ("failed", "error",
                                                                         "xpassed")},
                      key=_case_order)
    if not results:
        line = "no conformance results in this run"
    elif blocking:
        links = ", ".join(_case_link(key) for key in blocking)
        line = f"<b>Not shippable as is:</b> {len(blocking)} case(s) fail: {links}"
    else:
        line = "<b>Every case that ran is within its budgets</b> (or inside its declared band)"
    known = sorted({_case_key(r) for r in results if r["outcome"] == "xfailed"},
                   key=_case_order)
    if known:
        line += (f'<br/><span class="sc-xfailed">{len(known)} known failure(s), inside their '
                 f"declared bands:</span> {', '.join(_case_link(key) for key in known)}")
    return (f'<section id="sc-verdict"><h2>Verdict</h2><p class="sc-counts">{len(results)} '
            f"results: {badges}</p><p>{line}</p></section>")


def verdict_matrix_html(results: list[dict[str, Any]]) -> str:
    """Rows model × profile, a column per format; each cell the deciding metric per suite."""
    if not results:
        return ('<table id="segconform-matrix" class="segconform"><tr><td>'
                "no conformance results in this run</td></tr></table>")
    formats = _ordered({r["format"] for r in results}, FORMAT_ORDER)
    cells: dict[CaseKey, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        cells[_case_key(r)].append(r)
    rows = sorted({(r["model"], r["profile"]) for r in results},
                  key=lambda mp: (mp[0], _rank(mp[1], PROFILE_ORDER)))
    head = "".join(f"<th>{_e(f)}</th>" for f in formats)
    body = []
    for index, (model, profile) in enumerate(rows):
        model_cell = ""
        if index == 0 or rows[index - 1][0] != model:
            span = sum(1 for m, _ in rows if m == model)
            model_cell = f'<th rowspan="{span}">{_e(model)}</th>'
        tds = "".join(_matrix_cell((model, f, profile), cells.get((model, f, profile), []))
                      for f in formats)
        body.append(f"<tr>{model_cell}<th>{_e(profile)}</th>{tds}</tr>")
    return (f'<h2>Verdict matrix</h2><table id="segconform-matrix" class="segconform">'
            f"<thead><tr><th>model</th><th>profile</th>{head}</tr></thead>"
            f'<tbody>{"".join(body)}</tbody></table>'
            '<p class="sc-legend">Each cell: per suite, the metric that decided, its value and '
            "its budget (or the known failure's band). Click a cell for the case; hover an "
            "entry for the message.</p>")


def _matrix_cell(key: CaseKey, entries: list[dict[str, Any]]) -> str:
    if not entries:
        return '<td class="sc-none">—</td>'
    worst_outcome = min((e["outcome"] for e in entries), key=lambda o: _rank(o, SEVERITY))
    by_suite: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        by_suite[entry["suite"]].append(entry)
    lines, skipped = [], []
    for suite in _ordered(set(by_suite), SUITE_ORDER):
        group = sorted(by_suite[suite], key=lambda e: _rank(e["outcome"], SEVERITY))
        worst = group[0]
        if worst["outcome"] == "skipped":
            skipped.append(worst)
            continue
        text = deciding_text(worst) or worst["outcome"]
        title = worst["message"] or worst["outcome"]
        if len(group) > 1:
            counts = Counter(e["outcome"] for e in group)
            text += f" (worst of {len(group)})"
            title = f"{', '.join(f'{n} {o}' for o, n in counts.items())}; worst: {title}"
        lines.append(_entry_div(worst["outcome"], suite, text, title))
    if skipped:
        # Suites this host could not run, on one line; the reasons are in the title.
        suites = ", ".join(e["suite"] for e in skipped)
        reasons = "; ".join(dict.fromkeys(e["message"] for e in skipped))
        lines.append(_entry_div("skipped", "skipped", suites if lines else
                                f"{suites}: {reasons}", reasons))
    return (f'<td class="sc-cell sc-{worst_outcome}"><a class="sc-cell-link" '
            f'href="#{case_anchor(key)}">{"".join(lines)}</a></td>')


def _entry_div(outcome: str, label: str, text: str, title: str) -> str:
    return (f'<div class="sc-entry sc-{outcome}" title="{_e(title)}"><b>{_e(label)}</b> '
            f"{_e(text)}</div>")


def deciding_text(payload: Mapping[str, Any]) -> str:
    """'metric value bound' of the figure that decided the verdict.

    A failure names its first metric outside budget (or outside its band); an expected
    failure its band; anything else its key metric against its budget.
    """
    metrics = payload["metrics"]
    band = (payload["info"].get("known_failure") or {}).get("band") or {}
    if payload["outcome"] in ("xfailed", "failed", "xpassed") and band:
        outside = [m for m, (lo, hi) in band.items() if not lo <= _float(metrics.get(m)) <= hi]
        chosen = outside[0] if outside else next(iter(band))
        lo, hi = band[chosen]
        sign = "∉" if outside else "in"
        return f"{chosen} {_number(metrics.get(chosen, 'nan'))} {sign} [{_number(lo)}, " \
               f"{_number(hi)}]"
    if payload["outcome"] in ("failed", "error"):
        for name, bound, limit in _budgets(payload):
            if not _within(_float(metrics.get(name)), bound, limit):
                return f"{name} {_number(metrics.get(name, 'nan'))} ✗ {bound} {_number(limit)}"
    return key_metric_text(payload)


def key_metric(payload: Mapping[str, Any]) -> str | None:
    """The metric a cell shows for a result that passed (see KEY_METRICS)."""
    metrics, budgets = payload["metrics"], payload["budgets"]
    chosen = payload["info"].get("key_metric")
    if chosen in metrics:
        return str(chosen)
    preferred = KEY_METRICS.get(payload["suite"], ())
    budgeted = [m for m in metrics if budget_of(m, budgets) is not None]
    candidates = [*(m for m in preferred if m in budgeted), *budgeted,
                  *(m for m in preferred if m in metrics), *metrics]
    return candidates[0] if candidates else None


def key_metric_text(payload: Mapping[str, Any]) -> str:
    """'metric value [bound budget]' of the key metric; '' when nothing was measured."""
    name = key_metric(payload)
    if name is None:
        return ""
    bound = budget_of(name, payload["budgets"])
    budget_text = "" if bound is None else f" {bound[0]} {_number(bound[1])}"
    return f"{name} {_number(payload['metrics'][name])}{budget_text}"


def budget_of(metric: str, budgets: Mapping[str, Any]) -> tuple[str, Any] | None:
    """('≤' or '≥', value) of the recorded budget on `metric` (keys are max_/min_<metric>)."""
    for key in (f"max_{metric}", f"min_{metric}"):
        if key in budgets:
            return split_budget_key(key)[0], budgets[key]
    return None


def split_budget_key(key: str) -> tuple[str, str]:
    """('≤', 'p50_ms') for 'max_p50_ms'; budgets.violations reads the same prefixes."""
    prefix, _, metric = key.partition("_")
    sign = {"max": "≤", "min": "≥"}.get(prefix)
    return (sign, metric) if sign and metric else ("budget", key)


def _budgets(payload: Mapping[str, Any]) -> list[tuple[str, str, float]]:
    found = []
    for key, limit in payload["budgets"].items():
        sign, metric = split_budget_key(key)
        if sign != "budget":
            found.append((metric, sign, _float(limit)))
    return found


def _within(value: float, bound: str, limit: float) -> bool:
    if math.isnan(value):
        return False
    return value <= limit if bound == "≤" else value >= limit


# --- regressions ---------------------------------------------------------------------------


def regression_html(results: list[dict[str, Any]], baseline: str) -> str:
    """Per case and metric, the baseline's value → this run's, coloured by the metric's
    direction; a worsening beyond the [baseline] allowance is marked as a regression."""
    from conformance.baseline import allowed_worsening, load_baseline

    try:
        before_table = load_baseline(str(baseline))
    except ValueError as err:
        return f'<h2>Regressions</h2><p class="sc-note">{_e(err)}</p>'
    allowances = _baseline_allowances()
    rows, totals, new_cases, steady = [], Counter(), [], 0
    for r in sorted(results, key=lambda r: (_case_order(_case_key(r)), r["suite"])):
        if not r["metrics"]:
            continue
        before = before_table.get((r["suite"], r["model"], r["format"], r["profile"]))
        if before is None:
            new_cases.append(f"{_case_link(_case_key(r))} ({_e(r['suite'])})")
            continue
        chips, kinds, unchanged = [], set(), 0
        for name, now_value in r["metrics"].items():
            metric = METRICS.get(name)
            if (metric is None or metric.informational or metric.better is None
                    or name not in before):
                continue
            then, now = before[name], _float(now_value)
            worse = metric.worsening(then, now)
            if worse == 0 or (math.isnan(worse) and math.isnan(then)):
                unchanged += 1
                continue
            kind = ("regressed" if worse > allowed_worsening(allowances, name)
                    else "worse" if worse > 0 else "better")
            kinds.add(kind)
            arrow = "↓" if now < then else "↑"
            chips.append(f'<span class="sc-chip sc-{kind}" title="{_e(metric.better)} is '
                         f'better; {kind}">{_e(name)} {_number(then)} → {_number(now)} '
                         f"{arrow}</span>")
        totals.update(kinds)
        if not chips:
            steady += 1
            continue
        if unchanged:
            chips.append(f'<span class="sc-chip sc-same">{unchanged} unchanged</span>')
        rank = min((("regressed", "worse", "better").index(k) for k in kinds), default=3)
        rows.append((rank, _case_link(_case_key(r)), r["suite"], "".join(chips)))
    rows.sort(key=lambda row: row[0])  # regressions first, improvements last
    body = "".join(f"<tr><td>{link}</td><td>{_e(suite)}</td><td>{chips}</td></tr>"
                   for _, link, suite, chips in rows)
    counts = [f"{totals[k]} case(s) {k}" for k in ("regressed", "worse", "better") if totals[k]]
    counts.append(f"{steady} case(s) unchanged")
    new_text = (f'<p class="sc-legend">Not in the baseline, not compared ({len(new_cases)}): '
                f"{', '.join(new_cases)}</p>" if new_cases else "")
    table = (f'<table id="segconform-regressions" class="segconform"><thead><tr><th>case</th>'
             f"<th>suite</th><th>metric: before → now</th></tr></thead><tbody>{body}</tbody>"
             "</table>" if rows else "")
    return (f'<h2>Regressions since {_e(baseline)}</h2><p class="sc-legend">'
            f"{', '.join(counts)}. Red: worse beyond the [baseline] allowance; pink: worse "
            "within it; green: better (each in the metric's own direction).</p>"
            f"{table}{new_text}")


def _baseline_allowances() -> dict:
    try:
        from conformance.budgets import load_budgets

        return load_budgets().get("baseline", {})
    except (OSError, ValueError):
        return {}


# --- latency -------------------------------------------------------------------------------


def latency_html(results: list[dict[str, Any]]) -> str:
    """Per profile: p50/p90 in ms with budget lines, and the speed-up vs eager with its budget."""
    latency = [r for r in results if r["suite"] == "latency"
               and _is_finite(r["metrics"].get(LATENCY_METRIC))]
    if not latency:
        return '<div id="segconform-latency"><p class="sc-note">no latency results</p></div>'
    by_profile: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in latency:
        by_profile[r["profile"]].append(r)
    charts = []
    for profile in _ordered(set(by_profile), PROFILE_ORDER):
        rows = sorted(by_profile[profile],
                      key=lambda r: (r["model"], _rank(r["format"], FORMAT_ORDER)))
        charts.append(f'<figure class="sc-chart">{latency_svg(rows, profile)}<figcaption>'
                      f"{_e(profile)}: bar p50, whisker p90 [ms]; red dashed: p50 budget, dark "
                      "dotted: p90 budget (where the profile sets one)</figcaption></figure>")
        speedups = [r for r in rows if _is_finite(r["metrics"].get(SPEEDUP_METRIC))]
        if speedups:
            charts.append(f'<figure class="sc-chart">{speedup_svg(speedups, profile)}'
                          f"<figcaption>{_e(profile)}: speed-up vs {REFERENCE_FORMAT}, eager "
                          "p50 / format p50 from runs interleaved inside each test (the value "
                          "in results.json); red dashed: its budget; grey: ×1</figcaption>"
                          "</figure>")
    return f'<h2>Latency</h2><div id="segconform-latency">{"".join(charts)}</div>'


def latency_svg(rows: list[dict[str, Any]], profile: str) -> str:
    """Bars of p50 with p90 whiskers and per-bar budget lines, grouped by model."""
    values = [(_float(r["metrics"][LATENCY_METRIC]),
               _float(r["metrics"].get(LATENCY_SPREAD_METRIC, r["metrics"][LATENCY_METRIC])))
              for r in rows]
    budgets = [(_budget_value(r, LATENCY_METRIC), _budget_value(r, LATENCY_SPREAD_METRIC))
               for r in rows]
    top = max([p90 for _, p90 in values] + [b for pair in budgets for b in pair if b])
    low = min(p50 for p50, _ in values)
    scale = _Scale(low, top, log=low > 0 and top / low > 30)  # Edge TPU 5 ms next to 6 s
    chart = _BarChart(rows, scale, unit="ms", title=f"{profile}: latency")
    for index, (row, (p50, p90), (b50, b90)) in enumerate(zip(rows, values, budgets,
                                                             strict=True)):
        colour = "#4a78b5" if row["format"] == REFERENCE_FORMAT else _COLOURS.get(
            row["outcome"], "#9a9a9a")
        chart.bar(index, p50, colour, f"{row['model']} {row['format']}: p50 "
                  f"{_number(p50)} ms, p90 {_number(p90)} ms ({row['outcome']})")
        chart.whisker(index, p50, p90)
        if b50 is not None:
            chart.budget_line(index, b50, budget_key(LATENCY_METRIC), dash="5,3",
                              colour="#d0342c")
        if b90 is not None:
            chart.budget_line(index, b90, budget_key(LATENCY_SPREAD_METRIC), dash="2,2",
                              colour="#7a0000")
    return chart.svg()


def speedup_svg(rows: list[dict[str, Any]], profile: str) -> str:
    """Bars of the interleaved speed-up vs eager, labelled ×n, with budget lines and ×1."""
    values = [_float(r["metrics"][SPEEDUP_METRIC]) for r in rows]
    budgets = [_budget_value(r, SPEEDUP_METRIC) for r in rows]
    top = max([*values, 1.0, *(b for b in budgets if b is not None)])
    chart = _BarChart(rows, _Scale(0.0, top), unit="×", title=f"{profile}: speed-up vs eager")
    chart.reference_line(1.0)
    for index, (row, value, budget) in enumerate(zip(rows, values, budgets, strict=True)):
        chart.bar(index, value, _COLOURS.get(row["outcome"], "#9a9a9a"),
                  f"{row['model']} {row['format']}: ×{value:.3g} ({row['outcome']})")
        chart.label(index, value, f"×{value:.3g}")
        if budget is not None:
            chart.budget_line(index, budget, budget_key(SPEEDUP_METRIC), dash="5,3",
                              colour="#d0342c")
    return chart.svg()


def _budget_value(row: Mapping[str, Any], metric: str) -> float | None:
    value = row["budgets"].get(budget_key(metric))
    return _float(value) if _is_finite(value) else None


class _Scale:
    """Value → height in pixels, linear from 0 or logarithmic, with tick values."""

    def __init__(self, low: float, high: float, *, log: bool = False,
                 height: float = 150.0) -> None:
        self.log, self.height = log, height
        if log:
            self.low = 10 ** math.floor(math.log10(low))
            self.high = 10 ** math.ceil(math.log10(high))
        else:
            self.low, self.high = 0.0, _nice_ceiling(high * 1.08)

    def __call__(self, value: float) -> float:
        if self.log:
            value = max(value, self.low)
            span = math.log10(self.high) - math.log10(self.low)
            return self.height * (math.log10(value) - math.log10(self.low)) / span
        return self.height * min(value, self.high) / self.high if self.high else 0.0

    def ticks(self) -> list[float]:
        if self.log:
            return [10.0 ** e for e in range(round(math.log10(self.low)),
                                              round(math.log10(self.high)) + 1)]
        return [self.high * k / 4 for k in range(5)]


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * power >= value)


class _BarChart:
    """An inline SVG bar chart: one slot per row, rows grouped by model."""

    SLOT, BAR, LEFT, TOP, BOTTOM = 24, 14, 46, 34, 78

    def __init__(self, rows: list[dict[str, Any]], scale: _Scale, *, unit: str,
                 title: str) -> None:
        self.rows, self.scale, self.unit, self.title = rows, scale, unit, title
        self.x: list[float] = []
        position, previous = float(self.LEFT + 8), None
        self.groups: list[tuple[str, float, float]] = []
        for row in rows:
            if previous is not None and row["model"] != previous:
                position += 14  # a gap between models
            if row["model"] != previous:
                self.groups.append((row["model"], position, position))
            self.x.append(position + self.SLOT / 2)
            self.groups[-1] = (self.groups[-1][0], self.groups[-1][1], position + self.SLOT)
            position += self.SLOT
            previous = row["model"]
        # Wide enough for its title and for each model's name over its group.
        self.width = max(position + 8, self.LEFT + 7.0 * len(title) + 40)
        self.height = self.TOP + scale.height + self.BOTTOM
        self.parts: list[str] = []

    def _y(self, value: float) -> float:
        return self.TOP + self.scale.height - self.scale(value)

    def bar(self, index: int, value: float, colour: str, title: str) -> None:
        y, base = self._y(value), self.TOP + self.scale.height
        self.parts.append(f'<rect class="sc-bar" x="{self.x[index] - self.BAR / 2:.1f}" '
                          f'y="{y:.1f}" width="{self.BAR}" height="{base - y:.1f}" '
                          f'fill="{colour}"><title>{_e(title)}</title></rect>')

    def whisker(self, index: int, low: float, high: float) -> None:
        x, y0, y1 = self.x[index], self._y(low), self._y(high)
        self.parts.append(f'<path class="sc-whisker" d="M{x:.1f},{y0:.1f}V{y1:.1f}M{x - 4:.1f},'
                          f'{y1:.1f}H{x + 4:.1f}" stroke="#222" fill="none"/>')

    def budget_line(self, index: int, value: float, key: str, *, dash: str,
                    colour: str) -> None:
        x, y = self.x[index], self._y(value)
        self.parts.append(f'<line class="sc-budget-line" data-budget="{_e(key)}" '
                          f'x1="{x - self.SLOT / 2 + 1:.1f}" x2="{x + self.SLOT / 2 - 1:.1f}" '
                          f'y1="{y:.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="2" '
                          f'stroke-dasharray="{dash}"><title>{_e(key)} {_number(value)}</title>'
                          "</line>")

    def reference_line(self, value: float) -> None:
        y = self._y(value)
        self.parts.append(f'<line class="sc-reference-line" x1="{self.LEFT}" '
                          f'x2="{self.width - 4:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#999"/>')

    def label(self, index: int, value: float, text: str) -> None:
        self.parts.append(f'<text x="{self.x[index]:.1f}" y="{self._y(value) - 3:.1f}" '
                          f'text-anchor="middle" font-size="9">{_e(text)}</text>')

    def svg(self) -> str:
        axis = []
        for tick in self.scale.ticks():
            y = self._y(tick)
            axis.append(f'<line x1="{self.LEFT}" x2="{self.width - 4:.1f}" y1="{y:.1f}" '
                        f'y2="{y:.1f}" stroke="#eee"/><text x="{self.LEFT - 4}" y="{y + 3:.1f}" '
                        f'text-anchor="end" font-size="9">{_number(tick)}</text>')
        base = self.TOP + self.scale.height
        labels = "".join(
            f'<text x="{x + 3:.1f}" y="{base + 10:.1f}" font-size="9" text-anchor="end" '
            f'transform="rotate(-40 {x + 3:.1f} {base + 10:.1f})">{_e(row["format"])}</text>'
            for x, row in zip(self.x, self.rows, strict=True))
        groups = "".join(
            f'<text x="{(start + end) / 2:.1f}" y="{self.TOP - 6}" font-size="9" '
            f'text-anchor="middle">{_e(_short(model, int((end - start) / 5.5)))}'
            f"<title>{_e(model)}</title></text>"
            f'<line x1="{end + 7:.1f}" x2="{end + 7:.1f}" y1="{self.TOP - 16}" y2="{base}" '
            'stroke="#ddd"/>' for model, start, end in self.groups)
        return (f'<svg class="sc-svg" xmlns="http://www.w3.org/2000/svg" '
                f'viewBox="0 0 {self.width:.0f} {self.height:.0f}" width="{self.width:.0f}" '
                f'height="{self.height:.0f}" role="img" aria-label="{_e(self.title)}">'
                f'<text x="4" y="12" font-size="11" font-weight="bold">{_e(self.title)} '
                f'[{_e(self.unit)}]{" (log)" if self.scale.log else ""}</text>'
                f'{"".join(axis)}{groups}<line x1="{self.LEFT}" x2="{self.width - 4:.1f}" '
                f'y1="{base:.1f}" y2="{base:.1f}" stroke="#666"/>{"".join(self.parts)}{labels}'
                "</svg>")


# --- runtimes ------------------------------------------------------------------------------


def runtimes_html(results: list[dict[str, Any]]) -> str:
    """What ran each case, in fixed columns; anything longer is in the case's section."""
    merged = _merged_info(results)
    if not merged:
        return ""
    head = "".join(f"<th>{_e(title)}</th>" for title, _ in RUNTIME_COLUMNS)
    rows = []
    for key in sorted(merged, key=_case_order):
        info = merged[key]
        cells = []
        for _, keys in RUNTIME_COLUMNS:
            text = " · ".join(" / ".join(info[k]) for k in keys if info.get(k))
            if keys == ("weights_sha256",):
                text = " / ".join(v[:12] for v in info.get("weights_sha256", []))
            cells.append(f'<td class="sc-clip" title="{_e(text)}">{_e(text) or "—"}</td>')
        rows.append(f'<tr><td class="sc-clip sc-case-name">{_case_link(key)}</td>'
                    f"{''.join(cells)}</tr>")
    return (f'<h2>Runtimes and weights</h2><table id="segconform-runtimes" class="segconform">'
            f"<thead><tr><th>case</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _merged_info(results: list[dict[str, Any]]) -> dict[CaseKey, dict[str, list[str]]]:
    """Info per case over its suites, each key's distinct values in first-seen order."""
    merged: dict[CaseKey, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        for name, value in r["info"].items():
            text = value if isinstance(value, str) else _compact(value)
            values = merged[_case_key(r)][name]
            if text not in values:
                values.append(text)
    return {k: v for k, v in merged.items() if v}


# --- case sections -------------------------------------------------------------------------


def cases_html(results: list[dict[str, Any]],
               figures: Mapping[str, Sequence[Figure]]) -> str:
    """One section per model × format × profile: figures, bands, layers, overlays, runtime."""
    by_case: dict[CaseKey, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        by_case[_case_key(r)].append(r)
    merged = _merged_info(results)
    sections = [case_html(key, by_case[key], merged.get(key, {}), figures)
                for key in sorted(by_case, key=_case_order)]
    return f'<h2>Cases</h2><div id="segconform-cases">{"".join(sections)}</div>'


def case_html(key: CaseKey, entries: list[dict[str, Any]], info: Mapping[str, list[str]],
              figures: Mapping[str, Sequence[Figure]]) -> str:
    """The section of one case: a block per suite, then what ran it."""
    worst = min((e["outcome"] for e in entries), key=lambda o: _rank(o, SEVERITY))
    blocks = [_suite_block(e, figures.get(e["nodeid"], ()))
              for e in sorted(entries, key=lambda e: _rank(e["suite"], SUITE_ORDER))]
    model, fmt, profile = key
    details = _info_list(info)
    return (f'<section class="sc-case sc-{worst}" id="{case_anchor(key)}"><h3>'
            f'<span class="sc-badge sc-{worst}">{worst}</span> {_e(model)} · {_e(fmt)} · '
            f'{_e(profile)} <a class="sc-top" href="#segconform-matrix">↑ matrix</a></h3>'
            f'{"".join(blocks)}{details}</section>')


def _suite_block(entry: Mapping[str, Any], figures: Sequence[Figure]) -> str:
    info = entry["info"]
    parts = [f'<h4><span class="sc-badge sc-{entry["outcome"]}">{_e(entry["outcome"])}</span> '
             f'{_e(entry["suite"])} <span class="sc-nodeid">{_e(entry["nodeid"])}</span></h4>']
    if entry["message"]:
        parts.append(f'<pre class="sc-message">{_e(entry["message"])}</pre>')
    band = info.get("known_failure")
    if isinstance(band, Mapping):
        bands = "; ".join(f"{m} in [{_number(lo)}, {_number(hi)}]"
                          for m, (lo, hi) in band.get("band", {}).items())
        parts.append(f'<p class="sc-known"><b>Known failure</b>, band {_e(bands)}: '
                     f'{_e(band.get("reason", ""))}</p>')
    parts.append(metrics_table_html(entry))
    per_output = info.get("per_output")
    if isinstance(per_output, Mapping) and len(per_output) > 1:
        parts.append(per_output_html(per_output, entry["budgets"]))
    per_part = info.get("per_part")
    if isinstance(per_part, Mapping) and per_part:
        parts.append(per_output_html(per_part, {}, "per part of an output (worst image; shown, "
                                                   "not judged)"))
    if info.get("first_divergent_layer"):
        parts.append(_layers_html(info))
    parts.append(_sensitivity_html(info))
    parts.append(_op_profile_html(info))
    parts.append(_repair_html(info))
    iou = info.get("per_class_iou")
    if isinstance(iou, list) and iou:
        parts.append(per_class_iou_svg(iou, info.get("worst_class")))
    if isinstance(info.get("op_counts"), Mapping):
        parts.append(_op_counts_html(info["op_counts"]))
    parts.append(_layers_to_change_html(info.get("layers_to_change")))
    if figures:
        parts.append(_figures_html(figures, iou if isinstance(iou, list) else None))
    return f'<div class="sc-suite sc-{entry["outcome"]}">{"".join(parts)}</div>'


def metrics_table_html(entry: Mapping[str, Any]) -> str:
    """Each figure next to its budget, its unit and its known-failure band."""
    band = (entry["info"].get("known_failure") or {}).get("band") or {}
    if not entry["metrics"] and not entry["budgets"]:
        return ""
    rows = []
    for name, value in entry["metrics"].items():
        bound = budget_of(name, entry["budgets"])
        verdict = ""
        if bound is not None:
            verdict = "✓" if _within(_float(value), bound[0], _float(bound[1])) else "✗"
        rows.append(_metric_row(name, _number(value), bound, band.get(name), verdict))
    for key, limit in entry["budgets"].items():
        sign, metric = split_budget_key(key)
        if metric not in entry["metrics"]:  # a budget whose metric was never measured
            rows.append(_metric_row(metric, "—", (sign, limit), band.get(metric), ""))
    return ('<table class="segconform sc-metrics"><thead><tr><th>metric</th><th>value</th>'
            "<th>budget</th><th>known band</th><th>unit</th><th></th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def per_output_html(per_output: Mapping[str, Mapping[str, Any]], budgets: Mapping[str, Any],
                    title: str = "per output (worst image)") -> str:
    """Each output's worst figures over the images, beside the budget they all answer to."""
    names = list(per_output)
    metrics = list(dict.fromkeys(m for figures in per_output.values() for m in figures))
    rows = []
    for metric in metrics:
        bound = budget_of(metric, budgets)
        cells = []
        for name in names:
            value = per_output[name].get(metric)
            bad = bound is not None and value is not None and not _within(
                _float(value), bound[0], _float(bound[1]))
            css = ' class="sc-bad"' if bad else ""
            cells.append(f'<td{css}>{"—" if value is None else _number(value)}</td>')
        budget = "" if bound is None else f"{bound[0]} {_number(bound[1])}"
        rows.append(f"<tr><td>{_e(metric)}</td><td>{_e(budget)}</td>{''.join(cells)}</tr>")
    head = "".join(f"<th>{_e(name)}</th>" for name in names)
    return (f'<table class="segconform sc-outputs"><thead><tr><th>{_e(title)}</th>'
            f"<th>budget</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _metric_row(name: str, value: str, bound: tuple[str, Any] | None,
                band: Sequence[float] | None, verdict: str) -> str:
    budget = "" if bound is None else f"{bound[0]} {_number(bound[1])}"
    band_text = "" if not band else f"[{_number(band[0])}, {_number(band[1])}]"
    metric = METRICS.get(name)
    unit = metric.unit if metric else ""
    css = ' class="sc-bad"' if verdict == "✗" else ""
    return (f"<tr{css}><td>{_e(name)}</td><td>{value}</td><td>{_e(budget)}</td>"
            f"<td>{_e(band_text)}</td><td>{_e(unit)}</td><td>{verdict}</td></tr>")


def _layers_html(info: Mapping[str, Any]) -> str:
    image = info.get("localised_image")
    where = f" (image {_e(image)})" if image is not None else ""
    head = (f'<p class="sc-layer">First diverging layer{where}: '
            f'<b>{_e(info["first_divergent_layer"])}</b></p>')
    rows = []
    for row in info.get("layer_table") or []:
        css = ' class="sc-bad"' if row.get("diverged") else ""
        shape = "×".join(str(s) for s in row.get("shape", []))
        rows.append(f"<tr{css}><td class=\"sc-clip\" title=\"{_e(row.get('layer'))}\">"
                    f"{_e(row.get('layer'))}</td><td>{_e(row.get('kind'))}</td>"
                    f"<td>{_e(shape)}</td><td>{_number(row.get('snr_db', 'nan'))}</td>"
                    f"<td>{_number(row.get('cosine', 'nan'))}</td><td class=\"sc-clip\" "
                    f"title=\"{_e(row.get('exported'))}\">{_e(row.get('exported'))}</td></tr>")
    if not rows:
        return head
    return (head + '<table class="segconform sc-layers"><thead><tr><th>layer</th><th>kind</th>'
            "<th>shape</th><th>SNR dB</th><th>cosine</th><th>exported tensor</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def per_class_iou_svg(iou: Sequence[Any], worst: Any = None) -> str:
    """Per-class IoU as bars in the class's colour; classes never seen (NaN) are left out."""
    from conformance.figures import voc_palette

    palette = voc_palette()
    present = [(k, _float(v)) for k, v in enumerate(iou) if _is_finite(v)]
    if not present:
        return '<p class="sc-note">per-class IoU: no class present</p>'
    slot = max(6, min(16, 640 // len(present)))
    left, top, height = 30, 16, 70
    width = left + slot * len(present) + 6
    names = _class_names()
    bars, labels = [], []
    for k, (cls, value) in enumerate(present):
        x = left + k * slot
        h = height * max(0.0, min(1.0, value))
        colour = _hex(palette[cls % 256])
        stroke = ' stroke="#d0342c" stroke-width="2"' if worst == cls else ""
        name = names[cls] if cls < len(names) else f"class {cls}"
        bars.append(f'<rect x="{x + 1}" y="{top + height - h:.1f}" width="{slot - 2}" '
                    f'height="{h:.1f}" fill="{colour}"{stroke}><title>{cls} {_e(name)}: IoU '
                    f"{value:.4f}</title></rect>")
        if slot >= 12 or k % 2 == 0:
            labels.append(f'<text x="{x + slot / 2}" y="{top + height + 10}" font-size="8" '
                          f'text-anchor="middle">{cls}</text>')
    axis = "".join(f'<line x1="{left}" x2="{width - 4}" y1="{top + height * (1 - t):.1f}" '
                   f'y2="{top + height * (1 - t):.1f}" stroke="#eee"/><text x="{left - 3}" '
                   f'y="{top + height * (1 - t) + 3:.1f}" font-size="8" text-anchor="end">{t:g}'
                   "</text>" for t in (0, 0.5, 1))
    low = min(present, key=lambda p: p[1])
    title = (f"per-class IoU of the export vs ground truth, {len(present)} classes "
             f"(lowest: class {low[0]}, {low[1]:.3f})")
    return (f'<svg class="sc-svg sc-iou" xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{top + height + 14}" viewBox="0 0 {width} {top + height + 14}" '
            f'role="img" aria-label="{_e(title)}"><text x="2" y="10" font-size="10">{_e(title)}'
            f"</text>{axis}{''.join(bars)}{''.join(labels)}</svg>")


def _op_counts_html(op_counts: Mapping[str, Any]) -> str:
    chips = "".join(f'<span class="sc-chip">{_e(op)} {_e(count)}</span>' for op, count in
                    sorted(op_counts.items(), key=lambda kv: -_float(kv[1])))
    return f'<p class="sc-ops"><b>Ops:</b> {chips}</p>'


def _layers_to_change_html(layers: Any, shown: int = 12) -> str:
    """Edge TPU: each layer that breaks a rule of the static check, and what must change."""
    if not isinstance(layers, list) or not layers:
        return ""
    rows = []
    for row in layers[:shown]:
        if not isinstance(row, Mapping):
            continue
        ops = list(row.get("ops") or [])
        listed = ", ".join(ops[:4]) + (f" (+{len(ops) - 4})" if len(ops) > 4 else "")
        rows.append(f"<tr><td>{_e(row.get('layer'))}</td><td>{_e(listed)}</td>"
                    f"<td>{_e(row.get('rule'))}</td><td>{_e(row.get('change'))}</td></tr>")
    more = f" (the first {shown} of {len(layers)})" if len(layers) > shown else ""
    return (f'<p class="sc-layer"><b>Layers that would have to change for the Edge TPU</b>'
            f"{more}: full integer, no float fallback.</p>"
            '<table class="segconform sc-layers"><thead><tr><th>layer</th><th>ops</th>'
            f"<th>rule</th><th>change</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _figures_html(figures: Sequence[Figure], iou: list[Any] | None) -> str:
    items = "".join(f'<figure class="sc-figure"><img alt="{_e(caption)}" '
                    f'src="data:{_e(mime)};base64,{data}"/><figcaption>{_e(caption)}'
                    "</figcaption></figure>" for caption, mime, data in figures)
    return f'<div class="sc-figures">{items}{_class_legend(iou) if iou else ""}</div>'


def _class_legend(iou: list[Any]) -> str:
    from conformance.figures import voc_palette

    palette, names = voc_palette(), _class_names()
    present = [k for k, v in enumerate(iou) if _is_finite(v)]
    swatches = "".join(
        f'<span class="sc-swatch"><i style="background:{_hex(palette[k])}"></i>{k} '
        f"{_e(names[k] if k < len(names) else '')}</span>" for k in present)
    return (f'<p class="sc-classes"><b>Classes:</b> {swatches} <span class="sc-swatch">'
            '<i style="background:#ff0000"></i>disagreement</span></p>')


def _class_names() -> tuple[str, ...]:
    # The fixtures' VOC names; Pillow is needed to import them, absent on a device host.
    try:
        from fixtures.voc import VOC_CLASSES
    except ImportError:
        return ()
    return tuple(VOC_CLASSES)


def _info_list(info: Mapping[str, list[str]]) -> str:
    if not info:
        return ""
    names = [*(k for k in _IDENTITY_INFO if k in info),
             *sorted(k for k in info if k not in _IDENTITY_INFO and k not in _DRAWN_INFO)]
    items = "".join(f"<dt>{_e(name)}</dt><dd>{_e(' / '.join(info[name]))}</dd>"
                    for name in names)
    return f'<dl class="sc-info">{items}</dl>'


# --- helpers -------------------------------------------------------------------------------


def case_anchor(key: CaseKey) -> str:
    """The id of a case's section: 'case-<model>-<format>-<profile>'."""
    return "case-" + re.sub(r"[^A-Za-z0-9_-]+", "-", "-".join(key))


def _case_key(result: Mapping[str, Any]) -> CaseKey:
    return result["model"], result["format"], result["profile"]


def _case_order(key: CaseKey) -> tuple:
    return key[0], _rank(key[1], FORMAT_ORDER), _rank(key[2], PROFILE_ORDER)


def _case_link(key: CaseKey) -> str:
    return f'<a href="#{case_anchor(key)}">{_e(" · ".join(key))}</a>'


def _hex(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))


def _short(text: str, limit: int) -> str:
    return text if len(text) <= max(limit, 4) else text[: max(limit, 4) - 1] + "…"


def _compact(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_compact(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_compact(v) for v in value)
    return str(value)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _number(value: Any) -> str:
    if isinstance(value, str):
        return html.escape(value)
    return f"{float(value):.4g}"


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _is_finite(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _rank(value: str, order: tuple[str, ...]) -> tuple[int, str]:
    return (order.index(value) if value in order else len(order), value)


def _ordered(values: set[str], order: tuple[str, ...]) -> list[str]:
    return sorted(values, key=lambda v: _rank(v, order))


_COLOURS = {"passed": "#3a9a3a", "failed": "#d0342c", "error": "#8b0000",
            "xfailed": "#e08a00", "xpassed": "#7b3fa0", "skipped": "#9a9a9a"}

# The summary comes first: pytest-html puts its environment table above it, so the body is
# a column and the summary is ordered before everything but the title. Logs, extras rows and
# the environment's lists are capped or run inline so that no table row grows past a glance.
_CSS = """<style>
body { display: flex; flex-direction: column; max-width: 1380px; }
body > * { order: 2; } #title { order: 0; } body > .summary { order: 1; }
.summary__data { flex: 1 1 auto; } .summary__spacer { display: none; }
.logwrapper { max-height: 90px; } div.media { display: none; } .sc-goto { margin: 0; }
#environment ul { list-style: none; padding: 0; }
#environment li { display: inline-block; margin-right: 1.2em; }
#segconform-summary { color: #222; font-size: 12px; }
#segconform-summary h2 { margin: 1em 0 0.3em; } #segconform-summary h3 { margin: 0 0 0.3em; }
#segconform-summary h4 { margin: 0.6em 0 0.2em; font-size: 12px; }
table.segconform { border-collapse: collapse; margin: 0.3em 0 0.8em; font-size: 12px; }
table.segconform th, table.segconform td { border: 1px solid #ccc; padding: 2px 6px;
  text-align: left; vertical-align: top; }
td.sc-cell { padding: 0; } a.sc-cell-link { display: block; padding: 2px 6px; color: inherit;
  text-decoration: none; } a.sc-cell-link:hover { outline: 2px solid #4a78b5; }
td.sc-cell.sc-passed { background: #e6f4e6; } td.sc-cell.sc-failed { background: #fbe3e1; }
td.sc-cell.sc-error { background: #f6c9c6; } td.sc-cell.sc-skipped { background: #f4f4f4; }
td.sc-cell.sc-xfailed { background: #fdf0d8; } td.sc-cell.sc-xpassed { background: #efe4f6; }
td.sc-none { color: #aaa; text-align: center; }
/* Fixed layout: the format columns share the page width however many formats there are
   (a cell's entries wrap and end in an ellipsis), so the matrix never scrolls sideways. */
#segconform-matrix { table-layout: fixed; width: 100%; }
#segconform-matrix thead th { overflow-wrap: anywhere; font-size: 11px; }
#segconform-matrix thead th:nth-child(1) { width: 9em; }
#segconform-matrix thead th:nth-child(2) { width: 3.5em; }
#segconform-matrix tbody th { overflow-wrap: anywhere; }
.sc-entry { padding: 0 2px; font-size: 11px; overflow-wrap: anywhere; overflow: hidden;
  display: -webkit-box; -webkit-box-orient: vertical; -webkit-line-clamp: 3; }
.sc-passed { color: #1d6b1d; } .sc-failed { color: #b3261e; } .sc-error { color: #7a0000; }
.sc-skipped { color: #777; } .sc-xfailed { color: #a35f00; } .sc-xpassed { color: #6a2f90; }
.sc-entry.sc-failed, .sc-entry.sc-error { font-weight: bold; }
.sc-badge { display: inline-block; padding: 1px 7px; border-radius: 9px; color: #fff;
  font-weight: bold; font-size: 11px; }
.sc-badge.sc-passed { background: #3a9a3a; } .sc-badge.sc-failed { background: #d0342c; }
.sc-badge.sc-error { background: #8b0000; } .sc-badge.sc-skipped { background: #999; }
.sc-badge.sc-xfailed { background: #e08a00; } .sc-badge.sc-xpassed { background: #7b3fa0; }
.sc-counts { font-size: 13px; }
td.sc-clip { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 16em; }
td.sc-clip.sc-case-name { max-width: 28em; }
.sc-chip { display: inline-block; margin: 1px 3px 1px 0; padding: 0 5px; border-radius: 3px;
  background: #eee; white-space: nowrap; }
.sc-chip.sc-regressed { background: #d0342c; color: #fff; }
.sc-chip.sc-worse { background: #f8d0cc; }
.sc-chip.sc-better { background: #cde9cd; } .sc-chip.sc-same, .sc-chip.sc-new { color: #777; }
figure.sc-chart, figure.sc-figure { display: inline-block; margin: 0 1em 0.6em 0;
  vertical-align: top; max-width: 100%; }
svg.sc-svg { max-width: 100%; height: auto; background: #fff; }
figure.sc-figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 11px; color: #555; max-width: 640px; }
section.sc-case { border: 1px solid #ddd; border-left: 6px solid #ccc; padding: 6px 10px;
  margin: 0 0 10px; }
section.sc-case.sc-passed { border-left-color: #3a9a3a; }
section.sc-case.sc-failed, section.sc-case.sc-error { border-left-color: #d0342c; }
section.sc-case.sc-xfailed { border-left-color: #e08a00; }
section.sc-case:target { box-shadow: 0 0 0 3px #4a78b5; }
.sc-nodeid { color: #999; font-weight: normal; font-family: monospace; font-size: 10px; }
a.sc-top { font-size: 11px; font-weight: normal; margin-left: 1em; }
pre.sc-message { white-space: pre-wrap; overflow-wrap: anywhere; max-height: 9em;
  overflow: auto; background: #fafafa; border: 1px solid #eee; padding: 4px; margin: 0.2em 0; }
tr.sc-bad td, td.sc-bad { background: #fbe3e1; color: #b3261e; }
.sc-known { background: #fdf0d8; padding: 2px 6px; }
dl.sc-info { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 1px 10px;
  margin: 0.4em 0; font-size: 11px; color: #444; }
dl.sc-info dt { font-weight: bold; } dl.sc-info dd { margin: 0; overflow-wrap: anywhere; }
.sc-swatch { display: inline-block; margin-right: 8px; white-space: nowrap; font-size: 11px; }
.sc-swatch i { display: inline-block; width: 10px; height: 10px; margin-right: 3px;
  border: 1px solid #888; vertical-align: middle; }
.sc-note { color: #777; font-style: italic; } .sc-legend { color: #555; font-size: 11px; }
</style>"""


def _sensitivity_html(info: Mapping[str, Any]) -> str:
    """The int8 per-layer table, most sensitive first, and a bar chart of the same rows."""
    table = info.get("int8_sensitivity")
    if not isinstance(table, Mapping) or not table.get("rows"):
        return ""
    rows = table["rows"]
    body = "".join(
        f"<tr><td>{k + 1}</td><td class=\"sc-clip\" title=\"{_e(r.get('tensor'))}\">"
        f"{_e(r.get('layer'))}</td><td>{_e(r.get('op'))}</td><td>{_e(r.get('dtype'))}</td>"
        f"<td>{_number(r.get('own_snr_db'))}</td><td>{_number(r.get('input_snr_db'))}</td>"
        f"<td>{_number(r.get('weight_snr_db'))}</td><td>{_number(r.get('carried_snr_db'))}</td>"
        f"<td>{_number(r.get('added_db'))}</td></tr>" for k, r in enumerate(rows))
    head = (f'<p class="sc-layer"><b>int8 sensitivity</b>: {len(rows)} most sensitive of '
            f'{_e(table.get("layers"))} quantised ops, by their own error (SNR in dB, averaged '
            f'over channels; {_e(table.get("images"))} image(s); 200 = not quantised)</p>')
    return (head + sensitivity_svg(rows) + '<table class="segconform sc-layers"><thead><tr>'
            "<th>#</th><th>layer</th><th>op</th><th>type</th><th>own out</th><th>own in</th>"
            "<th>weights</th><th>carried</th><th>added</th></tr></thead>"
            f"<tbody>{body}</tbody></table>")


def sensitivity_svg(rows: Sequence[Mapping[str, Any]]) -> str:
    """Own (bar) and carried (tick) SNR of the ranked layers."""
    slot, left, top, height = 18, 30, 16, 70
    width = left + slot * len(rows) + 6
    low = min(0.0, *(_float(r.get("carried_snr_db")) for r in rows))
    high = 60.0

    def y(value: float) -> float:
        value = max(low, min(high, value))
        return top + height * (1 - (value - low) / (high - low))

    marks = []
    for k, r in enumerate(rows):
        x = left + k * slot
        own = min(_float(r.get("own_snr_db")), _float(r.get("input_snr_db")),
                  _float(r.get("weight_snr_db")))
        carried = _float(r.get("carried_snr_db"))
        marks.append(f'<rect x="{x + 2}" y="{y(own):.1f}" width="{slot - 4}" '
                     f'height="{top + height - y(own):.1f}" fill="#6b8fd6"><title>'
                     f'{k + 1} {_e(r.get("layer"))}: own {own:.1f} dB</title></rect>'
                     f'<line x1="{x + 1}" x2="{x + slot - 1}" y1="{y(carried):.1f}" '
                     f'y2="{y(carried):.1f}" stroke="#d0342c" stroke-width="2"><title>'
                     f'carried {carried:.1f} dB</title></line>'
                     f'<text x="{x + slot / 2}" y="{top + height + 10}" font-size="8" '
                     f'text-anchor="middle">{k + 1}</text>')
    axis = "".join(f'<line x1="{left}" x2="{width - 4}" y1="{y(t):.1f}" y2="{y(t):.1f}" '
                   f'stroke="#eee"/><text x="{left - 3}" y="{y(t) + 3:.1f}" font-size="8" '
                   f'text-anchor="end">{t:g}</text>' for t in (0, 20, 40, 60))
    title = "own SNR (bars) and carried SNR (red ticks) of the ranked layers, dB"
    return (f'<svg class="sc-svg sc-sensitivity" xmlns="http://www.w3.org/2000/svg" '
            f'width="{width}" height="{top + height + 14}" viewBox="0 0 {width} '
            f'{top + height + 14}" role="img" aria-label="{_e(title)}"><text x="2" y="10" '
            f'font-size="10">{_e(title)}</text>{axis}{"".join(marks)}</svg>')


def _repair_html(info: Mapping[str, Any]) -> str:
    """The repair search: every trial, and the recipe it found."""
    repair = info.get("int8_repair")
    if not isinstance(repair, Mapping):
        return ""
    rows = []
    for t in repair.get("trials") or []:
        figures = {k: v for k, v in (t.get("metrics") or {}).items() if k in REPAIR_SHOWN}
        verdict = "pass" if t.get("passed") else "fail"
        rows.append(f'<tr class="sc-trial-{verdict}"><td>{_e(t.get("precision"))}</td>'
                    f'<td>{_e(t.get("layers"))}</td><td>{verdict}</td>'
                    f"<td>{_e(_compact(figures))}</td><td>{_number(t.get('seconds'))}</td></tr>")
    saved = repair.get("saved")
    replay = f" Saved to <code>{_e(saved)}</code>; replay with <code>--int8-recipe " \
             f"{_e(repair.get('model'))}={_e(saved)}</code>." if saved else ""
    return (f'<p class="sc-layer"><b>int8 repair</b>: {_e(repair.get("summary"))}.{replay}</p>'
            '<table class="segconform sc-layers"><thead><tr><th>kept at</th><th>layers</th>'
            "<th>verdict</th><th>figures</th><th>s</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _op_profile_html(info: Mapping[str, Any]) -> str:
    """The per-op TFLite profile: delegation, op types by time, the slowest ops."""
    profile = info.get("op_profile")
    if not isinstance(profile, Mapping) or not profile.get("by_type"):
        return ""
    boundary = ", ".join(f"{_e(k)} {_e(v)}" for k, v in profile.get("boundary_ops", {}).items())
    left = profile.get("not_delegated") or {}
    bad = ' class="sc-bad"'  # a type with ops XNNPACK did not take
    rows = "".join(
        f'<tr{bad if row.get("delegated", 0) < row.get("count", 0) else ""}>'
        f"<td>{_e(op)}</td><td>{_e(row.get('count'))}</td><td>{_e(row.get('delegated'))}</td>"
        f"<td>{_number(row.get('ms'))}</td><td>{_number(row.get('ms_not_delegated'))}</td></tr>"
        for op, row in list(profile["by_type"].items())[:12])
    slowest = "; ".join(f"#{_e(op.get('index'))} {_e(op.get('op'))} {_number(op.get('ms'))} ms"
                        + ("" if op.get("delegated") else " (reference kernel)")
                        for op in profile.get("slowest", [])[:5])
    head = (f'<p class="sc-layer"><b>per-op profile</b>: XNNPACK takes '
            f'{_e(profile.get("delegated"))} of {_e(profile.get("ops"))} ops in '
            f'{_e(profile.get("partitions"))} partition(s)'
            + (f"; not delegated: {_e(_compact(left))}" if left else "")
            + f"; {boundary}; each op timed alone, {_e(profile.get('threads'))} thread(s) on "
            f"{_e(profile.get('cpu'))}: sum {_number(profile.get('sum_of_ops_ms'))} ms, whole "
            f"model {_number(profile.get('whole_ms'))} ms. Slowest: {slowest}</p>")
    return (head + '<table class="segconform sc-layers"><thead><tr><th>op type</th>'
            "<th>ops</th><th>delegated</th><th>ms</th><th>ms not delegated</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")
