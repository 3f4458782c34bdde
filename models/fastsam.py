"""FastSAM-s (seed 003): ultralytics YOLOv8s-seg with one class, plus its prompt logic.

The registered module is `FastSAMRaw`: the *unfused* SegmentationModel (11,790,483 parameters,
BatchNorm kept; export tools fold it) in eval mode with the Segment head in export mode, so
`forward(images)` returns the raw tensors every runtime produces:
    images  (1, 3, S, S) float32, RGB in [0, 1], letterboxed with pad 114
    output0 (1, 37, N)   4 box (xywh, input pixels) + 1 score + 32 mask coefficients
    proto   (1, 32, S/4, S/4)
Everything after that (NMS, mask assembly, prompts) is ultralytics' own code, fed the raw
tensors of any runtime (`prompt_masks`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from models.checkpoint import (
    CheckpointError,
    Trusted,
    load_matching_state_dict,
    load_torch_file,
    mark_source,
)
from models.offline import configure_offline
from models.registry import InputSpec, MaskThresholds, ModelSpec, register

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_YAML = "yolov8s-seg.yaml"
EXPECTED_PARAMS = 11_790_483
FUSED_PARAMS = 11_779_987  # after Conv+BN fusion, as ultralytics' predictor runs it
NUM_MASKS = 32
RAW_CHANNELS = 4 + 1 + NUM_MASKS  # output0 rows: box, score, mask coefficients
# output0's rows by range: box (0-1 once normalised), score (0-1), mask coefficients (about
# +-13). TFLite files made with export rewrite output0_in_parts deliver them as three outputs
# (each its own int8 scale); the TFLite runner joins them back into output0.
OUTPUT0_PARTS = (4, 1, NUM_MASKS)
EXPORT_REWRITES = ("output0_in_parts",)  # models/export/rewrites.py
# Tensors of the Segment head (ultralytics model.22) and the three output0 parts whose int8
# ranges are calibrated as the true min/max over the calibration images instead of
# ai-edge-quantizer's moving average, which clips the mask coefficients (README: "FastSAM-s
# int8"). Proto and the backbone keep the moving average: wider ranges there cost the masks.
# litert-torch names a tensor by its module path ("...Segment_22/...;" for the head) and the
# file's outputs serving_default_output_K_output (K = 0, 1, 2: the parts, 3: proto).
INT8_MIN_MAX_SCOPE = (r"^[^;]*\.Segment_22(?!/ultralytics\.nn\.modules\.block\.Proto_proto)"
                      r"|^serving_default_output_[012]_output$")
PAD_VALUE = 114
DEFAULT_CONF = 0.4  # FastSAM's defaults (models.md): conf 0.4, iou 0.9, retina masks
DEFAULT_IOU = 0.9
EDGE_SIZE = 512  # seed 003 runs TFLite / Edge TPU at 512
FULL_SIZE = 1024  # FastSAM's own default imgsz

WEIGHTS_FILE = REPO_ROOT / "fixtures" / "weights" / "fastsam_s_shapes.fp16.pt"
WEIGHTS_SHA256 = "ffc71387ed4168f72e194dfa3ddc4fea761fc23f4546bd31e60d5ad67f352c79"
WEIGHTS_LABEL = (
    "fixture weights fixtures/weights/fastsam_s_shapes.fp16.pt (sha256 "
    f"{WEIGHTS_SHA256[:12]}; seeded 150-step training on synthetic shape scenes by "
    "fixtures/weights/train_fastsam_s.py)"
)
EVAL_SCENE_SEED = 2  # fixture images; training used scene seed 1, calibration uses 3
CALIBRATION_SCENE_SEED = 3


def cache_dir() -> Path:
    """The suite cache ($SEGCONFORM_CACHE, else .cache/segconform in the repository)."""
    return Path(os.environ.get("SEGCONFORM_CACHE", REPO_ROOT / ".cache" / "segconform"))


def ensure_offline() -> None:
    """Offline switches for ultralytics; the same root as the suite's conftest uses."""
    configure_offline(cache_dir() / "libraries")


def build_segmentation_model(seed: int = 0) -> nn.Module:
    """ultralytics SegmentationModel('yolov8s-seg.yaml', nc=1), seeded init, eval mode."""
    ensure_offline()
    from ultralytics.nn.tasks import SegmentationModel, yaml_model_load

    # nc=1 in the config itself (same weights as nc=1 passed alone) skips ultralytics'
    # "Overriding model.yaml nc=80" message on every build; the scale "s" comes from the name.
    config = {**yaml_model_load(MODEL_YAML), "nc": 1}
    # fork_rng: seeding must not disturb the caller's global RNG stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SegmentationModel(config, nc=1, verbose=False)
    model.names = {0: "object"}
    return model.eval()


class FastSAMRaw(nn.Module):
    """FastSAM-s returning the raw (output0, proto); unfused, Segment head in export mode."""

    def __init__(self, model: nn.Module, normalise_boxes: bool = True) -> None:
        super().__init__()
        self.model = model
        # False: box rows in input pixels, as ultralytics' raw (ONNX) export; the int8 "before".
        self.normalise_boxes = normalise_boxes
        head = model.model[-1]
        head.export = True  # forward returns (output0, proto), nothing decoded further
        head.dynamic = False

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (1, 3, S, S) RGB in [0, 1] -> output0 (1, 37, N), proto (1, 32, S/4, S/4).

        output0's box rows (x, y, w, h) are divided by the input width/height, as ultralytics'
        own LiteRT export does: in input pixels (0-512) they share one int8 scale with the
        scores (0-1), which rounds every score to 0 (seed 003's lost masks). `_postprocess`
        scales them back. `normalise_boxes=False` keeps pixels (fastsam_s_official).
        """
        *rows, proto = self.output0_parts(images)
        return torch.cat(rows, dim=1), proto

    def output0_parts(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(box rows, score row, mask-coefficient rows, proto): output0 in the parts of
        OUTPUT0_PARTS, each with a value range of its own."""
        output0, proto = self.model(images)
        boxes = output0[:, :4]
        if self.normalise_boxes:
            height, width = images.shape[-2:]
            boxes = boxes / output0.new_tensor([width, height, width, height]).reshape(1, 4, 1)
        return boxes, output0[:, 4:5], output0[:, 5:], proto

    def warm(self, size: int) -> FastSAMRaw:
        """Run once at size x size so the head caches its anchors (as ultralytics' exporter)."""
        # Tracing/exporting then sees the anchors as constants instead of attribute writes.
        with torch.no_grad():
            self.forward(torch.zeros(1, 3, size, size))
        return self


def wrap_raw(model: nn.Module, size: int | None = None,
             normalise_boxes: bool = True) -> FastSAMRaw:
    """Wrap an ultralytics SegmentationModel as the registry's raw-output module."""
    module = FastSAMRaw(model, normalise_boxes).eval()
    return module.warm(size) if size else module


def build_fastsam_s(size: int = EDGE_SIZE, normalise_boxes: bool = True) -> FastSAMRaw:
    """Seeded random-init FastSAM-s raw module for input size x size."""
    return wrap_raw(build_segmentation_model(), size, normalise_boxes)


# --- checkpoints -------------------------------------------------------------------------------


def save_fastsam_checkpoint(module: nn.Module, path: Path, half: bool = False) -> Path:
    """Save in ultralytics' checkpoint dict form: `ultralytics.FastSAM(path)` loads it offline."""
    ensure_offline()
    import copy
    from datetime import datetime

    import ultralytics

    inner = module.model if isinstance(module, FastSAMRaw) else module
    model = copy.deepcopy(inner).float()
    head = model.model[-1]
    head.export = False  # as ultralytics' own checkpoints: predictor-ready, no cached anchors
    head.shape = None
    if hasattr(model, "criterion"):
        model.criterion = None
    for p in model.parameters():
        p.requires_grad_(False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt = {
        "date": datetime.now(UTC).isoformat(),
        "version": ultralytics.__version__,
        "license": "AGPL-3.0 License (https://ultralytics.com/license)",
        "docs": "https://docs.ultralytics.com",
        "epoch": -1,
        "best_fitness": None,
        "model": model.half() if half else model,
        "ema": None,
        "updates": None,
        "optimizer": None,
        "train_args": {"task": "segment", "imgsz": FULL_SIZE, "single_cls": True},
        "train_metrics": None,
    }
    torch.save(ckpt, path)
    return path


def _ultralytics_unpickle(path: Path) -> object:
    # ultralytics' own loader knows the module renames of older releases. Called only for
    # trusted files: it unpickles.
    if path.suffix != ".pt":
        raise CheckpointError(f"{path}: ultralytics checkpoints must end in .pt")
    ensure_offline()
    from ultralytics.nn.tasks import torch_safe_load

    # An absolute path: given a bare official name ("FastSAM-s.pt") ultralytics would delete a
    # damaged file and download it again.
    ckpt, _ = torch_safe_load(str(path.resolve()), safe_only=False)
    return ckpt


def _read_state_dict(path: Path, trusted: Trusted) -> tuple[dict[str, torch.Tensor], bool]:
    # Plain state dicts (our fixture file) load weights-only; ultralytics' checkpoints pickle
    # whole modules (official FastSAM-s.pt, save_fastsam_checkpoint) and load only if trusted.
    data, unpickled = load_torch_file(path, trusted, unpickle=_ultralytics_unpickle,
                                      kind="FastSAM checkpoint")
    if isinstance(data, dict) and data and all(isinstance(v, torch.Tensor) for v in data.values()):
        return dict(data), unpickled
    candidate = None
    if isinstance(data, dict):
        candidate = data.get("ema") if data.get("ema") is not None else data.get("model")
    if isinstance(candidate, nn.Module):
        return {k: v.float() if v.is_floating_point() else v
                for k, v in candidate.state_dict().items()}, unpickled
    if isinstance(candidate, dict):
        return {k: v for k, v in candidate.items() if isinstance(v, torch.Tensor)}, unpickled
    found = sorted(data)[:8] if isinstance(data, dict) else type(data).__name__
    raise CheckpointError(f"{path}: no model in the checkpoint (found {found})")


def load_fastsam_checkpoint(path: Path, module: FastSAMRaw | None = None,
                            size: int = EDGE_SIZE, trusted: Trusted = frozenset()) -> FastSAMRaw:
    """Load a user's FastSAM-s.pt (or our state dict) into FastSAM-s; ValueError names the file.

    Into `module` when given (in place), else into a fresh raw module for size x size input.
    ultralytics checkpoints are pickles: they load only when `path` is in `trusted`
    (--trust-checkpoint); plain state dicts load without.
    """
    path = Path(path)
    state, unpickled = _read_state_dict(path, trusted)
    if module is None:
        module = build_fastsam_s(size)
    target = module.model
    own = target.state_dict()
    # fp16 files (ours, official ones) load into the fp32 model.
    state = {k: v.to(own[k].dtype) if k in own else v for k, v in state.items()}
    try:
        load_matching_state_dict(target, state, str(path))
    except CheckpointError as err:
        fused = bool(state) and not any(k.endswith(".bn.weight") for k in state)
        hint = " (it looks fused, Conv+BN folded: save the unfused model)" if fused else ""
        raise CheckpointError(f"{err}; FastSAM-s is {MODEL_YAML} with nc=1{hint}") from err
    return mark_source(module.eval(), path, unpickled)


def _spec_checkpoint_loader(size: int) -> Callable[..., nn.Module]:
    def load(module: nn.Module, path: Path, trusted: Trusted = frozenset()) -> nn.Module:
        raw = module if isinstance(module, FastSAMRaw) else None
        return load_fastsam_checkpoint(path, raw, size=size, trusted=trusted)

    return load


# --- pre-processing ----------------------------------------------------------------------------


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """HxWx3 uint8 RGB -> (1, 3, size, size) float32 RGB/255, ultralytics LetterBox, pad 114."""
    ensure_offline()
    from ultralytics.data.augment import LetterBox

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected HxWx3 uint8 RGB, got {image.shape} {image.dtype}")
    # ultralytics feeds BGR to LetterBox and flips to RGB afterwards; resizing and a grey pad
    # act per channel, so letterboxing RGB directly gives the same pixels without two flips.
    # auto=False: the square, fixed-shape input exported models need (ultralytics does the
    # same for non-PyTorch formats).
    boxed = LetterBox((size, size), auto=False, padding_value=PAD_VALUE)(image=image)
    return np.ascontiguousarray(boxed.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0


def preprocess_images(images: np.ndarray, size: int = EDGE_SIZE) -> dict[str, np.ndarray]:
    """Spec hook: (1, 3, H, W) float32 RGB in [0, 1] -> {'images': letterboxed (1, 3, S, S)}."""
    if images.ndim != 4 or images.shape[0] != 1:
        raise ValueError(f"expected one (1, 3, H, W) image, got {images.shape}")
    return {"images": letterbox(to_uint8_rgb(images), size)}


def to_uint8_rgb(image: np.ndarray) -> np.ndarray:
    """(3, H, W) or (1, 3, H, W) float [0, 1] -> HxWx3 uint8, as preprocess_images rounds it."""
    image = image[0] if image.ndim == 4 else image
    return np.clip(np.rint(image.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)


# --- prompts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    """A point (x, y) or box (x0, y0, x1, y1) prompt in original-image pixels."""

    kind: Literal["point", "box"]
    coords: tuple[float, ...]
    label: int = 1  # points only: 1 foreground, 0 background

    def as_kwargs(self) -> dict[str, list]:
        """Keyword arguments for FastSAMPredictor.prompt."""
        if self.kind == "point":
            return {"points": [list(self.coords)], "labels": [self.label]}
        return {"bboxes": [list(self.coords)]}


def make_prompts(image: np.ndarray, n: int, seed: int = 0,
                 masks: np.ndarray | None = None) -> list[Prompt]:
    """`n` deterministic prompts for `image`, alternating point, box, point, ...

    Rule: an RNG seeded by (seed, crc32 of the image bytes). With `masks` (K, H, W) — the
    reference model's masks or ground-truth instances — prompt i targets mask perm[i % K]: a point
    is a uniformly drawn pixel of that mask, a box its bounding box widened by 0-10 % of its size
    per side. Without masks, points are uniform over the image and boxes have sides of 10-50 % of
    the image (seed 003 mixed points and boxes but did not publish its rule).
    """
    h, w = image.shape[:2]
    rng = np.random.default_rng([seed, zlib.crc32(np.ascontiguousarray(image).tobytes())])
    usable = [] if masks is None else [m for m in np.asarray(masks, bool) if m.any()]
    order = rng.permutation(len(usable)) if usable else np.zeros(0, int)
    prompts: list[Prompt] = []
    for i in range(n):
        kind: Literal["point", "box"] = "point" if i % 2 == 0 else "box"
        if usable:
            mask = usable[order[i % len(usable)]]
            ys, xs = np.nonzero(mask)
            if kind == "point":
                j = int(rng.integers(len(xs)))
                prompts.append(Prompt("point", (float(xs[j]), float(ys[j]))))
                continue
            x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
            mx, my = rng.uniform(0, 0.1, size=2) * (x1 - x0, y1 - y0)
            box = (max(0.0, x0 - mx), max(0.0, y0 - my), min(float(w), x1 + mx),
                   min(float(h), y1 + my))
        else:
            if kind == "point":
                x, y = rng.uniform(0, (w, h))
                prompts.append(Prompt("point", (float(np.floor(x)), float(np.floor(y)))))
                continue
            bw, bh = rng.uniform(0.1, 0.5, size=2) * (w, h)
            x0, y0 = rng.uniform(0, (w - bw, h - bh))
            box = (x0, y0, x0 + bw, y0 + bh)
        prompts.append(Prompt("box", tuple(float(np.round(v)) for v in box)))
    return prompts


# --- post-processing: ultralytics does the work --------------------------------------------------


@functools.lru_cache(maxsize=8)
def _predictor(conf: float, iou: float, imgsz: int, retina_masks: bool):
    # A FastSAMPredictor with no model: only its postprocess/prompt code is used, fed the raw
    # tensors of whichever runtime produced them. The stub supplies what that code reads.
    ensure_offline()
    from types import SimpleNamespace

    from ultralytics.models.fastsam import FastSAMPredictor

    predictor = FastSAMPredictor(overrides={
        "conf": conf, "iou": iou, "imgsz": imgsz, "retina_masks": retina_masks,
        "task": "segment", "mode": "predict", "save": False, "verbose": False,
    })
    predictor.model = SimpleNamespace(names={0: "object"}, end2end=False, fp16=False)
    predictor.device = torch.device("cpu")
    predictor.batch = ([""],)
    predictor.prompts = {}
    return predictor


def _raw_tensors(raw_outputs: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    output0 = np.asarray(raw_outputs["output0"], dtype=np.float32)
    proto = np.asarray(raw_outputs["proto"], dtype=np.float32)
    # Some converters hand back channels-last tensors; put them in ultralytics' layout.
    if output0.ndim == 2:
        output0 = output0[None]
    if output0.shape[1] != RAW_CHANNELS and output0.shape[2] == RAW_CHANNELS:
        output0 = output0.transpose(0, 2, 1)
    if proto.ndim == 3:
        proto = proto[None]
    if proto.shape[1] != NUM_MASKS and proto.shape[-1] == NUM_MASKS:
        proto = proto.transpose(0, 3, 1, 2)
    if output0.shape[1] != RAW_CHANNELS or proto.shape[1] != NUM_MASKS:
        raise ValueError(f"raw outputs of unexpected shape: output0 "
                         f"{raw_outputs['output0'].shape}, proto {raw_outputs['proto'].shape}")
    return torch.from_numpy(np.ascontiguousarray(output0)), torch.from_numpy(
        np.ascontiguousarray(proto))


def _postprocess(raw_outputs: dict[str, np.ndarray], image: np.ndarray, conf: float, iou: float,
                 imgsz: int | None, retina_masks: bool = True):
    output0, proto = _raw_tensors(raw_outputs)
    size = int(imgsz or proto.shape[-1] * 4)  # proto is 1/4 of the letterboxed input
    # Box rows normalised to the (square, letterboxed) input go back to pixels for NMS; rows
    # already in pixels (ultralytics' raw export, fastsam_s_official) are told by their range.
    if boxes_normalised(output0.numpy()):
        output0 = torch.cat([output0[:, :4] * size, output0[:, 4:]], dim=1)
    predictor = _predictor(float(conf), float(iou), size, bool(retina_masks))
    letterboxed = torch.empty((1, 3, size, size))  # only its shape is read
    bgr = np.ascontiguousarray(image[..., ::-1])  # ultralytics keeps original images as BGR
    with torch.no_grad():
        (result,) = predictor.postprocess((output0, proto), letterboxed, [bgr])
    return result, predictor


def fastsam_results(raw_outputs: dict[str, np.ndarray], image: np.ndarray,
                    conf: float = DEFAULT_CONF, iou: float = DEFAULT_IOU,
                    imgsz: int | None = None, retina_masks: bool = True):
    """ultralytics Results ("segment everything") from any runtime's raw output0/proto.

    `image` is the original HxWx3 uint8 RGB; `imgsz` the letterboxed input size (default: 4x
    the proto size). As FastSAMPredictor.postprocess: NMS, mask assembly (retina masks: at the
    original size), boxes covering nearly the whole image snapped to it.
    """
    return _postprocess(raw_outputs, image, conf, iou, imgsz, retina_masks)[0]


def everything_masks(raw_outputs: dict[str, np.ndarray], image: np.ndarray,
                     conf: float = DEFAULT_CONF, iou: float = DEFAULT_IOU,
                     imgsz: int | None = None) -> np.ndarray:
    """All masks FastSAM finds, (K, H, W) bool at the original image size."""
    result = fastsam_results(raw_outputs, image, conf, iou, imgsz)
    if result.masks is None or len(result) == 0:
        return np.zeros((0, *image.shape[:2]), dtype=bool)
    return result.masks.data.cpu().numpy().astype(bool)


def prompt_masks(raw_outputs: dict[str, np.ndarray], image: np.ndarray,
                 prompts: Sequence[Prompt], conf: float = DEFAULT_CONF,
                 iou: float = DEFAULT_IOU, imgsz: int | None = None) -> list[np.ndarray | None]:
    """One (H, W) bool mask per prompt (None when FastSAM has none), via FastSAMPredictor.prompt.

    Each prompt is applied on its own. A point can select several masks (every mask containing
    it); they are merged, as the original FastSAM's point prompt does. A box selects one.
    """
    result, predictor = _postprocess(raw_outputs, image, conf, iou, imgsz)
    answers: list[np.ndarray | None] = []
    for prompt in prompts:
        (chosen,) = predictor.prompt(result, **prompt.as_kwargs())
        if chosen.masks is None or len(chosen) == 0:
            answers.append(None)
            continue
        merged = chosen.masks.data.bool().any(dim=0).cpu().numpy()
        answers.append(merged if merged.any() else None)
    return answers


# --- users' own exports (--artifact) --------------------------------------------------------------

# Normalised box rows stay near [0, 1]; in input pixels the x/y centres of the anchor grid
# reach nearly the input size (>= 256 at every size we run), whatever the weights.
PIXEL_BOX_ROWS_ABOVE = 2.0


def boxes_normalised(output0: np.ndarray) -> bool:
    """Whether output0's (1, 37, N) box rows are normalised (else in input pixels)."""
    centres = np.asarray(output0)[:, :2]
    return not centres.size or float(np.abs(centres).max()) <= PIXEL_BOX_ROWS_ABOVE


def output_convention(outputs: dict[str, np.ndarray], spec: ModelSpec,
                      normalised: bool = True):
    """Spec hook for a user's file: (convert or None, description) of output0's box units.

    ultralytics' ONNX and TorchScript exports keep output0's box rows (x, y, w, h) in input
    pixels; its LiteRT export, and `FastSAMRaw`, divide them by the input size. Detected by
    value range on the file's own output for the first fixture image, and converted to the
    units of the spec's reference (`normalised`; False for fastsam_s_official), so the parity
    compares like with like.
    """
    size = spec.input_size
    centres = np.asarray(outputs["output0"])[:, :2]
    peak = float(np.abs(centres).max()) if centres.size else 0.0
    found = "normalised" if boxes_normalised(outputs["output0"]) else "in input pixels"
    seen = (f"output0 box rows {found} (max centre {peak:.2f}; pixels above "
            f"{PIXEL_BOX_ROWS_ABOVE:g})")
    if (found == "normalised") == normalised:
        return None, f"{seen}, as the model's reference"
    scale = np.array([size[1], size[0], size[1], size[0]], dtype=np.float32).reshape(1, 4, 1)
    factor = 1.0 / scale if normalised else scale

    def convert(result: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        output0 = np.asarray(result["output0"], dtype=np.float32).copy()
        output0[:, :4] *= factor
        return {**result, "output0": output0}

    how = "divided by" if normalised else "multiplied by"
    return convert, f"{seen}: {how} the input size {size[1]}x{size[0]} for the model's reference"


# --- fixture weights, images and registration ---------------------------------------------------


@functools.cache
def fixture_weights_path() -> Path:
    """The committed fixture weights (sha256 checked), else weights trained once into the cache."""
    if WEIGHTS_FILE.is_file():
        from models.fixture_weights import check_sha256

        check_sha256(WEIGHTS_FILE, WEIGHTS_SHA256)
        return WEIGHTS_FILE
    from dataclasses import asdict

    from fixtures.weights.train_fastsam_s import TrainConfig, half_state_dict, train
    from models.export.cache import content_key

    sources = [REPO_ROOT / "fixtures" / "shapes.py",
               REPO_ROOT / "fixtures" / "weights" / "train_fastsam_s.py"]
    key = content_key({
        "config": asdict(TrainConfig()), "torch": torch.__version__,
        "sources": [zlib.crc32(p.read_bytes()) for p in sources],
    })
    cached = cache_dir() / "fixture_weights" / f"fastsam_s_shapes-{key}.fp16.pt"
    if not cached.is_file():
        # 5-6 min on an idle 2-core machine: only when the committed file is missing.
        model = train(TrainConfig())
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.save(half_state_dict(model), cached.with_suffix(".tmp"))
        cached.with_suffix(".tmp").replace(cached)
    return cached


def fastsam_fixture_weights(module: nn.Module, images: np.ndarray | None = None) -> nn.Module:
    """Spec hook: load the shape-trained fixture weights (the images are not needed)."""
    raw = module if isinstance(module, FastSAMRaw) else wrap_raw(module)
    # load_state_dict leaves the head's cached anchors alone: they depend on shapes only.
    return load_fastsam_checkpoint(fixture_weights_path(), raw)


def shape_fixture_images(size: tuple[int, int], count: int,
                         seed: int = EVAL_SCENE_SEED) -> np.ndarray:
    """Fixture scenes (count, 3, H, W) in [0, 1]: shapes like those the weights were trained on."""
    from fixtures.shapes import shape_images

    if size[0] != size[1]:
        raise ValueError(f"shape scenes are square, got {size}")
    return shape_images(count, size[0], seed=seed)


def _spec(name: str, size: int, tier: Literal["fast", "slow"]) -> ModelSpec:
    return ModelSpec(
        name=name,
        family="fastsam",
        build=functools.partial(build_fastsam_s, size),
        inputs=(InputSpec("images", (1, 3, size, size)),),
        output_names=("output0", "proto"),
        task="prompt_masks",
        num_classes=1,
        expected_params=EXPECTED_PARAMS,
        formats=("onnx", "tflite_fp32", "tflite_int8", "edgetpu"),
        tier=tier,
        load_checkpoint=_spec_checkpoint_loader(size),
        fixture_weights=fastsam_fixture_weights,
        preprocess=functools.partial(preprocess_images, size=size),
        description=(f"FastSAM-s = ultralytics {MODEL_YAML} nc=1 at {size}x{size}, unfused, "
                     "input RGB/255 letterboxed to a square (pad 114), raw output0/proto; "
                     "prompts via FastSAMPredictor.prompt"),
        weights_label=WEIGHTS_LABEL,
        fixture_images=shape_fixture_images,
        calibration_images=functools.partial(shape_fixture_images, seed=CALIBRATION_SCENE_SEED),
        mask_thresholds=MaskThresholds(conf=DEFAULT_CONF, iou=DEFAULT_IOU),
        output_convention=output_convention,
        rewrites=EXPORT_REWRITES,
        output_parts=(("output0", OUTPUT0_PARTS),),
        int8_min_max_scope=INT8_MIN_MAX_SCOPE,
    )


FASTSAM_S = register(_spec("fastsam_s", EDGE_SIZE, "fast"))
# FastSAM-s's int8 file as ultralytics' raw graph and ai-edge-quantizer make it (box rows in
# input pixels, output0 whole, moving-average ranges everywhere), beside the remedied one: the
# matrix shows in one run what the three remedies buy (conformance/remedies.py). Its PyTorch
# reference keeps pixels too; the post-processing tells the units by their range.
register(dataclasses.replace(
    FASTSAM_S, name="fastsam_s_official", formats=("tflite_int8",), rewrites=(),
    int8_min_max_scope=None, build=functools.partial(build_fastsam_s, EDGE_SIZE, False),
    output_convention=functools.partial(output_convention, normalised=False),
    description=FASTSAM_S.description.replace("raw output0", "raw output0 (box rows in pixels)")
    + "; int8 with output0 whole and moving-average ranges"))
register(_spec("fastsam_s_1024", FULL_SIZE, "slow"))
