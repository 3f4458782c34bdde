"""A hostile-file stand-in for safe-loading tests: unpickling it writes a marker file."""

from __future__ import annotations

from pathlib import Path


def write_marker(path: str) -> str:
    """What the payload runs when unpickled: proof that code from the file executed."""
    Path(path).write_text("the pickled payload ran\n")
    return path


class WritesMarker:
    """Pickles as a call to write_marker(path), as a file that runs code on load would."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (write_marker, (self.marker,))
