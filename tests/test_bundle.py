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


def test_bundle_verifies_with_torch_and_tensorflow_blocked(lite_bundle: Path,
                                                           tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    loaded = tmp_path / "loaded.txt"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "LOADED": str(loaded)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "pi5", f"--bundle={lite_bundle}", "-q",
         "-p", "no:cacheprovider", "-o", "addopts=", "-o", "report_json="],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "1 passed" in run.stdout
    assert loaded.read_text().split() == [], "the bundle run imported a blocked library"


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
