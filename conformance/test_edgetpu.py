"""Edge TPU: a static check against Coral's documented op table of every int8 model, here."""

from __future__ import annotations

import pytest

from conformance.budgets import budget_for, explain, find_known_failure, settle, violations
from conformance.matrix import Case, format_cases
from conformance.results import record_case
from conformance.runners import calibration_info
from models.export import ExportError
from models.export.edgetpu import check_edgetpu_compatibility

SUITE = "edgetpu"


@pytest.mark.parametrize("case", format_cases(formats=("edgetpu",), gpu=False))
def test_edgetpu_compatible(case: Case, references, budgets, profile_name, request) -> None:
    """The int8 model passes the static check against Coral's documented op table."""
    ref = references.get(case.spec)
    known = find_known_failure(budgets, SUITE, case.model, case.format, ref.fixture)
    result = record_case(request, suite=SUITE, model=case.model, format=case.format,
                         profile=profile_name,
                         budgets=budget_for(budgets, SUITE, case.format, profile_name,
                                            case.spec.task))
    if known is not None:  # the report shows the band the verdict was judged against
        result.info["known_failure"] = known.as_info()
    try:
        artifact = references.session(case.spec).export("edgetpu")
    except ExportError as err:
        pytest.fail(f"{case}: export failed: {err}", pytrace=False)
    report = check_edgetpu_compatibility(references.session(case.spec).export("tflite_int8").path)
    result.info.update(compiled=artifact.meta.get("compiled"),
                       converter=artifact.meta.get("converter", ""),
                       op_counts=report.op_counts,
                       rules_violated=report.rules_violated,
                       **calibration_info(case, ref, artifact))
    metrics = {"rules_violated": len(report.rules_violated),
               "violations": len(report.violations),
               "unsupported_ops": sum(report.unsupported_ops.values()),
               "total_ops": report.total_ops,
               "tpu_op_fraction": report.tpu_op_fraction,
               "parameter_bytes": report.parameter_bytes,
               "parameter_fraction_of_sram": report.parameter_fraction_of_sram}
    record_case(request, suite=SUITE, model=case.model, format=case.format,
                profile=profile_name, metrics=metrics, info={"weights_sha256": ref.weights_key})
    failure = None
    if violations(metrics, result.budgets) or not report.compatible:
        failure = explain(f"{case} Edge TPU static check against Coral's documented op table",
                          metrics, result.budgets, hint=report.explain())
    settle(known, metrics, failure)
