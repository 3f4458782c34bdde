"""From an image to a class map through any runner (numpy only, shared by every runtime).

DeepLabv3+: resize to the model's input size, logits back to the label size (bilinear).
SemiVL: the paper's inference (short side, sliding windows, averaged logits), outside the
exported graph so every format sees the same crops.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.sliding_window import resize_bilinear, resize_short_side, sliding_window_logits

RunFn = Callable[[np.ndarray], np.ndarray]


def semantic_prediction(run_fn: RunFn, spec, image: np.ndarray,
                        label_size: tuple[int, int]) -> np.ndarray:
    """(H, W) int class map for one HxWx3 uint8 image at `label_size`."""
    window = spec.sliding_window
    if window is not None:
        resized = resize_short_side(image, window.short_side)
        x = spec.preprocess(resized.transpose(2, 0, 1)[None].astype(np.float32) / 255.0)
        name = spec.inputs[0].name
        logits = sliding_window_logits(run_fn, x[name], spec.num_classes,
                                       window.window, window.stride)
        return resize_bilinear(logits, label_size, align_corners=True)[0].argmax(0)
    h, w = spec.input_size
    chw = resize_bilinear(image.transpose(2, 0, 1).astype(np.float32), (h, w)) / 255.0
    x = spec.preprocess(np.clip(chw, 0, 1)[None].astype(np.float32))
    logits = run_fn(x[spec.inputs[0].name])
    return resize_bilinear(logits, label_size, align_corners=False)[0].argmax(0)
