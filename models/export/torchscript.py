"""TorchScript converters: traced `.pt` and lite-interpreter `.ptl` (the Pixel 2 format)."""

from __future__ import annotations

import torch

from models.export.request import ExportRequest


def _trace(request: ExportRequest) -> torch.jit.ScriptModule:
    example = request.example_tensors()
    with torch.no_grad():
        # check_trace re-runs the graph and fails on benign float noise for ViTs (toolchain.md);
        # the parity suite is the real check.
        return torch.jit.trace(request.model, example, check_trace=False)


def export_torchscript(request: ExportRequest) -> dict:
    """torch.jit.trace and save."""
    _trace(request).save(str(request.out_path))
    return {"converter": f"torch.jit.trace (torch {torch.__version__})"}


def export_torchscript_lite(request: ExportRequest) -> dict:
    """Trace, try optimize_for_mobile, save for the lite interpreter; record which path ran."""
    traced = _trace(request)
    try:
        from torch.utils.mobile_optimizer import optimize_for_mobile

        module = optimize_for_mobile(traced)
        path = "optimize_for_mobile + _save_for_lite_interpreter"
    except Exception as err:  # this torch build lacks XNNPACK: an internal assert, not ImportError
        module = traced
        path = (f"traced + _save_for_lite_interpreter (optimize_for_mobile unavailable: "
                f"{type(err).__name__}: {str(err).splitlines()[0][:120]})")
    module._save_for_lite_interpreter(str(request.out_path))
    return {"converter": f"torch {torch.__version__}", "ptl_path": path}
