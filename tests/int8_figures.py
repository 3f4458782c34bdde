"""Parity figures of TFLite files on this CPU, as JSON (run under qemu to change the CPU).

    python -m tests.int8_figures CASE.npz IMAGES FILE.tflite [...]

CASE.npz holds the inputs `x0..` and PyTorch's class logits `y0..`. Only numpy and the
interpreter are imported, so it starts quickly under emulation.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from conformance.metrics.parity import parity_figures
from models.runtimes.base import IOSpec
from models.runtimes.tflite import TFLiteRunner

SHOWN = ("argmax_agreement", "agreement_miou", "snr_db")


def figures(case: str, paths: list[str], count: int) -> dict[str, dict[str, float]]:
    """{file: {metric: value}} over the case's first `count` images, one interpreter thread."""
    data = np.load(case)
    inputs = [data[f"x{i}"] for i in range(count)]
    expected = [{"logits": data[f"y{i}"]} for i in range(count)]
    io = IOSpec(inputs={"image": inputs[0].shape}, outputs=("logits",))
    found = {}
    for path in paths:
        runner = TFLiteRunner(path, io, threads=1)
        got = [{"logits": runner.run({"image": x})["logits"]} for x in inputs]
        metrics, _ = parity_figures(expected, got, class_axis=1)
        found[path] = {k: round(float(metrics[k]), 6) for k in SHOWN}
    return found


if __name__ == "__main__":
    print(json.dumps(figures(sys.argv[1], sys.argv[3:], int(sys.argv[2]))))
