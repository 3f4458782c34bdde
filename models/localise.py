"""Where a parity failure starts: an export's intermediate tensors against PyTorch's, by layer.

PyTorch intermediates come from forward hooks on every named module; ONNX ones from a copy of
the graph whose every node output is a graph output; TFLite ones from the interpreter with all
tensors preserved. Exported tensors are mapped to modules by name (ONNX scope names from
torch.onnx.export, litert-torch module paths), else by execution order among tensors of the
same shape (NCHW or NHWC). The first layer whose SNR falls below a floor, or sharply below
every layer before it, is named.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from conformance.metrics.parity import cosine_similarity, snr_db
from models.formats import FORMATS, precision_of

SNR_FLOOR_DB = 30.0  # below this a layer has clearly diverged
SNR_DROP_DB = 20.0  # ...or when it falls this much below every mapped layer before it
# int8 activations carry ~25-35 dB of quantisation noise in every layer, so a float floor
# would always name the first layer; there a layer diverges below 15 dB or on a 10 dB drop.
INT8_THRESHOLDS_DB = (15.0, 10.0)
DROP_CEILING_DB = 60.0  # drops between float-noise levels (inf -> 120 dB) are not divergence
SNR_CAP_DB = 200.0  # identical tensors (inf) count as this in drops
LOOKAHEAD = 6  # order mapping: same-shaped candidates considered per module
SUSTAIN = 0.75  # a divergence stays down: this share of the layers after it diverged too
SETTLE = 2  # ...and so did the layers right after it


def localisable(format_name: str) -> bool:
    """Whether the format's row says its intermediates can be compared layer by layer."""
    row = FORMATS.get(format_name)
    return bool(row and row.localisable)


def thresholds_db(format_name: str) -> tuple[float, float]:
    """(SNR floor, drop) below which a layer of this format has diverged."""
    if precision_of(format_name) == "int8":
        return INT8_THRESHOLDS_DB
    return SNR_FLOOR_DB, SNR_DROP_DB


class Tensor(NamedTuple):
    """An exported intermediate: its name, the module it belongs to (if known), its value."""

    name: str
    owner: str | None
    value: np.ndarray
    nhwc: bool  # 4-D values are NHWC (TFLite): decides C == H == W cases


@dataclass(frozen=True)
class LayerDiff:
    """One PyTorch module's output against the exported tensor mapped to it."""

    layer: str
    kind: str
    shape: tuple[int, ...]
    snr_db: float
    cosine: float
    exported: str


@dataclass(frozen=True)
class Localisation:
    """Per-layer figures in execution order and the first divergent layer (None if none)."""

    format: str
    rows: tuple[LayerDiff, ...]
    index: int | None
    mapping: str  # "name" or "order"

    @property
    def first_divergent(self) -> str | None:
        """Module path of the first divergent layer."""
        return None if self.index is None else self.rows[self.index].layer

    def summary(self) -> str:
        """'first diverging layer: X (SNR a → b dB)' or why none was named."""
        if not self.rows:
            return f"localisation: no {self.format} tensor could be mapped to a PyTorch module"
        if self.index is None:
            low = min(self.rows, key=lambda r: r.snr_db)
            floor = thresholds_db(self.format)[0]
            return (f"no diverging layer: every mapped layer stays above {floor:g} dB "
                    f"without a sharp drop (lowest {low.layer}, {_db(low.snr_db)} dB)")
        row = self.rows[self.index]
        before = _db(self.rows[self.index - 1].snr_db) if self.index else "input"
        # What lies between the last healthy row and this one (ops that are not modules, such
        # as SemiVL's text similarity, have no row of their own) holds the break too.
        after = f" after {self.rows[self.index - 1].layer}" if self.index else ""
        return (f"first diverging layer: {row.layer} ({row.kind}){after} "
                f"(SNR {before} → {_db(row.snr_db)} dB, cosine {row.cosine:.4f})")

    def table(self, max_rows: int = 10) -> str:
        """The rows around the divergence (or the worst rows' neighbourhood) as text."""
        if not self.rows:
            return ""
        start, rows = self.rows_around(max_rows)
        lines = [f"  {'layer':<40} {'shape':<20} {'snr_db':>8} {'cosine':>8}  {self.format} tensor"]
        for k, row in enumerate(rows, start):
            mark = ">" if k == self.index else " "
            lines.append(f"{mark} {row.layer[-40:]:<40} {row.shape!s:<20} "
                         f"{_db(row.snr_db):>8} {row.cosine:>8.4f}  {row.exported[-60:]}")
        return "\n".join(lines)

    def rows_around(self, max_rows: int = 10) -> tuple[int, tuple[LayerDiff, ...]]:
        """(index of the first row shown, rows) around the divergence, else the worst row."""
        if not self.rows:
            return 0, ()
        centre = self.index if self.index is not None else int(
            np.argmin([r.snr_db for r in self.rows]))
        start = max(0, min(centre - max_rows // 2 + 1, len(self.rows) - max_rows))
        return start, self.rows[start : start + max_rows]

    def layer_table(self, max_rows: int = 10) -> list[dict]:
        """The rows of `table` as JSON-safe dicts for the report; `diverged` marks the first."""
        start, rows = self.rows_around(max_rows)
        return [{"layer": row.layer, "kind": row.kind, "shape": list(row.shape),
                 "snr_db": row.snr_db, "cosine": row.cosine, "exported": row.exported,
                 "diverged": k == self.index} for k, row in enumerate(rows, start)]

    def explain(self) -> str:
        """Summary line, mapping used and the table."""
        return f"{self.summary()} [mapped by {self.mapping}, {len(self.rows)} layers]\n" \
               f"{self.table()}"


def _db(value: float) -> str:
    return "inf" if math.isinf(value) and value > 0 else f"{value:.1f}"


def torch_intermediates(model, inputs: dict[str, np.ndarray],
                        input_names: Sequence[str]) -> list[tuple[str, str, np.ndarray]]:
    """(module path, class name, output) for every named module, in execution order."""
    import torch

    captured: list[tuple[str, str, np.ndarray]] = []

    def hook(name: str):
        def record(module, args, output) -> None:
            if isinstance(output, (tuple, list)):
                # Several tensors (a backbone's feature list) have no one exported tensor to
                # compare with; the modules that made them have rows of their own.
                tensors = [o for o in output if isinstance(o, torch.Tensor)]
                output = tensors[0] if len(tensors) == 1 else None
            if isinstance(output, torch.Tensor) and output.is_floating_point():
                # Copied now: a later in-place op (ReLU(inplace=True)) would change it.
                captured.append((name, type(module).__name__,
                                 output.detach().float().cpu().numpy().copy()))
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            model(*[torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in input_names])
    finally:
        for handle in handles:
            handle.remove()
    rows = []
    for k, (name, kind, value) in enumerate(captured):
        previous = captured[k - 1] if k else None
        # A container's hook fires right after its last child's, with the same tensor.
        if previous and previous[0].startswith(name + ".") \
                and previous[2].shape == value.shape and np.array_equal(previous[2], value):
            continue
        rows.append((name, kind, value))
    return rows


def onnx_module_path(node_name: str) -> str | None:
    """Module path from a torch.onnx.export node name ('/aspp/branches.4/project/project.0/Conv'
    -> 'aspp.branches.4.project.0'); scope parts restart relative to their parent."""
    parts = node_name.split("/")[1:-1] if node_name.startswith("/") else []
    full, previous = "", ""
    for part in parts:
        if previous and part.startswith(previous + "."):
            full += part[len(previous):]
        else:
            full = f"{full}.{part}" if full else part
        previous = part
    return full or None


def onnx_intermediates(path: Path, inputs: dict[str, np.ndarray],
                       input_names: Sequence[str]) -> list[Tensor]:
    """Every float node output with its module path, in graph order."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    outputs = {o.name for o in model.graph.output}
    owners: dict[str, str | None] = {}
    for node in model.graph.node:
        for name in node.output:
            if name:
                owners[name] = onnx_module_path(node.name)
                if name not in outputs:
                    model.graph.output.append(onnx.ValueInfoProto(name=name))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {i.name: np.ascontiguousarray(inputs[ours], dtype=np.float32)
            for i, ours in zip(session.get_inputs(), input_names, strict=True)}
    names = [o.name for o in session.get_outputs()]
    values = dict(zip(names, session.run(names, feed), strict=True))
    return [Tensor(name, owners[name], np.asarray(values[name]), nhwc=False) for name in owners
            if name in values and np.issubdtype(np.asarray(values[name]).dtype, np.floating)]


def tflite_intermediates(path: Path, inputs: dict[str, np.ndarray],
                         input_names: Sequence[str]) -> list[Tensor]:
    """Every op output as float (owner not yet resolved), in execution order."""
    from models.runtimes.base import IOSpec
    from models.runtimes.tflite import TFLiteRunner, dequantize

    io = IOSpec(inputs={n: tuple(inputs[n].shape) for n in input_names}, outputs=())
    runner = TFLiteRunner(path, io, inspect=True)
    runner.run(inputs)
    interpreter = runner.interpreter
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    ops = getattr(interpreter, "_get_ops_details", None)  # the only op-order listing there is
    order = [i for op in ops() for i in op["outputs"]] if ops else sorted(details)
    found = []
    for index in order:
        detail = details.get(index)
        if detail is None:
            continue
        try:
            value = interpreter.get_tensor(index)
        except ValueError:  # tensors without data (e.g. optimised away)
            continue
        if np.issubdtype(value.dtype, np.integer):
            scale, zero = detail["quantization"]
            if not scale:
                continue
            value = dequantize(value, scale, zero)
        found.append(Tensor(detail["name"], None, np.asarray(value, dtype=np.float32), True))
    return found


def _module_keys(model) -> dict[tuple[tuple[str, str], ...], str | None]:
    # litert-torch names each module `<class>_<attribute>` along its forward-call stack, which
    # skips ModuleList/ModuleDict (they have no forward): build the same key for each module.
    from torch import nn

    keys: dict[tuple[tuple[str, str], ...], str | None] = {}
    for path, _ in model.named_modules():
        if not path:
            continue
        module, key = model, []
        for part in path.split("."):
            module = module._modules[part]
            if not isinstance(module, (nn.ModuleList, nn.ModuleDict)):
                key.append((type(module).__name__, part))
        keys[tuple(key)] = None if tuple(key) in keys else path  # ambiguous -> None
    return keys


def tflite_module_path(name: str, keys: dict, classes: set[str]) -> str | None:
    """Module path from a litert-torch tensor name (first location before ';'), if known."""
    parts = name.split(";")[0].split("/")[1:]
    key = []
    for part in parts:
        tail = part.rsplit(".", 1)[-1]
        cls = next((c for c in sorted(classes, key=len, reverse=True)
                    if tail.startswith(c + "_")), None)
        if cls is None:
            return None
        key.append((cls, tail[len(cls) + 1:]))
    return keys.get(tuple(key)) if key else None


def tflite_module_namer(model) -> Callable[[str], str | None]:
    """name -> the module path of `model` that a litert-torch tensor name points at."""
    keys = _module_keys(model)
    classes = {type(m).__name__ for m in model.modules()}
    return lambda name: tflite_module_path(name, keys, classes)


def _aligned(tensor: Tensor, shape: tuple[int, ...]) -> np.ndarray | None:
    value = tensor.value
    nhwc = len(shape) == 4 and value.shape == (shape[0], shape[2], shape[3], shape[1])
    if nhwc and (tensor.nhwc or value.shape != shape):
        return value.transpose(0, 3, 1, 2)
    return value if value.shape == shape else None


def _row(torch_row, tensor: Tensor) -> LayerDiff:
    path, kind, ref = torch_row
    got = _aligned(tensor, ref.shape)
    return LayerDiff(path, kind, tuple(ref.shape), snr_db(ref, got), cosine_similarity(ref, got),
                     tensor.name)


def map_by_name(torch_rows, exported) -> list[tuple[int, int]]:
    """(torch row, exported index) pairs: the last same-shaped tensor in the module's scope."""
    pairs, previous = [], None
    for t, (path, _, ref) in enumerate(torch_rows):
        scope = [k for k, tensor in enumerate(exported) if tensor.owner
                 and (tensor.owner == path or tensor.owner.startswith(path + "."))]
        match = next((k for k in reversed(scope)
                      if _aligned(exported[k], ref.shape) is not None), None)
        sibling = previous and previous[0] == t - 1 and \
            torch_rows[t - 1][0].rpartition(".")[0] == path.rpartition(".")[0]
        if not scope and sibling and _aligned(exported[previous[1]], ref.shape) is not None:
            match = previous[1]  # fused into the previous op (BatchNorm into Conv): same tensor
        if match is not None:
            previous = (t, match)
            pairs.append(previous)
    return pairs


def map_by_order(torch_rows, exported) -> list[tuple[int, int]]:
    """Pairs by execution order: the best-cosine same-shaped tensor among the next few."""
    pairs, position = [], 0
    for t, (_, _, ref) in enumerate(torch_rows):
        candidates = [k for k in range(position, len(exported))
                      if _aligned(exported[k], ref.shape) is not None][:LOOKAHEAD]
        if candidates:
            best = max(candidates,
                       key=lambda k: cosine_similarity(ref, _aligned(exported[k], ref.shape)))
            pairs.append((t, best))
            position = best  # not +1: a fused op's tensor may serve the next module too
    return pairs


def first_divergence(rows: Sequence[LayerDiff], floor_db: float = SNR_FLOOR_DB,
                     drop_db: float = SNR_DROP_DB, quantised: bool = False,
                     sustain: float = SUSTAIN, settle: int = SETTLE) -> int | None:
    """Index of the first row that diverges and stays down: below the SNR floor, or sharply
    below the healthy level before it; the `settle` rows after it diverged too, and at least
    `sustain` of the rows from it to the output. A transient dip (a mis-mapped tensor, a layer
    whose error the next one absorbs) is not where an export breaks."""
    # Against the lowest healthy SNR so far, not the previous row: side branches such as a
    # squeeze-excitation gate have a high SNR of their own and would fake a drop after them.
    # A quantised model's input is already quantised, so its first layer sets the baseline,
    # and its healthy level follows every row above the floor: int8 noise builds up layer by
    # layer (a ViT's tokens sit ~15 dB under its patch embedding), which is not a break.
    lowest = min(rows[0].snr_db, SNR_CAP_DB) if quantised and rows else SNR_CAP_DB
    diverged = []
    for row in rows:
        snr = min(row.snr_db, SNR_CAP_DB)
        down = snr < floor_db or (lowest - snr > drop_db and snr < DROP_CEILING_DB)
        diverged.append(down)
        if not down or (quantised and snr >= floor_db):
            lowest = min(lowest, snr)
    for k, down in enumerate(diverged):
        after = diverged[k + 1 : k + 1 + settle]
        if down and all(after) and sum(diverged[k:]) >= sustain * (len(diverged) - k):
            return k
    return None


def compare_layers(format_name: str, torch_rows, exported, mapping: str) -> Localisation:
    """Rows for mapped pairs (one module per exported tensor, the best-matching one)."""
    pairs = map_by_name(torch_rows, exported) if mapping == "name" else \
        map_by_order(torch_rows, exported)
    best: dict[int, tuple[int, LayerDiff]] = {}
    for t, k in pairs:
        row = _row(torch_rows[t], exported[k])
        if k not in best or row.snr_db > best[k][1].snr_db:
            best[k] = (t, row)
    rows = tuple(row for _, row in sorted(best.values(), key=lambda item: item[0]))
    floor, drop = thresholds_db(format_name)
    index = first_divergence(rows, floor, drop, quantised=precision_of(format_name) == "int8")
    return Localisation(format_name, rows, index, mapping)


def localise(format_name: str, path: Path, model, inputs: dict[str, np.ndarray],
             input_names: Sequence[str], min_named: int = 3) -> Localisation:
    """Compare an ONNX/TFLite artifact's intermediates with `model`'s for one input."""
    suffix = FORMATS[format_name].suffix if localisable(format_name) else None
    if suffix not in (".onnx", ".tflite"):  # the file types whose intermediates are read here
        raise ValueError(f"no layer-wise localisation for format {format_name!r}")
    torch_rows = torch_intermediates(model, inputs, input_names)
    if suffix == ".onnx":
        exported = onnx_intermediates(Path(path), inputs, input_names)
    else:
        module_of = tflite_module_namer(model)
        exported = [t._replace(owner=module_of(t.name))
                    for t in tflite_intermediates(Path(path), inputs, input_names)]
    named = compare_layers(format_name, torch_rows, exported, "name")
    if len(named.rows) >= min_named:
        return named
    return compare_layers(format_name, torch_rows, exported, "order")
