"""SemiVL's paper inference outside the exported graph: resize, sliding windows, averaging.

Numpy only (no torch), so a device without torch crops exactly as the workstation does and
every runtime sees the same windows. Follows `predict(..., 'zegclip_sliding_window')` in
google-research/semivl: short side resized to 512, 512x512 windows at stride 426 with the last
window aligned to the border, raw logits averaged where windows overlap, logits resized to
the label size with align_corners=True, then argmax.

Resizing is our own separable bilinear interpolation in float (the official code resizes the
uint8 image with OpenCV's INTER_LINEAR, i.e. half-pixel centres without antialiasing, which is
what `align_corners=False` computes; OpenCV's fixed-point arithmetic may differ by one grey
level before rounding).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RunFn = Callable[[np.ndarray], np.ndarray]


def _axis_weights(
    n_in: int, n_out: int, align_corners: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices i0, i1 and weight of i1 for each output position along one axis."""
    out = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = out * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros_like(out)
    else:
        src = np.maximum((out + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0).astype(np.float32)


def resize_bilinear(
    array: np.ndarray, size: tuple[int, int], align_corners: bool = False
) -> np.ndarray:
    """Bilinearly resize the last two axes of a float array to `size` (H, W).

    Same arithmetic as torch's F.interpolate(mode="bilinear", antialias=False).
    """
    x = np.asarray(array, dtype=np.float32)
    h_out, w_out = size
    y0, y1, wy = _axis_weights(x.shape[-2], h_out, align_corners)
    x0, x1, wx = _axis_weights(x.shape[-1], w_out, align_corners)
    rows = x[..., y0, :] * (1 - wy)[:, None] + x[..., y1, :] * wy[:, None]
    return rows[..., x0] * (1 - wx) + rows[..., x1] * wx


def resize_short_side(image: np.ndarray, short: int = 512) -> np.ndarray:
    """Resize an (H, W, C) image so that its short side is exactly `short` (aspect kept).

    The long side becomes int(long * short / short_side + 0.5) as in mmcv's imrescale.
    uint8 in → uint8 out (rounded); anything else → float32.
    """
    img = np.asarray(image)
    if img.ndim != 3:
        raise ValueError(f"expected an (H, W, C) image, got shape {img.shape}")
    h, w = img.shape[:2]
    scale = short / min(h, w)
    size = (int(h * scale + 0.5), int(w * scale + 0.5))
    out = np.moveaxis(resize_bilinear(np.moveaxis(img, -1, 0), size), 0, -1)
    if img.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out, dtype=np.float32)


def window_origins(
    h: int, w: int, window: int = 512, stride: int = 426
) -> tuple[list[int], list[int]]:
    """Top and left offsets of the windows along each axis (their product is the window set).

    Windows start every `stride` pixels and the last one is moved back to end at the border,
    so every pixel is covered. An axis shorter than the window gets the single origin 0.
    """

    def along(length: int) -> list[int]:
        count = max(length - window + stride - 1, 0) // stride + 1
        return sorted({max(min(i * stride + window, length) - window, 0) for i in range(count)})

    return along(h), along(w)


def sliding_window_logits(
    run_fn: RunFn, image_nchw: np.ndarray, num_classes: int, window: int = 512, stride: int = 426
) -> np.ndarray:
    """Average raw logits of `run_fn` over sliding windows of a (1, 3, H, W) model input.

    `run_fn` maps a (1, 3, window, window) float32 array to (1, C, window, window) logits.
    An image smaller than the window along an axis is zero-padded at the bottom/right (zero
    in ImageNet-normalised input is the mean colour) and the padded logits are dropped; the
    official code instead runs the model on the smaller crop, which a fixed-size export can't.
    """
    image = np.asarray(image_nchw, dtype=np.float32)
    if image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"expected a (1, C, H, W) input, got shape {image.shape}")
    _, channels, h, w = image.shape
    ph, pw = max(h, window), max(w, window)
    if (ph, pw) != (h, w):
        padded = np.zeros((1, channels, ph, pw), np.float32)
        padded[:, :, :h, :w] = image
        image = padded
    total = np.zeros((1, num_classes, ph, pw), np.float32)
    count = np.zeros((ph, pw), np.float32)
    tops, lefts = window_origins(ph, pw, window, stride)
    for top in tops:
        for left in lefts:
            crop = np.ascontiguousarray(image[:, :, top : top + window, left : left + window])
            logits = np.asarray(run_fn(crop), dtype=np.float32)
            expected = (1, num_classes, window, window)
            if logits.shape != expected:
                raise ValueError(f"run_fn returned shape {logits.shape}, expected {expected}")
            total[:, :, top : top + window, left : left + window] += logits
            count[top : top + window, left : left + window] += 1
    return (total / count)[:, :, :h, :w]


def paper_prediction(
    run_fn: RunFn,
    image_nchw: np.ndarray,
    num_classes: int,
    label_size: tuple[int, int],
    window: int = 512,
    stride: int = 426,
) -> np.ndarray:
    """(H, W) class map of an already resized, normalised (1, 3, h, w) input at `label_size`."""
    logits = sliding_window_logits(run_fn, image_nchw, num_classes, window, stride)
    return resize_bilinear(logits, label_size, align_corners=True)[0].argmax(0)
