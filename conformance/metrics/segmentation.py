"""Semantic segmentation metrics with Pascal VOC rules (numpy only).

One confusion matrix accumulated over the whole split, label 255 ignored, IoU per class =
TP / (TP + FP + FN), mIoU = nanmean over classes (absent classes are NaN, not 0).
"""

from __future__ import annotations

import numpy as np

IGNORE = 255


def confusion_matrix(pred: np.ndarray, label: np.ndarray, num_classes: int,
                     ignore: int = IGNORE) -> np.ndarray:
    """(num_classes, num_classes) int64 counts, rows = ground truth, columns = prediction."""
    if pred.shape != label.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from label shape {label.shape}")
    keep = (label != ignore) & (label < num_classes)
    index = label[keep].astype(np.int64) * num_classes + pred[keep].astype(np.int64)
    return np.bincount(index, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


def per_class_iou(conf: np.ndarray) -> np.ndarray:
    """IoU per class; NaN where the class is neither in the labels nor predicted."""
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.maximum(union, 1), np.nan)


def miou(conf: np.ndarray) -> float:
    """Mean IoU over classes present in labels or predictions (VOC's nanmean)."""
    iou = per_class_iou(conf)
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")


def pixel_accuracy(conf: np.ndarray) -> float:
    """Fraction of non-ignored pixels predicted correctly."""
    total = conf.sum()
    return float(np.trace(conf) / total) if total else float("nan")


def agreement_miou(ref_pred: np.ndarray, got_pred: np.ndarray, num_classes: int) -> float:
    """IoU of an export's class map against PyTorch's, averaged over the classes present in
    PyTorch's map: a constant or shuffled prediction scores low however unbalanced the map."""
    return reference_class_miou(confusion_matrix(got_pred, ref_pred, num_classes, ignore=-1))


def reference_class_miou(conf: np.ndarray) -> float:
    """Mean IoU over the classes present in the rows (the reference) of `conf`."""
    present = conf.sum(1) > 0
    return float(np.mean(per_class_iou(conf)[present])) if present.any() else float("nan")


def miou_drop_points(reference_miou: float, exported_miou: float) -> float:
    """Accuracy lost by the export, in mIoU points (positive = worse)."""
    return 100.0 * (reference_miou - exported_miou)


def accuracy_metrics(labels: list[np.ndarray], ref_preds: list[np.ndarray],
                     got_preds: list[np.ndarray], num_classes: int) -> dict[str, float]:
    """The accuracy suite's figures of an export's class maps against ground truth and
    against PyTorch's class maps, accumulated over the whole split."""
    n = num_classes
    ref_conf = np.zeros((n, n), np.int64)
    got_conf = np.zeros((n, n), np.int64)
    agree_conf = np.zeros((n, n), np.int64)
    for label, ref, got in zip(labels, ref_preds, got_preds, strict=True):
        ref_conf += confusion_matrix(ref, label, n)
        got_conf += confusion_matrix(got, label, n)
        agree_conf += confusion_matrix(got, ref, n, ignore=-1)
    ref_miou, got_miou = miou(ref_conf), miou(got_conf)
    return {
        "miou": got_miou,
        "reference_miou": ref_miou,
        "miou_drop": miou_drop_points(ref_miou, got_miou),
        "miou_ratio": got_miou / ref_miou if ref_miou > 0 else float("nan"),
        "agreement_miou": reference_class_miou(agree_conf),
        "pixel_agreement": float(np.mean([np.mean(r == g)
                                          for r, g in zip(ref_preds, got_preds, strict=True)])),
    }
