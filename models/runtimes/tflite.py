"""TFLite runner on ai-edge-litert (the Raspberry Pi's interpreter), tflite-runtime as fallback.

No torch import here: this module runs on devices with only numpy and the interpreter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.runtimes.base import (
    ArtifactError,
    IOSpec,
    RuntimeUnavailable,
    check_finite,
    check_input_shapes,
    check_output_shapes,
    join_parts,
    output_slots,
    part_shape,
    shape_mismatch,
)

INSTALL_HINT = "pip install ai-edge-litert (or tflite-runtime on older boards)"


def interpreter_class():
    """The Interpreter class of the first TFLite runtime found."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite-runtime"
    except ImportError as err:
        raise RuntimeUnavailable(f"no TFLite interpreter installed: {INSTALL_HINT}",
                                 package="ai-edge-litert") from err


def make_interpreter(path: Path, threads: int | None = None, delegates=None,
                     builtin_ops_only: bool = False, preserve_all_tensors: bool = False):
    """Load and allocate; a corrupt file raises ArtifactError naming it.

    `builtin_ops_only` keeps XNNPACK from replacing ops by DELEGATE nodes, so the op list
    is the model's own (for structure checks). `preserve_all_tensors` keeps every
    intermediate readable after invoke (layer-wise localisation).
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: TFLite file not found")
    cls, _ = interpreter_class()
    extra = {}
    if preserve_all_tensors:
        extra["experimental_preserve_all_tensors"] = True
    if builtin_ops_only:
        try:
            from ai_edge_litert.interpreter import OpResolverType
        except ImportError:
            from tflite_runtime.interpreter import OpResolverType
        extra["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interpreter = cls(model_path=str(path), num_threads=threads,
                          experimental_delegates=delegates, **extra)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        raise ArtifactError(f"{path}: not a loadable TFLite model "
                            f"({str(err).splitlines()[0][:200]})") from err
    return interpreter


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    """Affine quantisation with rounding and saturation."""
    info = np.iinfo(dtype)
    q = np.round(x / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Inverse of `quantize` up to rounding."""
    return ((q.astype(np.float32) - zero_point) * scale).astype(np.float32)


def _nhwc(shape) -> tuple[int, ...]:
    return (shape[0], *shape[2:], shape[1]) if len(shape) == 4 else tuple(shape)


class TFLiteRunner:
    """Runs a .tflite; converts NCHW<->NHWC and (de)quantises int8/uint8 I/O."""

    def __init__(self, path: Path, io: IOSpec, threads: int | None = None, delegates=None,
                 runtime_label: str | None = None, inspect: bool = False) -> None:
        self.path, self.io, self.threads = Path(path), io, threads
        # inspect: builtin kernels only and every tensor kept, for reading intermediates.
        self.interpreter = make_interpreter(self.path, threads, delegates,
                                            builtin_ops_only=inspect, preserve_all_tensors=inspect)
        _, self.runtime = interpreter_class()
        if runtime_label:
            self.runtime = runtime_label
        self.input_details = self.interpreter.get_input_details()
        self.output_details = self.interpreter.get_output_details()
        if len(self.input_details) != len(io.inputs):
            raise ArtifactError(f"{self.path}: {len(self.input_details)} inputs, the model "
                                f"expects {len(io.inputs)} ({list(io.inputs)})")
        self.input_layout = [self._layout(d, shape)
                             for d, shape in zip(self.input_details, io.inputs.values(),
                                                 strict=True)]
        # An output delivered in parts (io.output_parts) fills one slot per part.
        self.output_slots = output_slots(io, len(self.output_details))
        known = [tuple(part_shape(io, *slot)) for slot in self.output_slots
                 if part_shape(io, *slot)]
        for detail, (name, part) in zip(self.output_details, self.output_slots, strict=False):
            expected = part_shape(io, name, part)
            shape = tuple(int(s) for s in detail["shape"])
            # Any expected shape will do here (converters may reorder outputs); run() checks
            # each output against its own name. A part must be its own part's shape: parts
            # are placed by position, so a file that orders them otherwise is refused.
            if expected and part is not None and shape not in (expected, _nhwc(expected)):
                raise ArtifactError(
                    f"{self.path}: output {detail['name']!r} has shape {shape}, part {part} of "
                    f"the model's {name!r} is {tuple(expected)}: its parts are expected in the "
                    f"order {io.output_parts[name]} (rows along axis 1)")
            if expected and not any(shape in (e, _nhwc(e)) for e in known):
                raise ArtifactError(
                    f"{self.path}: output {detail['name']!r} has shape {shape}, the model's "
                    f"{name!r} is {tuple(expected)} ({shape_mismatch(shape, tuple(expected))}); "
                    "an artifact of another model or input size?")

    @classmethod
    def load(cls, path: Path, io: IOSpec, *, threads: int | None = None, device: str = "cpu",
             meta: dict | None = None) -> TFLiteRunner:
        """The runner of a format row (models/formats.py): one signature for every runtime."""
        return cls(path, io, threads=threads)

    def _layout(self, detail, expected: tuple[int, ...]) -> str:
        shape = tuple(int(s) for s in detail["shape"])
        if shape == tuple(expected):
            return "NCHW"
        if len(expected) == 4 and shape == _nhwc(expected):
            return "NHWC"
        raise ArtifactError(
            f"{self.path}: input {detail['name']!r} has shape {shape} "
            f"({np.dtype(detail['dtype']).name}); the model expects {tuple(expected)} NCHW "
            f"or {_nhwc(expected)} NHWC"
        )

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Forward once."""
        check_input_shapes(inputs, self.io.inputs, self.path)
        for detail, name, layout in zip(self.input_details, self.io.inputs, self.input_layout,
                                        strict=True):
            x = np.asarray(inputs[name], dtype=np.float32)
            if layout == "NHWC":
                x = x.transpose(0, 2, 3, 1)
            dtype = np.dtype(detail["dtype"])
            if dtype in (np.int8, np.uint8, np.int16):
                scale, zero = detail["quantization"]
                x = quantize(x, scale, zero, dtype)
            else:
                x = x.astype(dtype)
            self.interpreter.set_tensor(detail["index"], np.ascontiguousarray(x))
        self.interpreter.invoke()
        raw = [self.interpreter.get_tensor(d["index"]) for d in self.output_details]
        if len(raw) < len(self.output_slots):
            raise ArtifactError(f"{self.path}: {len(raw)} outputs, expected "
                                f"{len(self.output_slots)}")
        values = []
        for (name, part), detail, value in zip(self.output_slots, self.output_details, raw,
                                               strict=False):
            if np.dtype(detail["dtype"]) in (np.int8, np.uint8, np.int16):
                scale, zero = detail["quantization"]
                value = dequantize(value, scale, zero)
            value = np.asarray(value, dtype=np.float32)
            expected = part_shape(self.io, name, part)
            if expected and value.shape != tuple(expected) and len(expected) == 4 \
                    and value.shape == _nhwc(expected):
                value = value.transpose(0, 3, 1, 2)
            values.append((name, part, value))
        result = {name: np.ascontiguousarray(v) for name, v in join_parts(values).items()}
        check_output_shapes(result, self.io.output_shapes, self.path)
        return check_finite(result, self.path)

    def describe(self) -> dict[str, str]:
        """Runtime report: interpreter, version, threads, I/O types and layout."""
        try:
            from importlib.metadata import version

            runtime_version = version(self.runtime)
        except Exception:
            runtime_version = "unknown"
        return {"runtime": self.runtime, "version": runtime_version,
                "threads": str(self.threads or "default"),
                "delegate": "XNNPACK (interpreter default)",
                "input_dtype": ",".join(np.dtype(d["dtype"]).name for d in self.input_details),
                "input_layout": ",".join(self.input_layout)}
