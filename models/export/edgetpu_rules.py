"""Coral's documented Edge TPU requirements as data: one `Rule` per requirement or table row.

Source: "TensorFlow models on the Edge TPU", https://coral.ai/docs/edgetpu/models-intro/
(sections "Model requirements" and "Supported operations"). Each rule carries the text it
checks: quoted rows of the table, our gloss in [brackets], and [paraphrase] where Coral's
own sentence could not be read here. The page itself came back truncated in our reference
store, so the rows were read from verbatim copies of the table: the current one (compiler
16, reproduced in Axis' ARTPEC-7 DLPU docs) and, for Softmax/Squeeze/StridedSlice, whose
current rows could not be read, the earlier one. A static check against Coral's
documented op table is only as good as that text: "Depending on input/output size"
(Resize*) and "Certain reshapes might not be mapped for large tensor sizes" (Reshape) name
no threshold, so they are not checked; no Transpose row text could be read, so Transpose
gets only the general rank rule.

Axes follow the Edge TPU's view of a tensor as [y][x][z] (its three innermost dimensions);
any dimension before those is a batch dimension. For NHWC that is batch=0, y=1, x=2, z=3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from models.export.edgetpu_graph import Op, Tensor

URL = "https://coral.ai/docs/edgetpu/models-intro/"

# TFLite builtin names of the operations in Coral's "Supported operations" table.
EDGETPU_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE",
    "EXPAND_DIMS", "FULLY_CONNECTED", "L2_NORMALIZATION", "LOGISTIC", "MAXIMUM", "MAX_POOL_2D",
    "MEAN", "MINIMUM", "MUL", "PACK", "PAD", "PRELU", "QUANTIZE", "REDUCE_MAX", "REDUCE_MIN",
    "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR",
    "RSQRT", "SLICE", "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT", "SQUARED_DIFFERENCE", "SQUEEZE",
    "STRIDED_SLICE", "SUB", "SUM", "TANH", "TRANSPOSE", "TRANSPOSE_CONV",
    "UNIDIRECTIONAL_SEQUENCE_LSTM",
})
EIGHT_BIT = frozenset({"int8", "uint8"})
# Inputs of these ops that are parameters (weights, bias), by position.
PARAMETER_INPUTS = {"CONV_2D": (1, 2), "DEPTHWISE_CONV_2D": (1, 2), "FULLY_CONNECTED": (1, 2),
                    "TRANSPOSE_CONV": (1, 3)}
ACTIVATIONS = {1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
SOFTMAX_MAX_ELEMENTS = 16_000


@dataclass(frozen=True)
class Rule:
    """One documented requirement: which ops it applies to (None: all) and its check.

    `check(op)` returns None when the op meets the rule, else what breaks it (shapes,
    axes, options) in a few words.
    """

    name: str
    ops: frozenset[str] | None
    documented: str
    check: Callable[[Op], str | None]

    def applies_to(self, op: Op) -> bool:
        """Whether this rule looks at `op` at all."""
        return self.ops is None or op.name in self.ops


# --- helpers ------------------------------------------------------------------------------

def _batch_axes(rank: int) -> set[int]:
    return set(range(max(rank - 3, 0)))


def _axes(op: Op, position: int = 1) -> list[int] | None:
    """Constant axis operand, normalised against the data input's rank (None if not constant)."""
    axes = op.inputs[position] if len(op.inputs) > position else None
    if axes is None or axes.values is None:
        return None
    rank = len(op.inputs[0].shape)
    return sorted({int(a) % rank for a in np.ravel(axes.values)}) if rank else []


def _activations(op: Op) -> list[Tensor]:
    """Tensors the op computes on at run time: non-constant inputs and its outputs."""
    return [t for t in (*op.inputs, *op.outputs) if t is not None and not t.constant]


def _dims_above_one(shape: tuple[int, ...]) -> int:
    return sum(int(s) > 1 for s in shape)


# --- checks, one per rule ----------------------------------------------------------------

def _supported_op(op: Op) -> str | None:
    return None if op.name in EDGETPU_OPS else "not in the table"


def _full_integer(op: Op) -> str | None:
    if op.name in ("QUANTIZE", "DEQUANTIZE"):
        return None  # their float side is judged by quantize_at_boundary
    floats = [t for t in (*op.inputs, *op.outputs)
              if t is not None and t.dtype.startswith(("float", "bfloat", "complex"))]
    return f"float tensor {floats[0].describe()}" if floats else None


def _int8_activations(op: Op) -> str | None:
    wide = [t for t in op.outputs
            if t.dtype not in EIGHT_BIT and not t.dtype.startswith(("float", "bfloat"))]
    return f"produces {wide[0].describe()}" if wide else None


def _quantize_at_boundary(op: Op) -> str | None:
    if op.name not in ("QUANTIZE", "DEQUANTIZE"):
        return None
    if any(t is not None and t.graph_input for t in op.inputs):
        return None
    if any(t.graph_output for t in op.outputs):
        return None
    src = op.inputs[0].describe() if op.inputs and op.inputs[0] is not None else "?"
    return f"inside the graph: {src} -> {op.outputs[0].describe()}"


def _static_shapes(op: Op) -> str | None:
    dynamic = [t for t in (*op.inputs, *op.outputs) if t is not None and t.dynamic]
    return f"dynamic shape {dynamic[0].describe()}" if dynamic else None


def _constant_parameters(op: Op) -> str | None:
    for position in PARAMETER_INPUTS.get(op.name, ()):
        tensor = op.inputs[position] if len(op.inputs) > position else None
        if tensor is not None and not tensor.constant:
            return f"input {position} {tensor.describe()} is computed at run time"
    return None


def _tensor_rank(op: Op) -> str | None:
    # Constants (weights such as OHWI conv kernels) are parameters, not tensors the TPU
    # lays out as [y][x][z]; the rule is about activations.
    for tensor in _activations(op):
        if _dims_above_one(tensor.shape[:-3]):
            return f"{tensor.describe()} has a dimension > 1 outside the innermost three"
    return None


def _no_fused_activation(op: Op) -> str | None:
    fused = op.options.get("fusedActivationFunction", 0) or 0
    return f"fused {ACTIVATIONS.get(fused, fused)}" if fused else None


def _concatenation_constant_input(op: Op) -> str | None:
    constants = [t for t in op.inputs if t is not None and t.constant]
    if not constants:
        return None
    if len(op.inputs) != 2:
        return f"constant input {constants[0].describe()} among {len(op.inputs)} inputs"
    values = constants[0].values
    if values is not None and np.any(values != constants[0].zero_point):
        return f"constant input {constants[0].describe()} is not all zeros"
    return None


def _same_dilation(op: Op) -> str | None:
    h, w = op.options.get("dilationHFactor", 1), op.options.get("dilationWFactor", 1)
    return f"dilation {h} (y) vs {w} (x)" if h != w else None


def _fully_connected_default_weights(op: Op) -> str | None:
    weights_format = op.options.get("weightsFormat", 0) or 0
    return f"weights format {weights_format} (not DEFAULT)" if weights_format else None


def _fully_connected_1d_output(op: Op) -> str | None:
    out = op.outputs[0]
    return f"output {out.describe()}" if _dims_above_one(out.shape) > 1 else None


def _mean_axes(op: Op) -> str | None:
    axes, shape = _axes(op), op.inputs[0].shape
    if axes is None:
        return "reduction axes are not constant"
    batch = sorted(set(axes) & _batch_axes(len(shape)))
    if batch:
        return f"input {op.inputs[0].describe()} reduced along batch axes {batch}"
    z = len(shape) - 1
    if z in axes and shape[z] % 4:
        return f"input {op.inputs[0].describe()} reduced along z ({shape[z]}, not a multiple of 4)"
    return None


def _no_batch_axes(op: Op) -> str | None:
    axes = _axes(op)
    if axes is None:
        return "reduction axes are not constant"
    batch = sorted(set(axes) & _batch_axes(len(op.inputs[0].shape)))
    return f"input {op.inputs[0].describe()} reduced along batch axes {batch}" if batch else None


def _pad_no_batch(op: Op) -> str | None:
    paddings = op.inputs[1].values if len(op.inputs) > 1 and op.inputs[1] else None
    if paddings is None:
        return "paddings are not constant"
    rank = len(op.inputs[0].shape)
    batch = [a for a in sorted(_batch_axes(rank)) if np.any(paddings[a] != 0)]
    return f"input {op.inputs[0].describe()} padded along batch axes {batch}" if batch else None


def _pack_no_batch(op: Op) -> str | None:
    rank = len(op.outputs[0].shape)
    axis = int(op.options.get("axis", 0)) % max(rank, 1)
    return f"packed along batch axis {axis} -> {op.outputs[0].describe()}" \
        if axis in _batch_axes(rank) else None


def _prelu_alpha_1d(op: Op) -> str | None:
    alpha = op.inputs[1] if len(op.inputs) > 1 else None
    if alpha is not None and _dims_above_one(alpha.shape[:-1]):
        return f"alpha {alpha.describe()}"
    return None


def _resize_3d(op: Op) -> str | None:
    for tensor in (op.inputs[0], op.outputs[0]):
        if tensor is not None and _dims_above_one(tensor.shape[:-3]):
            return f"{tensor.describe()} is not 3-dimensional (batch > 1)"
    return None


def _softmax_1d(op: Op) -> str | None:
    shape = op.inputs[0].shape
    if _dims_above_one(shape) > 1:
        return f"input {op.inputs[0].describe()} is not 1-D"
    if int(np.prod(shape, dtype=np.int64)) > SOFTMAX_MAX_ELEMENTS:
        return f"input {op.inputs[0].describe()} has more than {SOFTMAX_MAX_ELEMENTS} elements"
    return None


def _squeeze_leading_ones(op: Op) -> str | None:
    shape = op.inputs[0].shape
    dims = op.options.get("squeezeDims")
    squeezed = ([int(d) % len(shape) for d in dims] if dims is not None and len(dims)
                else [i for i, s in enumerate(shape) if s == 1])
    moved = [d for d in squeezed if any(s != 1 for s in shape[:d])]
    return f"input {op.inputs[0].describe()} squeezes axes {moved} after a dimension > 1" \
        if moved else None


def _strided_slice_unit_strides(op: Op) -> str | None:
    strides = op.inputs[3].values if len(op.inputs) > 3 and op.inputs[3] else None
    if strides is None:
        return "strides are not constant"
    if np.any(strides != 1):
        return f"strides {np.ravel(strides).tolist()}"
    masks = {k: op.options.get(k, 0) for k in ("ellipsisMask", "newAxisMask")}
    set_masks = {k: v for k, v in masks.items() if v}
    return f"{set_masks}" if set_masks else None


# Coral's overview sentence (read on coral.ai itself); the table rows below are quoted.
FULLY_8_BIT = ("It supports only TensorFlow Lite models that are fully 8-bit quantized and "
               "then compiled specifically for the Edge TPU.")

RULES: tuple[Rule, ...] = (
    Rule("supported_op", None,
         "[paraphrase] Only the operations in the Supported operations table map to the Edge "
         "TPU; the compiler partitions the model once, so everything after the first "
         "unsupported operation runs on the CPU.", _supported_op),
    Rule("full_integer", None, FULLY_8_BIT, _full_integer),
    Rule("int8_activations", None,
         f"{FULLY_8_BIT} [int32 belongs to biases and shape operands, which are constants; "
         "an op that produces int32/int16 is not 8-bit]", _int8_activations),
    Rule("quantize_at_boundary", frozenset({"QUANTIZE", "DEQUANTIZE"}),
         f"{FULLY_8_BIT} [suite policy, stricter than the table's Quantize row, which "
         "states no limitation: QUANTIZE/DEQUANTIZE only where the model takes its input or "
         "gives its output; one inside the graph brackets a float or re-scaled segment]",
         _quantize_at_boundary),
    Rule("static_shapes", None,
         "[paraphrase] Tensor sizes are constant at compile time (no dynamic sizes).",
         _static_shapes),
    Rule("constant_parameters", frozenset(PARAMETER_INPUTS),
         "[paraphrase] Model parameters (such as bias tensors) are constant at compile time.",
         _constant_parameters),
    Rule("tensor_rank", None,
         "If a tensor has more than 3 dimensions, then only the 3 innermost dimensions may "
         "have a size greater than 1.", _tensor_rank),
    Rule("no_fused_activation",
         frozenset({"AVERAGE_POOL_2D", "MAX_POOL_2D", "CONCATENATION"}),
         "AveragePool2d, MaxPool2d, Concatenation: No fused activation function.",
         _no_fused_activation),
    Rule("concatenation_constant_input", frozenset({"CONCATENATION"}),
         "Concatenation: If any input is a compile-time constant tensor, there must be only 2 "
         "inputs, and this constant tensor must be all zeroes (effectively, a zero-padding op).",
         _concatenation_constant_input),
    Rule("conv_same_dilation", frozenset({"CONV_2D", "DEPTHWISE_CONV_2D"}),
         "Conv2d, DepthwiseConv2d: Must use the same dilation in x and y dimensions.",
         _same_dilation),
    Rule("fully_connected_default_weights", frozenset({"FULLY_CONNECTED"}),
         "FullyConnected: Only the default format is supported for fully-connected weights.",
         _fully_connected_default_weights),
    Rule("fully_connected_1d_output", frozenset({"FULLY_CONNECTED"}),
         "FullyConnected: Output tensor is one-dimensional.", _fully_connected_1d_output),
    Rule("mean_axes", frozenset({"MEAN"}),
         "Mean: No reduction in batch dimension. If a z-reduction, the z-dimension must be "
         "multiple of 4. (Earlier table: Supports reduction along x- and/or y-dimensions "
         "only.)", _mean_axes),
    Rule("reduce_no_batch", frozenset({"REDUCE_MAX", "REDUCE_MIN"}),
         "ReduceMax, ReduceMin: Cannot operate on the batch dimension.", _no_batch_axes),
    Rule("pad_no_batch", frozenset({"PAD"}),
         "Pad: No padding in batch dimension. (Earlier table: Supports padding along x- "
         "and/or y-dimensions only.)", _pad_no_batch),
    Rule("pack_no_batch", frozenset({"PACK"}), "Pack: No packing in batch dimension.",
         _pack_no_batch),
    Rule("prelu_alpha_1d", frozenset({"PRELU"}),
         "PReLU: Alpha must be 1-dimensional (only the innermost dimension can be >1 size).",
         _prelu_alpha_1d),
    Rule("resize_3d", frozenset({"RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"}),
         "ResizeBilinear, ResizeNearestNeighbor: Input/output is a 3-dimensional tensor. "
         "Depending on input/output size, this operation may not be mapped to the Edge TPU "
         "to avoid loss in precision.", _resize_3d),
    Rule("softmax_1d", frozenset({"SOFTMAX"}),
         "Softmax: Supports only 1D input tensor with a max of 16,000 elements.", _softmax_1d),
    Rule("squeeze_leading_ones", frozenset({"SQUEEZE"}),
         "Squeeze: Supported only when input tensor dimensions that have leading 1s (that "
         "is, no relayout needed). For example input tensor with [y][x][z] = 1,1,10 or 1,5,10 "
         "is ok. But [y][x][z] = 5,1,10 is not supported.", _squeeze_leading_ones),
    Rule("strided_slice_unit_strides", frozenset({"STRIDED_SLICE"}),
         "StridedSlice: Supported only when all strides are equal to 1 (that is, effectively "
         "a Stride op), and with ellipsis-axis-mask == 0, and new-axis-max == 0.",
         _strided_slice_unit_strides),
)
RULES_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}

# What the model would have to change to meet each rule. A CPU recipe keeps a costly layer in
# float; the Edge TPU runs only 8-bit integer ops, so there the layer itself has to change.
CHANGES: dict[str, str] = {
    "supported_op": "express the layer with operations in the table",
    "full_integer": "quantise this tensor to 8 bits (no float fallback on the Edge TPU); where "
                    "int8 costs accuracy here, narrow its range in the model (clip, normalise, "
                    "or split an output whose rows span different ranges)",
    "int8_activations": "produce 8-bit activations: int16/int32 ones (a w8a16 or mixed recipe) "
                        "cannot run on the Edge TPU; narrow the range instead",
    "quantize_at_boundary": "remove the requantisation: its consumer needs one scale on all "
                            "inputs (a CONCATENATION after a resize, which keeps its input's "
                            "scale); give the producer that scale, or join tensors of matching "
                            "ranges",
    "static_shapes": "export with fixed input sizes",
    "constant_parameters": "make the weights and bias constants of the file",
    "tensor_rank": "reshape so that at most the 3 innermost dimensions exceed 1",
    "no_fused_activation": "apply the activation as an op of its own after this one",
    "concatenation_constant_input": "concatenate computed tensors only, or pad with zeros (PAD)",
    "conv_same_dilation": "use the same dilation in x and y",
    "fully_connected_default_weights": "store the weights in the default format",
    "fully_connected_1d_output": "flatten so that the output is 1-D, or use a 1x1 convolution",
    "mean_axes": "reduce along x and y only (or z in multiples of 4)",
    "reduce_no_batch": "keep the batch axis out of the reduction",
    "pad_no_batch": "pad along x and y only",
    "pack_no_batch": "pack along another axis than batch",
    "prelu_alpha_1d": "use a per-channel (1-D) alpha",
    "resize_3d": "resize 3-D (y, x, z) tensors",
    "softmax_1d": "move the softmax into post-processing on the host, or flatten it to 1-D "
                  "(at most 16,000 elements)",
    "squeeze_leading_ones": "squeeze leading 1s only (no relayout)",
    "strided_slice_unit_strides": "slice with unit strides, without ellipsis or new-axis masks",
}
# Ops outside the table that an export rewrite (models/export/rewrites.py) replaces.
OP_CHANGES: dict[str, str] = {
    "HARD_SWISH": "export rewrite hardswish_as_mul_relu6 (MUL, and ADD with a fused RELU6)",
}
