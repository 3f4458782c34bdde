"""A user's own exported file in place of the suite's export (`--artifact MODEL[:FORMAT]=PATH`).

The format comes from the option or the file (suffix; for .tflite the tensor types). Before
any image goes through it, the file's declared inputs and outputs are fitted to the model:
input layout (NCHW or NHWC) and dtype, outputs by name, else by shape. The result is a runner
with the suite's interface (NCHW float32 in and out, outputs by the spec's names).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.export import Artifact
from models.export.cache import file_sha256
from models.formats import FORMATS
from models.registry import ModelSpec
from models.runtimes import ArtifactError, IOSpec, Runner, load_runner
from models.runtimes.base import check_output_shapes, part_shapes
from models.runtimes.signature import FileSignature, TensorSignature, read_signature

FLOAT_DTYPES = ("float32", "float16")
QUANTISED_DTYPES = ("int8", "uint8", "int16")  # TFLite inputs carry scale/zero point


def infer_format(path: Path) -> str:
    """The format of a user's file: by suffix, and for .tflite by its tensor types."""
    path = Path(path)
    suffix = path.suffix.lower()
    owners: dict[str, list[str]] = {}
    for row in FORMATS.values():
        owners.setdefault(row.suffix, []).append(row.name)
    if len(owners.get(suffix, [])) == 1:
        return owners[suffix][0]
    if suffix == ".tflite":  # four formats share it: their tensor types tell them apart
        from models.runtimes.signature import tflite_signature

        return tflite_format(tflite_signature(path))
    raise ArtifactError(f"{path}: cannot tell the format from the suffix {suffix or '(none)'!r} "
                        f"(known: {', '.join(owners)}); give it as MODEL:FORMAT=PATH")


def tflite_format(signature: FileSignature) -> str:
    """edgetpu (compiled), int8 (int8 I/O or weights), fp16 (fp16 constants), else fp32."""
    if "edgetpu" in signature.tensor_dtypes:
        return "edgetpu"
    boundary = {t.dtype for t in (signature.inputs or ()) + (signature.outputs or ())}
    if boundary & {"int8", "uint8"} or "int8" in signature.tensor_dtypes:
        return "tflite_int8"
    if "float16" in signature.tensor_dtypes:
        return "tflite_fp16"
    return "tflite_fp32"


def user_artifact(model: str, format_name: str, path: Path) -> Artifact:
    """An Artifact for a user's file; never written to or read from the export cache."""
    path = Path(path)
    return Artifact(model, format_name, path, meta={
        "origin": "user", "sha256": file_sha256(path), "source": str(path),
        "converter": "user file"})


@dataclass
class Fit:
    """How a file's tensors map onto the model's: layouts, and output positions by name."""

    input_order: tuple[str, ...]  # spec input names in the file's order
    input_layouts: dict[str, str]  # spec input name -> "NCHW" | "NHWC"
    # Per file output: a spec output name (repeated, in order, for an output in parts) or
    # "unused:<k>".
    output_order: tuple[str, ...]
    output_layouts: dict[str, str]
    # spec output -> "name", "shape", "shape-in-parts" or "position" (a compiled Edge TPU file)
    matched_by: dict[str, str] = field(default_factory=dict)


def _nhwc(shape: tuple) -> tuple:
    return (shape[0], *shape[2:], shape[1]) if len(shape) == 4 else tuple(shape)


def _same(found: tuple, expected: tuple) -> bool:
    # A symbolic (None) dimension fits anything; runners check the real shape on each run.
    return len(found) == len(expected) and all(f is None or f == e
                                               for f, e in zip(found, expected, strict=True))


def _layout(found: tuple, expected: tuple) -> str | None:
    if _same(found, expected):
        return "NCHW"
    if len(expected) == 4 and _same(found, _nhwc(expected)):
        return "NHWC"
    return None


def _expects(shape: tuple) -> str:
    both = f" NCHW or {_nhwc(shape)} NHWC" if len(shape) == 4 else ""
    return f"{tuple(shape)}{both}"


def _parts_run(outputs, slots: list, shape: tuple, parts: tuple[int, ...]) -> range | None:
    """The first run of consecutive free outputs shaped as `shape`'s parts, in order."""
    wanted = part_shapes(shape, parts)
    for start in range(len(outputs) - len(wanted) + 1):
        run = range(start, start + len(wanted))
        if all(slots[k] is None and _same(outputs[k].shape, w)
               for k, w in zip(run, wanted, strict=True)):
            return run
    return None


def fit_signature(spec: ModelSpec, path: Path, signature: FileSignature,
                  output_shapes: dict[str, tuple[int, ...]], quantised_io: bool,
                  in_parts: bool = False) -> Fit:
    """Map the file's tensors onto the spec's, or an ArtifactError: one line, what differs.
    With `in_parts`, an output the spec declares in parts may come as its parts, in order."""

    def refuse(problem: str) -> ArtifactError:
        return ArtifactError(f"{path}: does not fit {spec.name}: {problem}")

    expected_in = {i.name: tuple(i.shape) for i in spec.inputs}
    inputs = signature.inputs
    if inputs is None:  # TorchScript declares nothing: the spec's order and NCHW
        inputs = tuple(TensorSignature(n, s, "float32") for n, s in expected_in.items())
    if len(inputs) != len(expected_in):
        raise refuse(f"expects {len(expected_in)} input(s) {list(expected_in)}, file has "
                     f"{len(inputs)} {[t.name for t in inputs]}")
    # By name when the file uses the spec's names, else by position.
    names = [t.name for t in inputs]
    order = tuple(names) if set(names) == set(expected_in) else tuple(expected_in)
    allowed = FLOAT_DTYPES + (QUANTISED_DTYPES if quantised_io else ())
    layouts = {}
    for ours, tensor in zip(order, inputs, strict=True):
        layout = _layout(tensor.shape, expected_in[ours])
        if layout is None:
            raise refuse(f"input {ours!r} expects {_expects(expected_in[ours])}, "
                         f"file has {tensor.shape}")
        if tensor.dtype not in allowed:
            raise refuse(f"input {ours!r} expects {' or '.join(allowed)}, file has {tensor.dtype}")
        layouts[ours] = layout
    outputs = signature.outputs or ()
    parts = dict(spec.output_parts) if in_parts else {}
    slots: list[str | None] = [None] * len(outputs)
    out_layouts: dict[str, str] = {}
    matched_by: dict[str, str] = {}
    for ours, shape in output_shapes.items():  # by name first
        for k, tensor in enumerate(outputs):
            if tensor.name == ours:
                layout = _layout(tensor.shape, shape)
                if layout is None:
                    raise refuse(f"output {ours!r} expects {_expects(shape)}, "
                                 f"file has {tensor.shape}")
                slots[k], out_layouts[ours], matched_by[ours] = ours, layout, "name"
    for ours, shape in output_shapes.items():  # then by shape, in the file's order
        if ours in matched_by:
            continue
        free = [k for k in range(len(outputs)) if slots[k] is None]
        fitting = [(k, _layout(outputs[k].shape, shape)) for k in free]
        fitting = [(k, layout) for k, layout in fitting if layout is not None]
        if not fitting and ours in parts:  # delivered in parts, as the suite's own export
            run = _parts_run(outputs, slots, shape, parts[ours])
            if run is not None:
                for k in run:
                    slots[k] = ours
                out_layouts[ours], matched_by[ours] = "NCHW", "shape-in-parts"
                continue
        if not fitting:
            found = ", ".join(f"{outputs[k].name!r} {outputs[k].shape}" for k in free)
            hint = (f" (or in parts of {parts[ours]} rows along axis 1, in that order)"
                    if ours in parts else "")
            raise refuse(f"output {ours!r} expects {_expects(shape)}{hint}, file has "
                         f"{found or 'no output left'}")
        k, layout = fitting[0]
        slots[k], out_layouts[ours], matched_by[ours] = ours, layout, "shape"
    return Fit(input_order=order, input_layouts=layouts,
               output_order=tuple(s or f"unused:{k}" for k, s in enumerate(slots)),
               output_layouts=out_layouts, matched_by=matched_by)


class UserFileRunner:
    """The suite's runner interface over a fitted user file (NCHW float32, spec names)."""

    def __init__(self, inner: Runner, fit: Fit, expected: dict[str, tuple[int, ...]],
                 transposes: bool, output_shapes: dict[str, tuple[int, ...]]) -> None:
        # TFLite's runner transposes NHWC itself; for ONNX/TorchScript this class does.
        self.inner, self.fit, self.transposes = inner, fit, transposes
        self.expected, self.output_shapes = expected, output_shapes
        self.path = inner.path
        self.convert: Callable[[dict], dict] | None = None
        self.convention = ""

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Forward once; outputs renamed and laid out as the reference's."""
        feed = dict(inputs)
        if self.transposes:
            for name, layout in self.fit.input_layouts.items():
                if layout == "NHWC" and np.ndim(inputs.get(name)) == 4:
                    nhwc = np.asarray(inputs[name]).transpose(0, 2, 3, 1)
                    feed[name] = np.ascontiguousarray(nhwc)
        raw = self.inner.run(feed)
        result = {}
        for name, layout in self.fit.output_layouts.items():
            value = raw[name]
            if self.transposes and layout == "NHWC":
                value = np.ascontiguousarray(value.transpose(0, 3, 1, 2))
            result[name] = value
        check_output_shapes(result, self.output_shapes, self.path)
        return self.convert(result) if self.convert else result

    def describe(self) -> dict[str, str]:
        """The inner runtime's report plus how the file was fitted."""
        info = {**self.inner.describe(),
                "input_layout": ",".join(self.fit.input_layouts[n] for n in self.fit.input_order),
                "outputs_matched_by": ",".join(f"{n}:{how}"
                                               for n, how in self.fit.matched_by.items())}
        if self.convention:
            info["output_convention"] = self.convention
        return info


def _refusal(path: Path, format_name: str, err: ArtifactError) -> ArtifactError:
    """The runtime's one-line refusal, with a hint where the usual cause is known."""
    text = str(err)
    hint = ""
    if format_name.startswith("torchscript") and "not a loadable" in text:
        hint = ("; hint: --artifact takes an exported TorchScript file (torch.jit.save, "
                "_save_for_lite_interpreter for .ptl); weights go to --checkpoint MODEL=PATH")
    elif format_name.startswith("tflite") and "custom op" in text.lower():
        hint = "; hint: export with builtin TFLite ops only (no Select TF / custom ops)"
    elif format_name == "onnx" and "opset" in text.lower():
        hint = "; hint: re-export at an opset this onnxruntime supports (the suite uses 17)"
    text = text if text.startswith(str(path)) else f"{path}: {text}"
    return ArtifactError(text + hint)


def open_user_artifact(spec: ModelSpec, format_name: str, path: Path,
                       output_shapes: dict[str, tuple[int, ...]], example: dict[str, np.ndarray],
                       threads: int | None = None, device: str = "cpu",
                       meta: dict | None = None) -> UserFileRunner:
    """Fit, load and probe a user's file; ArtifactError (one line) when it does not fit or load.

    `example` runs once: TorchScript declares no output shapes, and a model's output
    convention (spec.output_convention) is read from real values.
    """
    path = Path(path)
    signature = read_signature(format_name, path)
    expected = {i.name: tuple(i.shape) for i in spec.inputs}
    tflite = FORMATS[format_name].suffix == ".tflite"
    probe_names = tuple(f"unused:{k}" for k in range(len(output_shapes)))
    if signature.outputs is None and not tflite:
        # TorchScript: outputs known only by running; positions first, fitted below.
        inner = _load(format_name, path, IOSpec(expected, probe_names), threads, device, meta)
        try:
            probed = inner.run(example)
        except ArtifactError as err:
            raise ArtifactError(f"{path}: does not fit {spec.name}: forward on the model's input "
                                f"{ {n: s for n, s in expected.items()} } failed "
                                f"({str(err).removeprefix(f'{path}: ')})") from err
        signature = FileSignature(inputs=None, outputs=tuple(
            TensorSignature(name, tuple(probed[name].shape), "float32") for name in probe_names))
    if signature.outputs is None:  # a compiled Edge TPU file: its runner checks at load
        fit = Fit(tuple(expected), dict.fromkeys(expected, "NCHW"), tuple(output_shapes),
                  dict.fromkeys(output_shapes, "NCHW"), dict.fromkeys(output_shapes, "position"))
    else:
        fit = fit_signature(spec, path, signature, output_shapes, quantised_io=tflite,
                            in_parts=tflite)
    if tflite:  # an output in parts fills several slots: named once, joined by the runner
        io = IOSpec({n: expected[n] for n in fit.input_order},
                    tuple(dict.fromkeys(fit.output_order)), dict(output_shapes),
                    output_parts=dict(spec.output_parts))
    else:
        def in_file_layout(shape, layout):
            return _nhwc(shape) if layout == "NHWC" else shape

        io = IOSpec({n: in_file_layout(expected[n], fit.input_layouts[n])
                     for n in fit.input_order}, fit.output_order,
                    {n: in_file_layout(s, fit.output_layouts[n]) for n, s in output_shapes.items()})
    runner = UserFileRunner(_load(format_name, path, io, threads, device, meta), fit, expected,
                            transposes=not tflite, output_shapes=dict(output_shapes))
    convention = spec.output_convention
    if convention is not None:
        runner.convert, runner.convention = convention(runner.run(example), spec)
    return runner


def _load(format_name: str, path: Path, io: IOSpec, threads, device, meta) -> Runner:
    try:
        return load_runner(format_name, path, io, threads=threads, device=device, meta=meta)
    except ArtifactError as err:
        raise _refusal(path, format_name, err) from err
