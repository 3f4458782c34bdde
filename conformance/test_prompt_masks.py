"""FastSAM prompt masks: IoU of each exported-model mask against PyTorch's for the same prompt,
by mask size (seed 003's measurement), with the missing-mask rate."""

from __future__ import annotations

import pytest

from conformance.budgets import explain, violations
from conformance.case_context import CaseContext
from conformance.matrix import Case, format_cases
from conformance.metrics.masks import mask_iou, prompt_mask_report
from conformance.remedies import in_a_remedy
from conformance.runners import calibration_info, load_case_runner

SUITE = "prompt_masks"
PROMPTS_PER_IMAGE = 12
# Shown for a remedy on the fixture photos (the figures its targets are stated in).
PHOTO_FIGURES = ("mask_iou_mean", "mask_iou_large", "mask_iou_small", "mask_missing_rate",
                 "n_images", "n_masks")


PromptSet = tuple[list, list, list]  # per image: uint8 image, prompts, PyTorch's masks


def prompt_set(spec, images, outputs) -> PromptSet:
    """Images, prompts and PyTorch's mask for each prompt: prompts target PyTorch's own masks
    of each image (make_prompts' rule), uniform ones where it finds none."""
    from models.fastsam import everything_masks, make_prompts, prompt_masks, to_uint8_rgb

    conf, iou = spec.mask_thresholds.conf, spec.mask_thresholds.iou
    rgb, prompts, masks = [], [], []
    for k, out in enumerate(outputs):
        image = to_uint8_rgb(images[k])
        found = everything_masks(out, image, conf, iou)
        chosen = make_prompts(image, PROMPTS_PER_IMAGE, seed=k,
                              masks=found if len(found) else None)
        rgb.append(image)
        prompts.append(chosen)
        masks.append(prompt_masks(out, image, chosen, conf, iou))
    return rgb, prompts, masks


@pytest.fixture(scope="session")
def reference_prompts(references):
    """Per model and image set ("eval" or "photos"): the prompt set, computed once."""
    cache: dict[tuple[str, str], PromptSet] = {}

    def get(spec, images: str = "eval") -> PromptSet:
        if (spec.name, images) not in cache:
            if images == "photos":
                made = prompt_set(spec, references.photo_images(spec),
                                  references.photos(spec)[1])
            else:
                ref = references.get(spec)
                made = prompt_set(spec, ref.images, ref.outputs)
            cache[spec.name, images] = made
        return cache[spec.name, images]

    return get


def masks_of(case: Case, runner, inputs, prompts: PromptSet):
    """The exported model's mask for every prompt, and its report against PyTorch's."""
    from models.fastsam import prompt_masks

    images, chosen, ref_masks = prompts
    conf, iou = case.spec.mask_thresholds.conf, case.spec.mask_thresholds.iou
    got = [prompt_masks(runner.run(x), image, p, conf, iou)
           for x, image, p in zip(inputs, images, chosen, strict=True)]
    return got, prompt_mask_report(ref_masks, got,
                                   image_area=[im.shape[0] * im.shape[1] for im in images])


@pytest.mark.parametrize("case", format_cases(tasks=("prompt_masks",), gpu=False))
def test_prompt_masks(case: Case, context: CaseContext, references, reference_prompts) -> None:
    """Mean mask IoU vs PyTorch and missing-mask rate within the format's budget."""
    ref, artifact, runner = load_case_runner(case, references, threads=2)
    prompts = reference_prompts(case.spec)
    images, chosen, ref_masks = prompts
    got_masks, report = masks_of(case, runner, ref.inputs, prompts)
    metrics = report.as_metrics()
    context.record(metrics=metrics, info={
        "weights": ref.weights, "weights_sha256": ref.weights_key, "artifact": artifact.label,
        "conf": case.spec.mask_thresholds.conf, "iou": case.spec.mask_thresholds.iou,
        "prompts": "alternating point/box from PyTorch's masks (make_prompts)",
        **calibration_info(case, ref, artifact)})
    if references.evaluates_synthetic(case.spec) and in_a_remedy(case.model, case.format):
        # The evaluation scenes are synthetic: a remedy is also shown on the fixture photos.
        _, on_photos = masks_of(case, runner, references.photos(case.spec)[0],
                                reference_prompts(case.spec, "photos"))
        context.record(info={"fixture_photos": {
            k: v for k, v in on_photos.as_metrics().items() if k in PHOTO_FIGURES}})
    _attach_worst(context, images, chosen, ref_masks, got_masks)
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
