"""Edge TPU: a static check against Coral's documented op table of every int8 model, here."""

from __future__ import annotations

import pytest

from conformance.budgets import explain, violations
from conformance.case_context import CaseContext
from conformance.matrix import Case, format_cases
from conformance.runners import calibration_info
from models.export import ExportError
from models.export.edgetpu import check_edgetpu_compatibility, layers_text
from models.localise import tflite_module_namer

SUITE = "edgetpu"


@pytest.mark.parametrize("case", format_cases(formats=("edgetpu",), gpu=False))
def test_edgetpu_compatible(case: Case, context: CaseContext, references) -> None:
    """The int8 model passes the static check against Coral's documented op table."""
    ref = references.get(case.spec)
    try:
        artifact = references.session(case.spec).export("edgetpu")
    except ExportError as err:
        pytest.fail(f"{case}: export failed: {err}", pytrace=False)
    report = check_edgetpu_compatibility(references.session(case.spec).export("tflite_int8").path)
    metrics = {"rules_violated": len(report.rules_violated),
               "violations": len(report.violations),
               "unsupported_ops": sum(report.unsupported_ops.values()),
               "total_ops": report.total_ops,
               "tpu_op_fraction": report.tpu_op_fraction,
               "parameter_bytes": report.parameter_bytes,
               "parameter_fraction_of_sram": report.parameter_fraction_of_sram}
    # Full integer: where a CPU recipe would keep a layer in float, here the layer must change.
    layers = report.layers_to_change(tflite_module_namer(ref.model))
    context.record(metrics=metrics, info={
        "compiled": artifact.meta.get("compiled"), "converter": artifact.meta.get("converter", ""),
        "op_counts": report.op_counts, "rules_violated": report.rules_violated,
        "layers_to_change": layers,
        "weights_sha256": ref.weights_key, **calibration_info(case, ref, artifact)})
    failure = None
    if violations(metrics, context.budget) or not report.compatible:
        failure = explain(f"{case} Edge TPU static check against Coral's documented op table",
                          metrics, context.budget,
                          hint=f"{report.explain()}\n{layers_text(layers)}")
    context.settle(metrics, failure)
