"""Accuracy of each exported format: mIoU against ground truth (VOC rules), agreement with
PyTorch, and the drop in points — the accuracy-drop gate."""

from __future__ import annotations

import numpy as np
import pytest

from conformance.budgets import explain, violations
from conformance.case_context import CaseContext
from conformance.inference import semantic_prediction
from conformance.matrix import Case, format_cases
from conformance.metrics.reference_health import reference_figures, reference_problems
from conformance.metrics.segmentation import accuracy_metrics, confusion_matrix, per_class_iou
from conformance.runners import calibration_info, load_case_runner

SUITE = "accuracy"


def _figure(image, ref_pred, got_pred, num_classes) -> bytes | None:
    try:
        from conformance.figures import segmentation_overlay
    except ImportError:
        return None
    return segmentation_overlay(image, ref_pred, got_pred, num_classes)


@pytest.mark.parametrize("case", format_cases(tasks=("semantic",)))
def test_accuracy(case: Case, context: CaseContext, references, voc_samples,
                  eager_predictions) -> None:
    """mIoU drop vs PyTorch and agreement mIoU within the format's accuracy budget."""
    dataset, samples = voc_samples
    ref, artifact, runner = load_case_runner(case, references, threads=2)
    spec, name, out = case.spec, case.spec.inputs[0].name, case.spec.output_names[0]
    n = spec.num_classes
    ref_preds = eager_predictions(spec)
    got_preds = [semantic_prediction(lambda x: runner.run({name: x})[out], spec, sample.image,
                                     sample.label.shape) for sample in samples]
    labels = [sample.label for sample in samples]
    metrics = {**accuracy_metrics(labels, ref_preds, got_preds, n),
               **reference_figures(ref_preds)}
    got_conf = sum(confusion_matrix(got, label, n) for got, label in zip(got_preds, labels,
                                                                          strict=True))
    iou = per_class_iou(got_conf)
    worst = int(np.nanargmin(iou)) if np.isfinite(iou).any() else -1
    context.record(metrics=metrics, info={
        "dataset": dataset, "images": len(samples), "weights": ref.weights,
        "artifact": artifact.label, "weights_sha256": ref.weights_key, "worst_class": worst,
        "per_class_iou": np.round(iou, 4).tolist(), **calibration_info(case, ref, artifact)})
    worst_image = int(np.argmin([np.mean(a == b) for a, b in zip(ref_preds, got_preds,
                                                                  strict=True)]))
    figure = _figure(samples[worst_image].image, ref_preds[worst_image], got_preds[worst_image], n)
    if figure is not None:
        context.attach(f"{samples[worst_image].name}: input / PyTorch / {case.format} / "
                       "disagreement", figure)
    problem = reference_problems(ref_preds)
    if problem:
        pytest.fail(f"{case}: {problem} on {dataset}; weights: {ref.weights}", pytrace=False)
    regressions = context.regressions(metrics)
    assert not regressions, f"{case} regressed: " + "; ".join(regressions)
    failure = None
    if violations(metrics, context.budget):
        failure = explain(
            f"{case} accuracy on {dataset} ({len(samples)} images)", metrics, context.budget,
            hint=f"worst class {worst} (IoU {iou[worst] if worst >= 0 else float('nan'):.3f}); "
                 f"worst image {samples[worst_image].name}; artifact {artifact.path}")
    context.settle(metrics, failure)
