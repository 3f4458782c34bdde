"""A reference that makes no decisions cannot judge an export: it is refused, with numbers."""

from __future__ import annotations

import numpy as np

from conformance.metrics.reference_health import reference_problems


def _maps(background_share: float, size: int = 100) -> list[np.ndarray]:
    pred = np.zeros((size, size), int)
    objects = round(size * size * (1 - background_share))
    pred.ravel()[:objects] = 1 + np.arange(objects) % 3
    return [pred]


def test_a_reference_with_real_decisions_is_accepted() -> None:
    assert reference_problems(_maps(0.5), tie_exempt_fraction=0.0) is None


def test_one_class_over_95_percent_is_degenerate() -> None:
    problem = reference_problems(_maps(0.97))
    assert problem is not None and problem.startswith("degenerate reference: ")
    assert "97.00% of PyTorch's pixels" in problem


def test_a_single_class_is_degenerate() -> None:
    problem = reference_problems([np.zeros((8, 8), int)])
    assert problem is not None and "predicts 1 class(es)" in problem


def test_float_noise_ties_on_most_pixels_are_degenerate() -> None:
    problem = reference_problems(_maps(0.5), tie_exempt_fraction=0.8)
    assert problem is not None and "tied within float noise on 80.00%" in problem


def test_ties_above_a_tenth_of_a_percent_are_too_flat_to_judge() -> None:
    assert reference_problems(_maps(0.5), tie_exempt_fraction=0.0009) is None
    problem = reference_problems(_maps(0.5), tie_exempt_fraction=0.002)
    assert problem is not None and problem.startswith("reference too flat to judge: 0.200%")
