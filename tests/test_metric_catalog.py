"""One declaration per metric: budgets, [baseline], profiles, the report and the suites agree.

Every name used in conformance/budgets.toml, conformance/profiles.toml, the report's tables and
the suites' metric dicts must be declared in conformance/metric_catalog.py, emitted by the suite
it is used with, and budgeted in its good direction.
"""

from __future__ import annotations

import ast
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

from conformance import report_html
from conformance.budgets import load_budgets, table_problems
from conformance.metric_catalog import (
    METRICS,
    SUITES,
    budget_key,
    budget_key_problem,
    suite_metrics,
)
from conformance.profiles import PROFILES_FILE

ROOT = Path(__file__).resolve().parents[1]

# Names the lead introduces in this change; each must be declared with these properties.
NEW_METRICS = {
    "agreement_miou": ("higher", {"parity", "accuracy"}),
    "pixel_agreement": ("higher", {"parity", "accuracy"}),
    "tie_exempt_fraction": ("lower", {"parity", "accuracy"}),
    "reference_top_class_share": ("lower", {"parity", "accuracy"}),
    "parameter_bytes": ("lower", {"edgetpu"}),
}


def test_budgets_toml_names_only_declared_metrics_in_their_direction() -> None:
    assert table_problems(load_budgets()) == []


def test_profiles_toml_names_only_declared_metrics_and_known_formats() -> None:
    from conformance.budgets import known_formats
    from models.formats import FORMATS

    table = tomllib.loads(PROFILES_FILE.read_text())
    problems = []
    for profile, row in table.items():
        listed = row.get("formats", [])
        if listed == "all":
            continue
        problems += [f"{profile}: unknown format {fmt}" for fmt in listed
                     if fmt not in known_formats()]
        problems += [f"{profile}: {fmt} has no {row['device']} runner" for fmt in listed
                     if fmt in FORMATS and row["device"] not in FORMATS[fmt].devices]
        problems += [f"{profile}.{key}: {budget_key_problem(key)}" for key in row
                     if key.startswith(("min_", "max_")) and budget_key_problem(key)]
    assert problems == []


def test_the_check_refuses_undeclared_names_and_wrong_directions() -> None:
    table = {
        "latency": {"onnx": {"min_p50_ms": 10.0, "pi5": {"max_p50_ms": 5.0}}},
        "parity": {"onnx": {"max_snr_db": 60.0, "min_snr_dbb": 60.0},
                   "onnxx": {"min_snr_db": 1.0},
                   # Precision-class tables: checked like a format's, unknown classes refused.
                   "int8": {"min_argmax_agreement": 0.9, "prompt_masks": {"min_cosine": 0.98}},
                   "float32": {"max_cosine": 1.0},
                   "float8": {"min_snr_db": 1.0}},
        "edgetpu": {"edgetpu": {"max_total_ops": 3.0}},
        "paritty": {},
        "baseline": {"mean_iou": 0.02, "miou": 0.005, "default": 0.0, "reference_miou": 0.1,
                     "cosine": -1.0},
        "known_failure": [{"suite": "acuracy", "model": "x", "reason": "r"}],
    }
    problems = "\n".join(table_problems(table, "t.toml"))
    for needle in (
        "t.toml latency.onnx.min_p50_ms: p50_ms is lower-is-better: its budget is max_p50_ms",
        "t.toml parity.onnx.max_snr_db: snr_db is higher-is-better: its budget is min_snr_db",
        "t.toml parity.onnx.min_snr_dbb: unknown metric 'snr_dbb' for suite parity",
        "t.toml parity.onnxx.min_snr_db: unknown format or precision class 'onnxx'",
        "t.toml parity.float32.max_cosine: cosine is higher-is-better",
        "t.toml parity.float8.min_snr_db: unknown format or precision class 'float8'",
        "t.toml edgetpu.edgetpu.max_total_ops: total_ops is a count",
        "t.toml [paritty]: unknown suite",
        "t.toml [baseline] mean_iou: unknown metric",
        "t.toml [baseline] reference_miou: informational metric",
        "t.toml [baseline] cosine: allowed drop must be a number >= 0",
        "t.toml [[known_failure]] x: unknown suite 'acuracy'",
    ):
        assert needle in problems, f"{needle!r} not in\n{problems}"
    assert len(problems.splitlines()) == 12, problems


def test_the_metrics_introduced_now_are_declared() -> None:
    for name, (better, suites) in NEW_METRICS.items():
        assert METRICS[name].better == better, name
        assert set(METRICS[name].suites) == suites, name
    assert METRICS["reference_top_class_share"].informational


def test_every_declared_metric_belongs_to_known_suites() -> None:
    for name, metric in METRICS.items():
        assert metric.suites and set(metric.suites) <= set(SUITES), name
        assert metric.better in ("higher", "lower", None), name
        assert metric.better is not None or metric.informational, f"{name}: a count that gates"


def test_report_key_metrics_are_declared_and_emitted_by_their_suite() -> None:
    for suite, names in report_html.KEY_METRICS.items():
        assert suite in SUITES, suite
        for name in names:
            assert name in suite_metrics(suite), f"KEY_METRICS[{suite!r}]: {name}"


def test_report_plot_metrics_are_declared_latency_metrics() -> None:
    for name in (report_html.LATENCY_METRIC, report_html.LATENCY_SPREAD_METRIC,
                 report_html.SPEEDUP_METRIC):
        assert name in suite_metrics("latency"), name
        budget_key(name)  # each takes a budget, so the plot can draw its line


def test_the_latency_plot_reads_the_budget_key_budgets_toml_uses() -> None:
    key = budget_key(report_html.LATENCY_METRIC)
    assert key == "max_p50_ms"
    latency = load_budgets()["latency"]
    profile_tables = [v for section in latency.values() for v in section.values()
                      if isinstance(v, dict)]
    assert profile_tables and all(key in t for t in profile_tables), profile_tables


def test_parity_and_prompt_mask_reports_emit_declared_metrics() -> None:
    from conformance.metrics.masks import prompt_mask_report
    from conformance.metrics.parity import compare_output, worst

    ref = np.random.default_rng(0).normal(size=(1, 3, 4, 4)).astype(np.float32)
    parity = worst([compare_output("logits", ref, ref + 0.01, class_axis=1)])
    assert set(parity) <= set(suite_metrics("parity")), sorted(set(parity) - set(METRICS))
    mask = np.zeros((8, 8), bool)
    mask[2:5, 2:5] = True
    masks = prompt_mask_report([[mask, None]], [[mask, mask]], image_area=64).as_metrics()
    assert set(masks) <= set(suite_metrics("prompt_masks")), sorted(set(masks) - set(METRICS))


def _literal_names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """String keys of dicts given as metrics/budgets (keyword or `metrics = {...}`), and
    keys assigned as metrics["name"] = ..."""
    metrics, budgets = set(), set()
    for node in ast.walk(tree):
        pairs = []
        if isinstance(node, ast.keyword) and node.arg in ("metrics", "budgets"):
            pairs.append((node.arg, node.value))
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == "metrics":
                    pairs.append(("metrics", node.value))
                elif (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
                      and target.value.id == "metrics"
                      and isinstance(target.slice, ast.Constant)):
                    metrics.add(target.slice.value)
        for kind, value in pairs:
            if isinstance(value, ast.Dict):
                keys = {k.value for k in value.keys if isinstance(k, ast.Constant)}
                (metrics if kind == "metrics" else budgets).update(keys)
    return metrics, budgets


@pytest.mark.parametrize("path", sorted((ROOT / "conformance").glob("test_*.py")),
                         ids=lambda p: p.name)
def test_suite_metric_literals_are_declared(path: Path) -> None:
    tree = ast.parse(path.read_text())
    suite = next((node.value.value for node in ast.walk(tree)
                  if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                  and any(isinstance(t, ast.Name) and t.id == "SUITE" for t in node.targets)),
                 None)
    assert suite in SUITES, f"{path.name}: SUITE {suite!r}"
    metrics, budgets = _literal_names(tree)
    assert metrics <= set(suite_metrics(suite)), sorted(metrics - set(suite_metrics(suite)))
    assert [f"{k}: {budget_key_problem(k, suite)}" for k in budgets
            if budget_key_problem(k, suite)] == []


def test_worsening_follows_the_metric_direction() -> None:
    assert METRICS["argmax_agreement"].worsening(0.99, 0.97) == pytest.approx(0.02)
    assert METRICS["p50_ms"].worsening(10.0, 12.5) == pytest.approx(2.5)
    assert METRICS["p50_ms"].worsening(10.0, 8.0) < 0
    assert METRICS["snr_db"].worsening(math.inf, math.inf) == 0.0
    assert METRICS["snr_db"].worsening(math.inf, 90.0) == math.inf
    assert METRICS["miou"].worsening(0.5, math.nan) == math.inf
