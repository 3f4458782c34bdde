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


def _upstream(request: ExportRequest) -> str:
    if request.upstream is None:
        raise ValueError("quantised TFLite needs the fp32 .tflite as upstream")
    return str(request.upstream)


def _quantizer(request: ExportRequest):
    from ai_edge_quantizer import quantizer

    return quantizer.Quantizer(_upstream(request))


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
    """Full-integer int8 (per-channel weights, calibrated activations) from the fp32 model.

    A model's `int8_min_max_scope` gives the tensors it names true min/max ranges (every
    calibrated format: `_static`)."""
    from ai_edge_quantizer import recipe

    return _static(request, recipe.static_wi8_ai8(),
                   "ai-edge-quantizer static_wi8_ai8 (per-channel weights, moving-average ranges)")


def export_tflite_w8a16(request: ExportRequest) -> dict:
    """int8 weights, int16 activations everywhere (ai-edge-quantizer static_wi8_ai16)."""
    from ai_edge_quantizer import recipe

    return _static(request, recipe.static_wi8_ai16(),
                   "ai-edge-quantizer static_wi8_ai16 (int16 activations, int8 weights)")


def export_tflite_int8_mixed(request: ExportRequest) -> dict:
    """int8 with the layers of the model's mixed-precision recipe at int16 or float."""
    from models.export.int8_recipe import missing_tensors

    recipe = request.int8_recipe
    if recipe is None:
        raise ValueError("tflite_int8_mixed needs an int8 recipe (--int8-recipe MODEL=FILE)")
    missing = missing_tensors(recipe, request.upstream)
    if missing:
        raise ValueError(f"the int8 recipe names {len(missing)} tensor(s) the float model does "
                         f"not have (a recipe for other code?), e.g. {missing[0][:120]!r}")
    meta = _static(request, recipe.aeq_recipe(),
                   f"ai-edge-quantizer static_wi8_ai8 + recipe: {recipe.summary()}")
    return {**meta, "int8_recipe": recipe.summary(), "int8_recipe_digest": recipe.digest()}


def _static(request: ExportRequest, recipe: list[dict], label: str) -> dict:
    from models.export.int8_recipe import quantize_static

    if not request.calibration:
        raise ValueError(f"{request.spec.name}: static quantisation needs calibration inputs")
    samples = signature_samples(request.spec, request.calibration)
    scope = getattr(request.spec, "int8_min_max_scope", None)  # test specs may lack it
    scoped = quantize_static(_upstream(request), request.out_path, samples, recipe,
                             min_max_scope=scope)
    meta = {"converter": label, "calibration_samples": len(samples)}
    if not scope:
        return meta
    return {**meta, "converter": f"{label}, except true min/max ranges on {scoped} tensors "
                                 f"matching {scope!r}", "min_max_tensors": scoped}


def signature_samples(spec, samples: list[dict[str, np.ndarray]]) -> list[dict]:
    """Samples keyed by signature input: litert-torch names them args_0, args_1, … in the
    module's argument order."""
    names = [i.name for i in spec.inputs]
    return [{f"args_{k}": np.ascontiguousarray(sample[n], dtype=np.float32)
             for k, n in enumerate(names)} for sample in samples]
