"""pytest plugin: results JSON, and pytest-html hooks (the page itself: report_html.py).

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
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conformance import report_html
from conformance.case_context import case_identity
from conformance.profiles import cpu_model, int8_isa
from conformance.remedies import repair_rows
from conformance.report_schema import OUTCOMES, SCHEMA_ID, validate
from conformance.results import RESULT_KEY, CaseResult

# Distributions whose versions go into the environment; read from metadata, never imported.
LIBRARIES = ("numpy", "torch", "torchvision", "onnx", "onnxruntime", "onnxruntime-gpu",
             "ai-edge-litert", "tflite-runtime", "tensorflow", "litert-torch", "ultralytics",
             "open_clip_torch", "pycoral", "pytest", "pytest-html", "pillow", "matplotlib")

_STATE_KEY = pytest.StashKey["_ReportState"]()


class _ReportState:
    """Results seen this session, keyed by nodeid, and the hooks that need them.

    Registered as a plugin object in pytest_configure because pytest_runtest_logreport gets
    no config. Results are taken from the reports (not the items) so that xdist works.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results: dict[str, dict[str, Any]] = {}
        self.figures: dict[str, list[list[str]]] = {}  # nodeid -> [caption, MIME, base64]
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
        if getattr(report, "segconform_figures", None):
            self.figures[report.nodeid] = report.segconform_figures

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
        """Verdict, matrix, regressions, latency, runtimes and one section per case."""
        prefix.append(report_html.summary_html(
            self.results.values(), self.figures,
            baseline=self.config.getoption("baseline", None)))


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
        "cpu": cpu_model(),
        "cpu_isa": int8_isa(),
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
        f"{environment['host']} ({environment['machine']}, {environment['cpu_count']} CPUs: "
        f"{environment['cpu']}; {environment['cpu_isa'] or 'no int8 ISA flags read'})")
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
        report.extras = [*getattr(report, "extras", []), *_extras(result)]
        report.segconform_figures = _figure_thumbnails(item.config, result)
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
        "repairs": repair_rows(results),
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
    key = report_html.key_metric_text(payload) if payload else ""
    cells[2:2] = [f'<td class="col-{name}">{html.escape(str(value))}</td>'
                  for name, value in (("scmodel", payload.get("model", "")),
                                      ("scformat", payload.get("format", "")),
                                      ("scprofile", payload.get("profile", "")),
                                      ("scmetric", key))]


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
    # A case skipped before its context opened (a skip marker, a fixture skip) still belongs
    # in the matrix, under the identity its context would have had.
    found = case_identity(item)
    return found[0].result(item.nodeid) if found else None


def _extras(result: CaseResult) -> list[dict[str, Any]]:
    # The results table points at the case's section, which holds figures and numbers once.
    try:
        from pytest_html import extras
    except ImportError:
        return []
    anchor = report_html.case_anchor((result.model, result.format, result.profile))
    return [extras.html(f'<p class="sc-goto"><a href="#{anchor}">{html.escape(result.suite)}: '
                        f"figures, budgets and runtime in the case's section</a></p>")]


def _figure_thumbnails(config: pytest.Config, result: CaseResult) -> list[list[str]]:
    """[caption, MIME type, base64] of the figures the report keeps, compressed."""
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
    if not result.figures[:limit]:
        return []
    from conformance.figures import thumbnail  # Pillow drew the figures, so it is here

    kept = []
    for caption, png in result.figures[:limit]:
        mime, data = thumbnail(png)
        kept.append([caption, mime, base64.b64encode(data).decode("ascii")])
    return kept


def _plain(value: Any) -> Any:
    # Info may hold Paths, numpy values or NaN; the JSON file, xdist and the HTML data blob
    # all need strict JSON.
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, float):  # numpy.float64 too, which is a float subclass
        return float(value) if math.isfinite(value) else str(value)
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
