"""What a converter receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from models.export.int8_recipe import Int8Recipe
from models.registry import ModelSpec


@dataclass
class ExportRequest:
    """A model to convert: the module, one example input and calibration inputs by name."""

    spec: ModelSpec
    model: torch.nn.Module
    example: dict[str, np.ndarray]
    out_path: Path
    calibration: list[dict[str, np.ndarray]] = field(default_factory=list)
    upstream: Path | None = None
    int8_recipe: Int8Recipe | None = None  # formats with uses_recipe (tflite_int8_mixed)

    def example_tensors(self) -> tuple[torch.Tensor, ...]:
        """The example as a tuple of tensors in the spec's input order."""
        return tuple(torch.from_numpy(self.example[i.name]) for i in self.spec.inputs)
