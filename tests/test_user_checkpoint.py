"""The same suites run on a user's checkpoint (saved by the test itself)."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.suite_run import run_suite


def test_parity_suite_runs_on_a_user_deeplab_checkpoint(tmp_path: Path) -> None:
    from models.registry import get_spec

    spec = get_spec("deeplabv3plus_mnv3_lite")
    model = spec.build()
    with torch.no_grad():
        model.classifier.weight.mul_(3.0)
    checkpoint = tmp_path / "user_lite.pt"
    torch.save(model.state_dict(), checkpoint)
    code, out, results = run_suite(
        tmp_path, "conformance/test_parity.py", "-k", "deeplabv3plus_mnv3_lite-onnx",
        f"--checkpoint=deeplabv3plus_mnv3_lite={checkpoint}",
        f"--export-cache={tmp_path / 'cache'}")
    row = next(r for r in results["results"] if r["format"] == "onnx" and r["profile"] == "cpu")
    assert str(checkpoint) in row["info"]["weights"]
    assert row["outcome"] == "passed", out[-3000:]
    assert code == 0


def test_prompt_mask_suite_runs_on_a_user_fastsam_checkpoint(tmp_path: Path) -> None:
    from models import fastsam

    module = fastsam.build_fastsam_s()
    fastsam.fastsam_fixture_weights(module)
    checkpoint = fastsam.save_fastsam_checkpoint(module, tmp_path / "FastSAM-s.pt")
    code, out, results = run_suite(
        tmp_path, "conformance/test_prompt_masks.py", "-k", "fastsam_s-onnx",
        f"--checkpoint=fastsam_s={checkpoint}", f"--export-cache={tmp_path / 'cache'}")
    row = results["results"][0]
    assert str(checkpoint) in row["info"]["weights"]
    assert row["metrics"]["n_masks"] > 0 and row["outcome"] == "passed", out[-3000:]
    assert code == 0
