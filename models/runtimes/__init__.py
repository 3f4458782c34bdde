"""`load_runner(format, path, io)`: the runner for a format, imported on use."""

from __future__ import annotations

from pathlib import Path

from models.runtimes.base import ArtifactError, IOSpec, Runner, RuntimeUnavailable

__all__ = ["ArtifactError", "IOSpec", "Runner", "RuntimeUnavailable", "load_runner"]


def load_runner(format_name: str, path: Path, io: IOSpec, threads: int | None = None,
                device: str = "cpu", meta: dict | None = None) -> Runner:
    """Load `path` with the runtime of `format_name` ('cuda' device for gpu cases)."""
    if format_name in ("torchscript", "torchscript_lite"):
        from models.runtimes.torchscript import TorchScriptRunner

        if format_name == "torchscript_lite" and device != "cpu":
            raise RuntimeUnavailable("the lite interpreter runs on the CPU only")
        return TorchScriptRunner(path, io, lite=format_name == "torchscript_lite",
                                 threads=threads, device=device)
    if format_name == "onnx":
        from models.runtimes.onnx import OnnxRunner

        return OnnxRunner(path, io, threads=threads, device=device)
    if device != "cpu":
        raise RuntimeUnavailable(f"{format_name} has no {device} runner in this suite")
    if format_name.startswith("tflite"):
        from models.runtimes.tflite import TFLiteRunner

        return TFLiteRunner(path, io, threads=threads)
    if format_name == "edgetpu":
        from models.runtimes.edgetpu import EdgeTPURunner

        return EdgeTPURunner(path, io, threads=threads,
                             compiled=bool((meta or {}).get("compiled", True)))
    raise ValueError(f"unknown format {format_name!r}")
