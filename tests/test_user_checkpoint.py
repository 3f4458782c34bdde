"""The same suites run on a user's checkpoint (saved by the test itself)."""

from __future__ import annotations

from pathlib import Path

import torch


def test_parity_suite_runs_on_a_user_deeplab_checkpoint(tmp_path: Path, inline_suite) -> None:
    from models.registry import get_spec

    spec = get_spec("deeplabv3plus_mnv3_lite")
    # A model that makes decisions (a random one is refused as a degenerate reference): the
    # fixture model with a rescaled classifier, so that its weights are the user's own.
    model = spec.fixture_weights(spec.build())
    with torch.no_grad():
        model.classifier.weight.mul_(3.0)
    checkpoint = tmp_path / "user_lite.pt"
    torch.save(model.state_dict(), checkpoint)
    code, out, results = inline_suite(
        tmp_path, "conformance/test_parity.py", "-k", "deeplabv3plus_mnv3_lite-onnx",
        f"--checkpoint=deeplabv3plus_mnv3_lite={checkpoint}",
        f"--export-cache={tmp_path / 'cache'}")
    row = next(r for r in results["results"] if r["format"] == "onnx" and r["profile"] == "cpu")
    assert str(checkpoint) in row["info"]["weights"]
    assert "unpickled" not in row["info"]["weights"]  # a plain state dict needs no trust
    assert row["outcome"] == "passed", out[-3000:]
    assert code == 0


def test_a_pickled_checkpoint_runs_only_with_trust_checkpoint(tmp_path: Path, inline_suite) -> None:
    from models.registry import get_spec
    from tests.pickle_payload import WritesMarker

    spec = get_spec("deeplabv3plus_mnv3_lite")
    marker = tmp_path / "payload_ran"
    checkpoint = tmp_path / "pickled_lite.pt"
    weights = spec.fixture_weights(spec.build()).state_dict()  # a model that makes decisions
    torch.save({"state_dict": weights, "hook": WritesMarker(marker)}, checkpoint)
    args = ("conformance/test_parity.py",
            "-k", "deeplabv3plus_mnv3_lite-torchscript and not torchscript_lite",
            f"--checkpoint=deeplabv3plus_mnv3_lite={checkpoint}",
            f"--export-cache={tmp_path / 'cache'}")
    code, out, _ = inline_suite(tmp_path, *args)
    assert code != 0 and not marker.exists(), out[-3000:]
    assert (f"{checkpoint}: needs pickle to load (it holds Python objects such as "
            "tests.pickle_payload.write_marker, not only tensors); pickle can run code: re-run "
            f"with --trust-checkpoint {checkpoint} if you trust it") in out, out[-3000:]

    code, out, results = inline_suite(tmp_path, *args, f"--trust-checkpoint={checkpoint}")
    assert marker.exists()
    row = next(r for r in results["results"]
               if r["format"] == "torchscript" and r["profile"] == "cpu")
    assert row["info"]["weights"] == (
        f"user checkpoint {checkpoint} (unpickled: trusted with --trust-checkpoint)")
    assert row["outcome"] == "passed" and code == 0, out[-3000:]


def test_prompt_mask_suite_runs_on_a_user_fastsam_checkpoint(tmp_path: Path, inline_suite) -> None:
    from models import fastsam

    module = fastsam.build_fastsam_s()
    fastsam.fastsam_fixture_weights(module)
    checkpoint = fastsam.save_fastsam_checkpoint(module, tmp_path / "FastSAM-s.pt")
    # ultralytics checkpoints pickle whole modules: this one is trusted on the command line.
    code, out, results = inline_suite(
        tmp_path, "conformance/test_prompt_masks.py", "-k", "fastsam_s-onnx",
        f"--checkpoint=fastsam_s={checkpoint}", f"--trust-checkpoint={checkpoint}",
        f"--export-cache={tmp_path / 'cache'}")
    row = results["results"][0]
    assert str(checkpoint) in row["info"]["weights"]
    assert "unpickled: trusted with --trust-checkpoint" in row["info"]["weights"]
    assert row["metrics"]["n_masks"] > 0 and row["outcome"] == "passed", out[-3000:]
    assert code == 0
