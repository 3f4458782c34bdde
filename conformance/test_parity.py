"""Numerical parity of every exported format with PyTorch eager, per model."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.budgets import explain, judge_outputs
from conformance.bundle import write_bundle
from conformance.case_context import CaseContext
from conformance.int8_case import debuggable, repair_case, sensitive_hint, sensitivity_table
from conformance.matrix import Case, format_cases
from conformance.metrics.parity import figures_by_output, parity_figures, part_figures
from conformance.metrics.reference_health import reference_figures, reference_problems
from conformance.remedies import in_a_remedy
from conformance.runners import calibration_info, load_case_runner
from models.formats import FLOAT_TFLITE
from models.formats import MIXED_FORMAT as MIXED
from models.localise import localisable

SUITE = "parity"
BUNDLES = Path(__file__).resolve().parents[1] / "reports" / "bundles"


@pytest.mark.parametrize("case", format_cases())
def test_parity(case: Case, context: CaseContext, references, request) -> None:
    """Every output of every fixture image within the format's parity budget."""
    semantic = case.spec.task == "semantic"
    budget = context.budget
    ref, artifact, runner = load_case_runner(case, references, threads=2)
    context.record(info={
        "weights": ref.weights, "weights_sha256": ref.weights_key,
        "cache": "user file" if artifact.is_user_file else "hit" if artifact.cache_hit
        else "exported",
        "converter": artifact.meta.get("converter", ""),
        "rewrites": ",".join(artifact.meta.get("rewrites", [])), **runner.describe(),
        **calibration_info(case, ref, artifact)})
    if "ptl_path" in artifact.meta:
        context.record(info={"ptl_path": artifact.meta["ptl_path"]})
    got = [runner.run(inputs) for inputs in ref.inputs]
    metrics, reports = parity_figures(ref.outputs, got, class_axis=1 if semantic else None)
    by_output = figures_by_output(reports)
    if semantic:
        maps = [out[case.spec.output_names[0]].argmax(1) for out in ref.outputs]
        metrics.update(reference_figures(maps))
    if case.device == "cpu":
        bundles = request.config.getoption("--bundle-dir") or BUNDLES
        write_bundle(bundles, case.spec, case.format, artifact, ref.inputs, ref.outputs,
                     ref.weights, calibration=context.result.info.get("calibration", ""))
    context.record(metrics=metrics, info={
        "images": len(ref.inputs), "artifact": artifact.label,
        "per_output": {name: {k: float(f"{v:.6g}") for k, v in figures.items()}
                       for name, figures in by_output.items()}})
    parts = dict(getattr(case.spec, "output_parts", ()))
    if parts:  # shown, not judged: where one output's figures hide a part's loss
        context.record(info={"per_part": {
            name: {k: float(f"{v:.6g}") for k, v in figures.items()}
            for name, figures in part_figures(ref.outputs, got, parts).items()}})
    if references.evaluates_synthetic(case.spec) and in_a_remedy(case.model, case.format):
        # The parity set is synthetic: a remedy is also shown on the fixture photos.
        context.record(info={"fixture_photos": photo_figures(case, references, runner)})
    if semantic:
        problem = reference_problems(maps, metrics["tie_exempt_fraction"])
        if problem:
            pytest.fail(f"{case}: {problem} over {len(maps)} images; weights: {ref.weights}",
                        pytrace=False)
    # Each output judged by name, on its own figures (as Polygraphy names the one that broke).
    failed = judge_outputs(metrics, by_output, budget, context.output_budget)
    table = int8_layers(context, ref, artifact, references)
    failure = None
    if failed:
        hint = f"artifact {artifact.path}; weights: {ref.weights}"
        if localisable(case.format):
            hint += "\n" + localise_failure(context, ref, artifact, reports)
        if table:
            hint += "\n" + int8_advice(context, ref, artifact, references, table, semantic)
        failure = explain(f"{case} parity vs PyTorch eager over {len(ref.inputs)} images",
                          metrics, budget, hint=hint, found=failed)
    regressions = context.regressions(metrics)
    assert not regressions, f"{case} regressed: " + "; ".join(regressions)
    context.settle(metrics, failure)


def photo_figures(case: Case, references, runner) -> dict:
    """Parity with PyTorch on the fixture photos (shown, not budgeted). A semantic model:
    decision agreement (PyTorch's own maps of photos unlike the training scenes can be
    degenerate; their top share says). A mask model: raw cosine / SNR, and each part's cosine
    where the outputs declare parts (the prompt-mask suite adds the masks)."""
    inputs, outputs = references.photos(case.spec)
    got = [runner.run(x) for x in inputs]
    if case.spec.task != "semantic":
        metrics, _ = parity_figures(outputs, got)
        parts = dict(case.spec.output_parts)
        return {"images": float(len(inputs)), "cosine": metrics["cosine"],
                "snr_db": metrics["snr_db"],
                "part_cosine": {name: figures["cosine"] for name, figures
                                in part_figures(outputs, got, parts).items()} if parts else {}}
    metrics, _ = parity_figures(outputs, got, class_axis=1)
    maps = [out[case.spec.output_names[0]].argmax(1) for out in outputs]
    shown = {k: metrics[k] for k in ("argmax_agreement", "agreement_miou")}
    return {"images": float(len(inputs)), **shown, **reference_figures(maps)}


def int8_layers(context: CaseContext, ref, artifact, references) -> dict | None:
    """The per-layer int8 table of a quantised TFLite case (recorded), or None."""
    case = context.case
    if not debuggable(case.format) or artifact.is_user_file or case.device != "cpu":
        return None
    fp32 = references.session(case.spec).export_own(FLOAT_TFLITE).path
    try:
        table = sensitivity_table(case, ref, artifact, fp32)
    except Exception as err:  # advice only: a debugger bug must not hide the verdict
        context.record(info={"int8_sensitivity_error": f"{type(err).__name__}: {err}"[:300]})
        return None
    shown = {k: v for k, v in table.items() if k != "ranked"}
    context.record(info={"int8_sensitivity": shown})
    return table


def int8_advice(context: CaseContext, ref, artifact, references, table, semantic: bool) -> str:
    """The most sensitive layers, and with --int8-repair the recipe that passes (recorded)."""
    case = context.case
    advice = sensitive_hint(table)
    if not context.request.config.getoption("--int8-repair"):
        return f"{advice}; search a mixed-precision recipe: --int8-repair"
    fp32 = references.session(case.spec).export_own(FLOAT_TFLITE).path
    repair = repair_case(case, ref, references.session(case.spec), artifact, fp32,
                         context.budget, table, class_axis=1 if semantic else None)
    context.record(info={"int8_repair": repair})
    if not repair.get("recipe"):
        return f"{advice}\nint8 repair: {repair['summary']}"
    replay = f"--int8-recipe {case.model}={repair['saved']}"
    if MIXED not in case.spec.formats:  # --int8-recipe refuses a model without the row
        replay = f"add {MIXED} to {case.model}'s formats, then {replay}"
    return (f"{advice}\nint8 repair: {repair['summary']}; p50 int8 / repaired = "
            f"{repair.get('speed_vs_int8')}; recipe saved to {repair['saved']} (judge it in "
            f"every suite: {replay})")


def localise_failure(context: CaseContext, ref, artifact, reports) -> str:
    """Where the export first diverges from PyTorch, on its worst image (for the message)."""
    from models.localise import localise

    case = context.case
    per_image = len(reports) // len(ref.inputs)
    image = min(range(len(ref.inputs)), key=lambda i: min(
        r.snr_db for r in reports[i * per_image : (i + 1) * per_image]))
    try:
        where = localise(case.format, artifact.path, ref.model, ref.inputs[image],
                         [i.name for i in case.spec.inputs])
    except Exception as err:  # advice only: a localisation bug must not hide the verdict
        layer, text = "unavailable", f"layer-wise localisation failed ({type(err).__name__}: {err})"
        table = []
    else:
        layer, text = where.first_divergent or "none found", where.explain()
        table = where.layer_table()
    context.record(info={"first_divergent_layer": layer, "layer_table": table,
                         "localised_image": image})
    return f"image {image}: {text}"
