"""A constant or class-shuffled export fails every semantic budget, through the real metrics
and the real budgets.toml: the gate cannot be passed by predicting background."""

from __future__ import annotations

import numpy as np
import pytest

from conformance.budgets import MissingBudget, budget_for, load_budgets, violations
from conformance.metrics.parity import parity_figures
from conformance.metrics.segmentation import accuracy_metrics
from fixtures.voc import synthetic_samples
from models.registry import ALL_FORMATS

NUM_CLASSES = 21
BUDGETS = load_budgets()


def _semantic_formats(suite: str) -> list[str]:
    found = []
    for fmt in ALL_FORMATS:
        try:
            budget_for(BUDGETS, suite, fmt, "cpu", "semantic")
        except MissingBudget:
            continue
        found.append(fmt)
    return found


def _class_maps(background_share: float | None) -> list[np.ndarray]:
    """PyTorch's class maps: the synthetic labels, or a background-heavy variant (objects
    shrunk to `background_share` background, as the first fixture models predicted)."""
    maps = [np.where(s.label == 255, 0, s.label).astype(np.int64)
            for s in synthetic_samples(4, 64, seed=2)]
    if background_share is not None:
        for m in maps:
            objects = np.flatnonzero(m)
            keep = round(m.size * (1 - background_share))
            m.ravel()[objects[keep:]] = 0
    return maps


def _logits(class_map: np.ndarray) -> np.ndarray:
    noise = np.random.default_rng(0).normal(0, 0.1, (1, NUM_CLASSES, *class_map.shape))
    return (noise + 4.0 * (np.arange(NUM_CLASSES)[:, None, None] == class_map)[None]).astype(
        np.float32)


def _constant(class_map: np.ndarray) -> np.ndarray:
    return np.zeros_like(class_map)


def _shuffled(class_map: np.ndarray) -> np.ndarray:
    permutation = np.roll(np.arange(NUM_CLASSES), 1)
    return permutation[class_map]


EXPORTS = {"constant background": _constant, "classes shuffled": _shuffled}
REFERENCES = {"synthetic VOC": None, "92% background": 0.92}


@pytest.mark.parametrize("reference", REFERENCES)
@pytest.mark.parametrize("export", EXPORTS)
@pytest.mark.parametrize("fmt", _semantic_formats("parity"))
def test_parity_budgets_refuse_a_degenerate_export(fmt: str, export: str, reference: str) -> None:
    maps = _class_maps(REFERENCES[reference])
    metrics, _ = parity_figures([{"logits": _logits(m)} for m in maps],
                                [{"logits": _logits(EXPORTS[export](m))} for m in maps], 1)
    budget = budget_for(BUDGETS, "parity", fmt, "cpu", "semantic")
    assert violations(metrics, budget), f"{fmt}: a {export} export passes parity: {metrics}"


@pytest.mark.parametrize("reference", REFERENCES)
@pytest.mark.parametrize("export", EXPORTS)
@pytest.mark.parametrize("fmt", _semantic_formats("accuracy"))
def test_accuracy_budgets_refuse_a_degenerate_export(fmt: str, export: str,
                                                     reference: str) -> None:
    maps = _class_maps(REFERENCES[reference])
    labels = _class_maps(None)
    got = [EXPORTS[export](m) for m in maps]
    metrics = accuracy_metrics(labels, maps, got, NUM_CLASSES)
    budget = budget_for(BUDGETS, "accuracy", fmt, "cpu", "semantic")
    assert violations(metrics, budget), f"{fmt}: a {export} export passes accuracy: {metrics}"


def test_the_quantised_budgets_would_pass_a_constant_without_agreement_miou() -> None:
    """Why agreement mIoU is budgeted: on a background-heavy reference, pixel agreement alone
    passes an all-background export."""
    maps = _class_maps(0.92)
    metrics, _ = parity_figures([{"logits": _logits(m)} for m in maps],
                                [{"logits": _logits(_constant(m))} for m in maps], 1)
    budget = budget_for(BUDGETS, "parity", "tflite_int8", "cpu", "semantic")
    without = {k: v for k, v in budget.items() if not k.endswith("agreement_miou")}
    assert not violations(metrics, without)
    assert [v.metric for v in violations(metrics, budget)] == ["agreement_miou"]
