"""DeepLabv3+ / MobileNetV3-Large: exact parameter counts, checkpoints, non-trivial fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conformance.reference import ReferenceStore
from models.checkpoint import CheckpointError
from models.deeplabv3plus import build_deeplabv3plus
from models.registry import count_parameters, get_spec


@pytest.mark.parametrize(("num_classes", "lite", "expected"), [
    (91, False, 11_745_643), (21, False, 11_727_653), (21, True, 5_632_933)])
def test_parameter_counts_match_the_paper(num_classes: int, lite: bool, expected: int) -> None:
    assert count_parameters(build_deeplabv3plus(num_classes, lite)) == expected


def test_registered_specs_declare_the_counts() -> None:
    assert get_spec("deeplabv3plus_mnv3_conventional").expected_params == 11_745_643
    assert get_spec("deeplabv3plus_mnv3_lite").expected_params == 5_632_933


def test_random_init_predicts_one_class_but_fixture_weights_do_not() -> None:
    spec = get_spec("deeplabv3plus_mnv3_lite")
    ref = ReferenceStore(count=4).get(spec)
    random_model = spec.build()
    with torch.no_grad():
        random_pred = random_model(torch.from_numpy(ref.inputs[0]["image"])).argmax(1)
    assert random_pred.unique().numel() <= 2  # why fixture weights exist
    preds = np.concatenate([out["logits"].argmax(1) for out in ref.outputs])
    assert np.unique(preds).size >= 12, "reference predicts too few classes"
    # Objects are predicted, not a constant map: the synthetic set is <= 45% background.
    assert np.bincount(preds.ravel()).max() / preds.size < 0.6
    assert all(np.unique(pred).size >= 4 for pred in preds)


def test_checkpoint_round_trip_and_wrong_file(tmp_path: Path) -> None:
    spec = get_spec("deeplabv3plus_mnv3_lite")
    model = spec.build()
    with torch.no_grad():
        model.classifier.bias.fill_(0.5)
    path = tmp_path / "user.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    loaded = spec.load_checkpoint(spec.build(), path)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    other = tmp_path / "conventional.pt"
    torch.save(get_spec("deeplabv3plus_mnv3_conventional").build().state_dict(), other)
    with pytest.raises(CheckpointError, match=r"conventional\.pt: checkpoint does not fit"):
        spec.load_checkpoint(spec.build(), other)
