"""What an artifact file declares about its inputs and outputs, read without running it.

Used to fit a user's file to a model before any image goes through it: names, shapes and
dtypes per tensor, in the file's own order. TorchScript declares no shapes (None: found by
running once instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.runtimes.base import ArtifactError, error_summary

EDGETPU_CUSTOM_OP = b"edgetpu-custom-op"


@dataclass(frozen=True)
class TensorSignature:
    """One declared tensor; a dimension is None when the file leaves it symbolic."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str


@dataclass(frozen=True)
class FileSignature:
    """Declared inputs and outputs (None: the format declares none), in the file's order."""

    inputs: tuple[TensorSignature, ...] | None
    outputs: tuple[TensorSignature, ...] | None
    tensor_dtypes: frozenset[str] = frozenset()  # every tensor's dtype (TFLite only)


def read_signature(format_name: str, path: Path) -> FileSignature:
    """The file's declared I/O for `format_name`; ArtifactError naming the file if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: file not found")
    from models.formats import format_row

    suffix = format_row(format_name).suffix  # the file type decides how its I/O is declared
    if suffix == ".onnx":
        return _onnx_signature(path)
    if suffix == ".tflite":
        return tflite_signature(path)
    return FileSignature(inputs=None, outputs=None)


_ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 10: "float16",
                11: "float64"}


def _onnx_signature(path: Path) -> FileSignature:
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as err:  # protobuf raises its own types for junk
        raise ArtifactError(f"{path}: not a readable ONNX model ({error_summary(err)})") from err
    constants = {t.name for t in graph.initializer}

    def signature(value) -> TensorSignature:
        tensor = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
        return TensorSignature(value.name, dims, _ONNX_DTYPES.get(tensor.elem_type, "other"))

    return FileSignature(
        inputs=tuple(signature(v) for v in graph.input if v.name not in constants),
        outputs=tuple(signature(v) for v in graph.output))


def tflite_signature(path: Path) -> FileSignature:
    """I/O and every tensor's dtype of a .tflite, from the interpreter without allocating."""
    from models.runtimes.tflite import interpreter_class

    if EDGETPU_CUSTOM_OP in path.read_bytes():
        # The interpreter cannot read a compiled model without the Edge TPU delegate.
        return FileSignature(inputs=None, outputs=None, tensor_dtypes=frozenset({"edgetpu"}))
    cls, _ = interpreter_class()
    try:
        interpreter = cls(model_path=str(path))
    except (ValueError, RuntimeError) as err:
        raise ArtifactError(f"{path}: not a loadable TFLite model ({error_summary(err)})") from err

    def signature(detail) -> TensorSignature:
        return TensorSignature(detail["name"], tuple(int(s) for s in detail["shape"]),
                               np.dtype(detail["dtype"]).name)

    return FileSignature(
        inputs=tuple(signature(d) for d in interpreter.get_input_details()),
        outputs=tuple(signature(d) for d in interpreter.get_output_details()),
        tensor_dtypes=frozenset(np.dtype(d["dtype"]).name
                                for d in interpreter.get_tensor_details()))
