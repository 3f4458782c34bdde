"""Is PyTorch's own prediction worth judging an export against? (numpy only)

An export can only be shown to keep a model's decisions if the model makes some: a reference
that predicts one class nearly everywhere, or whose top-2 logits are tied within float noise,
lets a constant or random export score high agreement.
"""

from __future__ import annotations

import numpy as np

MAX_TOP_CLASS_SHARE = 0.95
MIN_CLASSES = 2
# Degenerate when most pixels are float-noise ties; too flat to judge above 0.1% of them.
MAX_NOISE_TIE_SHARE = 0.5
MAX_TIE_EXEMPT_FRACTION = 1e-3


def reference_figures(class_maps: list[np.ndarray]) -> dict[str, float]:
    """Share of the most frequent class and number of classes in PyTorch's class maps."""
    counts = np.bincount(np.concatenate([np.ravel(m) for m in class_maps]).astype(np.int64))
    return {"reference_top_class_share": float(counts.max() / counts.sum()),
            "reference_classes": float(np.count_nonzero(counts))}


def reference_problems(class_maps: list[np.ndarray],
                       tie_exempt_fraction: float | None = None) -> str | None:
    """Why the reference cannot judge an export (one line), or None when it can."""
    figures = reference_figures(class_maps)
    share, classes = figures["reference_top_class_share"], int(figures["reference_classes"])
    found = []
    if share > MAX_TOP_CLASS_SHARE:
        found.append(f"one class covers {share:.2%} of PyTorch's pixels "
                     f"(limit {MAX_TOP_CLASS_SHARE:.0%})")
    if classes < MIN_CLASSES:
        found.append(f"PyTorch predicts {classes} class(es) (at least {MIN_CLASSES} needed)")
    if tie_exempt_fraction is not None and tie_exempt_fraction > MAX_NOISE_TIE_SHARE:
        found.append(f"PyTorch's top-2 logits are tied within float noise on "
                     f"{tie_exempt_fraction:.2%} of pixels")
    if found:
        return "degenerate reference: " + "; ".join(found)
    if tie_exempt_fraction is not None and tie_exempt_fraction > MAX_TIE_EXEMPT_FRACTION:
        return (f"reference too flat to judge: {tie_exempt_fraction:.3%} of pixels are ties "
                f"within float noise (limit {MAX_TIE_EXEMPT_FRACTION:.1%})")
    return None
