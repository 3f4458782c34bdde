"""TorchScript runners: full `.pt` (torch.jit.load) and lite `.ptl` (mobile interpreter)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.runtimes.base import (
    ArtifactError,
    IOSpec,
    check_finite,
    check_input_shapes,
    check_output_shapes,
    error_summary,
    require,
)


class TorchScriptRunner:
    """Runs a `.pt` or `.ptl` on the CPU (or CUDA for `.pt` when device='cuda')."""

    def __init__(self, path: Path, io: IOSpec, lite: bool = False, threads: int | None = None,
                 device: str = "cpu") -> None:
        torch = require("torch", "torch==2.14.1", "TorchScript")
        self.path, self.io, self.lite, self.device = Path(path), io, lite, device
        if threads:
            torch.set_num_threads(threads)
        try:
            if lite:
                from torch.jit.mobile import _load_for_lite_interpreter

                self.module = _load_for_lite_interpreter(str(self.path))
            else:
                self.module = torch.jit.load(str(self.path), map_location=device)
        except Exception as err:
            kind = "TorchScript lite (.ptl)" if lite else "TorchScript"
            raise ArtifactError(f"{self.path}: not a loadable {kind} file "
                                f"({error_summary(err)})") from err
        self._torch = torch

    @classmethod
    def load(cls, path: Path, io: IOSpec, *, threads: int | None = None, device: str = "cpu",
             meta: dict | None = None) -> TorchScriptRunner:
        """The runner of a format row (models/formats.py): one signature for every runtime."""
        return cls(path, io, threads=threads, device=device)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Forward once."""
        torch = self._torch
        check_input_shapes(inputs, self.io.inputs, self.path)
        # float32 like the other runners (a float64 array would fail inside the graph).
        args = [torch.from_numpy(np.ascontiguousarray(inputs[n], dtype=np.float32)).to(self.device)
                for n in self.io.inputs]
        try:
            with torch.no_grad():
                out = self.module(*args)
        except RuntimeError as err:
            # TorchScript puts its interpreter traceback first; the cause is the last line.
            lines = [line for line in str(err).splitlines() if line.strip()] or [""]
            raise ArtifactError(f"{self.path}: forward failed ({lines[-1].strip()[:300]})") from err
        if isinstance(out, dict):
            out = tuple(out.values())
        if not isinstance(out, (tuple, list)):
            out = (out,)
        flat = [t for t in _flatten(out)]
        if len(flat) < len(self.io.outputs):
            raise ArtifactError(f"{self.path}: {len(flat)} outputs, "
                                f"expected {len(self.io.outputs)}")
        result = {n: flat[i].detach().float().cpu().numpy() for i, n in enumerate(self.io.outputs)}
        check_output_shapes(result, self.io.output_shapes, self.path)
        return check_finite(result, self.path)

    def describe(self) -> dict[str, str]:
        """Runtime report."""
        return {"runtime": "torch lite interpreter" if self.lite else "torch.jit",
                "version": self._torch.__version__, "device": self.device,
                "threads": str(self._torch.get_num_threads())}


def _flatten(items):
    for item in items:
        if isinstance(item, (tuple, list)):
            yield from _flatten(item)
        else:
            yield item


class TorchScriptLiteRunner(TorchScriptRunner):
    """Runs a `.ptl` on the lite (mobile) interpreter, CPU only."""

    def __init__(self, path: Path, io: IOSpec, threads: int | None = None,
                 device: str = "cpu") -> None:
        super().__init__(path, io, lite=True, threads=threads, device=device)
