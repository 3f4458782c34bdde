"""pytest plugin: results JSON, and pytest-html extensions (verdict matrix, figures, plots).

Loaded from the root conftest.py (`pytest_plugins = ["conformance.report"]`). It must load
on a Raspberry Pi with only numpy, pytest and a TFLite interpreter: torch, onnxruntime,
matplotlib and Pillow are never imported here at import time, library versions come from
package metadata, and pytest-html hooks are optional.
"""

from __future__ import annotations

import base64
import html
import importlib.metadata
import json
import math
import os
import platform
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conformance.metric_catalog import budget_key
from conformance.report_schema import OUTCOMES, SCHEMA_ID, validate
from conformance.results import RESULT_KEY, CaseResult
from models.formats import FORMATS, REFERENCE_FORMAT

# Distributions whose versions go into the environment; read from metadata, never imported.
LIBRARIES = ("numpy", "torch", "torchvision", "onnx", "onnxruntime", "onnxruntime-gpu",
             "ai-edge-litert", "tflite-runtime", "tensorflow", "litert-torch", "ultralytics",
             "open_clip_torch", "pycoral", "pytest", "pytest-html", "pillow", "matplotlib")

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
# The latency plot's dashed line: the budget of this metric (max_p50_ms).
LATENCY_METRIC = "p50_ms"

FORMAT_ORDER = (REFERENCE_FORMAT, *FORMATS)  # the rows' order in models/formats.py
PROFILE_ORDER = ("gpu", "cpu", "pixel2", "pi5", "coral")
SUITE_ORDER = ("parity", "accuracy", "prompt_masks", "latency", "edgetpu")
# Worst first: the colour of a matrix cell is that of its worst entry.
_SEVERITY = ("error", "failed", "xpassed", "xfailed", "skipped", "passed")

_STATE_KEY = pytest.StashKey["_ReportState"]()


class _ReportState:
    """Results seen this session, keyed by nodeid, and the hooks that need them.

    Registered as a plugin object in pytest_configure because pytest_runtest_logreport gets
    no config. Results are taken from the reports (not the items) so that xdist works.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results: dict[str, dict[str, Any]] = {}
        self.passed_with_figures: set[tuple[str, str, str]] = set()
        self.schema_errors: list[str] = []
        # Like --junitxml, the option is relative to where pytest runs; the ini to rootdir.
        option, ini = config.getoption("report_json"), config.getini("report_json")
        self.json_path = (Path(config.invocation_params.dir, os.path.expanduser(option))
                          if option else Path(config.rootpath, os.path.expanduser(ini))
                          if ini else None)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep the latest result per test (the teardown report has the final verdict)."""
        payload = getattr(report, "segconform", None)
        # "unknown": recorded in a fixture, and the session stopped before the call.
        if payload is not None and payload["outcome"] != "unknown":
            self.results[report.nodeid] = payload

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Write the results JSON (on the controller only under xdist)."""
        if self.json_path is None or hasattr(self.config, "workerinput"):
            return
        if not self.results and self.config.getoption("report_json") is None:
            # A run of harness tests only would otherwise clobber the last conformance results.
            self.json_path = None
            return
        document = results_document(self.results.values(), int(exitstatus))
        self.schema_errors = validate(document)
        self.json_path.parent.mkdir(parents=True, exist_ok=True)
        self.json_path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Say where the JSON went, and shout if it broke its own schema."""
        if self.json_path is None or hasattr(self.config, "workerinput"):
            return
        terminalreporter.write_sep("-", f"results JSON ({len(self.results)} results): "
                                   f"{self.json_path}")
        for error in self.schema_errors:
            terminalreporter.write_line(f"results JSON schema error: {error}", red=True)

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str], summary: list[str],
                                    postfix: list[str], session: pytest.Session) -> None:
        """Verdict matrix, latency plots and runtimes at the top of the page."""
        results = list(self.results.values())
        prefix.extend([_CSS, verdict_matrix_html(results), latency_html(results),
                       runtimes_html(results)])


def pytest_addoption(parser: pytest.Parser) -> None:
    """--report-json and the ini options of the report."""
    group = parser.getgroup("segconform report")
    group.addoption("--report-json", default=None, metavar="PATH",
                    help="write all results as JSON here (default: ini report_json)")
    parser.addini("report_json", "results JSON path, relative to rootdir; empty: none",
                  default="reports/results.json")
    parser.addini("report_figures_failed", "figures kept per failing case", default="4")
    parser.addini("report_figures_passed",
                  "figures kept for the first passing case per suite/model/format",
                  default="1")


@pytest.hookimpl(trylast=True)  # after junitxml has set up its LogXML
def pytest_configure(config: pytest.Config) -> None:
    """Set up state and the global JUnit properties (library versions)."""
    state = _ReportState(config)
    config.stash[_STATE_KEY] = state
    config.pluginmanager.register(state, "segconform-report-state")
    try:
        # Private API, guarded: lets CI dashboards see which library versions ran.
        from _pytest.junitxml import xml_key
    except ImportError:
        return
    xml = config.stash.get(xml_key, None)
    if xml is not None:
        for name, version in library_versions().items():
            xml.add_global_property(f"version.{name}", version)


def library_versions() -> dict[str, str]:
    """Versions of the installed libraries among LIBRARIES, without importing any."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def host_environment() -> dict[str, Any]:
    """Host, Python and library versions; adds the CUDA device if torch is already loaded."""
    environment: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "libraries": library_versions(),
    }
    torch = sys.modules.get("torch")  # only if a test imported it; never import it here
    if torch is not None:
        try:
            if torch.cuda.is_available():
                environment["cuda_device"] = torch.cuda.get_device_name(0)
            environment["torch_threads"] = torch.get_num_threads()
        except Exception:  # a broken CUDA setup must not lose the report
            pass
    return environment


@pytest.hookimpl(optionalhook=True)
def pytest_metadata(metadata: dict[str, Any], config: pytest.Config) -> None:
    """Add host and library versions to pytest-html's environment table."""
    environment = host_environment()
    metadata["Host"] = html.escape(
        f"{environment['host']} ({environment['machine']}, {environment['cpu_count']} CPUs)")
    metadata["Libraries"] = {k: html.escape(v) for k, v in environment["libraries"].items()}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Copy pytest's verdict into the CaseResult and attach it (and figures) to the report."""
    report = yield
    result = item.stash.get(RESULT_KEY, None)
    if result is None and report.when == "setup" and not report.passed:
        result = _result_from_params(item)
        if result is not None:
            item.stash[RESULT_KEY] = result
            # As record_case does; JUnit reads them from the teardown report.
            item.user_properties.extend(
                (key, getattr(result, key)) for key in ("suite", "model", "format", "profile"))
    if result is None:
        return report
    _update_outcome(result, report, call)
    report.segconform = _plain(result.to_json())
    if report.when == "call" or (report.when == "setup" and not report.passed):
        report.extras = [*getattr(report, "extras", []), *_extras(item.config, result)]
    return report


def results_document(results: Iterable[dict[str, Any]], exit_status: int) -> dict[str, Any]:
    """The JSON document of a session (schema `segconform.results/1`)."""
    results = list(results)
    counts = Counter(r["outcome"] for r in results)
    return {
        "schema": SCHEMA_ID,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": _plain(host_environment()),
        "summary": {"total": len(results), **{o: counts.get(o, 0) for o in OUTCOMES},
                    "exit_status": exit_status},
        "results": results,
    }


# --- pytest-html -------------------------------------------------------------------------


@pytest.hookimpl(optionalhook=True)
def pytest_html_report_title(report: Any) -> None:
    """A title that says what the page is."""
    report.title = "segconform: export conformance report"


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_header(cells: list[str]) -> None:
    """Sortable model / format / profile / key-metric columns after the test id."""
    cells[2:2] = [f'<th class="sortable" data-column-type="{name}">{title}</th>'
                  for name, title in (("scmodel", "Model"), ("scformat", "Format"),
                                      ("scprofile", "Profile"), ("scmetric", "Key metric"))]


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_row(report: Any, cells: list[str]) -> None:
    """Fill the extra columns from the attached result (empty for other tests)."""
    payload = getattr(report, "segconform", None) or {}
    key = _key_metric_text(payload) if payload else ""
    cells[2:2] = [f'<td class="col-{name}">{html.escape(str(value))}</td>'
                  for name, value in (("scmodel", payload.get("model", "")),
                                      ("scformat", payload.get("format", "")),
                                      ("scprofile", payload.get("profile", "")),
                                      ("scmetric", key))]


def verdict_matrix_html(results: list[dict[str, Any]]) -> str:
    """Rows model × format, a column per profile; each cell the key metric per suite."""
    if not results:
        return ('<table id="segconform-matrix" class="segconform"><tr><td>'
                "no conformance results in this run</td></tr></table>")
    profiles = _ordered({r["profile"] for r in results}, PROFILE_ORDER)
    cells: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        cells[(r["model"], r["format"], r["profile"])].append(r)
    rows = sorted({(r["model"], r["format"]) for r in results},
                  key=lambda mf: (mf[0], _rank(mf[1], FORMAT_ORDER)))
    head = "".join(f"<th>{html.escape(p)}</th>" for p in profiles)
    body = []
    for index, (model, fmt) in enumerate(rows):
        model_cell = ""
        if index == 0 or rows[index - 1][0] != model:
            span = sum(1 for m, _ in rows if m == model)
            model_cell = f'<th rowspan="{span}">{html.escape(model)}</th>'
        tds = "".join(_matrix_cell(cells.get((model, fmt, p), [])) for p in profiles)
        body.append(f"<tr>{model_cell}<th>{html.escape(fmt)}</th>{tds}</tr>")
    counts = Counter(r["outcome"] for r in results)
    legend = " ".join(f'<span class="sc-entry sc-{o}">{o} {counts.get(o, 0)}</span>'
                      for o in OUTCOMES)
    return (f'<h2>Verdict matrix</h2><table id="segconform-matrix" class="segconform">'
            f"<thead><tr><th>model</th><th>format</th>{head}</tr></thead>"
            f'<tbody>{"".join(body)}</tbody></table>'
            f'<p class="sc-legend">{len(results)} results: {legend} · hover a cell entry for '
            "the skip reason or failure message</p>")


def latency_html(results: list[dict[str, Any]]) -> str:
    """One latency plot per profile (p50 bars against torch_eager), or a note why none."""
    latency = [r for r in results if r["suite"] == "latency" and _is_number(
        r["metrics"].get("p50_ms"))]
    if not latency:
        return '<div id="segconform-latency"><p class="sc-note">no latency results</p></div>'
    from conformance.figures import can_plot, latency_plot

    if not can_plot():
        return ('<div id="segconform-latency"><p class="sc-note">latency plots skipped: '
                "matplotlib not installed</p></div>")
    by_profile: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in latency:
        by_profile[r["profile"]].append({
            "model": r["model"], "format": r["format"], "outcome": r["outcome"],
            "p50_ms": r["metrics"]["p50_ms"],
            "p90_ms": r["metrics"].get("p90_ms", r["metrics"]["p50_ms"]),
            "budget_ms": r["budgets"].get(budget_key(LATENCY_METRIC))})
    figures = []
    for profile in _ordered(set(by_profile), PROFILE_ORDER):
        rows = [row for row in by_profile[profile] if _is_number(row["p90_ms"])]
        for row in rows:
            if not _is_number(row["budget_ms"]):
                row["budget_ms"] = None
        png = latency_plot(rows, title=f"{profile}: p50 latency [ms]")
        figures.append(f'<figure class="sc-figure"><img alt="latency {html.escape(profile)}" '
                       f'src="{_data_uri(png)}"/><figcaption>{_LATENCY_CAPTION}</figcaption>'
                       "</figure>")
    return f'<h2>Latency</h2><div id="segconform-latency">{"".join(figures)}</div>'


def runtimes_html(results: list[dict[str, Any]]) -> str:
    """What ran each model × format × profile: runtime, delegate, threads, weights (info)."""
    merged: dict[tuple[str, str, str], dict[str, set[str]]] = defaultdict(
        lambda: defaultdict(set))
    for r in results:
        for key, value in r["info"].items():
            if key != "key_metric":
                merged[(r["model"], r["format"], r["profile"])][key].add(str(value))
    if not merged:
        return ""
    keys = sorted({k for info in merged.values() for k in info})
    head = "".join(f"<th>{html.escape(k)}</th>" for k in ["model", "format", "profile", *keys])
    rows = []
    for (model, fmt, profile), info in sorted(merged.items()):
        cells = [model, fmt, profile, *(" / ".join(sorted(info.get(k, ()))) for k in keys)]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return (f'<h2>Runtimes and weights</h2><table id="segconform-runtimes" class="segconform">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


# --- helpers -------------------------------------------------------------------------------


def _update_outcome(result: CaseResult, report: pytest.TestReport,
                    call: pytest.CallInfo[None]) -> None:
    wasxfail = getattr(report, "wasxfail", None)
    if report.when == "call" and wasxfail is not None:
        result.outcome = "xfailed" if report.skipped else "xpassed"
        result.message = _join(wasxfail, _exception_line(call))
    elif report.when == "call":
        result.outcome = report.outcome
        if report.skipped:
            result.message = _skip_reason(report)
        elif report.failed:
            # A strict xfail that passed fails without an exception: the longrepr says so.
            result.message = _exception_line(call) or _first_line(str(report.longrepr))
        else:
            result.message = ""
    elif report.when == "setup" and report.skipped:
        result.outcome = "xfailed" if wasxfail is not None else "skipped"
        result.message = wasxfail if wasxfail is not None else _skip_reason(report)
    elif report.failed and result.outcome != "failed":
        # Setup/teardown errors; a teardown error after a failed call keeps "failed".
        result.outcome = "error"
        result.message = f"error in {report.when}: {_exception_line(call)}"


def _exception_line(call: pytest.CallInfo[None]) -> str:
    if call.excinfo is None:
        return ""
    text = _first_line(str(call.excinfo.value))
    if call.excinfo.errisinstance(AssertionError):
        return text or "AssertionError"
    return f"{call.excinfo.typename}: {text}" if text else call.excinfo.typename


def _skip_reason(report: pytest.TestReport) -> str:
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return _first_line(str(report.longrepr))


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _join(*parts: str) -> str:
    return " — ".join(p for p in parts if p)


def _result_from_params(item: pytest.Item) -> CaseResult | None:
    # A case skipped before record_case (a skip marker, a fixture skip) still belongs in
    # the matrix if its parameter says which model/format/profile it is.
    callspec = getattr(item, "callspec", None)
    for param in (callspec.params.values() if callspec else ()):
        fields = {k: getattr(param, k, None) for k in ("model", "format", "profile")}
        if all(isinstance(v, str) for v in fields.values()):
            module = getattr(getattr(item, "module", None), "__name__", "")
            suite = getattr(param, "suite", None) or module.rsplit(".", 1)[-1].removeprefix(
                "test_")
            return CaseResult(suite=str(suite), nodeid=item.nodeid, **fields)
    return None


def _extras(config: pytest.Config, result: CaseResult) -> list[dict[str, Any]]:
    try:
        from pytest_html import extras
    except ImportError:
        return []
    items = [extras.html(_metrics_table_html(result))]
    state = config.stash[_STATE_KEY]
    if result.outcome in ("passed", "xfailed", "skipped"):
        # A sample of passing cases: the first per suite/model/format keeps its pictures.
        key = (result.suite, result.model, result.format)
        limit = 0 if key in state.passed_with_figures else int(
            config.getini("report_figures_passed"))
        if limit and result.figures:
            state.passed_with_figures.add(key)
    else:
        limit = int(config.getini("report_figures_failed"))
    for caption, png in result.figures[:limit]:
        items.append(extras.png(base64.b64encode(png).decode("ascii"), name=caption))
    return items


def _metrics_table_html(result: CaseResult) -> str:
    rows = []
    for name, value in result.metrics.items():
        bound = budget_of(name, result.budgets)
        budget_text = "" if bound is None else f"{bound[0]} {_number(bound[1])}"
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{_number(value)}</td>"
                    f"<td>{html.escape(budget_text)}</td></tr>")
    for key, budget in result.budgets.items():
        sign, metric = _split_budget_key(key)
        if metric not in result.metrics:  # a budget whose metric was never measured
            rows.append(f"<tr><td>{html.escape(metric)}</td><td>—</td>"
                        f"<td>{html.escape(sign)} {_number(budget)}</td></tr>")
    for name, value in result.info.items():
        rows.append(f'<tr><td>{html.escape(name)}</td><td colspan="2">'
                    f"{html.escape(str(value))}</td></tr>")
    message = ""
    if result.message:
        prefix = "" if result.message.startswith(result.outcome) else f"{result.outcome}: "
        message = f'<p class="sc-message">{html.escape(prefix + result.message)}</p>'

    return (f"{message}<table class=\"segconform sc-metrics\"><thead><tr><th>"
            f"{html.escape(result.suite)} {html.escape(result.model)} "
            f"{html.escape(result.format)} {html.escape(result.profile)}</th><th>value</th>"
            f"<th>budget</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _key_metric(payload: Mapping[str, Any]) -> str | None:
    metrics, budgets = payload["metrics"], payload["budgets"]
    chosen = payload["info"].get("key_metric")
    if chosen in metrics:
        return str(chosen)
    preferred = KEY_METRICS.get(payload["suite"], ())
    budgeted = [m for m in metrics if budget_of(m, budgets) is not None]
    candidates = [*(m for m in preferred if m in budgeted), *budgeted,
                  *(m for m in preferred if m in metrics), *metrics]
    return candidates[0] if candidates else None


def _key_metric_text(payload: Mapping[str, Any]) -> str:
    name = _key_metric(payload)
    if name is None:
        return ""
    value = payload["metrics"][name]
    bound = budget_of(name, payload["budgets"])
    budget_text = "" if bound is None else f" {bound[0]} {_number(bound[1])}"
    return f"{name} {_number(value)}{budget_text}"


def budget_of(metric: str, budgets: Mapping[str, Any]) -> tuple[str, Any] | None:
    """('≤' or '≥', value) of the recorded budget on `metric` (keys are max_/min_<metric>)."""
    for key in (f"max_{metric}", f"min_{metric}"):
        if key in budgets:
            return _split_budget_key(key)[0], budgets[key]
    return None


def _matrix_cell(entries: list[dict[str, Any]]) -> str:
    if not entries:
        return '<td class="sc-none">—</td>'
    by_suite: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        by_suite[entry["suite"]].append(entry)
    lines = []
    for suite in _ordered(set(by_suite), SUITE_ORDER):
        group = sorted(by_suite[suite], key=lambda e: _rank(e["outcome"], _SEVERITY))
        worst = group[0]
        text = f"{suite}: {_key_metric_text(worst) or worst['outcome']}"
        title = worst["message"] or worst["outcome"]
        if len(group) > 1:
            counts = Counter(e["outcome"] for e in group)
            text += f" (worst of {len(group)})"
            title = f"{', '.join(f'{n} {o}' for o, n in counts.items())}; worst: {title}"
        lines.append(f'<div class="sc-entry sc-{worst["outcome"]}" '
                     f'title="{html.escape(title)}">{html.escape(text)}</div>')
    worst_outcome = min((e["outcome"] for e in entries), key=lambda o: _rank(o, _SEVERITY))
    return f'<td class="sc-cell sc-{worst_outcome}">{"".join(lines)}</td>'


def _split_budget_key(key: str) -> tuple[str, str]:
    # ('≤', 'p50_ms') for 'max_p50_ms'; budgets.violations reads the same prefixes.
    prefix, _, metric = key.partition("_")
    sign = {"max": "≤", "min": "≥"}.get(prefix)
    return (sign, metric) if sign and metric else ("budget", key)


def _number(value: Any) -> str:
    if isinstance(value, str):
        return html.escape(value)
    return f"{float(value):.4g}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _rank(value: str, order: tuple[str, ...]) -> tuple[int, str]:
    return (order.index(value) if value in order else len(order), value)


def _ordered(values: set[str], order: tuple[str, ...]) -> list[str]:
    return sorted(values, key=lambda v: _rank(v, order))


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _plain(value: Any) -> Any:
    # Info may hold Paths, numpy values or NaN; the JSON file, xdist and the HTML data blob
    # all need strict JSON.
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    # Exact builtin types: a subclass (torch.__version__ is a str subclass) is data to
    # json but not to execnet, which refuses it and stops an xdist run.
    if value is None or isinstance(value, bool):
        return value if value is None else bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    tolist = getattr(value, "tolist", None)  # numpy scalars and small arrays
    return _plain(tolist()) if callable(tolist) else str(value)


_LATENCY_CAPTION = (
    f"bar: p50; whisker: p90; dashed: p50 budget; ×n: speed-up vs {REFERENCE_FORMAT} (blue); "
    "green passed, red failed, grey skipped, orange xfailed")

_CSS = """<style>
table.segconform { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 12px; }
table.segconform th, table.segconform td { border: 1px solid #ccc; padding: 3px 6px;
  text-align: left; vertical-align: top; }
td.sc-cell.sc-passed { background: #e6f4e6; } td.sc-cell.sc-failed { background: #fbe3e1; }
td.sc-cell.sc-error { background: #f6c9c6; } td.sc-cell.sc-skipped { background: #f1f1f1; }
td.sc-cell.sc-xfailed { background: #fdf0d8; } td.sc-cell.sc-xpassed { background: #efe4f6; }
td.sc-none { color: #aaa; text-align: center; }
.sc-entry { white-space: nowrap; padding: 1px 3px; border-radius: 3px; cursor: help; }
.sc-entry.sc-passed { color: #1d6b1d; } .sc-entry.sc-failed { color: #b3261e; font-weight: bold; }
.sc-entry.sc-error { color: #7a0000; font-weight: bold; } .sc-entry.sc-skipped { color: #777; }
.sc-entry.sc-xfailed { color: #a35f00; } .sc-entry.sc-xpassed { color: #6a2f90; }
figure.sc-figure { display: inline-block; margin: 0 1em 1em 0; }
figure.sc-figure img { max-width: 100%; border: 1px solid #ddd; }
figure.sc-figure figcaption { font-size: 11px; color: #555; max-width: 480px; }
.sc-note { color: #777; font-style: italic; } .sc-message { font-family: monospace; }
</style>"""
