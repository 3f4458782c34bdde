"""ONNX Runtime runner."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from models.runtimes.base import (
    ArtifactError,
    IOSpec,
    check_finite,
    check_input_shapes,
    check_output_shapes,
    error_summary,
    require,
    shape_mismatch,
)


class OnnxRunner:
    """An InferenceSession with fixed threads; CUDA provider when device='cuda'."""

    def __init__(self, path: Path, io: IOSpec, threads: int | None = None,
                 device: str = "cpu") -> None:
        ort = require("onnxruntime", "onnxruntime==1.32.0", "ONNX")
        self.path, self.io, self._ort = Path(path), io, ort
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                from models.runtimes.base import RuntimeUnavailable

                raise RuntimeUnavailable("onnxruntime has no CUDA provider here "
                                         "(pip install onnxruntime-gpu on a CUDA host)")
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as err:
            raise ArtifactError(f"{self.path}: onnxruntime cannot load it "
                                f"({self._summary(err)})") from err
        self.threads = threads
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._check_declared_shapes()

    @classmethod
    def load(cls, path: Path, io: IOSpec, *, threads: int | None = None, device: str = "cpu",
             meta: dict | None = None) -> OnnxRunner:
        """The runner of a format row (models/formats.py): one signature for every runtime."""
        return cls(path, io, threads=threads, device=device)

    def _check_declared_shapes(self) -> None:
        # Cheap structure first: a file of another model or input size fails at load, by name.
        declared = [("input", i, ours, self.io.inputs.get(ours))
                    for i, ours in zip(self.session.get_inputs(), self.io.inputs, strict=False)]
        declared += [("output", o, ours, self.io.output_shapes.get(ours))
                     for o, ours in zip(self.session.get_outputs(), self.io.outputs, strict=False)]
        for kind, value, ours, expected in declared:
            shape = tuple(value.shape)
            if expected is None or not all(isinstance(d, int) for d in shape):
                continue  # symbolic dimensions: checked on each run instead
            if shape != tuple(expected):
                raise ArtifactError(
                    f"{self.path}: {kind} {value.name!r} has shape {shape}, the model's "
                    f"{ours!r} is {tuple(expected)} ({shape_mismatch(shape, tuple(expected))}); "
                    "an artifact of another model or input size?")

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Feed inputs by position (names may differ in user files), outputs by position."""
        check_input_shapes(inputs, self.io.inputs, self.path)
        if len(self.input_names) != len(self.io.inputs):
            raise ArtifactError(f"{self.path}: {len(self.input_names)} inputs "
                                f"{self.input_names}, expected {list(self.io.inputs)}")
        # fp16 graphs (e.g. ultralytics' half=True export) take float16 inputs.
        types = [np.float16 if i.type == "tensor(float16)" else np.float32
                 for i in self.session.get_inputs()]
        feed = {onnx_name: np.ascontiguousarray(inputs[ours], dtype=dtype)
                for onnx_name, ours, dtype in zip(self.input_names, self.io.inputs, types,
                                                  strict=True)}
        try:
            values = self.session.run(None, feed)
        except Exception as err:
            raise ArtifactError(f"{self.path}: onnxruntime failed "
                                f"({self._summary(err)})") from err
        result = {n: np.asarray(values[i], dtype=np.float32) for i, n in enumerate(self.io.outputs)}
        check_output_shapes(result, self.io.output_shapes, self.path)
        return check_finite(result, self.path)

    def _summary(self, err: Exception) -> str:
        # ORT prefixes a status code and repeats the path; the message already names the file.
        text = re.sub(r"\[ONNXRuntimeError\] : \d+ : \w+ : ", "", str(err))
        text = text.replace(f"Load model from {self.path} failed:", "")
        return error_summary(type(err)(text), limit=300)

    def describe(self) -> dict[str, str]:
        """Runtime report."""
        return {"runtime": "onnxruntime", "version": self._ort.__version__,
                "providers": ",".join(self.session.get_providers()),
                "threads": str(self.threads or "default")}
