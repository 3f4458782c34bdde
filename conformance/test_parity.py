"""Numerical parity of every exported format with PyTorch eager, per model."""

from __future__ import annotations

import pytest

from conformance.budgets import budget_for, explain, known_failure, violations
from conformance.matrix import Case, format_cases
from conformance.metrics.parity import compare_output, worst
from conformance.results import record_case
from models.export import ExportError
from models.runtimes import IOSpec, RuntimeUnavailable, load_runner

SUITE = "parity"


def load_case_runner(case: Case, references, threads: int):
    """Export (or take from the cache) and load the artifact; skip if the runtime is absent."""
    if case.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            pytest.skip("no CUDA device on this host (gpu profile)")
    ref = references.get(case.spec)
    try:
        artifact = references.session(case.spec).export(case.format)
    except ExportError as err:
        pytest.fail(f"{case}: export failed: {err}", pytrace=False)
    io = IOSpec(inputs={i.name: i.shape for i in case.spec.inputs},
                outputs=case.spec.output_names, output_shapes=ref.output_shapes)
    try:
        runner = load_runner(case.format, artifact.path, io, threads=threads,
                             device=case.device, meta=artifact.meta)
    except RuntimeUnavailable as err:
        pytest.skip(f"{case.format}: {err}")
    return ref, artifact, runner


@pytest.mark.parametrize("case", format_cases())
def test_parity(case: Case, references, budgets, profile_name, request) -> None:
    """Every output of every fixture image within the format's parity budget."""
    budget = budget_for(budgets, SUITE, case.format, profile_name)
    reason = known_failure(budgets, SUITE, case.model, case.format)
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    result = record_case(request, suite=SUITE, model=case.model, format=case.format,
                         profile=profile_name, budgets=budget)
    ref, artifact, runner = load_case_runner(case, references, threads=2)
    result.info.update(weights=ref.weights, cache="hit" if artifact.cache_hit else "exported",
                       converter=artifact.meta.get("converter", ""), **runner.describe())
    if "ptl_path" in artifact.meta:
        result.info["ptl_path"] = artifact.meta["ptl_path"]
    semantic = case.spec.task == "semantic"
    reports = []
    for inputs, expected in zip(ref.inputs, ref.outputs, strict=True):
        got = runner.run(inputs)
        for name, value in expected.items():
            reports.append(compare_output(name, value, got[name],
                                          class_axis=1 if semantic else None))
    metrics = worst(reports)
    record_case(request, suite=SUITE, model=case.model, format=case.format,
                profile=profile_name, metrics=metrics,
                info={"images": len(ref.inputs), "artifact": artifact.path.name})
    assert not violations(metrics, budget), explain(
        f"{case} parity vs PyTorch eager over {len(ref.inputs)} images", metrics, budget,
        hint=f"artifact {artifact.path}; weights: {ref.weights}")
