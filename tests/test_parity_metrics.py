"""Argmax agreement: real flips count, ties within float noise do not."""

from __future__ import annotations

import numpy as np

from conformance.metrics.parity import argmax_agreement, tie_mask


def test_flips_between_distinct_logits_count_as_disagreement() -> None:
    ref = np.random.default_rng(0).normal(size=(1, 5, 16, 16)).astype(np.float32)
    assert not tie_mask(ref).any()
    assert argmax_agreement(ref, ref) == 1.0
    assert argmax_agreement(ref, -ref) == 0.0


def test_a_tie_within_float_noise_is_not_an_export_error() -> None:
    ref = np.full((1, 3, 4, 4), -1.0, np.float32)
    # PyTorch's own top-2 differ by a few float32 ulps (not exactly equal): a tie in noise.
    ref[0, 0], ref[0, 1] = 2.0, np.float32(2.0) + np.float32(1e-6)
    got = ref.copy()
    got[0, 0] += np.float32(2e-6)  # the export breaks the tie the other way
    assert tie_mask(ref).all()
    assert argmax_agreement(ref, got) == 1.0
    ref2 = ref.copy()
    ref2[0, 1] = 2.5  # class 1 clearly wins in PyTorch; the export says class 0
    assert argmax_agreement(ref2, got) == 0.0
