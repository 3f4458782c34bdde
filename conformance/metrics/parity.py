"""Numerical parity of one output tensor against the PyTorch reference (numpy only)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from conformance.metrics.segmentation import agreement_miou


@dataclass(frozen=True)
class ParityReport:
    """Error figures of `got` against `ref` for one output."""

    output: str
    max_abs_err: float
    mean_abs_err: float
    max_rel_err: float
    cosine: float
    snr_db: float
    decisions: dict[str, float] | None = None  # class_decision_metrics, for class logits

    def as_metrics(self) -> dict[str, float]:
        """Flat dict; decision figures only where the output has a class axis."""
        metrics = {"max_abs_err": self.max_abs_err, "mean_abs_err": self.mean_abs_err,
                   "max_rel_err": self.max_rel_err, "cosine": self.cosine, "snr_db": self.snr_db}
        metrics.update(self.decisions or {})
        return metrics


def snr_db(ref: np.ndarray, got: np.ndarray) -> float:
    """Signal-to-noise ratio of `got` vs `ref` in dB (inf when identical)."""
    ref64, err = ref.astype(np.float64), got.astype(np.float64) - ref.astype(np.float64)
    noise = float(np.sum(err * err))
    signal = float(np.sum(ref64 * ref64))
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return 10.0 * np.log10(signal / noise)


def cosine_similarity(ref: np.ndarray, got: np.ndarray) -> float:
    """Cosine of the flattened tensors (1.0 for two all-zero tensors)."""
    a, b = ref.astype(np.float64).ravel(), got.astype(np.float64).ravel()
    # np.sum, not np.dot / np.linalg.norm: those go to multi-threaded BLAS, whose partial sums
    # follow its thread count, so the last digits changed with the process that ran them.
    na, nb = math.sqrt(float(np.sum(a * a))), math.sqrt(float(np.sum(b * b)))
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.sum(a * b)) / (na * nb)


# Two classes whose PyTorch logits differ by less than this fraction of that pixel's own
# largest |logit| are a tie within float32 noise: which one wins is not a property of the
# export. Relative to the pixel, not to the whole output, so one outlier logit elsewhere
# cannot exempt anything here.
TIE_MARGIN = 1e-5


def tie_mask(ref: np.ndarray, axis: int = 1, margin: float = TIE_MARGIN) -> np.ndarray:
    """Positions where PyTorch's top-2 classes are within `margin` x that position's max|logit|."""
    if ref.shape[axis] < 2:
        return np.zeros(np.delete(ref.shape, axis), dtype=bool)
    ref64 = ref.astype(np.float64)
    top2 = np.partition(ref64, -2, axis=axis).take([-2, -1], axis=axis)
    gap = np.abs(np.diff(top2, axis=axis)).squeeze(axis)
    scale = np.max(np.abs(ref64), axis=axis)
    # A pixel whose logits are all zero (a dead reference) is a tie, not an agreement.
    return gap <= margin * scale + np.where(scale == 0, np.inf, 0.0)


def argmax_agreement(ref: np.ndarray, got: np.ndarray, axis: int = 1) -> float:
    """Fraction of positions whose argmax over `axis` (classes) is the same; PyTorch ties
    (top-2 within float noise, `tie_mask`) count as agreeing."""
    same = np.argmax(ref, axis=axis) == np.argmax(got, axis=axis)
    return float(np.mean(same | tie_mask(ref, axis)))


def class_decision_metrics(ref: np.ndarray, got: np.ndarray, axis: int = 1) -> dict[str, float]:
    """Decision figures of one class-logit output: agreement, agreement mIoU, tie share."""
    ties = tie_mask(ref, axis)
    ref_map, got_map = np.argmax(ref, axis=axis), np.argmax(got, axis=axis)
    return {
        "argmax_agreement": float(np.mean((ref_map == got_map) | ties)),
        "agreement_miou": agreement_miou(ref_map, got_map, ref.shape[axis]),
        "tie_exempt_fraction": float(np.mean(ties)),
    }


def compare_output(name: str, ref: np.ndarray, got: np.ndarray,
                   class_axis: int | None = None) -> ParityReport:
    """All parity figures for one output; shapes must match."""
    if ref.shape != got.shape:
        raise ValueError(f"output {name!r}: shape {got.shape} differs from PyTorch {ref.shape}")
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    scale = float(np.max(np.abs(ref))) or 1.0
    return ParityReport(
        output=name,
        max_abs_err=float(diff.max()),
        mean_abs_err=float(diff.mean()),
        max_rel_err=float(diff.max()) / scale,
        cosine=cosine_similarity(ref, got),
        snr_db=snr_db(ref, got),
        decisions=None if class_axis is None else class_decision_metrics(ref, got, class_axis),
    )


# Figures where a larger value is worse; every other figure is worse when smaller.
LOWER_IS_BETTER = frozenset({"max_abs_err", "mean_abs_err", "max_rel_err", "tie_exempt_fraction"})


def worst(reports: list[ParityReport]) -> dict[str, float]:
    """Worst value of each figure over several outputs or images."""
    merged: dict[str, float] = {}
    for report in reports:
        for key, value in report.as_metrics().items():
            if key not in merged:
                merged[key] = value
            elif key in LOWER_IS_BETTER:
                merged[key] = max(merged[key], value)
            else:
                merged[key] = min(merged[key], value)
    return merged


# Pooled over the images' class maps by `parity_figures`, so not a per-image worst: judged on
# the case, never per output.
POOLED = ("agreement_miou",)


def figures_by_output(reports: list[ParityReport]) -> dict[str, dict[str, float]]:
    """The worst figures of each output, by its name, over the images (pooled ones left to
    the case)."""
    names = dict.fromkeys(report.output for report in reports)
    return {name: {k: v for k, v in worst([r for r in reports if r.output == name]).items()
                   if k not in POOLED} for name in names}


def parity_figures(expected: list[dict[str, np.ndarray]], got: list[dict[str, np.ndarray]],
                   class_axis: int | None = None) -> tuple[dict[str, float], list[ParityReport]]:
    """Figures of every output over every image: the worst image for each figure, except
    agreement mIoU, which pools all images' class maps into one confusion matrix (as VOC pools
    a split), so that a class PyTorch predicts on a few boundary pixels of one image does not
    weigh as much as a whole object."""
    reports = [compare_output(name, value, out[name], class_axis)
               for ref, out in zip(expected, got, strict=True) for name, value in ref.items()]
    metrics = worst(reports)
    if class_axis is not None:
        pooled = []
        for name in expected[0]:
            ref_maps = np.concatenate([np.argmax(r[name], class_axis).ravel() for r in expected])
            got_maps = np.concatenate([np.argmax(g[name], class_axis).ravel() for g in got])
            pooled.append(agreement_miou(ref_maps, got_maps, expected[0][name].shape[class_axis]))
        metrics["agreement_miou"] = min(pooled)  # the worst output, each pooled over images
    return metrics, reports


def part_figures(expected: list[dict[str, np.ndarray]], got: list[dict[str, np.ndarray]],
                 parts: dict[str, tuple[int, ...]]) -> dict[str, dict[str, float]]:
    """The worst figures of each part (`NAME[a:b]`: rows a to b-1 of axis 1) of the outputs
    `parts` splits (channels per part): one output's figures can hide a part's loss behind a
    larger part (FastSAM-s's score row behind its box rows in input pixels)."""
    def split(outputs: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        return [{f"{name}[{a}:{a + n}]": out[name][:, a:a + n]
                 for name, counts in parts.items()
                 for a, n in zip(np.cumsum((0, *counts[:-1])), counts, strict=True)}
                for out in outputs]

    _, reports = parity_figures(split(expected), split(got))
    return figures_by_output(reports)
