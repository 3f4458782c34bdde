"""Edge TPU runner through pycoral; skips (RuntimeUnavailable) where there is none."""

from __future__ import annotations

from pathlib import Path

from models.runtimes.base import IOSpec, RuntimeUnavailable
from models.runtimes.tflite import TFLiteRunner

PYCORAL_HINT = ("Google's pycoral and libedgetpu (not the unrelated PyPI 'pycoral'): "
                "see https://coral.ai/software/ and the README's 'Coral host' section")


def list_edge_tpus() -> list[dict]:
    """Edge TPUs pycoral sees; [] without pycoral."""
    try:
        from pycoral.utils.edgetpu import list_edge_tpus as _list
    except ImportError:
        return []
    return list(_list())


class EdgeTPURunner(TFLiteRunner):
    """A compiled *_edgetpu.tflite on the Edge TPU delegate."""

    def __init__(self, path: Path, io: IOSpec, threads: int | None = None,
                 compiled: bool = True) -> None:
        try:
            from pycoral.utils.edgetpu import load_edgetpu_delegate
        except ImportError as err:
            raise RuntimeUnavailable(f"Edge TPU execution needs {PYCORAL_HINT}") from err
        if not compiled:
            raise RuntimeUnavailable("Edge TPU execution needs a compiled model: edgetpu_compiler "
                                     "was not on PATH when exporting (x86-64 Linux only)")
        if not list_edge_tpus():
            raise RuntimeUnavailable("pycoral is installed but no Edge TPU is attached")
        super().__init__(path, io, threads, delegates=[load_edgetpu_delegate()],
                         runtime_label="pycoral")

    @classmethod
    def load(cls, path: Path, io: IOSpec, *, threads: int | None = None, device: str = "cpu",
             meta: dict | None = None) -> EdgeTPURunner:
        """The row's runner; `meta['compiled']`: whether edgetpu_compiler made the file."""
        return cls(path, io, threads=threads, compiled=bool((meta or {}).get("compiled", True)))
