"""Loading users' checkpoints safely, with errors that name the file and what is wrong.

Every file loads with `torch.load(weights_only=True)`: tensors, containers and numbers only.
A file that needs pickle (it references Python classes or functions) can run code while it
loads, so it is unpickled only when the user named it with `--trust-checkpoint` (the
`trusted` argument of the loaders, compared as resolved paths). A module loaded from such a
file says so (`checkpoint_label`), so the report can show that trust was used.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Collection, Mapping
from os import PathLike
from pathlib import Path

import torch
from torch import nn

TRUST_OPTION = "--trust-checkpoint"
# Set on a module by the loaders: the path of the file unpickled into it, else None.
UNPICKLED_ATTRIBUTE = "unpickled_checkpoint"

Trusted = Collection[str | PathLike[str]]

# torch's weights-only unpickler refuses a Python object with one of these messages; other
# UnpicklingErrors ("Unsupported operand 110") mean bytes that are no pickle at all.
_REFUSED_GLOBAL = re.compile(r"GLOBAL (\S+?)\.?(?:\s|$)")
_REFUSED_OBJECT = re.compile(
    r"reduce for unrecognized function|Can only (?:create new object|build)")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used for the model at hand."""


class UntrustedCheckpointError(CheckpointError):
    """A file that needs pickle to load and was not named with --trust-checkpoint."""


def is_trusted(path: str | PathLike[str], trusted: Trusted) -> bool:
    """Whether `path` is one of the `trusted` files (resolved: links and '..' do not matter)."""
    resolved = Path(path).resolve()
    return any(Path(item).resolve() == resolved for item in trusted)


def refused_object(err: BaseException) -> str | None:
    """What a weights-only load refused to unpickle ('posix.system'), else None."""
    if not isinstance(err, pickle.UnpicklingError):
        return None
    text = str(err)
    match = _REFUSED_GLOBAL.search(text)
    if match:
        return match.group(1)
    return "a Python object" if _REFUSED_OBJECT.search(text) else None


def untrusted_error(path: Path, refused: str) -> UntrustedCheckpointError:
    """The one-line refusal naming the file and the opt-in flag."""
    return UntrustedCheckpointError(
        f"{path}: needs pickle to load (it holds Python objects such as {refused}, not only "
        f"tensors); pickle can run code: re-run with {TRUST_OPTION} {path} if you trust it"
    )


_TORCH_ADVICE = ("Weights only load failed", "Please file an issue", "Check the documentation",
                 "(1)", "(2)")


def _error_summary(err: BaseException) -> str:
    from models.runtimes.base import error_summary

    if isinstance(err, pickle.UnpicklingError):
        # torch wraps the unpickler's reason ("Unsupported operand 110") in paragraphs of advice.
        reasons = [line.strip() for line in str(err).splitlines()
                   if line.strip() and not line.strip().startswith(_TORCH_ADVICE)]
        if reasons:
            return f"{type(err).__name__}: {reasons[0][:200]}"
    return error_summary(err)


def _unpickle(path: Path) -> object:
    return torch.load(path, map_location="cpu", weights_only=False)


def load_torch_file(
    path: str | PathLike[str],
    trusted: Trusted = frozenset(),
    unpickle: Callable[[Path], object] = _unpickle,
    kind: str = "PyTorch checkpoint",
) -> tuple[object, bool]:
    """(contents, unpickled): a weights-only load, else `unpickle(path)` if `path` is trusted.

    A file that needs pickle and is not trusted raises UntrustedCheckpointError before any of
    its objects is built. TorchScript archives load with torch.jit.load (no Python pickle).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True), False
    except Exception as err:  # torch raises many types for truncated/corrupt files
        refused = refused_object(err)
        if refused is None and "TorchScript archive" in str(err):
            return _load_torchscript(path, kind), False
        if refused is None:
            raise CheckpointError(
                f"{path}: not a readable {kind} ({_error_summary(err)})") from err
    if not is_trusted(path, trusted):
        raise untrusted_error(path, refused)
    try:
        return unpickle(path), True
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable {kind} ({_error_summary(err)})") from err


def _load_torchscript(path: Path, kind: str) -> nn.Module:
    # What torch.load(weights_only=False) would do with it (OpenAI's CLIP files are TorchScript).
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable {kind} ({_error_summary(err)})") from err


def read_checkpoint_file(
    path: str | PathLike[str], trusted: Trusted = frozenset()
) -> tuple[Mapping[str, object], bool]:
    """(state mapping, unpickled) of a checkpoint file; every failure is a CheckpointError."""
    path = Path(path)
    data, unpickled = load_torch_file(path, trusted)
    if isinstance(data, nn.Module):
        return data.state_dict(), unpickled
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{path}: expected a state_dict, found {type(data).__name__}")
    return data, unpickled


def read_checkpoint(
    path: str | PathLike[str], trusted: Trusted = frozenset()
) -> Mapping[str, object]:
    """Load a checkpoint's mapping on the CPU, safely unless `path` is trusted."""
    return read_checkpoint_file(path, trusted)[0]


def mark_source(model: nn.Module, path: str | PathLike[str], unpickled: bool) -> nn.Module:
    """Record on `model` whether its weights came from an unpickled (trusted) file."""
    # A plain attribute, not a buffer: it must not enter the state_dict or the export key.
    setattr(model, UNPICKLED_ATTRIBUTE, str(path) if unpickled else None)
    return model


def checkpoint_label(path: str | PathLike[str], model: nn.Module) -> str:
    """'user checkpoint PATH', plus a note when the file was unpickled on the user's word."""
    label = f"user checkpoint {path}"
    if getattr(model, UNPICKLED_ATTRIBUTE, None):
        label += f" (unpickled: trusted with {TRUST_OPTION})"
    return label


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


def load_state_dict_file(
    model: nn.Module, path: str | PathLike[str], trusted: Trusted = frozenset()
) -> nn.Module:
    """Read `path` (unpickling only if trusted), load it strictly into `model`, mark its source."""
    state, unpickled = read_checkpoint_file(path, trusted)
    load_matching_state_dict(model, unwrap_state_dict(state), str(path))
    return mark_source(model, path, unpickled)
