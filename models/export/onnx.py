"""ONNX converter: torch.onnx.export, checked with onnx.checker."""

from __future__ import annotations

import onnx
import torch

from models.export.request import ExportRequest

OPSET = 17


def export_onnx(request: ExportRequest) -> dict:
    """Export with the TorchScript-based exporter at a fixed opset and run onnx.checker."""
    spec = request.spec
    with torch.no_grad():
        torch.onnx.export(
            request.model,
            request.example_tensors(),
            str(request.out_path),
            input_names=[i.name for i in spec.inputs],
            output_names=list(spec.output_names),
            opset_version=OPSET,
            dynamo=False,
        )
    onnx.checker.check_model(str(request.out_path), full_check=True)
    return {"converter": f"torch.onnx.export(dynamo=False, opset {OPSET}), onnx {onnx.__version__}",
            "checker": "onnx.checker.check_model(full_check=True) passed"}
