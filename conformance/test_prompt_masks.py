"""FastSAM prompt masks: IoU of each exported-model mask against PyTorch's for the same prompt,
by mask size (seed 003's measurement), with the missing-mask rate."""

from __future__ import annotations

import pytest

from conformance.budgets import explain, violations
from conformance.case_context import CaseContext
from conformance.matrix import Case, format_cases
from conformance.metrics.masks import mask_iou, prompt_mask_report
from conformance.runners import load_case_runner

SUITE = "prompt_masks"
PROMPTS_PER_IMAGE = 12


@pytest.fixture(scope="session")
def reference_prompts(references):
    """Per model: images, prompts and PyTorch's mask for each prompt, computed once."""
    from models.fastsam import everything_masks, make_prompts, prompt_masks, to_uint8_rgb

    cache: dict[str, tuple] = {}

    def get(spec):
        if spec.name not in cache:
            ref = references.get(spec)
            conf, iou = spec.mask_thresholds.conf, spec.mask_thresholds.iou
            images, prompts, masks = [], [], []
            for k, outputs in enumerate(ref.outputs):
                image = to_uint8_rgb(ref.images[k])
                found = everything_masks(outputs, image, conf, iou)
                chosen = make_prompts(image, PROMPTS_PER_IMAGE, seed=k,
                                      masks=found if len(found) else None)
                images.append(image)
                prompts.append(chosen)
                masks.append(prompt_masks(outputs, image, chosen, conf, iou))
            cache[spec.name] = (images, prompts, masks)
        return cache[spec.name]

    return get


@pytest.mark.parametrize("case", format_cases(tasks=("prompt_masks",), gpu=False))
def test_prompt_masks(case: Case, context: CaseContext, references, reference_prompts) -> None:
    """Mean mask IoU vs PyTorch and missing-mask rate within the format's budget."""
    from models.fastsam import prompt_masks

    ref, artifact, runner = load_case_runner(case, references, threads=2)
    images, prompts, ref_masks = reference_prompts(case.spec)
    conf, iou = case.spec.mask_thresholds.conf, case.spec.mask_thresholds.iou
    got_masks = [prompt_masks(runner.run(inputs), image, chosen, conf, iou)
                 for inputs, image, chosen in zip(ref.inputs, images, prompts, strict=True)]
    report = prompt_mask_report(ref_masks, got_masks,
                                image_area=[im.shape[0] * im.shape[1] for im in images])
    metrics = report.as_metrics()
    context.record(metrics=metrics, info={
        "weights": ref.weights, "weights_sha256": ref.weights_key, "artifact": artifact.label,
        "conf": conf, "iou": iou,
        "prompts": "alternating point/box from PyTorch's masks (make_prompts)"})
    _attach_worst(context, images, prompts, ref_masks, got_masks)
    regressions = context.regressions(metrics)
    assert not regressions, f"{case} regressed: " + "; ".join(regressions)
    failure = None
    if violations(metrics, context.budget):
        failure = explain(f"{case} prompt masks vs PyTorch", metrics, context.budget,
                          hint=report.explain() + f"; artifact {artifact.path}")
    context.settle(metrics, failure)


def _attach_worst(context: CaseContext, images, prompts, ref_masks, got_masks) -> None:
    try:
        from conformance.figures import prompt_mask_overlay
    except ImportError:
        return
    scored = [(mask_iou(r, g) if g is not None else 0.0, i, j)
              for i, (refs, gots) in enumerate(zip(ref_masks, got_masks, strict=True))
              for j, (r, g) in enumerate(zip(refs, gots, strict=True)) if r is not None]
    if not scored:
        return
    value, i, j = min(scored)
    prompt = prompts[i][j]
    png = prompt_mask_overlay(images[i], prompt.coords, ref_masks[i][j], got_masks[i][j])
    context.attach(f"worst prompt ({prompt.kind}) on image {i}: IoU {value:.3f}; "
                   f"PyTorch green, {context.format} magenta", png)
