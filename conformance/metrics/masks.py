"""Prompt-mask agreement metrics (numpy only): IoU of each exported mask against the PyTorch mask.

Seed 003's method: the PyTorch mask for a prompt is the reference; the exported model's mask for
the same prompt is scored by IoU; results are reported overall and per mask-size bucket (reference
mask area >= 0.05 of the image vs smaller). A prompt the reference answers but the export does not
counts as IoU 0 and as "missing"; a prompt the reference leaves unanswered is not scored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LARGE_MASK_FRACTION = 0.05  # seed 003's bucket boundary, as a fraction of the image area


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks of one shape; two empty masks agree perfectly (1.0)."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    union = int(np.count_nonzero(a | b))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(a & b)) / union


@dataclass(frozen=True)
class PromptMaskReport:
    """IoU of exported vs reference prompt masks, overall and by reference-mask size."""

    mean_iou: float
    mean_iou_large: float  # reference mask area >= LARGE_MASK_FRACTION of the image
    mean_iou_small: float
    missing_rate: float  # share of scored prompts where the export gave no mask
    extra_rate: float  # share of unscored prompts (no reference mask) where the export gave one
    n_images: int
    n_masks: int  # prompts with a reference mask, i.e. scored
    n_large: int
    n_small: int
    n_missing: int
    n_unanswered: int  # prompts the reference itself left without a mask

    def as_metrics(self) -> dict[str, float]:
        """Flat name -> number mapping for `record_case`."""
        return {
            "mask_iou_mean": self.mean_iou,
            "mask_iou_large": self.mean_iou_large,
            "mask_iou_small": self.mean_iou_small,
            "mask_missing_rate": self.missing_rate,
            "mask_extra_rate": self.extra_rate,
            "n_images": float(self.n_images),
            "n_masks": float(self.n_masks),
            "n_masks_large": float(self.n_large),
            "n_masks_small": float(self.n_small),
            "n_missing": float(self.n_missing),
        }

    def explain(self) -> str:
        """One line with every number, for failure messages."""
        return (
            f"mean IoU {self.mean_iou:.4f} over {self.n_masks} masks in {self.n_images} images "
            f"(large >= {LARGE_MASK_FRACTION:g} of image: {self.mean_iou_large:.4f} "
            f"n={self.n_large}; "
            f"small: {self.mean_iou_small:.4f} n={self.n_small}); missing {self.n_missing} "
            f"({self.missing_rate:.2%}); reference unanswered {self.n_unanswered}, "
            f"export answered {self.extra_rate:.2%} of those"
        )


MaskList = Sequence[np.ndarray | None]


def prompt_mask_report(
    ref_masks: Sequence[MaskList] | MaskList,
    got_masks: Sequence[MaskList] | MaskList,
    image_area: int | Sequence[int] | None = None,
) -> PromptMaskReport:
    """Score exported masks against reference masks, prompt by prompt.

    `ref_masks` / `got_masks` are per image a list with one mask (or None) per prompt; a flat
    list is taken as one image. `image_area` (pixels, one number or one per image) defaults to
    each reference mask's own size.
    """
    ref_images = _as_images(ref_masks)
    got_images = _as_images(got_masks)
    if len(ref_images) != len(got_images):
        raise ValueError(f"{len(ref_images)} reference images vs {len(got_images)} exported")
    areas = _areas(image_area, len(ref_images))

    ious_large: list[float] = []
    ious_small: list[float] = []
    n_missing = n_unanswered = n_extra = 0
    for index, (ref_list, got_list) in enumerate(zip(ref_images, got_images, strict=True)):
        if len(ref_list) != len(got_list):
            raise ValueError(
                f"image {index}: {len(ref_list)} reference prompts vs {len(got_list)} exported"
            )
        for ref, got in zip(ref_list, got_list, strict=True):
            if ref is None:
                n_unanswered += 1
                n_extra += got is not None
                continue
            ref = np.asarray(ref, dtype=bool)
            area = areas[index] if areas[index] is not None else ref.size
            if got is None:
                n_missing += 1
                iou = 0.0  # a lost mask is the worst possible answer, as seed 003 scores it
            else:
                iou = mask_iou(ref, got)
            large = np.count_nonzero(ref) >= LARGE_MASK_FRACTION * area
            (ious_large if large else ious_small).append(iou)

    n_masks = len(ious_large) + len(ious_small)
    return PromptMaskReport(
        mean_iou=_mean(ious_large + ious_small),
        mean_iou_large=_mean(ious_large),
        mean_iou_small=_mean(ious_small),
        missing_rate=n_missing / n_masks if n_masks else math.nan,
        extra_rate=n_extra / n_unanswered if n_unanswered else math.nan,
        n_images=len(ref_images),
        n_masks=n_masks,
        n_large=len(ious_large),
        n_small=len(ious_small),
        n_missing=n_missing,
        n_unanswered=n_unanswered,
    )


def _as_images(masks: Sequence[MaskList] | MaskList) -> list[list[np.ndarray | None]]:
    # A flat list of masks / Nones is one image; a list of lists is many.
    items = list(masks)
    if all(item is None or isinstance(item, np.ndarray) for item in items):
        return [items]
    return [list(per_image) for per_image in items]


def _areas(image_area: int | Sequence[int] | None, n_images: int) -> list[int | None]:
    if image_area is None:
        return [None] * n_images
    if isinstance(image_area, int | np.integer):
        return [int(image_area)] * n_images
    areas = [int(a) for a in image_area]
    if len(areas) != n_images:
        raise ValueError(f"{len(areas)} image areas for {n_images} images")
    return areas


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan
