"""Numerical parity of one output tensor against the PyTorch reference (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ParityReport:
    """Error figures of `got` against `ref` for one output."""

    output: str
    max_abs_err: float
    mean_abs_err: float
    max_rel_err: float
    cosine: float
    snr_db: float
    argmax_agreement: float | None = None

    def as_metrics(self) -> dict[str, float]:
        """Flat dict; argmax agreement only where it applies."""
        metrics = {"max_abs_err": self.max_abs_err, "mean_abs_err": self.mean_abs_err,
                   "max_rel_err": self.max_rel_err, "cosine": self.cosine, "snr_db": self.snr_db}
        if self.argmax_agreement is not None:
            metrics["argmax_agreement"] = self.argmax_agreement
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
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))


# Two classes whose PyTorch logits differ by less than this fraction of the logits' scale are
# a tie within float32 noise: which one wins is not a property of the export.
TIE_MARGIN = 1e-5


def tie_mask(ref: np.ndarray, axis: int = 1, margin: float = TIE_MARGIN) -> np.ndarray:
    """Positions where PyTorch's top-2 classes are within `margin` x max|ref| of each other."""
    if ref.shape[axis] < 2:
        return np.zeros(np.delete(ref.shape, axis), dtype=bool)
    top2 = np.partition(ref, -2, axis=axis).take([-2, -1], axis=axis)
    gap = np.abs(np.diff(top2, axis=axis)).squeeze(axis)
    return gap <= margin * (float(np.max(np.abs(ref))) or 1.0)


def argmax_agreement(ref: np.ndarray, got: np.ndarray, axis: int = 1) -> float:
    """Fraction of positions whose argmax over `axis` (classes) is the same; PyTorch ties
    (top-2 within float noise, `tie_mask`) count as agreeing."""
    same = np.argmax(ref, axis=axis) == np.argmax(got, axis=axis)
    return float(np.mean(same | tie_mask(ref, axis)))


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
        argmax_agreement=None if class_axis is None else argmax_agreement(ref, got, class_axis),
    )


def worst(reports: list[ParityReport]) -> dict[str, float]:
    """Worst value of each figure over several outputs or images."""
    merged: dict[str, float] = {}
    for report in reports:
        for key, value in report.as_metrics().items():
            if key not in merged:
                merged[key] = value
            elif key.startswith(("max_", "mean_")):
                merged[key] = max(merged[key], value)
            else:
                merged[key] = min(merged[key], value)
    return merged
