"""Content-addressed artifact cache: a second run with the same inputs re-exports nothing."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import numpy as np
from filelock import FileLock

REPO_ROOT = Path(__file__).resolve().parents[2]


def cache_root() -> Path:
    """$SEGCONFORM_CACHE, else `.cache/segconform` in the repository."""
    root = Path(os.environ.get("SEGCONFORM_CACHE", REPO_ROOT / ".cache" / "segconform"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def key_lock(path: Path) -> FileLock:
    """An inter-process lock for one cache entry (`<path>.lock` beside it).

    xdist workers and hosts sharing a cache directory hold it while they check for an
    entry and make it, so the second one waits and reuses the first one's file.
    """
    return FileLock(path.with_name(path.name + ".lock"))


def log_conversion(root: Path, entry: dict) -> None:
    """Append one line per real conversion to `<root>/conversions.jsonl` (who made what)."""
    line = json.dumps({**entry, "pid": os.getpid(),
                       "worker": os.environ.get("PYTEST_XDIST_WORKER", "")}) + "\n"
    with open(root / "conversions.jsonl", "a", encoding="utf-8") as handle:
        handle.write(line)  # one write of one line: appends from several processes stay whole


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
    """sha256 over the module's state_dict and non-persistent buffers (names, dtypes, shapes,
    bytes): SemiVL's text embeddings are a buffer outside the state dict, yet decide outputs."""
    digest = hashlib.sha256()
    tensors = dict(module.state_dict())
    extra = {k: v for k, v in module.named_buffers() if k not in tensors}
    for name, tensor in sorted(tensors.items()) + sorted(extra.items()):
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


def cached_json(path: Path, make) -> dict:
    """`make()`'s JSON document, kept at `path`: computed once, written atomically."""
    if path.exists():
        return json.loads(path.read_text())
    data = make()
    tmp = path.parent / f"{path.name}.tmp"
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
    return data


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


def _module_files(name: str) -> tuple[Path | None, list[Path]]:
    module = sys.modules.get(name)
    if module is not None:
        origin, locations = getattr(module, "__file__", None), getattr(module, "__path__", None)
    else:  # found, not imported: a converter whose library is missing must not fail here
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec else None
        locations = spec.submodule_search_locations if spec else None
    if locations:  # a package: every source file under it
        root = Path(next(iter(locations)))
        return root, sorted({p for folder in locations for p in Path(folder).rglob("*.py")})
    if origin and Path(origin).suffix == ".py":
        return Path(origin).parent, [Path(origin)]
    return None, []


def source_digest(module_name: str) -> str:
    """sha256 of a module's source (all .py files of a package); 'no source' if it has none."""
    root, files = _module_files(module_name)
    if not files:
        return "no source"
    digest = hashlib.sha256()
    for path in files:
        name = path.relative_to(root) if root and path.is_relative_to(root) else path.name
        digest.update(f"{name};".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def tool_version(name: str) -> str:
    """An executable's `--version` line, 'absent' when it is not on PATH."""
    found = shutil.which(name)
    return _version_of(str(Path(found).resolve())) if found else "absent"


@functools.cache
def _version_of(executable: str) -> str:
    try:
        run = subprocess.run([executable, "--version"], capture_output=True, text=True,
                             timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"present ({executable}); --version failed: {type(err).__name__}"
    lines = (run.stdout + run.stderr).strip().splitlines()
    return lines[0].strip() if lines else f"present ({executable}); no version printed"
