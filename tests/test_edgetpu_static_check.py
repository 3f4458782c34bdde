"""The static check against Coral's documented op table (models/export/edgetpu*.py).

Each rule gets a tiny model that breaks it: a Conv plus the offending op on a 1x3x16x16
input, converted to full-integer int8 by the suite's own converters
(`models.export.tflite`: litert-torch, then ai-edge-quantizer static_wi8_ai8), and the
check must flag exactly that rule. Rules that litert-torch never emits alone (it folds a
size-1 batch reduction away, decomposes PReLU, writes Squeeze as Reshape; batch padding or
packing always makes a batch > 1, which the rank rule flags too; the quantizer keeps int8
I/O and brackets every float op with DEQUANTIZE/QUANTIZE) are tested on the op
description the rule reads, and their converted counterparts where one exists.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from models.export.edgetpu import (
    EDGETPU_SRAM_BYTES,
    STATIC_CHECK,
    EdgeTPUCompatibility,
    check_edgetpu_compatibility,
    check_ops,
)
from models.export.edgetpu_graph import Op, Tensor
from models.export.edgetpu_rules import RULES, RULES_BY_NAME

torch = pytest.importorskip("torch")
pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_quantizer")
nn, F = torch.nn, torch.nn.functional

SHAPE = (1, 3, 16, 16)


class ConvThen(nn.Module):
    """Conv2d(3 -> channels) then `tail(self, y)`: the op under test sits after a conv."""

    def __init__(self, tail: Callable, channels: int = 8, **conv) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, channels, 3, padding="same", **conv)
        self.linear = nn.Linear(8, 4)
        self.tail = tail

    def forward(self, x):
        return self.tail(self, self.conv(x))


def _passes_every_rule(m, y):
    # Conv, pool, resize, concat, x/y mean, FC to 1-D, softmax 1-D: all within the rules.
    y = torch.relu(y)
    up = F.interpolate(F.avg_pool2d(y, 2), scale_factor=2, mode="bilinear")
    both = torch.cat([y, up], dim=1).mean(dim=(2, 3))
    return torch.softmax(m.linear(both[:, :8]), dim=1)


# rule -> (model, input shape): each model breaks that rule and no other.
BREAKS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "supported_op": (lambda: ConvThen(lambda m, y: F.hardswish(y)), SHAPE),
    "tensor_rank": (lambda: ConvThen(lambda m, y: y), (2, 3, 16, 16)),
    "constant_parameters": (lambda: ConvThen(
        lambda m, y: F.linear(y.flatten(1)[:, :8], y.flatten(2)[0, :4, :8])), SHAPE),
    "no_fused_activation": (lambda: ConvThen(lambda m, y: torch.relu(F.avg_pool2d(y, 2))),
                            SHAPE),
    "concatenation_constant_input": (lambda: ConvThen(
        lambda m, y: torch.cat([y, torch.ones_like(y)], dim=1)), SHAPE),
    "conv_same_dilation": (lambda: ConvThen(lambda m, y: y, dilation=(1, 2)), SHAPE),
    "fully_connected_1d_output": (lambda: ConvThen(
        lambda m, y: m.linear(y.flatten(2).transpose(1, 2))), SHAPE),
    "mean_axes": (lambda: ConvThen(lambda m, y: y.mean(dim=1, keepdim=True), channels=6),
                  SHAPE),
    "softmax_1d": (lambda: ConvThen(lambda m, y: torch.softmax(y, dim=1)), SHAPE),
    "strided_slice_unit_strides": (lambda: ConvThen(lambda m, y: y[:, :, ::2, :]), SHAPE),
}
# Models whose converter output breaks several rules together (the quantizer brackets an
# op it cannot quantise with DEQUANTIZE/QUANTIZE, so float and boundary rules come along).
BREAK_TOGETHER: dict[str, tuple[Callable[[], nn.Module], set[str]]] = {
    "abs_left_float": (lambda: ConvThen(lambda m, y: torch.abs(y)),
                       {"supported_op", "full_integer", "quantize_at_boundary"}),
    "argmax_int32": (lambda: ConvThen(lambda m, y: y.argmax(dim=1)),
                     {"supported_op", "full_integer", "int8_activations",
                      "quantize_at_boundary"}),
}


def _int8_tflite(module: nn.Module, shape: tuple[int, ...], folder: Path) -> Path:
    """Full-integer int8 .tflite exactly as the suite exports one (fp32, then int8)."""
    from models.export.request import ExportRequest
    from models.export.tflite import export_tflite_fp32, export_tflite_int8

    spec = SimpleNamespace(inputs=[SimpleNamespace(name="image", shape=shape)])
    rng = np.random.default_rng(0)
    example = {"image": rng.standard_normal(shape).astype(np.float32)}
    calibration = [{"image": rng.standard_normal(shape).astype(np.float32)} for _ in range(2)]
    fp32, int8 = folder / "fp32.tflite", folder / "int8.tflite"
    export_tflite_fp32(ExportRequest(spec, module.eval(), example, fp32))
    export_tflite_int8(ExportRequest(spec, module, example, int8, calibration=calibration,
                                     upstream=fp32))
    return int8


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Callable[[str], EdgeTPUCompatibility]:
    """Check report of a named tiny model; each converts once per module."""
    cache: dict[str, EdgeTPUCompatibility] = {}
    models = {name: factory_shape for name, factory_shape in BREAKS.items()}
    models.update({name: (factory, SHAPE) for name, (factory, _) in BREAK_TOGETHER.items()})
    models["passes"] = (lambda: ConvThen(_passes_every_rule), SHAPE)
    models["large"] = (lambda: _LargeParameters(), SHAPE)

    def get(name: str) -> EdgeTPUCompatibility:
        if name not in cache:
            factory, shape = models[name]
            path = _int8_tflite(factory(), shape, tmp_path_factory.mktemp(name))
            cache[name] = check_edgetpu_compatibility(path)
        return cache[name]
    return get


@pytest.mark.parametrize("rule", sorted(BREAKS))
def test_converted_model_breaks_exactly_its_rule(rule: str, converted) -> None:
    """A Conv + one offending op, converted like the suite's int8 export, breaks only it."""
    report = converted(rule)
    assert report.rules_violated == [rule], report.explain()
    assert not report.compatible
    first = next(v for v in report.violations if v.rule.name == rule)
    assert report.ops_before_first_violation == first.op.index
    assert f"{rule}: op {first.op.index} {first.op.name}" in report.explain()
    assert RULES_BY_NAME[rule].documented in report.explain()


@pytest.mark.parametrize("name", sorted(BREAK_TOGETHER))
def test_converted_model_breaks_rules_together(name: str, converted) -> None:
    """Float fallback and int32 outputs, as the quantizer really writes them."""
    report = converted(name)
    assert set(report.rules_violated) == BREAK_TOGETHER[name][1], report.explain()


def test_tiny_model_passes_every_rule(converted) -> None:
    """Conv, pooling, resize, concat, x/y mean, FC and 1-D softmax meet every rule."""
    report = converted("passes")
    assert report.compatible, report.explain()
    assert {"CONV_2D", "AVERAGE_POOL_2D", "RESIZE_BILINEAR", "CONCATENATION", "MEAN",
            "FULLY_CONNECTED", "SOFTMAX"} <= set(report.op_counts)
    assert report.tpu_op_fraction == 1.0
    assert report.explain().startswith(f"{report.path}: passes the {STATIC_CHECK}")


def test_parameter_bytes_are_the_constant_tensors(converted) -> None:
    """parameter_bytes equals the constants the interpreter holds (read another way)."""
    from models.runtimes.tflite import make_interpreter

    report = converted("passes")
    interpreter = make_interpreter(Path(report.path), threads=1, builtin_ops_only=True)
    ops = interpreter._get_ops_details()
    # Constants: op operands that no op produces and the caller does not feed (the
    # interpreter's own scratch tensors are nobody's operand).
    operands = {i for op in ops for i in op["inputs"] if i >= 0}
    produced = {i for op in ops for i in op["outputs"]}
    fed = {d["index"] for d in interpreter.get_input_details()}
    total = sum(interpreter.get_tensor(i).nbytes for i in operands - produced - fed)
    conv = 8 * 3 * 3 * 3 + 8 * 4  # int8 weights + int32 bias, at least
    assert report.parameter_bytes == total >= conv
    assert report.parameter_fraction_of_sram == pytest.approx(total / (8 * 2**20))
    assert "warning" not in report.explain()


class _LargeParameters(nn.Module):
    """A 3000x3000 fully-connected layer: 9,000,000 int8 weights, over 8 MiB."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.up = nn.Linear(8, 3000)
        self.big = nn.Linear(3000, 3000)

    def forward(self, x):
        return self.big(torch.relu(self.up(self.conv(x).mean(dim=(2, 3)))))


def test_parameters_over_sram_warn_but_pass(converted) -> None:
    """Over 8 MiB of parameters is a reported figure and a warning line, not a failure."""
    report = converted("large")
    assert report.compatible, report.explain()
    assert report.parameter_bytes > 3000 * 3000 > EDGETPU_SRAM_BYTES
    assert report.parameter_fraction_of_sram > 1.0
    warning = [line for line in report.explain().splitlines() if "warning" in line]
    assert len(warning) == 1 and "8 MiB on-chip memory" in warning[0], report.explain()


# --- rules tested on the op description they read ----------------------------------------

def t(index: int, shape: tuple[int, ...], dtype: str = "int8", **kw) -> Tensor:
    """A tensor description; `values=` makes it a constant."""
    values = kw.pop("values", None)
    if values is not None:
        data = np.asarray(values, dtype=dtype).reshape(shape).tobytes()
        kw.update(constant=True, data=data, nbytes=len(data))
    return Tensor(index=index, name=f"t{index}", shape=shape, dtype=dtype, **kw)


X = t(0, (1, 16, 16, 8))
AXES_Z, AXES_B = t(1, (1,), "int32", values=[3]), t(1, (1,), "int32", values=[0])


def op(name: str, inputs, outputs, **options) -> Op:
    return Op(index=0, name=name, inputs=tuple(inputs), outputs=tuple(outputs),
              options=options)


# rule -> (an op that breaks it, the same op fixed); every rule runs on both.
DESCRIBED: dict[str, tuple[Op, Op]] = {
    "full_integer": (op("ADD", [t(0, (1, 4, 4, 8), "float32"), X], [X]),
                     op("ADD", [X, X], [X])),
    "int8_activations": (op("RESHAPE", [X, t(1, (2,), "int32", values=[16, 128])],
                            [t(2, (16, 128), "int32")]),
                         op("RESHAPE", [X, t(1, (2,), "int32", values=[16, 128])],
                            [t(2, (16, 128))])),
    "quantize_at_boundary": (op("QUANTIZE", [X], [t(2, (1, 16, 16, 8))]),
                             op("QUANTIZE", [t(0, (1, 16, 16, 8), "float32", graph_input=True)],
                                [X])),
    "static_shapes": (op("RELU", [t(0, (1, 16, 16, 8), dynamic=True)], [X]),
                      op("RELU", [X], [X])),
    "fully_connected_default_weights": (
        op("FULLY_CONNECTED", [t(0, (1, 8)), t(1, (4, 8), values=np.zeros(32))],
           [t(2, (1, 4))], weightsFormat=1),
        op("FULLY_CONNECTED", [t(0, (1, 8)), t(1, (4, 8), values=np.zeros(32))],
           [t(2, (1, 4))], weightsFormat=0)),
    "reduce_no_batch": (op("REDUCE_MAX", [X, AXES_B], [t(2, (16, 16, 8))]),
                        op("REDUCE_MAX", [X, AXES_Z], [t(2, (1, 16, 16))])),
    "prelu_alpha_1d": (op("PRELU", [X, t(1, (8, 1, 1), values=np.ones(8))], [X]),
                       op("PRELU", [X, t(1, (1, 1, 8), values=np.ones(8))], [X])),
    "squeeze_leading_ones": (op("SQUEEZE", [t(0, (5, 1, 10))], [t(1, (5, 10))],
                                squeezeDims=[1]),
                             op("SQUEEZE", [t(0, (1, 5, 10))], [t(1, (5, 10))],
                                squeezeDims=[0])),
    # Padding, packing or resizing along the batch always leaves a batch > 1 on the op's
    # own tensors, which the rank rule flags as well (see test_batch_rules_and_rank).
    "pad_no_batch": (op("PAD", [X, t(1, (4, 2), "int32", values=[1, 0, 0, 0, 0, 0, 0, 0])],
                        [t(2, (2, 16, 16, 8))]),
                     op("PAD", [X, t(1, (4, 2), "int32", values=[0, 0, 1, 1, 0, 0, 0, 0])],
                        [t(2, (1, 18, 16, 8))])),
    "pack_no_batch": (op("PACK", [t(0, (1, 16, 8)), t(1, (1, 16, 8))], [t(2, (2, 1, 16, 8))],
                         axis=0, valuesCount=2),
                      op("PACK", [t(0, (1, 16, 8)), t(1, (1, 16, 8))], [t(2, (1, 2, 16, 8))],
                         axis=1, valuesCount=2)),
    "resize_3d": (op("RESIZE_BILINEAR", [t(0, (2, 16, 16, 8)),
                                         t(1, (2,), "int32", values=[32, 32])],
                     [t(2, (2, 32, 32, 8))]),
                  op("RESIZE_BILINEAR", [X, t(1, (2,), "int32", values=[32, 32])],
                     [t(2, (1, 32, 32, 8))])),
}
BATCH_RULES = ("pad_no_batch", "pack_no_batch", "resize_3d")


def _violated(one: Op, rules=RULES) -> set[str]:
    return {v.rule.name for v in check_ops([one], rules)}


@pytest.mark.parametrize("rule", sorted(DESCRIBED))
def test_described_op_breaks_exactly_its_rule(rule: str) -> None:
    """The broken op trips this rule alone (beside rank for batch > 1); the fixed op none."""
    broken, fixed = DESCRIBED[rule]
    if rule in BATCH_RULES:
        assert _violated(broken) == {rule, "tensor_rank"}
        without_rank = tuple(r for r in RULES if r.name != "tensor_rank")
        assert _violated(broken, without_rank) == {rule}
    else:
        assert _violated(broken) == {rule}
    assert _violated(fixed) == set()


@pytest.mark.parametrize(("broken", "rule"), [
    (op("SOFTMAX", [t(0, (16_384,))], [t(1, (16_384,))]), "softmax_1d"),
    (op("STRIDED_SLICE", [X, *(t(i, (4,), "int32", values=[0, 0, 0, 0]) for i in (1, 2)),
                          t(3, (4,), "int32", values=[1, 1, 1, 1])], [X], newAxisMask=2),
     "strided_slice_unit_strides"),
    (op("CONCATENATION", [X, X, t(2, (1, 16, 16, 8), values=np.zeros(2048))],
        [t(3, (1, 16, 16, 24))]), "concatenation_constant_input"),
    (op("MEAN", [X, AXES_B], [t(2, (16, 16, 8))]), "mean_axes"),
    (op("MAX_POOL_2D", [X], [t(2, (1, 8, 8, 8))], fusedActivationFunction=3),
     "no_fused_activation"),
    (op("DEQUANTIZE", [X], [t(2, (1, 16, 16, 8), "float32")]), "quantize_at_boundary"),
])
def test_more_documented_conditions(broken: Op, rule: str) -> None:
    """The other clauses of a table row: >16,000 elements, masks, 3 inputs, batch axes."""
    assert _violated(broken) == {rule}


def test_documented_zero_padding_concatenation_passes() -> None:
    """A constant all-zero second input is Coral's allowed zero-padding concatenation."""
    zero_point = 5
    padding = t(1, (1, 16, 16, 8), values=np.full(2048, zero_point), zero_point=zero_point)
    assert _violated(op("CONCATENATION", [X, padding], [t(2, (1, 16, 16, 16))])) == set()


def test_every_rule_has_a_breaking_test() -> None:
    """A new rule in RULES needs a model or an op description here."""
    covered = set(BREAKS) | set(DESCRIBED) | {r for _, rules in BREAK_TOGETHER.values()
                                              for r in rules}
    assert covered == set(RULES_BY_NAME)


def test_explain_names_rule_op_shapes_and_text() -> None:
    """explain(): one line per violated rule with op index/name, shapes and Coral's text."""
    mean = Op(index=7, name="MEAN", inputs=(X, AXES_B), outputs=(t(2, (16, 16, 8)),))
    report = EdgeTPUCompatibility(path="m.tflite", op_counts={"CONV_2D": 7, "MEAN": 1},
                                  violations=check_ops([mean]),
                                  parameter_bytes=EDGETPU_SRAM_BYTES + 1)
    text = report.explain()
    assert text.splitlines()[0] == (f"m.tflite: 1 rule violated in the {STATIC_CHECK}; "
                                    "the first violation is op 7 of 8")
    assert "mean_axes: op 7 MEAN -> t2 int8[16, 16, 8] (input t0 int8[1, 16, 16, 8] reduced " \
           "along batch axes [0])" in text
    assert RULES_BY_NAME["mean_axes"].documented in text
    assert "warning: constant parameters 8,388,609 bytes" in text
    assert report.tpu_op_fraction == 7 / 8
    assert "edgetpu_compiler would map" not in text


def test_every_rule_says_what_would_have_to_change() -> None:
    from models.export.edgetpu_rules import CHANGES

    assert set(CHANGES) == {rule.name for rule in RULES}
    assert all(len(text) > 10 for text in CHANGES.values())


def test_layers_to_change_name_the_module_and_the_rewrite(converted) -> None:
    """Full integer leaves no float fallback: the case names each layer to change, by its
    PyTorch module, with the change (an op outside the table: the export rewrite for it)."""
    from models.export.edgetpu import layers_text
    from models.localise import tflite_module_namer

    report = converted("supported_op")  # conv -> F.hardswish: HARD_SWISH
    named = report.layers_to_change(lambda tensor: "backbone.act")  # a namer that knows it
    rows = [r for r in named if r["rule"] == "supported_op"]
    assert rows and rows[0]["layer"] == "backbone.act", rows
    assert rows[0]["ops"][0].startswith("HARD_SWISH op ")
    assert "hardswish_as_mul_relu6" in rows[0]["change"]
    text = layers_text(named)
    assert text.startswith("layers that would have to change for the Edge TPU")
    assert "HARD_SWISH op" in text and "supported_op" in text
    assert converted("passes").layers_to_change() == []
    # The real namer: F.hardswish in ConvThen's own forward belongs to no submodule.
    factory, _ = BREAKS["supported_op"]
    rows = report.layers_to_change(tflite_module_namer(factory()))
    assert [r["layer"] for r in rows if r["rule"] == "supported_op"] == ["ConvThen.forward"]
