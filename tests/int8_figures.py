"""Parity figures of TFLite files on this CPU, as JSON (run under qemu to change the CPU).

    python -m tests.int8_figures CASE.npz IMAGES FILE.tflite [...]

CASE.npz holds the inputs `x0..` and PyTorch's outputs `y0..` (`write_case`), and `io`: the
input name, output names, outputs delivered in parts and whether outputs have a class axis.
Only numpy and the interpreter are imported, so it starts quickly under emulation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from conformance.metrics.parity import parity_figures
from models.runtimes.base import IOSpec
from models.runtimes.tflite import TFLiteRunner

SHOWN = ("argmax_agreement", "agreement_miou", "cosine", "snr_db")


def write_case(path: Path, spec, inputs: list[dict], outputs: list[dict], count: int) -> Path:
    """The first `count` (input, PyTorch output) pairs of a model with one input."""
    (name,) = [i.name for i in spec.inputs]
    io = {"input": name, "outputs": list(spec.output_names),
          "output_parts": {k: list(v) for k, v in spec.output_parts},
          "class_axis": 1 if spec.task == "semantic" else None}
    np.savez(path, io=json.dumps(io), **{f"x{i}": inputs[i][name] for i in range(count)},
             **{f"y{i}_{k}": outputs[i][k] for i in range(count) for k in spec.output_names})
    return path


def figures(case: str, paths: list[str], count: int) -> dict[str, dict[str, float]]:
    """{file: {metric: value}} over the case's first `count` images, one interpreter thread."""
    data = np.load(case)
    io_meta = json.loads(str(data["io"]))
    names = io_meta["outputs"]
    inputs = [data[f"x{i}"] for i in range(count)]
    expected = [{k: data[f"y{i}_{k}"] for k in names} for i in range(count)]
    io = IOSpec(inputs={io_meta["input"]: inputs[0].shape}, outputs=tuple(names),
                output_shapes={k: v.shape for k, v in expected[0].items()},
                output_parts={k: tuple(v) for k, v in io_meta["output_parts"].items()})
    found = {}
    for path in paths:
        runner = TFLiteRunner(path, io, threads=1)
        got = [runner.run({io_meta["input"]: x}) for x in inputs]
        metrics, _ = parity_figures(expected, got, class_axis=io_meta["class_axis"])
        found[path] = {k: round(float(metrics[k]), 6) for k in SHOWN if k in metrics}
    return found


if __name__ == "__main__":
    print(json.dumps(figures(sys.argv[1], sys.argv[3:], int(sys.argv[2]))))
