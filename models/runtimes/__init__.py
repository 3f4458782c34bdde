"""`load_runner(format, path, io)`: the runner its format row names, imported on use."""

from __future__ import annotations

from pathlib import Path

from models.runtimes.base import ArtifactError, IOSpec, Runner, RuntimeUnavailable

__all__ = ["ArtifactError", "IOSpec", "Runner", "RuntimeUnavailable", "load_runner"]


def load_runner(format_name: str, path: Path, io: IOSpec, threads: int | None = None,
                device: str = "cpu", meta: dict | None = None) -> Runner:
    """Load `path` with the runner of `format_name`'s row ('cuda' device for gpu cases)."""
    from models.formats import format_row

    row = format_row(format_name)
    if device not in row.devices:
        raise RuntimeUnavailable(f"{format_name} has no {device} runner in this suite "
                                 f"(its runner runs on: {', '.join(row.devices)})")
    return row.load_runner_class().load(path, io, threads=threads, device=device, meta=meta)
