"""The committed fixture models are the pinned files, and real models of their task."""

from __future__ import annotations

import hashlib

import pytest

from fixtures.weights.train_semantic import _dataset, evaluate
from models.export.cache import weights_digest
from models.fastsam import WEIGHTS_FILE as FASTSAM_FILE
from models.fastsam import WEIGHTS_SHA256 as FASTSAM_SHA256
from models.fixture_weights import COMMITTED, WEIGHTS_DIR
from models.registry import get_spec

# Reviewed data: a re-trained file changes these on purpose, in the same commit as the file.
# file sha256, and the digest of the float32 state dict the report shows (`weights_sha256`).
PINNED = {
    "deeplabv3plus_mnv3_lite": (
        "d7baa704169178568679737a2bbbc8b61add82fda6e3049f8133dc102f216e42",
        "6ba2b48cd093744318dce4c2e6722bc44aeb7e8f9e0199f7ae4055721b25f0e4"),
    "deeplabv3plus_mnv3_conventional": (
        "e8be237de3888a508ccc0796dd33a145f9f106d9a202a004e8c157adabbd29f3",
        "9f84019544b1072daef8bd6719a3253e112597b3580b925c325deab006015369"),
    "semivl_small": (
        "7a83f0b331b6120fe7fa96bcc1f683c950ef8af6d9da923cb5689ab1cf6e5c05",
        "a6faead6c48a3e3b5327cc1a12f34a2e42191fb7d84a2b18702aec63e6508658"),
}
FASTSAM_PINNED = "ffc71387ed4168f72e194dfa3ddc4fea761fc23f4546bd31e60d5ad67f352c79"


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(PINNED))
def test_committed_weights_are_the_pinned_files(name: str) -> None:
    file_sha, _ = PINNED[name]
    assert COMMITTED[name].sha256 == file_sha
    assert _sha256(WEIGHTS_DIR / COMMITTED[name].file) == file_sha


def test_fastsam_weights_are_the_pinned_file() -> None:
    assert FASTSAM_SHA256 == FASTSAM_PINNED
    assert _sha256(FASTSAM_FILE) == FASTSAM_PINNED


@pytest.fixture(scope="module", params=sorted(PINNED))
def trained(request):
    spec = get_spec(request.param)
    return spec, spec.fixture_weights(spec.build())


def test_the_loaded_weights_have_the_pinned_digest(trained) -> None:
    spec, model = trained
    assert weights_digest(model) == PINNED[spec.name][1]


def test_fixture_model_is_a_real_model_of_its_task(trained) -> None:
    """Targets on the held-out synthetic images (seed 7) at the suite's input size: float
    mIoU >= 0.60, each class's share of predictions within 0.10 of its share of the labels,
    every labelled class predicted somewhere."""
    spec, model = trained
    figures = evaluate(model, spec, *_dataset(spec, 8, 7))
    assert figures["miou"] >= 0.60, figures
    assert figures["max_share_gap"] <= 0.10, figures
    assert figures["classes_predicted_of_those"] == figures["classes_in_labels"] == 21, figures
