"""Paper inference for SemiVL: short-side resize, window layout, logit averaging (numpy only)."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.sliding_window import (
    paper_prediction,
    resize_bilinear,
    resize_short_side,
    sliding_window_logits,
    window_origins,
)

ROOT = Path(__file__).resolve().parents[1]


def test_module_does_not_import_torch() -> None:
    code = "import sys, models.sliding_window; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


@pytest.mark.parametrize(
    ("h", "w", "tops", "lefts"),
    [
        (512, 683, [0], [0, 171]),  # a 375x500 VOC image after the short-side resize
        (512, 512, [0], [0]),
        (512, 1000, [0], [0, 426, 488]),
        (938, 512, [0, 426], [0]),
        (300, 400, [0], [0]),  # smaller than the window: padded, one window
    ],
)
def test_paper_window_origins(h: int, w: int, tops: list[int], lefts: list[int]) -> None:
    assert window_origins(h, w, window=512, stride=426) == (tops, lefts)


@settings(max_examples=200, deadline=None)
@given(
    length=st.integers(1, 3000),
    window=st.integers(16, 600),
    stride_fraction=st.floats(0.1, 1.0),
)
def test_windows_cover_every_pixel_and_stay_inside(
    length: int, window: int, stride_fraction: float
) -> None:
    stride = max(1, int(window * stride_fraction))
    origins, _ = window_origins(length, 1, window, stride)
    covered = np.zeros(max(length, window), bool)
    for start in origins:
        assert start >= 0 and start + window <= max(length, window)
        covered[start : start + window] = True
    assert covered[:length].all()
    assert origins == sorted(set(origins))
    assert all(b - a <= stride for a, b in itertools.pairwise(origins))
    if length >= window:
        assert origins[-1] == length - window  # last window aligned to the border


def test_constant_logits_average_to_the_constant() -> None:
    logits = np.arange(5, dtype=np.float32)[None, :, None, None]

    def run(crop: np.ndarray) -> np.ndarray:
        assert crop.shape == (1, 3, 64, 64) and crop.dtype == np.float32
        return np.broadcast_to(logits, (1, 5, 64, 64)).copy()

    image = np.random.default_rng(0).normal(size=(1, 3, 100, 150)).astype(np.float32)
    out = sliding_window_logits(run, image, num_classes=5, window=64, stride=53)
    assert out.shape == (1, 5, 100, 150)
    np.testing.assert_allclose(out, np.broadcast_to(logits, out.shape), rtol=0, atol=1e-6)


def test_windows_land_where_they_were_cut() -> None:
    # Logits that copy the crop back: averaging over overlaps must return the image itself.
    image = np.random.default_rng(1).normal(size=(1, 3, 90, 130)).astype(np.float32)
    out = sliding_window_logits(lambda crop: crop.copy(), image, 3, window=48, stride=40)
    np.testing.assert_allclose(out, image, rtol=0, atol=1e-6)


def test_small_images_are_padded_and_cropped_back() -> None:
    seen: list[np.ndarray] = []

    def run(crop: np.ndarray) -> np.ndarray:
        seen.append(crop)
        return crop[:, :1].repeat(2, axis=1)

    image = np.ones((1, 3, 20, 30), np.float32)
    out = sliding_window_logits(run, image, num_classes=2, window=32, stride=27)
    assert out.shape == (1, 2, 20, 30)
    np.testing.assert_array_equal(out, 1.0)
    assert len(seen) == 1 and seen[0][0, 0, 20:].max() == 0 and seen[0][0, 0, :, 30:].max() == 0


def test_wrong_run_fn_output_is_reported() -> None:
    image = np.zeros((1, 3, 32, 32), np.float32)
    with pytest.raises(ValueError, match=r"\(1, 4, 32, 32\)"):
        sliding_window_logits(lambda crop: crop, image, num_classes=4, window=32, stride=27)


def test_resize_short_side_matches_the_paper_sizes() -> None:
    voc = np.zeros((375, 500, 3), np.uint8)
    out = resize_short_side(voc, 512)
    assert out.shape == (512, 683, 3) and out.dtype == np.uint8
    tall = resize_short_side(np.zeros((500, 333, 3), np.float64), 512)
    assert tall.shape == (769, 512, 3) and tall.dtype == np.float32
    flat = resize_short_side(np.full((10, 20, 3), 7, np.uint8), 16)
    np.testing.assert_array_equal(flat, 7)


@pytest.mark.parametrize("align_corners", [False, True])
def test_resize_matches_torch_bilinear(align_corners: bool) -> None:
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).normal(size=(1, 4, 13, 17)).astype(np.float32)
    for size in ((40, 29), (7, 5), (13, 17)):
        expected = torch.nn.functional.interpolate(
            torch.from_numpy(x), size=size, mode="bilinear", align_corners=align_corners
        ).numpy()
        got = resize_bilinear(x, size, align_corners=align_corners)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_paper_prediction_resizes_to_the_label_size() -> None:
    def run(crop: np.ndarray) -> np.ndarray:
        # Class 0 wins where the input is positive (left half), class 1 where it is negative.
        return np.concatenate([crop[:, :1], -crop[:, :1]], axis=1)

    xs = np.linspace(-1, 1, 96, dtype=np.float32)
    image = np.broadcast_to(-xs, (1, 3, 64, 96)).copy()
    pred = paper_prediction(run, image, num_classes=2, label_size=(48, 72), window=64, stride=53)
    assert pred.shape == (48, 72)
    assert (pred[:, :30] == 0).all() and (pred[:, 42:] == 1).all()
