"""Every metric the suites emit, declared once: which way is better, unit, emitting suites.

Budget keys (`min_<metric>` / `max_<metric>` in budgets.toml and `--budget`), the `[baseline]`
gate and the report's tables all read this table; tests/test_metric_catalog.py fails on a
name used anywhere that is not declared here. Pure Python: it loads on a device host.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

SUITES: tuple[str, ...] = ("parity", "accuracy", "prompt_masks", "latency", "edgetpu")
_BOTH = ("parity", "accuracy")


@dataclass(frozen=True)
class Metric:
    """One metric: `better` is "higher", "lower", or None for counts that describe the run.

    `informational` metrics describe the reference or the run, not the export: they are
    reported, and may carry a budget, but the baseline gate does not compare them.
    """

    better: Literal["higher", "lower"] | None
    unit: str
    suites: tuple[str, ...]
    informational: bool = False

    @property
    def budget_prefix(self) -> str | None:
        """'min_' for higher-is-better, 'max_' for lower-is-better, None if no budget fits."""
        return {"higher": "min_", "lower": "max_"}.get(self.better or "")

    def worsening(self, before: float, now: float) -> float:
        """How much worse `now` is than `before`, in the metric's unit (<= 0: not worse)."""
        if before == now:  # also inf == inf, where the difference would be NaN
            return 0.0
        if math.isnan(now) and not math.isnan(before):
            return math.inf  # a figure that became NaN is the worst regression
        return before - now if self.better == "higher" else now - before


def _m(better: Literal["higher", "lower"] | None, unit: str, suites: tuple[str, ...],
       informational: bool = False) -> Metric:
    return Metric(better, unit, suites, informational)


METRICS: dict[str, Metric] = {
    # parity: worst value over outputs and images (conformance/metrics/parity.py)
    "max_abs_err": _m("lower", "output units", ("parity",)),
    "mean_abs_err": _m("lower", "output units", ("parity",)),
    "max_rel_err": _m("lower", "fraction of max |PyTorch output|", ("parity",)),
    "cosine": _m("higher", "", ("parity",)),
    "snr_db": _m("higher", "dB", ("parity",)),
    "argmax_agreement": _m("higher", "fraction", ("parity",)),
    # decisions of the export against PyTorch's argmax map (parity and accuracy)
    "agreement_miou": _m("higher", "fraction", _BOTH),
    "pixel_agreement": _m("higher", "fraction", _BOTH),
    "tie_exempt_fraction": _m("lower", "fraction", _BOTH),
    "reference_top_class_share": _m("lower", "fraction", _BOTH, informational=True),
    "reference_classes": _m(None, "classes", _BOTH, informational=True),
    # accuracy against ground truth (conformance/test_accuracy.py)
    "miou": _m("higher", "fraction", ("accuracy",)),
    "reference_miou": _m("higher", "fraction", ("accuracy",), informational=True),
    "miou_drop": _m("lower", "mIoU points", ("accuracy",)),
    "miou_ratio": _m("higher", "ratio", ("accuracy",)),
    # prompt masks (conformance/metrics/masks.py)
    "mask_iou_mean": _m("higher", "fraction", ("prompt_masks",)),
    "mask_iou_large": _m("higher", "fraction", ("prompt_masks",)),
    "mask_iou_small": _m("higher", "fraction", ("prompt_masks",)),
    "mask_missing_rate": _m("lower", "fraction", ("prompt_masks",)),
    "mask_extra_rate": _m("lower", "fraction", ("prompt_masks",)),
    "n_missing": _m("lower", "masks", ("prompt_masks",)),
    "n_images": _m(None, "images", ("prompt_masks",), informational=True),
    "n_masks": _m(None, "masks", ("prompt_masks",), informational=True),
    "n_masks_large": _m(None, "masks", ("prompt_masks",), informational=True),
    "n_masks_small": _m(None, "masks", ("prompt_masks",), informational=True),
    # latency (conformance/test_latency.py)
    "p50_ms": _m("lower", "ms", ("latency",)),
    "p90_ms": _m("lower", "ms", ("latency",)),
    "mean_ms": _m("lower", "ms", ("latency",)),
    "speedup_vs_eager": _m("higher", "x", ("latency",)),
    # A quantised TFLite file against its own fp32 upstream, timed alternately: shown, the
    # int8 speed-up depends on the CPU's int8 instructions (README), so it is not budgeted.
    "speedup_vs_fp32": _m("higher", "x", ("latency",), informational=True),
    "p90_over_p50": _m("lower", "ratio", ("latency",)),
    # Edge TPU structure (conformance/test_edgetpu.py)
    "rules_violated": _m("lower", "rules", ("edgetpu",)),
    "violations": _m("lower", "findings", ("edgetpu",)),
    "unsupported_ops": _m("lower", "ops", ("edgetpu",)),
    "tpu_op_fraction": _m("higher", "fraction", ("edgetpu",)),
    "parameter_bytes": _m("lower", "bytes", ("edgetpu",)),
    "parameter_fraction_of_sram": _m("lower", "fraction of 8 MiB", ("edgetpu",),
                                     informational=True),
    "total_ops": _m(None, "ops", ("edgetpu",), informational=True),
}


def suite_metrics(suite: str) -> list[str]:
    """Names of the metrics `suite` emits, sorted."""
    return sorted(name for name, metric in METRICS.items() if suite in metric.suites)


def budget_key(metric: str) -> str:
    """The budget key of a declared metric: 'min_snr_db', 'max_p50_ms'."""
    prefix = METRICS[metric].budget_prefix
    if prefix is None:
        raise KeyError(f"{metric} takes no budget (a count, neither higher nor lower is better)")
    return prefix + metric


def budget_key_problem(key: str, suite: str | None = None) -> str | None:
    """Why `key` is not a valid budget (of `suite`, if given); None when it is."""
    prefix, _, metric = key.partition("_")
    if prefix not in ("min", "max") or not metric:
        return f"budget keys start with min_ or max_ (min_<metric>, max_<metric>), not {key!r}"
    known = suite_metrics(suite) if suite else sorted(METRICS)
    if metric not in known:
        where = f" for suite {suite}" if suite else ""
        return f"unknown metric {metric!r}{where}; known: {', '.join(known)}"
    wanted = METRICS[metric].budget_prefix
    if wanted is None:
        return f"{metric} is a count (neither higher nor lower is better): it takes no budget"
    if f"{prefix}_" != wanted:
        return (f"{metric} is {METRICS[metric].better}-is-better: its budget is "
                f"{wanted}{metric}, not {key}")
    return None
