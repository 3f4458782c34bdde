"""The main subgraph of a .tflite as plain data: ops with their tensors and builtin options.

The Edge TPU static check needs what the interpreter does not expose (fused activations,
dilations, masks, constant operands, weight formats), so the flatbuffer is read with the
TFLite schema that ai-edge-litert ships. Tests build `Op`/`Tensor` values by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.runtimes.base import ArtifactError, RuntimeUnavailable


@dataclass(frozen=True)
class Tensor:
    """One tensor: shape, dtype, whether it is a constant or a graph input/output."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy-style name: int8, int32, float32, ...
    dynamic: bool = False  # -1 in the shape signature
    constant: bool = False
    graph_input: bool = False
    graph_output: bool = False
    nbytes: int = 0  # bytes of constant data (0 for activations)
    zero_point: int = 0
    data: bytes | None = field(default=None, repr=False)

    @property
    def values(self) -> np.ndarray | None:
        """Constant contents (None for activations)."""
        if self.data is None:
            return None
        return np.frombuffer(self.data, dtype=self.dtype).reshape(self.shape)

    def describe(self) -> str:
        """`name int8[1, 16, 16, 8]`, the name cut to its last 40 characters."""
        name = self.name if len(self.name) <= 40 else "…" + self.name[-39:]
        return f"{name} {self.dtype}{list(self.shape)}"


@dataclass(frozen=True)
class Op:
    """One operator in execution order; `inputs` keeps None for omitted optional operands."""

    index: int
    name: str  # TFLite builtin name, e.g. MEAN
    inputs: tuple[Tensor | None, ...]
    outputs: tuple[Tensor, ...]
    options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """`op 12 MEAN` and its first output, for messages."""
        out = f" -> {self.outputs[0].describe()}" if self.outputs else ""
        return f"op {self.index} {self.name}{out}"


@dataclass
class Graph:
    """Ops of subgraph 0 in execution order and the bytes of its constant tensors."""

    ops: list[Op]
    parameter_bytes: int


def _schema():
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError as err:
        raise RuntimeUnavailable("the Edge TPU static check reads the .tflite with the TFLite "
                                 "schema in ai-edge-litert: pip install ai-edge-litert") from err
    return schema_py_generated


def read_graph(path: Path) -> Graph:
    """Read subgraph 0 of a .tflite; a file that is not one raises ArtifactError naming it."""
    fb = _schema()
    blob = Path(path).read_bytes()
    try:
        model = fb.ModelT.InitFromObj(fb.Model.GetRootAs(blob, 0))
        subgraph = model.subgraphs[0]
    except Exception as err:  # the generated reader raises struct/index errors on garbage
        raise ArtifactError(f"{path}: not a readable TFLite flatbuffer "
                            f"({type(err).__name__}: {str(err)[:120]})") from err
    op_names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    options_names = {v: k for k, v in vars(fb.BuiltinOptions).items() if not k.startswith("_")}
    type_names = {v: k.lower() for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
    graph_inputs = {int(i) for i in _ints(subgraph.inputs)}
    graph_outputs = {int(i) for i in _ints(subgraph.outputs)}

    tensors: list[Tensor] = []
    for index, t in enumerate(subgraph.tensors):
        data = _constant_bytes(model.buffers, t.buffer, blob) if not t.isVariable else None
        signature = _ints(t.shapeSignature)
        zero_points = _ints(t.quantization.zeroPoint) if t.quantization is not None else []
        tensors.append(Tensor(
            index=index, name=_text(t.name), shape=tuple(_ints(t.shape)),
            dtype=type_names.get(t.type, f"type{t.type}"),
            dynamic=any(s < 0 for s in signature), constant=data is not None,
            graph_input=index in graph_inputs, graph_output=index in graph_outputs,
            nbytes=len(data) if data is not None else 0,
            zero_point=zero_points[0] if len(zero_points) == 1 else 0, data=data))
    # A buffer shared by several tensors is stored (and cached on the chip) once.
    shared: dict[int, int] = {}
    for t, tensor in zip(subgraph.tensors, tensors, strict=True):
        if tensor.constant:
            shared[t.buffer] = tensor.nbytes

    ops = []
    for index, op in enumerate(subgraph.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        options = vars(op.builtinOptions) if op.builtinOptions is not None else {}
        name = op_names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            name = f"CUSTOM:{_text(code.customCode)}"
        ops.append(Op(index=index, name=name,
                      inputs=tuple(tensors[i] if i >= 0 else None for i in _ints(op.inputs)),
                      outputs=tuple(tensors[i] for i in _ints(op.outputs) if i >= 0),
                      options={"type": options_names.get(op.builtinOptionsType), **options}))
    return Graph(ops=ops, parameter_bytes=sum(shared.values()))


def _constant_bytes(buffers, buffer_index: int, blob: bytes) -> bytes | None:
    # Buffer 0 is the empty sentinel; large models keep data after the flatbuffer
    # (offset/size) instead of inline.
    if buffer_index <= 0 or buffer_index >= len(buffers):
        return None
    buffer = buffers[buffer_index]
    if buffer.data is not None and len(buffer.data) > 0:
        return bytes(np.asarray(buffer.data, dtype=np.uint8))
    if buffer.offset and buffer.offset > 1 and buffer.size:
        return blob[buffer.offset:buffer.offset + buffer.size]
    return None


def _ints(values) -> list[int]:
    return [] if values is None else [int(v) for v in values]


def _text(value) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
