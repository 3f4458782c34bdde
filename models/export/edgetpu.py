"""Edge TPU: compile with edgetpu_compiler when present, else check compatibility here.

The compatibility check reads the int8 .tflite with the LiteRT interpreter and applies
Coral's documented requirements: full 8-bit quantisation, static shapes, at most three
dimensions larger than one, and only operations the Edge TPU maps.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from models.export.request import ExportRequest

# TFLite builtin names of the operations in Coral's "Supported operations" table
# (coral.ai/docs/edgetpu/models-intro). QUANTIZE/DEQUANTIZE only at the model boundary.
EDGETPU_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE",
    "EXPAND_DIMS", "FULLY_CONNECTED", "L2_NORMALIZATION", "LOGISTIC", "MAXIMUM", "MAX_POOL_2D",
    "MEAN", "MINIMUM", "MUL", "PACK", "PAD", "PRELU", "QUANTIZE", "REDUCE_MAX", "REDUCE_MIN",
    "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR",
    "RSQRT", "SLICE", "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT", "SQUARED_DIFFERENCE", "SQUEEZE",
    "STRIDED_SLICE", "SUB", "SUM", "TANH", "TRANSPOSE", "TRANSPOSE_CONV",
    "UNIDIRECTIONAL_SEQUENCE_LSTM",
})
INTEGER_DTYPES = frozenset({"int8", "uint8", "int32"})  # int32: biases and shape operands


@dataclass
class EdgeTPUCompatibility:
    """What stands between an int8 .tflite and the Edge TPU, op by op."""

    path: str
    op_counts: dict[str, int] = field(default_factory=dict)
    unsupported_ops: dict[str, int] = field(default_factory=dict)
    first_unsupported: str | None = None
    ops_before_first_unsupported: int = 0
    float_tensors: list[str] = field(default_factory=list)
    dynamic_tensors: list[str] = field(default_factory=list)
    high_rank_tensors: list[str] = field(default_factory=list)

    @property
    def total_ops(self) -> int:
        return sum(self.op_counts.values())

    @property
    def compatible(self) -> bool:
        return not (self.unsupported_ops or self.float_tensors or self.dynamic_tensors
                    or self.high_rank_tensors)

    def explain(self) -> str:
        """One paragraph naming each violated requirement with examples."""
        if self.compatible:
            return f"{self.path}: Edge TPU compatible ({self.total_ops} ops, all supported)"
        lines = [f"{self.path}: not Edge TPU compatible"]
        if self.unsupported_ops:
            ops = ", ".join(f"{k}x{v}" for k, v in sorted(self.unsupported_ops.items()))
            lines.append(
                f"unsupported ops: {ops}; the first is {self.first_unsupported} after "
                f"{self.ops_before_first_unsupported}/{self.total_ops} ops, so the compiler "
                f"would run it and everything after it on the CPU"
            )
        for label, items in (("float tensors (not full-integer)", self.float_tensors),
                             ("dynamic-shape tensors", self.dynamic_tensors),
                             ("tensors with >3 dims larger than 1", self.high_rank_tensors)):
            if items:
                lines.append(f"{len(items)} {label}, e.g. {'; '.join(items[:3])}")
        return "\n  ".join(lines)


def _boundary_tensor_ids(interpreter) -> set[int]:
    ids = {d["index"] for d in interpreter.get_input_details()}
    ids |= {d["index"] for d in interpreter.get_output_details()}
    return ids


def check_edgetpu_compatibility(path: Path) -> EdgeTPUCompatibility:
    """Inspect a .tflite against the Edge TPU's documented requirements."""
    from models.runtimes.tflite import make_interpreter

    interpreter = make_interpreter(Path(path), threads=1, builtin_ops_only=True)
    report = EdgeTPUCompatibility(path=str(path))
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    boundary = _boundary_tensor_ids(interpreter)
    ops = interpreter._get_ops_details()
    # Constants (weights, biases) are not activations: the rank rule is about activations.
    activations = {i for op in ops for i in op["outputs"]} | boundary
    seen: set[int] = set()
    for position, op in enumerate(ops):
        name = op["op_name"]
        report.op_counts[name] = report.op_counts.get(name, 0) + 1
        if name not in EDGETPU_OPS:
            report.unsupported_ops[name] = report.unsupported_ops.get(name, 0) + 1
            if report.first_unsupported is None:
                report.first_unsupported = name
                report.ops_before_first_unsupported = position
        is_boundary_op = name in ("QUANTIZE", "DEQUANTIZE")
        for index in [*op["inputs"], *op["outputs"]]:
            if index < 0 or index in seen or index not in tensors:
                continue
            seen.add(index)
            detail = tensors[index]
            label = f"{detail['name']} {detail['dtype'].__name__}{list(detail['shape'])}"
            if detail["dtype"].__name__ not in INTEGER_DTYPES and not (
                is_boundary_op or index in boundary
            ):
                report.float_tensors.append(label)
            if any(int(s) < 0 for s in detail.get("shape_signature", detail["shape"])):
                report.dynamic_tensors.append(label)
            if index in activations and sum(int(s) > 1 for s in detail["shape"][:-3]) > 0:
                report.high_rank_tensors.append(label)
    return report


def export_edgetpu(request: ExportRequest) -> dict:
    """Compile the int8 model with edgetpu_compiler if on PATH; else record the check."""
    if request.upstream is None:
        raise ValueError("Edge TPU export needs the int8 .tflite as upstream")
    compat = check_edgetpu_compatibility(request.upstream)
    meta = {"compatible": compat.compatible, "compatibility": compat.explain(),
            "op_counts": compat.op_counts}
    compiler = shutil.which("edgetpu_compiler")
    if compiler is None:
        shutil.copyfile(request.upstream, request.out_path)
        meta.update(compiled=False, converter="none: edgetpu_compiler not on PATH "
                    "(int8 model copied; compatibility checked here)")
        return meta
    out_dir = request.out_path.parent / (request.out_path.stem + "_compiler")
    out_dir.mkdir(exist_ok=True)
    run = subprocess.run([compiler, "-s", "-d", "-k", "10", "-o", str(out_dir),
                          str(request.upstream)], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"edgetpu_compiler failed on {request.upstream}: {run.stderr[-2000:]}")
    compiled = next(out_dir.glob("*_edgetpu.tflite"))
    shutil.copyfile(compiled, request.out_path)
    meta.update(compiled=True, converter=f"{compiler} -s -d -k 10",
                compiler_log=run.stdout[-4000:])
    return meta
