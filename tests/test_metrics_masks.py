"""Properties of the prompt-mask metrics (conformance/metrics_masks.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conformance.metrics.masks import LARGE_MASK_FRACTION, mask_iou, prompt_mask_report

masks_8x8 = arrays(dtype=bool, shape=(8, 8))


@given(masks_8x8)
def test_identical_masks_have_iou_one(mask: np.ndarray) -> None:
    assert mask_iou(mask, mask.copy()) == 1.0


@given(masks_8x8, masks_8x8)
def test_iou_is_symmetric_and_bounded(a: np.ndarray, b: np.ndarray) -> None:
    iou = mask_iou(a, b)
    assert 0.0 <= iou <= 1.0
    assert iou == mask_iou(b, a)


@given(masks_8x8)
def test_disjoint_masks_have_iou_zero(mask: np.ndarray) -> None:
    if not mask.any() or mask.all():
        return  # complement of empty/full is full/empty: not two non-empty disjoint masks
    assert mask_iou(mask, ~mask) == 0.0


def test_iou_of_half_overlap() -> None:
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:, :2] = True
    b[:, 1:3] = True
    assert mask_iou(a, b) == pytest.approx(4 / 12)


def test_iou_rejects_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        mask_iou(np.zeros((2, 2), bool), np.zeros((2, 3), bool))


def _square(size: int, side: int) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[:side, :side] = True
    return mask


def test_bucket_split_follows_reference_area() -> None:
    size = 100
    large = _square(size, 23)  # 529 px >= 0.05 * 10000 = 500
    small = _square(size, 22)  # 484 px < 500
    assert large.sum() >= LARGE_MASK_FRACTION * size * size > small.sum()
    shifted = np.roll(small, 11, axis=1)  # overlaps `small` by half its width
    report = prompt_mask_report([large, small], [large, shifted], image_area=size * size)
    assert (report.n_large, report.n_small, report.n_masks) == (1, 1, 2)
    assert report.mean_iou_large == 1.0
    assert report.mean_iou_small == pytest.approx(11 / 33)
    assert report.mean_iou == pytest.approx((1.0 + 11 / 33) / 2)
    assert report.missing_rate == 0.0


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.booleans(), min_size=1, max_size=12),
    st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_missing_masks_count_as_zero(ref_present: list[bool], got_present: list[bool]) -> None:
    mask = _square(10, 5)
    refs = [mask if present else None for present in ref_present]
    gots = [mask if present else None for present in got_present[: len(refs)]]
    report = prompt_mask_report(refs, gots)
    scored = [g for r, g in zip(refs, gots, strict=True) if r is not None]
    assert report.n_masks == len(scored)
    assert report.n_missing == sum(g is None for g in scored)
    assert report.n_unanswered == len(refs) - len(scored)
    if scored:
        assert report.missing_rate == pytest.approx(report.n_missing / len(scored))
        # Identical masks score 1, missing ones 0: the mean is the share that came back.
        assert report.mean_iou == pytest.approx(1 - report.missing_rate)
    else:
        assert math.isnan(report.mean_iou) and math.isnan(report.missing_rate)


def test_many_images_and_per_image_areas() -> None:
    a = _square(10, 3)  # 9 px: large in a 100-px image (>= 5), small in a 400-px one (< 20)
    report = prompt_mask_report([[a], [a, None]], [[a], [None, a]], image_area=[100, 400])
    assert report.n_images == 2
    assert (report.n_large, report.n_small, report.n_missing) == (1, 1, 1)
    assert report.extra_rate == 1.0
    assert report.mean_iou_large == 1.0 and report.mean_iou_small == 0.0
    assert "missing 1" in report.explain()
    assert report.as_metrics()["n_masks"] == 2.0


def test_prompt_count_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="prompts"):
        prompt_mask_report([[None, None]], [[None]])
