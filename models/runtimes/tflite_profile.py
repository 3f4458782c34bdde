"""Per-op profile of a TFLite file: which ops XNNPACK takes, and what each costs.

ai-edge-litert's Python API has no op profiler, so each op is cut out into a model of its
own (its constant operands kept, its other inputs made model inputs) and timed there, on the
same interpreter and thread count, with XNNPACK as it applies by default. An op whose own
model gets no DELEGATE node is one XNNPACK does not take: it runs on the reference kernels.
The sum of the per-op medians against the whole model's median says how much the cut-out
timing covers (partition overheads and cache effects are not in it).

No torch import here: this module runs where the interpreter runs.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from models.runtimes.tflite import interpreter_class
from models.runtimes.timing import time_calls

BOUNDARY_OPS = ("QUANTIZE", "DEQUANTIZE", "TRANSPOSE")  # counted apart: layout and precision
ROUNDS = 5
WARMUP = 2


@dataclass(frozen=True)
class OpTime:
    """One op of the model: its index and type, median time alone, and XNNPACK's verdict."""

    index: int
    op: str
    ms: float
    delegated: bool
    folded: bool = False  # a constant's DEQUANTIZE, timed inside the op that consumes it


@dataclass(frozen=True)
class OpProfile:
    """The per-op profile of one file at one thread count."""

    ops: tuple[OpTime, ...]
    partitions: int  # DELEGATE nodes XNNPACK made in the whole model
    whole_ms: float  # the whole model's median, same interpreter and threads
    threads: int

    @property
    def delegated(self) -> int:
        return sum(op.delegated for op in self.ops)

    @property
    def sum_ms(self) -> float:
        return float(sum(op.ms for op in self.ops))

    def by_type(self) -> dict[str, dict[str, float]]:
        """{op type: count, delegated count, total ms, ms of the undelegated}, costliest
        first (folded constant DEQUANTIZEs left out: their time is their consumer's)."""
        table: dict[str, dict[str, float]] = {}
        for op in self.ops:
            if op.folded:
                continue
            row = table.setdefault(op.op, {"count": 0, "delegated": 0, "ms": 0.0,
                                           "ms_not_delegated": 0.0})
            row["count"] += 1
            row["delegated"] += op.delegated
            row["ms"] += op.ms
            row["ms_not_delegated"] += 0.0 if op.delegated else op.ms
        return dict(sorted(table.items(), key=lambda item: -item[1]["ms"]))

    def summary(self, top: int = 10) -> dict:
        """JSON-safe figures for the report and results.json."""
        counts = Counter(op.op for op in self.ops)
        undelegated = Counter(op.op for op in self.ops if not op.delegated)
        folded = sum(op.folded for op in self.ops)
        return {
            "ops": len(self.ops), "delegated": self.delegated, "partitions": self.partitions,
            "threads": self.threads, "whole_ms": round(self.whole_ms, 3),
            "sum_of_ops_ms": round(self.sum_ms, 3),
            "boundary_ops": {name: counts.get(name, 0) for name in BOUNDARY_OPS},
            "folded_dequantize": folded,
            "not_delegated": dict(undelegated.most_common()),
            "by_type": {k: {"count": int(v["count"]), "delegated": int(v["delegated"]),
                            "ms": round(v["ms"], 3),
                            "ms_not_delegated": round(v["ms_not_delegated"], 3)}
                        for k, v in self.by_type().items()},
            "slowest": [asdict(op) | {"ms": round(op.ms, 3)}
                        for op in sorted(self.ops, key=lambda o: -o.ms)[:top]],
        }


def _median_ms(interpreter, feed: dict[int, np.ndarray]) -> float:
    for index, value in feed.items():
        interpreter.set_tensor(index, value)
    times, _ = time_calls(interpreter.invoke, WARMUP, ROUNDS)
    return float(np.median(times)) * 1e3


def _random_feed(interpreter, rng: np.random.Generator) -> dict[int, np.ndarray]:
    feed = {}
    for detail in interpreter.get_input_details():
        dtype, shape = np.dtype(detail["dtype"]), tuple(detail["shape"])
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            low, high = max(info.min, -128), min(info.max, 127)
            feed[detail["index"]] = rng.integers(low, high + 1, shape).astype(dtype)
        else:
            feed[detail["index"]] = rng.standard_normal(shape).astype(dtype)
    return feed


def _load(content: bytes, threads: int):
    cls, _ = interpreter_class()
    interpreter = cls(model_content=content, num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter


def _partitions(interpreter) -> int:
    return sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())


def _constant(model, t: int) -> bool:
    tensor = model.subgraphs[0].tensors[t]
    data = model.buffers[tensor.buffer].data if tensor.buffer else None
    return data is not None and len(data) > 0


def _single_op_models(path: Path):
    """(index, op type, model bytes or None) for each op of subgraph 0, cut out on its own.

    A DEQUANTIZE of a constant (fp16 weights) is folded by XNNPACK into the op that consumes
    it: it goes into that op's model (else the op would see dynamic weights and be refused),
    and gets no model of its own (None).
    """
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    # Buffers stored past the flatbuffer (litert-torch's and the quantiser's weights) are read
    # as bytes, which the schema's Pack writes one Python call per byte: 97% of a profile's
    # time (66 of 69 s on DeepLabv3+ conventional fp16). As arrays they are written at once.
    for buffer in model.buffers:
        if buffer.data is not None and not isinstance(buffer.data, np.ndarray):
            buffer.data = np.frombuffer(buffer.data, dtype=np.uint8)
    graph = model.subgraphs[0]
    names = [flatbuffer_utils.opcode_to_name(model, op.opcodeIndex) or "CUSTOM"
             for op in graph.operators]
    folded = {op.outputs[0]: op for op, name in zip(graph.operators, names, strict=True)
              if name == "DEQUANTIZE" and len(op.inputs) == 1 and _constant(model, op.inputs[0])}
    for index, (op, name) in enumerate(zip(graph.operators, names, strict=True)):
        if name == "DEQUANTIZE" and op.outputs and op.outputs[0] in folded:
            yield index, name, None
            continue
        producers = [folded[t] for t in op.inputs if t in folded]
        single = _cut_out(model, [*producers, op])
        yield index, name, bytes(flatbuffer_utils.convert_object_to_bytearray(single))


def _cut_out(model, ops: list):
    """A model of `ops` (the last one's outputs are its outputs): their constant operands with
    their data, every other tensor they read and do not make an input."""
    from ai_edge_litert import schema_py_generated as schema

    graph = model.subgraphs[0]
    single = schema.ModelT()
    single.version = model.version
    single.operatorCodes = model.operatorCodes
    single.buffers = [schema.BufferT()]
    sub = schema.SubGraphT()
    sub.tensors, remap = [], {}
    for op in ops:
        for t in (*op.inputs, *op.outputs):
            if t < 0 or t in remap:
                continue
            tensor = copy.copy(graph.tensors[t])
            if _constant(model, t):
                single.buffers.append(model.buffers[tensor.buffer])
                tensor.buffer = len(single.buffers) - 1
            else:
                tensor.buffer = 0
            remap[t] = len(sub.tensors)
            sub.tensors.append(tensor)
    made = {t for op in ops for t in op.outputs}
    sub.operators = []
    for op in ops:
        cut = copy.copy(op)
        cut.inputs = [remap.get(t, t) for t in op.inputs]
        cut.outputs = [remap[t] for t in op.outputs]
        cut.intermediates = []
        sub.operators.append(cut)
    sub.inputs = sorted({remap[t] for op in ops for t in op.inputs
                         if t >= 0 and t not in made and sub.tensors[remap[t]].buffer == 0})
    sub.outputs = list(sub.operators[-1].outputs)
    single.subgraphs = [sub]
    return single


def profile_tflite(path: str | Path, threads: int = 1, seed: int = 0) -> OpProfile:
    """Time every op of `path` on its own and the whole model, at `threads` threads."""
    path = Path(path)
    rng = np.random.default_rng(seed)
    whole = _load(path.read_bytes(), threads)
    whole_ms = _median_ms(whole, _random_feed(whole, rng))
    partitions = _partitions(whole)
    ops = []
    for index, name, content in _single_op_models(path):
        if content is None:  # folded into its consumer's model
            ops.append(OpTime(index, name, 0.0, True, folded=True))
            continue
        try:
            interpreter = _load(content, threads)
            ms = _median_ms(interpreter, _random_feed(interpreter, rng))
            delegated = _partitions(interpreter) > 0
        except (RuntimeError, ValueError):  # an op that cannot stand alone: not timed
            ms, delegated = float("nan"), False
        ops.append(OpTime(index, name, ms, delegated))
    return OpProfile(tuple(ops), partitions, whole_ms, threads)
