"""PyTorch references: the model with its weights, fixture inputs and eager outputs.

One `ReferenceStore` per session builds each model once, caches fixture weights on disk
(content-hashed), and owns each model's `ExportSession`, so every suite compares the same
artifacts against the same reference outputs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fixtures.images import CALIBRATION_PHOTOS, calibration_images, folder_photos, to_nchw01
from fixtures.voc import synthetic_samples
from models.checkpoint import Trusted, checkpoint_label
from models.export import ExportSession
from models.export.cache import arrays_digest, cache_root, key_lock, weights_digest
from models.fixture_weights import CommittedWeights
from models.registry import ModelSpec, count_parameters

# Bump when the way fixture weights are made changes, so cached weights are not reused.
FIXTURE_WEIGHTS_VERSION = "1"
EVAL_SEED, TRAIN_SEED = 2, 1
CALIBRATION_SEED = TRAIN_SEED + 100  # synthetic calibration images: a seed of their own
CALIBRATION_COUNT = 16  # default --calibration-count
NamedArrays = list[dict[str, np.ndarray]]  # per image, arrays by input or output name


@dataclass
class Reference:
    """A model ready for comparison: inputs per image and PyTorch's outputs for them."""

    spec: ModelSpec
    model: torch.nn.Module
    weights: str
    weights_key: str
    images: np.ndarray  # (N, 3, H, W) float32 in [0, 1]
    labels: np.ndarray | None
    inputs: list[dict[str, np.ndarray]]
    outputs: list[dict[str, np.ndarray]]
    calibration: list[dict[str, np.ndarray]] = field(default_factory=list)
    fixture: bool = True  # False when a user's checkpoint is loaded
    calibration_source: str = ""  # which images calibrated the int8 exports, in words

    @property
    def output_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the reference outputs by name."""
        return {k: tuple(v.shape) for k, v in self.outputs[0].items()}


def run_eager(model: torch.nn.Module, spec: ModelSpec,
              inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """PyTorch forward on named numpy inputs, outputs by the spec's names."""
    args = [torch.from_numpy(inputs[i.name]) for i in spec.inputs]
    with torch.no_grad():
        out = model(*args)
    if not isinstance(out, (tuple, list)):
        out = (out,)
    return {name: out[k].detach().float().cpu().numpy()
            for k, name in enumerate(spec.output_names)}


def _split(spec: ModelSpec, batch: np.ndarray) -> list[dict[str, np.ndarray]]:
    return [spec.preprocess(batch[i : i + 1]) for i in range(len(batch))]


def _photo_batch(size: tuple[int, int], count: int | None = None) -> np.ndarray:
    """The fixture evaluation photos (the first `count`) as one (N, 3, H, W) batch."""
    from fixtures.images import evaluation_photos

    return to_nchw01([img for _, img in evaluation_photos()][:count], size)


def _semantic_set(size: tuple[int, int], count: int, seed: int):
    samples = synthetic_samples(count, size[0], seed=seed)
    images = np.stack([s.image for s in samples]).transpose(0, 3, 1, 2).astype(np.float32)
    return np.ascontiguousarray(images / 255.0), np.stack([s.label for s in samples])


class ReferenceStore:
    """Builds references and export sessions on demand, once per model per session."""

    def __init__(self, checkpoints: dict[str, Path] | None = None, trusted: Trusted = (),
                 images_dir: Path | None = None, count: int = 4, threads: int = 2,
                 cache_dir: Path | None = None,
                 artifacts: dict[str, dict[str, Path]] | None = None,
                 calibration_dir: Path | None = None,
                 calibration_count: int = CALIBRATION_COUNT,
                 int8_recipes: dict | None = None) -> None:
        self.checkpoints = checkpoints or {}
        self.trusted = trusted  # --trust-checkpoint: the only files that may be unpickled
        self.artifacts = artifacts or {}  # model -> format -> a user's file (--artifact)
        self.images_dir = images_dir
        self.calibration_dir = calibration_dir  # --calibration: the user's own images
        self.calibration_count = calibration_count
        self.int8_recipes = int8_recipes or {}  # model -> Int8Recipe (--int8-recipe)
        self.count = count
        self.threads = threads
        self.cache_dir = cache_dir
        self._references: dict[str, Reference] = {}
        self._sessions: dict[str, ExportSession] = {}
        self._photos: dict[str, tuple[NamedArrays, NamedArrays]] = {}

    def judges_fixture(self, spec: ModelSpec, fmt: str) -> bool:
        """Whether (spec, fmt) is the suite's own export of its fixture weights: no
        --checkpoint for the model and no --artifact for the format."""
        return spec.name not in self.checkpoints and fmt not in self.artifacts.get(spec.name, {})

    def get(self, spec: ModelSpec) -> Reference:
        """The reference for `spec` (built on first use)."""
        if spec.name not in self._references:
            self._references[spec.name] = self._build(spec)
        return self._references[spec.name]

    def evaluates_synthetic(self, spec: ModelSpec) -> bool:
        """Whether `spec`'s evaluation set is synthetic scenes, not the fixture photos (then
        remedies are also shown on the photos)."""
        return self.images_dir is None and (spec.fixture_images is not None
                                             or spec.task == "semantic")

    def photo_images(self, spec: ModelSpec) -> np.ndarray:
        """The fixture evaluation photos at `spec`'s input size, (N, 3, H, W) in [0, 1]."""
        return _photo_batch(spec.input_size)

    def photos(self, spec: ModelSpec) -> tuple[NamedArrays, NamedArrays]:
        """(inputs, PyTorch outputs) of the fixture evaluation photos, for a model whose
        evaluation set is synthetic (remedies are shown on both)."""
        if spec.name not in self._photos:
            ref = self.get(spec)
            inputs = _split(spec, self.photo_images(spec))
            self._photos[spec.name] = inputs, [run_eager(ref.model, spec, x) for x in inputs]
        return self._photos[spec.name]

    def session(self, spec: ModelSpec) -> ExportSession:
        """The export session for `spec`'s reference weights."""
        if spec.name not in self._sessions:
            ref = self.get(spec)
            self._sessions[spec.name] = ExportSession(
                spec=spec, model=ref.model, weights_key=ref.weights_key,
                example=ref.inputs[0], calibration=ref.calibration, root=self.cache_dir,
                user_files=dict(self.artifacts.get(spec.name, {})),
                int8_recipe=self._int8_recipe(spec, ref))
        return self._sessions[spec.name]

    def _int8_recipe(self, spec: ModelSpec, ref: Reference):
        """--int8-recipe for the model, else the recipe committed for its fixture weights (a
        recipe found for those weights says nothing about a user's checkpoint)."""
        if spec.name in self.int8_recipes:
            return self.int8_recipes[spec.name]
        if spec.int8_recipe is not None and ref.fixture:
            from models.export.int8_recipe import load_recipe

            return load_recipe(spec.int8_recipe, spec.name)
        return None

    def _eval_images(self, spec: ModelSpec) -> tuple[np.ndarray, np.ndarray | None]:
        size = spec.input_size
        if self.images_dir is not None:
            photos = folder_photos(self.images_dir, limit=self.count)
            return to_nchw01([img for _, img in photos], size), None
        make = spec.fixture_images
        if make is not None:
            return make(size, self.count), None
        if spec.task == "semantic":
            return _semantic_set(size, self.count, EVAL_SEED)
        return _photo_batch(size, self.count), None

    def _calibration(self, spec: ModelSpec) -> tuple[np.ndarray, str]:
        """Calibration batch and what it is; never the evaluation images (fixtures/images.py)."""
        size, count = spec.input_size, self.calibration_count
        if self.calibration_dir is not None:
            photos = folder_photos(self.calibration_dir, limit=count, option="--calibration")
            names = ", ".join(name for name, _ in photos)
            return (to_nchw01([img for _, img in photos], size),
                    f"--calibration {self.calibration_dir}: {len(photos)} images ({names})")
        make = spec.calibration_images
        if make is not None:
            return make(size, count), f"{count} fixture scenes (calibration seed, not evaluated)"
        photos = ", ".join(Path(rel).stem for _, rel in CALIBRATION_PHOTOS)
        if spec.task == "semantic":
            half = count // 2
            synthetic, _ = _semantic_set(size, half, CALIBRATION_SEED)
            return (np.concatenate([synthetic, calibration_images(size, count - half)]),
                    f"{half} synthetic VOC images (seed {CALIBRATION_SEED}) + {count - half} "
                    f"crops of the fixture calibration photos ({photos})")
        return (calibration_images(size, count),
                f"{count} crops of the fixture calibration photos ({photos})")

    def _build(self, spec: ModelSpec) -> Reference:
        torch.set_num_threads(self.threads)
        model = spec.build()
        checkpoint = self.checkpoints.get(spec.name)
        if checkpoint is not None:
            if spec.load_checkpoint is None:
                raise ValueError(f"--checkpoint {spec.name}: this model cannot load checkpoints")
            model = spec.load_checkpoint(model, Path(checkpoint), trusted=self.trusted).eval()
            weights = checkpoint_label(checkpoint, model)
        else:
            model, weights = self._fixture_weights(spec, model)
        if spec.expected_params is not None and checkpoint is None:
            found = count_parameters(model)
            if found != spec.expected_params:
                raise AssertionError(f"{spec.name}: {found:,} parameters, "
                                     f"expected {spec.expected_params:,}")
        images, labels = self._eval_images(spec)
        inputs = _split(spec, images)
        outputs = [run_eager(model, spec, x) for x in inputs]
        calibration, calibration_source = self._calibration(spec)
        return Reference(spec=spec, model=model, weights=weights,
                         weights_key=weights_digest(model), images=images, labels=labels,
                         inputs=inputs, outputs=outputs, calibration=_split(spec, calibration),
                         fixture=checkpoint is None, calibration_source=calibration_source)

    def _fixture_weights(self, spec: ModelSpec, model: torch.nn.Module):
        label = spec.weights_label
        if spec.fixture_weights is None:
            return model, label
        if isinstance(spec.fixture_weights, CommittedWeights):
            return spec.fixture_weights(model), label
        size = spec.input_size
        if spec.task == "semantic":
            images, labels = _semantic_set(size, 16, TRAIN_SEED)
        else:
            images, labels = calibration_images(size, 16, seed=TRAIN_SEED), None
        key = hashlib.sha256("|".join([
            spec.name, FIXTURE_WEIGHTS_VERSION, torch.__version__, weights_digest(model), label,
            arrays_digest([images] + ([labels] if labels is not None else [])),
        ]).encode()).hexdigest()[:16]
        path = (self.cache_dir or cache_root()) / "fixture_weights" / f"{spec.name}-{key}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        with key_lock(path):  # parallel workers fit once; the others load the file
            if path.is_file():
                model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
                return model.eval(), f"{label} (cached {path.name})"
            model = spec.fixture_weights(model, images)
            torch.save(model.state_dict(), path.with_suffix(".tmp"))
            path.with_suffix(".tmp").replace(path)
        return model.eval(), label
