"""The export formats as data: one `ExportFormat` row per format, everything else reads it.

Adding a format is one converter module (models/export/<fmt>.py), one runner module
(models/runtimes/<fmt>.py) and one row here. Nothing in this module imports torch or a
runtime: bundles are verified on devices that have neither.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# PyTorch eager: the reference every format is compared with, and the latency yardstick. Budgets,
# profiles and reports name it beside the formats, but it is no row: nothing exports to it.
MIXED_FORMAT = "tflite_int8_mixed"  # the format an --int8-recipe converts with
FLOAT_TFLITE = "tflite_fp32"  # the float file every quantised TFLite format is made from
REFERENCE_FORMAT = "torch_eager"

# Precision classes: how far a format's numbers may drift from PyTorch's float32. Budgets
# resolve by format, then by precision class ([suite.FORMAT], else [suite.PRECISION]).
PRECISIONS: dict[str, str] = {
    "float32": "float32 weights and arithmetic: PyTorch's math on other kernels (float noise)",
    "float16": "float16 weights (about 3 significant digits), float arithmetic",
    "int8": "integer-quantised (int8 weights; int8, int16 or, in a mixed recipe, some float "
            "activations): judged by decisions, not logit error",
}


def _import(target: str) -> Any:
    """The object named by 'module:attribute', imported now (a missing library stays local)."""
    module, attribute = target.split(":")
    return getattr(__import__(module, fromlist=[attribute]), attribute)


@dataclass(frozen=True)
class ExportFormat:
    """One format: converter, runner, file suffix, precision class and what its key depends on.

    `precision` is a key of PRECISIONS (float32, float16, int8); `localisable`: models/localise.py
    can compare its intermediates layer by layer; `devices`: where its runner runs ("cpu", "cuda").
    """

    name: str
    suffix: str
    converter: str  # "module:function" taking an ExportRequest, imported on use
    runner: str  # "module:Class" with Class.load(path, io, threads=, device=, meta=) -> Runner
    precision: str
    libraries: tuple[str, ...] = ()  # whose versions are part of the artifact key
    localisable: bool = False
    devices: tuple[str, ...] = ("cpu",)
    upstream: str | None = None  # the format this one converts from (tflite_fp32 -> int8)
    uses_calibration: bool = False
    tools: tuple[str, ...] = ()  # executables that run when present (their versions: the key)
    uses_recipe: bool = False  # converts with the model's mixed-precision int8 recipe
    opt_in: bool = False  # not in a model's default formats: a model lists it to get it
    op_profile: bool = False  # a TFLite file run on the CPU: gets the per-op profile

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"format {self.name!r}: unknown precision {self.precision!r}; "
                             f"known: {', '.join(PRECISIONS)}")
        if self.name in PRECISIONS:  # [suite.NAME] in budgets.toml must mean one thing
            raise ValueError(f"format {self.name!r}: the name of a precision class")
        for field_name in ("converter", "runner"):
            if ":" not in getattr(self, field_name):
                raise ValueError(f"format {self.name!r}: {field_name} must be 'module:name'")

    @property
    def converter_module(self) -> str:
        """The module that holds the converter function."""
        return self.converter.split(":")[0]

    def load_converter(self) -> Callable[..., dict]:
        """Import the converter function."""
        return _import(self.converter)

    def load_runner_class(self) -> Any:
        """Import the runner class."""
        return _import(self.runner)


FORMATS: dict[str, ExportFormat] = {f.name: f for f in (
    ExportFormat("torchscript", ".pt", "models.export.torchscript:export_torchscript",
                 "models.runtimes.torchscript:TorchScriptRunner", "float32", ("torch",),
                 devices=("cpu", "cuda")),
    ExportFormat("torchscript_lite", ".ptl", "models.export.torchscript:export_torchscript_lite",
                 "models.runtimes.torchscript:TorchScriptLiteRunner", "float32", ("torch",)),
    ExportFormat("onnx", ".onnx", "models.export.onnx:export_onnx",
                 "models.runtimes.onnx:OnnxRunner", "float32", ("torch", "onnx"),
                 localisable=True, devices=("cpu", "cuda")),
    ExportFormat("tflite_fp32", ".tflite", "models.export.tflite:export_tflite_fp32",
                 "models.runtimes.tflite:TFLiteRunner", "float32",
                 ("torch", "litert-torch", "ai-edge-litert"), localisable=True, op_profile=True),
    ExportFormat("tflite_fp16", ".tflite", "models.export.tflite:export_tflite_fp16",
                 "models.runtimes.tflite:TFLiteRunner", "float16", ("ai-edge-quantizer",),
                 localisable=True, upstream="tflite_fp32", op_profile=True),
    ExportFormat("tflite_int8", ".tflite", "models.export.tflite:export_tflite_int8",
                 "models.runtimes.tflite:TFLiteRunner", "int8", ("ai-edge-quantizer",),
                 localisable=True, upstream="tflite_fp32", uses_calibration=True,
                 op_profile=True),
    # int8 weights, int16 activations everywhere (ai-edge-quantizer static_wi8_ai16; Qualcomm's
    # w8a16): XNNPACK has no int16 kernels, so it runs on TFLite's reference kernels.
    ExportFormat("tflite_w8a16", ".tflite", "models.export.tflite:export_tflite_w8a16",
                 "models.runtimes.tflite:TFLiteRunner", "int8", ("ai-edge-quantizer",),
                 localisable=True, upstream="tflite_fp32", uses_calibration=True, opt_in=True,
                 op_profile=True),
    # Full int8 except the layers a recipe keeps at int16 activations or in float
    # (models/export/int8_recipe.py; found by --int8-repair, replayed by --int8-recipe).
    ExportFormat("tflite_int8_mixed", ".tflite", "models.export.tflite:export_tflite_int8_mixed",
                 "models.runtimes.tflite:TFLiteRunner", "int8", ("ai-edge-quantizer",),
                 localisable=True, upstream="tflite_fp32", uses_calibration=True,
                 uses_recipe=True, opt_in=True, op_profile=True),
    ExportFormat("edgetpu", ".tflite", "models.export.edgetpu:export_edgetpu",
                 "models.runtimes.edgetpu:EdgeTPURunner", "int8", ("ai-edge-litert",),
                 upstream="tflite_int8", tools=("edgetpu_compiler",)),
)}


def format_row(name: str) -> ExportFormat:
    """The row of format `name`, or a ValueError listing the known formats."""
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}; known: {', '.join(FORMATS)}")
    return FORMATS[name]


def precision_of(name: str) -> str | None:
    """The precision class of format `name`; None for a name without a row (the reference)."""
    row = FORMATS.get(name)
    return row.precision if row else None


def upstreams(name: str) -> list[str]:
    """The formats format `name` is made from, nearest first (edgetpu: tflite_int8, tflite_fp32)."""
    chain: list[str] = []
    row = FORMATS.get(name)
    while row is not None and row.upstream:
        chain.append(row.upstream)
        row = FORMATS.get(row.upstream)
    return chain


def calibrated(name: str) -> bool:
    """Whether format `name`'s artifact is made from calibration data, itself or upstream."""
    return any(FORMATS[f].uses_calibration for f in (name, *upstreams(name)) if f in FORMATS)
