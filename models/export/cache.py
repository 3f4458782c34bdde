"""Content-addressed artifact cache: a second run with the same inputs re-exports nothing."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]


def cache_root() -> Path:
    """$SEGCONFORM_CACHE, else `.cache/segconform` in the repository."""
    root = Path(os.environ.get("SEGCONFORM_CACHE", REPO_ROOT / ".cache" / "segconform"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def library_versions(names: Iterable[str]) -> dict[str, str]:
    """Installed distribution versions; 'absent' for those not installed."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def weights_digest(module) -> str:
    """sha256 over the module's state_dict (names, dtypes, shapes, bytes)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{name}:{array.dtype}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def arrays_digest(arrays: Iterable[np.ndarray]) -> str:
    """sha256 over arrays' dtype, shape and bytes."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def content_key(parts: dict) -> str:
    """Short stable hash of a JSON-serialisable dict."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
