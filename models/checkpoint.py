"""Loading users' checkpoints with errors that name the file and what is wrong."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used for the model at hand."""


def read_checkpoint(path: Path) -> Mapping[str, object]:
    """torch.load a file on the CPU, turning every failure into a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for truncated/corrupt files
        from models.runtimes.base import error_summary

        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({error_summary(err)})"
        ) from err
    if isinstance(data, nn.Module):
        return data.state_dict()
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{path}: expected a state_dict, found {type(data).__name__}")
    return data


def unwrap_state_dict(data: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """Accept {'state_dict': …} / {'model': …} wrappers and DataParallel 'module.' prefixes."""
    for key in ("state_dict", "model", "model_state_dict"):
        inner = data.get(key) if isinstance(data, Mapping) else None
        if isinstance(inner, nn.Module):
            inner = inner.state_dict()
        if isinstance(inner, Mapping):
            data = inner
            break
    return {
        (k[len("module."):] if k.startswith("module.") else k): v
        for k, v in data.items()
        if isinstance(v, torch.Tensor)
    }


def load_matching_state_dict(
    model: nn.Module, state: Mapping[str, torch.Tensor], source: str
) -> nn.Module:
    """Strict load; on mismatch list missing/unexpected/mis-shaped keys and name the source."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"{len(shapes)} with other shapes (e.g. {'; '.join(shapes[:2])})")
        raise CheckpointError(
            f"{source}: checkpoint does not fit {type(model).__name__}: " + "; ".join(parts)
        )
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_state_dict_file(model: nn.Module, path: Path) -> nn.Module:
    """Read `path` and load it strictly into `model`."""
    return load_matching_state_dict(model, unwrap_state_dict(read_checkpoint(path)), str(path))
