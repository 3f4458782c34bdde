"""Committed fixture weights: trained once (fixtures/weights/train_*.py), stored in fp16 and
checked by sha256 at load, so that every machine judges exports of the same model.

Training at run time made the weights (and so the verdicts) depend on the machine's float
kernels; a file with a pinned digest does not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "weights"


class FixtureWeightsError(RuntimeError):
    """A committed weights file that is missing or not the pinned one; names the file."""


@dataclass(frozen=True)
class CommittedArray:
    """A non-persistent buffer committed beside the weights (SemiVL's text embeddings): not in
    the state dict, yet an input of the model that must be the same on every machine."""

    buffer: str
    file: str
    sha256: str


@dataclass(frozen=True)
class CommittedWeights:
    """One committed weights file: its name under fixtures/weights, digest and recipe.

    `trained` names the submodules the file holds when only they were trained (prefixes, e.g.
    "decode_head."); the rest comes from `base_init`, a portable seeded init of the module.
    A non-persistent buffer saved in the file (its name as key) is set as well.
    """

    file: str
    sha256: str
    recipe: str
    arrays: tuple[CommittedArray, ...] = ()
    trained: tuple[str, ...] = ()
    base_init: Callable[[Any], Any] | None = None

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.file

    @property
    def label(self) -> str:
        """What the report says about these weights."""
        return f"fixture weights fixtures/weights/{self.file} (sha256 {self.sha256[:12]}; " \
               f"{self.recipe})"

    def __call__(self, module, images=None, labels=None):
        """Load into `module` (float32), strictly; the images are not needed."""
        import numpy as np
        import torch

        if self.base_init is not None:
            self.base_init(module)
        state = torch.load(_verified(self.path, self.sha256), map_location="cpu",
                           weights_only=True)
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        persistent = module.state_dict().keys()
        buffers = {k for k, _ in module.named_buffers()} - set(persistent)
        for name in sorted(buffers & state.keys()):
            _set_buffer(module, name, state.pop(name))
        if self.trained:
            expected = {k for k in persistent if k.startswith(self.trained)}
            if set(state) != expected:
                raise FixtureWeightsError(
                    f"{self.path}: holds {len(state)} tensors, expected the {len(expected)} "
                    f"of {', '.join(p + '*' for p in self.trained)}")
            module.load_state_dict(state, strict=False)
        else:
            module.load_state_dict(state)
        for array in self.arrays:
            values = np.load(_verified(WEIGHTS_DIR / array.file, array.sha256),
                             allow_pickle=False)
            _set_buffer(module, array.buffer, torch.from_numpy(values.astype(np.float32)))
        return module.eval()


def _set_buffer(module, name: str, value) -> None:
    owner, _, attr = name.rpartition(".")
    target = module.get_submodule(owner) if owner else module
    if tuple(getattr(target, attr).shape) != tuple(value.shape):
        raise FixtureWeightsError(f"buffer {name}: committed shape {tuple(value.shape)}, "
                                  f"the model has {tuple(getattr(target, attr).shape)}")
    setattr(target, attr, value.clone())


def check_sha256(path: Path, sha256: str) -> None:
    """A committed weights file is the pinned one, or FixtureWeightsError names it."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise FixtureWeightsError(
            f"{path}: sha256 {digest[:12]}, expected {sha256[:12]} (a Git LFS pointer or a "
            "re-trained file: then update the pinned digest and the sidecar .json)")


@cache
def _verified(path: Path, sha256: str) -> Path:
    if not path.is_file():
        raise FixtureWeightsError(f"{path}: committed fixture weights are missing (re-clone, "
                                  "or re-train with fixtures/weights/train_semantic.py)")
    check_sha256(path, sha256)
    return path


_SEMANTIC_RECIPE = "trained end to end on synthetic VOC by fixtures/weights/train_semantic.py"
_DECODER_RECIPE = ("decoder and backbone projection trained on synthetic VOC over a frozen, "
                   "numpy-seeded ViT by fixtures/weights/train_semivl_decoder.py")


def _portable_vit(module) -> None:
    # The slow tier's ViT-B/16 backbone is not trained (no CLIP weights can be downloaded, and
    # 86M parameters are out of reach on two cores): a seeded init that is the same everywhere.
    module.backbone.init_portable(seed=0)


# Pinned here once; tests/test_fixture_weights.py pins them again, so a changed file is a
# reviewed change.
COMMITTED: dict[str, CommittedWeights] = {
    "deeplabv3plus_mnv3_lite": CommittedWeights(
        "deeplabv3plus_mnv3_lite.fp16.pt",
        "d7baa704169178568679737a2bbbc8b61add82fda6e3049f8133dc102f216e42", _SEMANTIC_RECIPE),
    "deeplabv3plus_mnv3_conventional": CommittedWeights(
        "deeplabv3plus_mnv3_conventional.fp16.pt",
        "e8be237de3888a508ccc0796dd33a145f9f106d9a202a004e8c157adabbd29f3", _SEMANTIC_RECIPE),
    "semivl_small": CommittedWeights(
        "semivl_small.fp16.pt",
        "7a83f0b331b6120fe7fa96bcc1f683c950ef8af6d9da923cb5689ab1cf6e5c05", _SEMANTIC_RECIPE,
        # The seeded Gaussian text embeddings it was trained with, as float32: torch draws
        # them differently (in the last bits) on CPUs with and without AVX2.
        arrays=(CommittedArray("text_embeddings", "semivl_small.text.npy",
                               "2696e3367e1a0773e6d22c87dc99b04a2f18b0cd84ae7307e9bc586fdb9757c8"),)),
    # Slow tier: the file holds the decoder, the backbone's projection and the text embeddings
    # they were trained with; the rest of the ViT comes from `_portable_vit`.
    "semivl_vitb16": CommittedWeights(
        "semivl_vitb16.decoder.fp16.pt",
        "59c1cf3a73203cf08bf4c4de4059be00cff74264fc6958209288ca566d2285e5", _DECODER_RECIPE,
        trained=("decode_head.", "backbone.proj."), base_init=_portable_vit),
}
