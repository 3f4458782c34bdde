"""TFLite converters: litert-torch for fp32, ai-edge-quantizer for fp16 weights and int8.

litert-torch keeps NCHW I/O, so every runtime sees the same layout as PyTorch. int8 is
full-integer (int8 weights, activations, inputs and outputs) as the Edge TPU needs.
"""

from __future__ import annotations

import numpy as np

from models.export.request import ExportRequest


def export_tflite_fp32(request: ExportRequest) -> dict:
    """torch.export → LiteRT through litert-torch."""
    import litert_torch

    edge_model = litert_torch.convert(request.model.eval(), request.example_tensors())
    edge_model.export(str(request.out_path))
    return {"converter": f"litert-torch {litert_torch.__version__}"}


def _quantizer(request: ExportRequest):
    from ai_edge_quantizer import quantizer

    if request.upstream is None:
        raise ValueError("quantised TFLite needs the fp32 .tflite as upstream")
    return quantizer.Quantizer(str(request.upstream))


def export_tflite_fp16(request: ExportRequest) -> dict:
    """fp16 weights (float casting), float compute, from the fp32 model."""
    from ai_edge_quantizer import algorithm_manager, qtyping

    qt = _quantizer(request)
    qt.add_weight_only_config(
        regex=".*",
        operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
        num_bits=16,
        algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING,
    )
    qt.quantize().export_model(str(request.out_path), overwrite=True)
    return {"converter": "ai-edge-quantizer weight-only fp16 (float casting)"}


def export_tflite_int8(request: ExportRequest) -> dict:
    """Full-integer int8 (per-channel weights, calibrated activations) from the fp32 model."""
    from ai_edge_quantizer import recipe

    if not request.calibration:
        raise ValueError("int8 export needs calibration inputs")
    qt = _quantizer(request)
    qt.load_quantization_recipe(recipe.static_wi8_ai8())
    samples = [_by_position(sample, request) for sample in request.calibration]
    result = qt.calibrate({"serving_default": samples})
    qt.quantize(calibration_result=result).export_model(str(request.out_path), overwrite=True)
    return {"converter": "ai-edge-quantizer static_wi8_ai8 (min/max, per-channel weights)",
            "calibration_samples": len(samples)}


def _by_position(sample: dict[str, np.ndarray], request: ExportRequest) -> dict:
    # litert-torch names signature inputs args_0, args_1, … in the module's argument order.
    names = [i.name for i in request.spec.inputs]
    return {f"args_{k}": np.ascontiguousarray(sample[n], dtype=np.float32)
            for k, n in enumerate(names)}
