"""One interface for every runtime: `run(dict of arrays) -> dict of arrays`, plus self-report.

Runners take and return NCHW float32 arrays named as in the model spec; layout (NHWC) and
quantisation (scale/zero point) are handled inside the runner so suites compare like with like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np


class RuntimeUnavailable(RuntimeError):
    """The runtime (package or hardware) is missing here; tests skip with this message.

    `package` names the pip-installable package when that is what is missing (the suite's
    --require-formats turns such a skip into a failure); None for absent hardware.
    """

    def __init__(self, message: str, package: str | None = None) -> None:
        super().__init__(message)
        self.package = package


class ArtifactError(ValueError):
    """An artifact that cannot be loaded or does not fit the model; names the file."""


class Runner(Protocol):
    """A loaded artifact; the class a format row names (models/formats.py) makes one with
    `load(path, io, threads=, device=, meta=)`."""

    path: Path

    @classmethod
    def load(cls, path: Path, io: IOSpec, *, threads: int | None = None, device: str = "cpu",
             meta: dict | None = None) -> Runner:
        """Load `path` for `io` (meta: what the export recorded about the file)."""
        ...

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch; inputs and outputs by spec name."""
        ...

    def describe(self) -> dict[str, str]:
        """Runtime name, version, delegate, threads."""
        ...


@dataclass(frozen=True)
class IOSpec:
    """What the caller expects: input names/shapes and output names (shapes if known)."""

    inputs: dict[str, tuple[int, ...]]
    outputs: tuple[str, ...]
    output_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # An output a file may deliver in consecutive parts along axis 1: name -> channels per part.
    output_parts: dict[str, tuple[int, ...]] = field(default_factory=dict)


def output_slots(io: IOSpec, count: int) -> list[tuple[str, int | None]]:
    """(spec output, part index or None) for each of a file's `count` outputs, in file order.

    A file with one output per spec name maps one to one; a file with exactly one more output
    per extra part (io.output_parts) delivers those outputs in parts, in order.
    """
    expanded = [(name, k) for name in io.outputs
                for k in (range(len(io.output_parts[name])) if name in io.output_parts
                          else [None])]
    if io.output_parts and count == len(expanded) != len(io.outputs):
        return expanded
    return [(name, None) for name in io.outputs]


def part_shapes(shape: tuple[int, ...], rows: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The shapes of `shape`'s parts of `rows` rows each along axis 1, in order."""
    return [(shape[0], n, *shape[2:]) for n in rows]


def part_shape(io: IOSpec, name: str, part: int | None) -> tuple[int, ...] | None:
    """The expected shape of output `name` (of its part `part`), if known."""
    shape = io.output_shapes.get(name)
    if shape is None or part is None:
        return shape
    return part_shapes(shape, io.output_parts[name])[part]


def join_parts(values: list[tuple[str, int | None, np.ndarray]]) -> dict[str, np.ndarray]:
    """Spec outputs from (name, part, value) in file order: parts concatenated on axis 1."""
    parts: dict[str, list[tuple[int, np.ndarray]]] = {}
    for name, part, value in values:
        parts.setdefault(name, []).append((part or 0, value))
    return {name: got[0][1] if len(got) == 1
            else np.concatenate([v for _, v in sorted(got, key=lambda p: p[0])], axis=1)
            for name, got in parts.items()}


def check_finite(outputs: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """Raise an ArtifactError naming the file if any output holds NaN or Inf."""
    for name, value in outputs.items():
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            bad = int((~np.isfinite(value)).sum())
            raise ArtifactError(
                f"{path}: output {name!r} has {bad}/{value.size} NaN/Inf values"
            )
    return outputs


def check_input_shapes(inputs: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]],
                       path: Path) -> None:
    """Raise an ArtifactError naming the file when an input's shape or dtype is not the model's."""
    for name, shape in expected.items():
        if name not in inputs:
            raise ArtifactError(f"{path}: input {name!r} missing; given {sorted(inputs)}")
        if tuple(inputs[name].shape) != tuple(shape):
            raise ArtifactError(
                f"{path}: input {name!r} has shape {tuple(inputs[name].shape)}, "
                f"the artifact expects {tuple(shape)}"
            )
        dtype = np.asarray(inputs[name]).dtype
        if not np.issubdtype(dtype, np.floating):
            # Integer pixels mean the model's preprocess was skipped; casting would hide it.
            raise ArtifactError(
                f"{path}: input {name!r} has dtype {dtype}, the artifact expects float32 "
                "(preprocessed, normalised values)"
            )


def shape_mismatch(got: tuple[int, ...], expected: tuple[int, ...]) -> str:
    """'axis 1: 91 vs 21'-style summary of where two shapes differ."""
    if len(got) != len(expected):
        return f"rank {len(got)} vs {len(expected)}"
    return ", ".join(f"axis {k}: {g} vs {e}"
                     for k, (g, e) in enumerate(zip(got, expected, strict=True)) if g != e)


def check_output_shapes(outputs: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]],
                        path: Path) -> None:
    """Raise an ArtifactError naming the file when an output's shape is not the model's."""
    for name, shape in expected.items():
        if name in outputs and tuple(outputs[name].shape) != tuple(shape):
            got = tuple(outputs[name].shape)
            raise ArtifactError(
                f"{path}: output {name!r} has shape {got}, PyTorch's is {tuple(shape)} "
                f"({shape_mismatch(got, tuple(shape))}); an artifact of another model?"
            )


def error_summary(err: BaseException, limit: int = 200) -> str:
    """'Type: first line' of an exception; a line over `limit` keeps its first sentence."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if len(text) > limit:
        cut = text.find(". ")  # libraries append advice after the first sentence
        text = text[:cut] if 0 < cut < limit else text[:limit] + "…"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def require(module: str, pip_name: str, purpose: str):
    """Import a runtime package or raise RuntimeUnavailable with the pip command."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as err:
        raise RuntimeUnavailable(
            f"{purpose} needs the {module!r} package ({err}); "
            f"install it with: pip install {pip_name}", package=pip_name
        ) from err
