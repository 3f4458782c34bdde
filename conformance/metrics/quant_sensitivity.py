"""Which layers cost a quantised TFLite model its accuracy: each op's error, own and carried.

A quantised file and its float upstream come from the same litert-torch graph, and
ai-edge-quantizer keeps tensor names, so every op output of the quantised model is matched to
the float tensor of the same name. Per op, pooled over the images (ONNX Runtime's
qdq_loss_debug and the TFLite quantization debugger measure the same two things):
SNRs are averaged over channels (see `_Pool`).
- own: the float model's activation quantised and dequantised with that tensor's scale and
  zero point (qdq_loss_debug's `qdq_err`), and the op's quantised weights against the float
  ones: the error this layer adds by itself, fed float inputs;
- carried: the quantised model's tensor against the float one, everything upstream included
  (qdq_loss_debug's `xmodel_err`);
- added: how far the carried SNR falls at this op below the lowest carried SNR of its inputs.
Layers rank by their own SNR, worst first: that order is what the int8 repair search tries.
No torch here: numpy and the TFLite interpreter only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

SNR_CAP_DB = 200.0  # an unquantised (float) tensor or identical values count as this


@dataclass(frozen=True)
class LayerSensitivity:
    """One op of the quantised model against the float model."""

    op_index: int
    op: str
    tensor: str  # output tensor name: what an ai-edge-quantizer recipe regex selects
    dtype: str  # the output's type in the quantised model (int8, int16, float32)
    own_snr_db: float  # activation quantise-dequantise alone (SNR_CAP_DB for a float output)
    input_snr_db: float  # the worst of its activation inputs, quantise-dequantised alone
    weight_snr_db: float  # the op's quantised weights vs float (SNR_CAP_DB when none)
    carried_snr_db: float  # quantised model's tensor vs float model's
    added_db: float  # carried SNR lost at this op, below the worst of its inputs

    @property
    def own_db(self) -> float:
        """The layer's own error, fed float inputs: the worst of its quantised inputs, its
        weights and its output. An outlier tensor thus ranks its producer and its consumers:
        keeping one without the others leaves the damage in place."""
        return min(self.own_snr_db, self.input_snr_db, self.weight_snr_db)

    @property
    def layer(self) -> str:
        """A readable label: the module path litert-torch put first in the tensor name."""
        return layer_label(self.tensor)

    def to_json(self) -> dict:
        """JSON-safe row for the report (finite numbers, label included)."""
        row = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        row["layer"], row["own_db"] = self.layer, round(self.own_db, 3)
        return row


def layer_label(tensor: str) -> str:
    """'pkg.Model/torch.nn.Sequential_decoder/torch.nn.Conv2d_0;1' -> 'decoder.Conv2d_0'."""
    location = tensor.split(";")[0]
    parts = [p.rsplit(".", 1)[-1] for p in location.split("/")[1:]]
    # 'Sequential_decoder' names the attribute after the class; a bare index keeps its class.
    short = [p.split("_", 1)[1] if "_" in p and not p.rsplit("_", 1)[1].isdigit() else p
             for p in parts]
    return ".".join(short) or location


class _Pool:
    """Signal and noise power per channel (last axis), pooled over images, per tensor.

    The SNR is the mean over channels of each channel's SNR in dB: one outlier channel (the
    classic reason a per-tensor int8 scale fails) would dominate a whole-tensor SNR and hide
    the channels it rounds to zero.
    """

    def __init__(self) -> None:
        self.signal: dict[str, np.ndarray] = {}
        self.noise: dict[str, np.ndarray] = {}

    def add(self, name: str, ref: np.ndarray, got: np.ndarray) -> None:
        ref64, got64 = ref.astype(np.float64), got.astype(np.float64)
        axes = tuple(range(ref64.ndim - 1))
        signal = np.sum(ref64 ** 2, axis=axes).reshape(-1)
        noise = np.sum((ref64 - got64) ** 2, axis=axes).reshape(-1)
        if name in self.signal and self.signal[name].shape == signal.shape:
            signal, noise = signal + self.signal[name], noise + self.noise[name]
        self.signal[name], self.noise[name] = signal, noise

    def snr_db(self, name: str) -> float:
        signal, noise = self.signal.get(name), self.noise.get(name)
        if signal is None or not np.any(noise):
            return SNR_CAP_DB
        live = signal > 0  # channels that are zero in the float model say nothing
        if not np.any(live):
            return -SNR_CAP_DB
        with np.errstate(divide="ignore"):
            per_channel = 10.0 * np.log10(signal[live] / noise[live])
        return float(np.mean(np.clip(per_channel, -SNR_CAP_DB, SNR_CAP_DB)))


def _dequantize(value: np.ndarray, detail: dict) -> np.ndarray | None:
    """Float values of a tensor; per-channel scales along their axis. None if unquantised int."""
    if not np.issubdtype(value.dtype, np.integer):
        return value.astype(np.float32)
    params = detail.get("quantization_parameters") or {}
    scales = np.asarray(params.get("scales", ()), dtype=np.float64)
    zeros = np.asarray(params.get("zero_points", ()), dtype=np.float64)
    if scales.size == 0:
        return None
    if scales.size > 1:  # per-channel (weights)
        shape = [1] * value.ndim
        shape[int(params.get("quantized_dimension", 0))] = scales.size
        scales, zeros = scales.reshape(shape), zeros.reshape(shape)
    return ((value.astype(np.float64) - zeros) * scales).astype(np.float32)


def _fake_quant(value: np.ndarray, detail: dict, dtype) -> np.ndarray:
    """Float values quantised to `dtype` with the tensor's (per-tensor) scale and zero point."""
    from models.runtimes.tflite import dequantize, quantize

    params = detail.get("quantization_parameters") or {}
    scale = float(np.asarray(params["scales"]).reshape(-1)[0])
    zero = int(np.asarray(params.get("zero_points", [0])).reshape(-1)[0])
    return dequantize(quantize(value, scale, zero, dtype), scale, zero)


def _inspected(path: Path, inputs: dict[str, np.ndarray], input_names: Sequence[str]):
    """A runner on builtin kernels with every tensor kept (the file's own op list and names),
    as layer-wise localisation reads a TFLite file; it feeds NHWC and int8 inputs itself."""
    from models.runtimes.base import IOSpec
    from models.runtimes.tflite import TFLiteRunner

    io = IOSpec(inputs={n: tuple(inputs[n].shape) for n in input_names}, outputs=())
    return TFLiteRunner(path, io, threads=2, inspect=True)


def layer_sensitivity(float_path: Path, quant_path: Path,
                      inputs: Sequence[dict[str, np.ndarray]],
                      input_names: Sequence[str]) -> list[LayerSensitivity]:
    """Every quantised-model op whose output has a float twin, in execution order."""
    float_runner = _inspected(Path(float_path), inputs[0], input_names)
    quant_runner = _inspected(Path(quant_path), inputs[0], input_names)
    fl, qu = float_runner.interpreter, quant_runner.interpreter
    f_by_name = {d["name"]: d for d in fl.get_tensor_details()}
    q_details = {d["index"]: d for d in qu.get_tensor_details()}
    ops = qu._get_ops_details()  # the only op-order listing the interpreter offers
    # A tensor no op produces and that is no model input: a weight or bias.
    produced = {i for op in ops for i in op["outputs"]} | \
        {d["index"] for d in qu.get_input_details()}
    own, carried, weights = _Pool(), _Pool(), _Pool()
    for sample in inputs:
        float_runner.run(sample)
        quant_runner.run(sample)
        for index in (d["index"] for d in qu.get_input_details()):  # the input's own rounding
            pair = _twin_values(qu, fl, q_details.get(index), f_by_name)
            if pair:
                _add_activation(own, carried, q_details[index], *pair)
        for op in ops:
            for index in op["inputs"]:
                detail = q_details.get(index)
                pair = _twin_values(qu, fl, detail, f_by_name)
                if pair and index not in produced and detail["name"] not in weights.signal:
                    got = _dequantize(pair[0], detail) \
                        if np.issubdtype(pair[0].dtype, np.integer) else None
                    if got is not None:
                        weights.add(detail["name"], pair[1], got)
            for index in op["outputs"]:
                pair = _twin_values(qu, fl, q_details.get(index), f_by_name)
                if pair:
                    _add_activation(own, carried, q_details[index], *pair)
    return _rows(ops, q_details, own, carried, weights)


def _twin_values(quant, floating, detail: dict | None,
                 float_by_name: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """(quantised value, float twin's value) of a tensor; None when either is unreadable."""
    twin = float_by_name.get(detail["name"]) if detail else None
    if twin is None:
        return None
    try:
        return quant.get_tensor(detail["index"]), floating.get_tensor(twin["index"])
    except ValueError:  # tensors without data (optimised away)
        return None


def _add_activation(own: _Pool, carried: _Pool, detail: dict, value: np.ndarray,
                    ref: np.ndarray) -> None:
    """The tensor's carried error, and its own: the float value through its quantiser."""
    got = _dequantize(value, detail)
    if got is None or got.shape != ref.shape:
        return
    carried.add(detail["name"], ref, got)
    own.add(detail["name"], ref, _fake_quant(ref, detail, value.dtype)
            if np.issubdtype(value.dtype, np.integer) else ref)


def _rows(ops, q_details, own: _Pool, carried: _Pool,
          weights: _Pool) -> list[LayerSensitivity]:
    rows = []
    for k, op in enumerate(ops):
        out = next((q_details[i] for i in op["outputs"] if q_details[i]["name"] in carried.signal),
                   None)
        if out is None:
            continue
        activations = [q_details[i]["name"] for i in op["inputs"]
                       if i in q_details and q_details[i]["name"] in carried.signal]
        upstream = [carried.snr_db(n) for n in activations]
        weight_names = [q_details[i]["name"] for i in op["inputs"]
                        if i in q_details and q_details[i]["name"] in weights.signal]
        weight_snr = min((weights.snr_db(n) for n in weight_names), default=SNR_CAP_DB)
        carried_snr = carried.snr_db(out["name"])
        worst_input = min(upstream, default=SNR_CAP_DB)
        rows.append(LayerSensitivity(
            op_index=k, op=op["op_name"], tensor=out["name"], dtype=np.dtype(out["dtype"]).name,
            own_snr_db=own.snr_db(out["name"]),
            input_snr_db=min((own.snr_db(n) for n in activations), default=SNR_CAP_DB),
            weight_snr_db=weight_snr,
            carried_snr_db=carried_snr, added_db=max(0.0, worst_input - carried_snr)))
    return rows


def ranked(rows: Sequence[LayerSensitivity]) -> list[LayerSensitivity]:
    """Most sensitive first: lowest own SNR, ties broken by the larger carried drop."""
    return sorted(rows, key=lambda r: (r.own_db, -r.added_db, r.op_index))
