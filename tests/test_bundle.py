"""Bundles verify on a host with only numpy, pytest and a TFLite interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conformance.bundle import BundleError, read_bundle, write_bundle
from conformance.reference import ReferenceStore
from models.registry import get_spec

ROOT = Path(__file__).resolve().parents[1]
BLOCKER = '''
import atexit, os, sys
BLOCKED = ("torch", "torchvision", "tensorflow", "ultralytics", "litert_torch", "onnx")
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"blocked: {name}")
sys.meta_path.insert(0, _Block())
def _report():
    with open(os.environ["LOADED"], "w") as f:
        f.write(" ".join(m for m in sys.modules if m.split(".")[0] in BLOCKED))
atexit.register(_report)
'''


@pytest.fixture(scope="module")
def lite_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = get_spec("deeplabv3plus_mnv3_lite")
    store = ReferenceStore(count=2)
    ref = store.get(spec)
    artifact = store.session(spec).export("tflite_int8")
    root = tmp_path_factory.mktemp("bundles")
    write_bundle(root, spec, "tflite_int8", artifact, ref.inputs, ref.outputs, ref.weights,
                 calibration=ref.calibration_source)
    return root


def test_int8_bundle_records_its_calibration_and_activation_ranges(lite_bundle: Path) -> None:
    manifest = json.loads(
        (lite_bundle / "deeplabv3plus_mnv3_lite" / "tflite_int8" / "manifest.json").read_text())
    assert "fixture calibration photos" in manifest["calibration"]
    ranges = manifest["activation_ranges"]
    assert len(ranges) > 50, len(ranges)  # every quantised activation, not the weights
    assert all(low < high and np.isfinite([low, high]).all() for low, high in ranges.values())
    # The input is one of them: ImageNet-normalised pixels lie in [-2.12, 2.64].
    (low, high), = [ranges[d["name"]] for d in manifest["tflite_io"]["inputs"]]
    assert -2.2 <= low < 0.0 < high <= 2.7, (low, high)


def _run_on_device(bundle: Path, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess,
                                                                      dict]:
    """`pytest -m pi5 --bundle` in a Python that cannot import torch or TensorFlow."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    loaded, results = tmp_path / "loaded.txt", tmp_path / "results.json"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "LOADED": str(loaded)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "pi5", f"--bundle={bundle}", "-q", "-rs",
         "-p", "no:cacheprovider", "-o", "addopts=", f"--report-json={results}", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert loaded.read_text().split() == [], "the bundle run imported a blocked library"
    rows = {r["suite"]: r for r in json.loads(results.read_text())["results"]}
    return run, rows


def test_bundle_verifies_with_torch_and_tensorflow_blocked(lite_bundle: Path,
                                                           tmp_path: Path) -> None:
    run, rows = _run_on_device(lite_bundle, tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert rows["parity"]["outcome"] == "passed"
    # Off the device the pi5 milliseconds do not apply: the local figure, labelled, and a skip.
    latency = rows["latency"]
    assert latency["outcome"] == "skipped", latency
    assert "applies on a Raspberry Pi 5" in latency["message"]
    assert f"p50 {latency['metrics']['p50_ms']:.1f} ms" in latency["message"]
    assert latency["info"]["measured_on"].startswith("pi5 profile, numerics on ")


def test_bundle_latency_is_judged_on_the_profiles_device(lite_bundle: Path,
                                                         tmp_path: Path) -> None:
    """--assume-device pi5 (a board the detection misses): the pi5 budget is applied."""
    key = "latency.tflite_int8.pi5.max_p50_ms"
    run, rows = _run_on_device(lite_bundle, tmp_path / "generous", "--assume-device=pi5",
                               f"--budget={key}=100000")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    latency = rows["latency"]
    assert latency["outcome"] == "passed" and "measured_on" not in latency["info"], latency
    assert latency["budgets"]["max_p50_ms"] == 100000
    run, rows = _run_on_device(lite_bundle, tmp_path / "strict", "--assume-device=pi5",
                               f"--budget={key}=0.001")
    assert run.returncode == 1 and rows["latency"]["outcome"] == "failed", run.stdout[-3000:]
    assert "p50_ms = " in rows["latency"]["message"], rows["latency"]["message"]
    assert rows["parity"]["outcome"] == "passed"


def test_altered_bundle_is_refused_with_the_file_named(lite_bundle: Path) -> None:
    folder = lite_bundle / "deeplabv3plus_mnv3_lite" / "tflite_int8"
    copy = folder.parent / "altered"
    copy.mkdir()
    for item in folder.iterdir():
        (copy / item.name).write_bytes(item.read_bytes())
    with open(copy / "reference.npz", "r+b") as handle:
        handle.seek(200)
        handle.write(b"\x00\x01\x02")
    with pytest.raises(BundleError, match=r"reference\.npz: sha256 differs"):
        read_bundle(copy)
