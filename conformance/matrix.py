"""The test matrix as data: model x format (x device), with device markers and tiers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from conformance.profiles import markers_for_format
from models.formats import REFERENCE_FORMAT
from models.registry import ModelSpec, all_specs


@dataclass(frozen=True)
class Case:
    """One model in one format on one device kind."""

    spec: ModelSpec
    format: str
    device: str = "cpu"

    @property
    def model(self) -> str:
        return self.spec.name

    def profile(self, active: str) -> str:
        """The profile a result belongs to: 'gpu' for CUDA cases, else the active one."""
        return "gpu" if self.device == "cuda" else active

    def __str__(self) -> str:
        suffix = "" if self.device == "cpu" else f"-{self.device}"
        return f"{self.spec.name}-{self.format}{suffix}"


def _param(case: Case, markers: list[str]) -> object:
    marks = [getattr(pytest.mark, m) for m in markers]
    if case.spec.tier == "slow":
        marks.append(pytest.mark.slow)
    return pytest.param(case, marks=marks, id=str(case))


def format_cases(formats: tuple[str, ...] | None = None, tasks: tuple[str, ...] | None = None,
                 gpu: bool = True, include_eager: bool = False) -> list:
    """Cases for every registered model x format (restricted to `formats`/`tasks`), plus
    CUDA variants of the formats the gpu profile runs; `include_eager` adds PyTorch eager."""
    params = []
    for spec in all_specs():
        if tasks and spec.task not in tasks:
            continue
        for fmt in ((REFERENCE_FORMAT,) if include_eager else ()) + spec.formats:
            if formats and fmt not in formats:
                continue
            params.append(_param(Case(spec, fmt), markers_for_format(fmt, "cpu")))
            if gpu and markers_for_format(fmt, "cuda"):
                params.append(_param(Case(spec, fmt, "cuda"), markers_for_format(fmt, "cuda")))
    return params
