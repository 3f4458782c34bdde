"""Property tests (hypothesis) of metrics and pre/post-processing: what must hold for any input."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conformance.metrics.parity import compare_output, cosine_similarity, snr_db
from models.runtimes.tflite import dequantize, quantize
from models.sliding_window import sliding_window_logits, window_origins

seg = pytest.importorskip("conformance.metrics.segmentation")

FAST = settings(max_examples=60, deadline=None)
finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32)


@st.composite
def label_maps(draw, max_classes: int = 8):
    """(label, num_classes): a small class map with some ignore (255) pixels."""
    num_classes = draw(st.integers(2, max_classes))
    shape = draw(st.tuples(st.integers(1, 12), st.integers(1, 12)))
    label = draw(arrays(np.uint8, shape, elements=st.integers(0, num_classes - 1)))
    ignore = draw(arrays(np.bool_, shape))
    return np.where(ignore, np.uint8(255), label), num_classes


# --- segmentation metrics ----------------------------------------------------------------


@FAST
@given(label_maps())
def test_prediction_equal_to_label_scores_one(data) -> None:
    label, num_classes = data
    assume((label != 255).any())
    pred = np.where(label == 255, 0, label)
    conf = seg.confusion_matrix(pred, label, num_classes)
    assert seg.miou(conf) == 1.0
    present = np.isin(np.arange(num_classes), label[label != 255])
    iou = seg.per_class_iou(conf)
    assert np.all(iou[present] == 1.0) and np.all(np.isnan(iou[~present]))


@FAST
@given(label_maps(), st.data())
def test_ignore_label_never_counts(data, draw) -> None:
    label, num_classes = data
    pred = draw.draw(arrays(np.uint8, label.shape, elements=st.integers(0, num_classes - 1)))
    other = pred.copy()
    other[label == 255] = (other[label == 255] + 1) % num_classes
    assert np.array_equal(seg.confusion_matrix(pred, label, num_classes),
                          seg.confusion_matrix(other, label, num_classes))
    assert seg.confusion_matrix(pred, label, num_classes).sum() == int((label != 255).sum())


@FAST
@given(label_maps(), st.data())
def test_miou_bounded_and_invariant_to_class_permutation(data, draw) -> None:
    label, num_classes = data
    pred = draw.draw(arrays(np.uint8, label.shape, elements=st.integers(0, num_classes - 1)))
    perm = np.array(draw.draw(st.permutations(range(num_classes))), dtype=np.uint8)
    conf = seg.confusion_matrix(pred, label, num_classes)
    relabel = np.where(label == 255, np.uint8(255), perm[np.minimum(label, num_classes - 1)])
    permuted = seg.confusion_matrix(perm[pred], relabel, num_classes)
    value = seg.miou(conf)
    if (label != 255).any():
        assert 0.0 <= value <= 1.0
        assert math.isclose(value, seg.miou(permuted), abs_tol=1e-12)
        iou, moved = seg.per_class_iou(conf), seg.per_class_iou(permuted)
        assert np.allclose(moved[perm], iou, equal_nan=True)
    else:
        assert math.isnan(value)


@FAST
@given(label_maps())
def test_agreement_with_itself_is_one(data) -> None:
    label, num_classes = data
    pred = np.where(label == 255, 0, label)
    assert seg.agreement_miou(pred, pred, num_classes) == 1.0


# --- parity metrics --------------------------------------------------------------------------


@FAST
@given(arrays(np.float32, st.integers(1, 64), elements=finite))
def test_identical_tensors_have_perfect_parity(x) -> None:
    assert snr_db(x, x.copy()) == math.inf
    assert math.isclose(cosine_similarity(x, x.copy()), 1.0, abs_tol=1e-9)
    report = compare_output("y", x[None, :, None], x[None, :, None].copy(), class_axis=1)
    assert report.max_abs_err == 0.0 and report.decisions["argmax_agreement"] == 1.0


@FAST
@given(arrays(np.float32, st.integers(1, 64), elements=finite),
       st.floats(1e-3, 1e3) | st.floats(-1e3, -1e-3))
def test_cosine_is_scale_invariant(x, scale) -> None:
    assume(np.linalg.norm(x.astype(np.float64)) > 1e-3)
    scaled = (x.astype(np.float64) * scale)
    assert math.isclose(cosine_similarity(x, scaled), math.copysign(1.0, scale), abs_tol=1e-9)


@FAST
@given(arrays(np.float64, st.integers(1, 64), elements=finite),
       arrays(np.float64, st.integers(1, 64), elements=finite))
def test_doubling_the_error_costs_six_db(x, noise) -> None:
    noise = np.resize(noise, x.shape)
    assume(np.sum(x * x) > 1e-6 and np.sum(noise * noise) > 1e-6)
    one, two = snr_db(x, x + noise), snr_db(x, x + 2 * noise)
    assert math.isclose(one - two, 20 * math.log10(2), abs_tol=1e-6)


# --- quantisation ------------------------------------------------------------------------------


@FAST
@given(st.sampled_from([np.int8, np.uint8]), st.floats(1e-4, 1.0), st.data())
def test_quantise_round_trip_within_half_a_step(dtype, scale, data) -> None:
    info = np.iinfo(dtype)
    zero = data.draw(st.integers(info.min, info.max))
    low, high = scale * (info.min - zero), scale * (info.max - zero)
    x = np.array(data.draw(st.lists(st.floats(low, high), min_size=1, max_size=32)),
                 dtype=np.float32)
    back = dequantize(quantize(x, scale, zero, dtype), scale, zero)
    assert np.all(np.abs(back - x) <= scale * 0.5 * (1 + 1e-3) + 1e-6)


@FAST
@given(st.sampled_from([np.int8, np.uint8]), st.floats(1e-3, 1.0))
def test_quantise_saturates(dtype, scale) -> None:
    info = np.iinfo(dtype)
    q = quantize(np.array([-1e9, 1e9], np.float32), scale, 0, dtype)
    assert q.tolist() == [info.min, info.max]


# --- sliding windows ---------------------------------------------------------------------------


@FAST
@given(st.integers(1, 3000), st.integers(8, 640), st.data())
def test_window_origins_cover_every_pixel(length, window, data) -> None:
    stride = data.draw(st.integers(1, window))
    origins, _ = window_origins(length, length, window, stride)
    assert origins == sorted(set(origins)) and origins[0] == 0
    if length <= window:
        assert origins == [0]
        return
    assert origins[-1] == length - window  # the last window ends at the border
    assert all(b - a <= stride for a, b in pairwise(origins))
    covered = np.zeros(length, bool)
    for origin in origins:
        covered[origin : origin + window] = True
    assert covered.all()


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 160), st.integers(1, 160), st.integers(16, 64), st.data())
def test_sliding_window_logits_put_every_window_back_in_place(h, w, window, data) -> None:
    """Logits that encode their own pixel position come back exactly where they were taken."""
    stride = data.draw(st.integers(window // 2, window))
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack([rows + 1, cols + 1, np.ones_like(rows)])[None]
    calls = []

    def run_fn(crop: np.ndarray) -> np.ndarray:
        calls.append((int(crop[0, 0, 0, 0]) - 1, int(crop[0, 1, 0, 0]) - 1))
        return crop.copy()

    out = sliding_window_logits(run_fn, image, 3, window, stride)
    tops, lefts = window_origins(max(h, window), max(w, window), window, stride)
    assert sorted(calls) == sorted((t, left) for t in tops for left in lefts)
    assert out.shape == image.shape and np.allclose(out, image, rtol=1e-6)


# --- letterbox and its inverse -----------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.integers(8, 300), st.integers(8, 300), st.sampled_from([64, 96, 160]))
def test_letterbox_content_maps_back_to_the_whole_image(h, w, size) -> None:
    """FastSAM's letterbox and ultralytics' scale_boxes are inverses on the content box."""
    fastsam = pytest.importorskip("models.fastsam")
    from ultralytics.utils import ops

    boxed = fastsam.letterbox(np.full((h, w, 3), 200, np.uint8), size)
    assert boxed.shape == (1, 3, size, size)
    content = np.argwhere(np.abs(boxed[0, 0] - 200 / 255) < 1e-6)
    (y0, x0), (y1, x1) = content.min(0), content.max(0) + 1
    assert np.allclose(boxed[0, 0][boxed[0, 0] != boxed[0, 0, y0, x0]], 114 / 255)
    box = ops.scale_boxes((size, size), np.array([[x0, y0, x1, y1]], np.float64), (h, w))
    step = max(h, w) / size  # one letterboxed pixel in original pixels
    assert np.allclose(box[0], [0, 0, w, h], atol=step + 1e-6), (box, (h, w, size))
