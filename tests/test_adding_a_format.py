"""Adding a format is one converter, one runner and one row (issue 12, point 2).

The toy format `npz` is defined here and nowhere else: a converter that saves a 1x1
convolution's weights with numpy, a runner that applies them with numpy, and a row. The real
parity suite (conformance/test_parity.py) then collects it, exports it through the cache,
runs it and judges it against the precision class's budget in conformance/budgets.toml.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conformance.budgets import load_budgets
from models import registry
from models.formats import FORMATS, ExportFormat
from models.registry import InputSpec, ModelSpec
from models.runtimes import IOSpec

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.usefixtures("bare_inner_sessions")

ROOT = Path(__file__).resolve().parents[1]


def export_npz(request) -> dict:
    """The toy converter: the convolution's weights and bias in an .npz file."""
    conv = request.model
    np.savez(request.out_path, weight=conv.weight.detach().numpy()[:, :, 0, 0],
             bias=conv.bias.detach().numpy())
    return {"converter": "numpy.savez"}


class NpzRunner:
    """The toy runner: the 1x1 convolution in numpy."""

    def __init__(self, path: Path, io: IOSpec) -> None:
        self.path, self.io = Path(path), io
        with np.load(self.path) as data:
            self.weight, self.bias = data["weight"], data["bias"]

    @classmethod
    def load(cls, path: Path, io: IOSpec, *, threads: int | None = None, device: str = "cpu",
             meta: dict | None = None) -> NpzRunner:
        return cls(path, io)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        image = inputs[next(iter(self.io.inputs))]
        logits = np.einsum("oc,nchw->nohw", self.weight, image) + self.bias[None, :, None, None]
        return {self.io.outputs[0]: logits.astype(np.float32)}

    def describe(self) -> dict[str, str]:
        return {"runtime": "numpy", "version": np.__version__}


class DriftedNpzRunner(NpzRunner):
    """A broken runtime: every logit shifted by 0.1 (decisions kept, SNR lost)."""

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: value + np.float32(0.1) for name, value in super().run(inputs).items()}


HERE = __name__
NPZ = ExportFormat("npz", ".npz", f"{HERE}:export_npz", f"{HERE}:NpzRunner", "float32")
NPZ_DRIFTED = ExportFormat("npz_drifted", ".npz", f"{HERE}:export_npz",
                           f"{HERE}:DriftedNpzRunner", "float32")


def build_dominant_channel() -> torch.nn.Module:
    """Three classes, one per colour channel: each pixel's class is its strongest channel."""
    conv = torch.nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        conv.weight.copy_((torch.eye(3) - 1 / 3)[:, :, None, None])
        conv.bias.copy_(torch.tensor([0.01, 0.0, -0.01]))
    return conv.eval()


TOY_SPEC = ModelSpec(
    name="toy_dominant_channel", family="toy", build=build_dominant_channel,
    inputs=(InputSpec("image", (1, 3, 32, 32)),), output_names=("logits",), task="semantic",
    num_classes=3, expected_params=12, formats=("npz", "npz_drifted"),
    preprocess=lambda batch: {"image": np.ascontiguousarray(batch, dtype=np.float32)})


@pytest.fixture
def toy_format(monkeypatch: pytest.MonkeyPatch) -> None:
    """The two rows and a model tested in them, for this test only."""
    monkeypatch.setitem(FORMATS, NPZ.name, NPZ)
    monkeypatch.setitem(FORMATS, NPZ_DRIFTED.name, NPZ_DRIFTED)
    # The families first, out here: pytester drops the modules an inner run imports, so
    # families first imported in there would leave the restored registry without them.
    registry.all_specs()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register(TOY_SPEC)
    # The suite parametrizes at import: a copy imported earlier in this process (another
    # test's in-process run) would not hold the toy model, so the inner run imports it anew.
    monkeypatch.delitem(sys.modules, "conformance.test_parity", raising=False)
    # The inner run's --export-cache sets SEGCONFORM_CACHE in this process: restored after.
    # Not changed before it: the root conftest would point the offline settings elsewhere.
    monkeypatch.setenv("SEGCONFORM_CACHE", os.environ["SEGCONFORM_CACHE"])


def test_a_format_added_as_one_row_is_collected_run_and_judged(
        toy_format: None, pytester: pytest.Pytester, tmp_path: Path) -> None:
    report = tmp_path / "results.json"
    run = pytester.runpytest(
        str(ROOT / "conformance" / "test_parity.py"), "-k", TOY_SPEC.name,
        "-p", "no:cacheprovider", "-o", "addopts=", f"--report-json={report}",
        f"--bundle-dir={tmp_path / 'bundles'}", f"--export-cache={tmp_path / 'cache'}")
    run.assert_outcomes(passed=1, failed=1)
    results = {r["format"]: r for r in json.loads(report.read_text())["results"]}
    # No budget was written for npz: it is judged by its precision class's table.
    class_budget = {k: float(v) for k, v in load_budgets()["parity"]["float32"].items()}
    assert results["npz"]["budgets"] == results["npz_drifted"]["budgets"] == class_budget
    assert results["npz"]["outcome"] == "passed"
    assert results["npz"]["info"]["runtime"] == "numpy"
    assert results["npz_drifted"]["metrics"]["argmax_agreement"] == 1.0
    assert "snr_db" in results["npz_drifted"]["message"]
    assert "(budget >= 60)" in results["npz_drifted"]["message"]


def test_the_cpu_profile_runs_and_requires_a_format_added_as_a_row(toy_format: None) -> None:
    from conformance.matrix import format_cases
    from conformance.profiles import load_profiles

    assert "npz" in load_profiles()["cpu"].formats
    assert "npz" not in load_profiles()["gpu"].formats  # its runner runs on the CPU only
    toy = [p for p in format_cases() if p.values[0].spec is TOY_SPEC]
    assert [(str(p.values[0]), [m.name for m in p.marks]) for p in toy] == [
        ("toy_dominant_channel-npz", ["cpu"]), ("toy_dominant_channel-npz_drifted", ["cpu"])]
