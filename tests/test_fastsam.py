"""FastSAM-s: architecture, raw outputs, checkpoints, prompt masks, and no network use."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from conformance.metrics.masks import mask_iou
from fixtures.shapes import shape_scene
from models import fastsam
from models.checkpoint import CheckpointError
from models.registry import count_parameters, get_spec

REPO_ROOT = Path(__file__).resolve().parents[1]
SIZE = fastsam.EDGE_SIZE


@pytest.fixture(scope="module")
def random_model() -> fastsam.FastSAMRaw:
    return fastsam.build_fastsam_s(SIZE)


@pytest.fixture(scope="module")
def trained_model() -> fastsam.FastSAMRaw:
    return fastsam.fastsam_fixture_weights(fastsam.build_fastsam_s(SIZE))


def _raw(model: torch.nn.Module, image: np.ndarray) -> dict[str, np.ndarray]:
    with torch.no_grad():
        output0, proto = model(torch.from_numpy(fastsam.letterbox(image, SIZE)))
    return {"output0": output0.numpy(), "proto": proto.numpy()}


def test_parameter_counts(random_model: fastsam.FastSAMRaw) -> None:
    assert count_parameters(random_model) == fastsam.EXPECTED_PARAMS == 11_790_483
    fused = copy.deepcopy(random_model.model).fuse()
    assert count_parameters(fused) == fastsam.FUSED_PARAMS


def test_registry_specs() -> None:
    fast, slow = get_spec("fastsam_s"), get_spec("fastsam_s_1024")
    assert (fast.tier, fast.input_size, slow.tier, slow.input_size) == (
        "fast", (512, 512), "slow", (1024, 1024))
    assert fast.output_names == ("output0", "proto") and fast.task == "prompt_masks"
    assert fast.expected_params == 11_790_483 and "fixture weights" in fast.weights_label
    images = fast.fixture_images(fast.input_size, 2)
    assert images.shape == (2, 3, 512, 512) and images.dtype == np.float32
    assert fast.preprocess(images[:1])["images"].shape == (1, 3, 512, 512)


def test_raw_output_shapes(random_model: fastsam.FastSAMRaw) -> None:
    with torch.no_grad():
        output0, proto = random_model(torch.rand(1, 3, SIZE, SIZE))
    assert tuple(output0.shape) == (1, 37, 5376)
    assert tuple(proto.shape) == (1, 32, 128, 128)
    assert output0.dtype == proto.dtype == torch.float32


def test_seeded_build_is_deterministic(random_model: fastsam.FastSAMRaw) -> None:
    again = fastsam.build_fastsam_s(SIZE)
    for (name, a), (_, b) in zip(random_model.state_dict().items(),
                                 again.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_checkpoint_round_trip(tmp_path: Path, trained_model: fastsam.FastSAMRaw) -> None:
    from ultralytics import FastSAM

    path = fastsam.save_fastsam_checkpoint(trained_model, tmp_path / "FastSAM-s.pt")
    image = shape_scene(0, SIZE, seed=fastsam.EVAL_SCENE_SEED).image
    expected = _raw(trained_model, image)

    via_ultralytics = fastsam.wrap_raw(FastSAM(str(path)).model)
    # ultralytics' layout pickles whole modules: it loads only when trusted.
    via_ours = fastsam.load_fastsam_checkpoint(path, trusted={path})
    for model in (via_ultralytics, via_ours):
        got = _raw(model, image)
        assert np.array_equal(got["output0"], expected["output0"])
        assert np.array_equal(got["proto"], expected["proto"])


def test_checkpoint_errors_name_the_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match=r"junk\.pt"):
        fastsam.load_fastsam_checkpoint(junk)

    from ultralytics.nn.tasks import SegmentationModel

    wrong = tmp_path / "yolov8n-seg.pt"
    torch.save(SegmentationModel("yolov8n-seg.yaml", nc=1, verbose=False).state_dict(), wrong)
    with pytest.raises(CheckpointError, match=r"yolov8n-seg\.pt.*other shapes"):
        fastsam.load_fastsam_checkpoint(wrong)

    with pytest.raises(ValueError, match=r"missing\.pt"):
        fastsam.load_fastsam_checkpoint(tmp_path / "missing.pt")


def test_letterbox_keeps_rgb_and_pads_114() -> None:
    red = np.zeros((100, 200, 3), np.uint8)
    red[..., 0] = 255
    boxed = fastsam.letterbox(red, 64)
    assert boxed.shape == (1, 3, 64, 64)
    assert np.allclose(boxed[0, :, 32, 32], [1.0, 0.0, 0.0])  # centre: the image, still red
    assert np.allclose(boxed[0, :, 0, 32], 114 / 255)  # top rows: the pad


def test_make_prompts_is_deterministic_and_mixed() -> None:
    scene = shape_scene(1, SIZE, seed=fastsam.EVAL_SCENE_SEED)
    prompts = fastsam.make_prompts(scene.image, 10, seed=3, masks=scene.masks)
    assert prompts == fastsam.make_prompts(scene.image, 10, seed=3, masks=scene.masks)
    assert [p.kind for p in prompts[:4]] == ["point", "box", "point", "box"]
    for p in prompts:
        if p.kind == "point":
            x, y = (int(v) for v in p.coords)
            assert scene.masks[:, y, x].any()  # points land on an object
    blind = fastsam.make_prompts(scene.image, 6, seed=3)
    assert len(blind) == 6 and blind != prompts[:6]


def test_committed_weights_match_their_record() -> None:
    path = fastsam.fixture_weights_path()
    assert path == fastsam.WEIGHTS_FILE, "committed fixture weights missing: trained a fallback"
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["sha256"] == fastsam.WEIGHTS_SHA256
    assert path.stat().st_size < 25_000_000


def test_random_init_finds_nothing(random_model: fastsam.FastSAMRaw) -> None:
    # Why fixture weights exist: at FastSAM's conf 0.4 a random network answers no prompt.
    scene = shape_scene(0, SIZE, seed=fastsam.EVAL_SCENE_SEED)
    assert len(fastsam.everything_masks(_raw(random_model, scene.image), scene.image)) == 0


def test_prompt_masks_find_the_shapes(trained_model: fastsam.FastSAMRaw) -> None:
    found, answered, ious = [], 0, []
    for index in range(2):
        scene = shape_scene(index, SIZE, seed=fastsam.EVAL_SCENE_SEED)
        raw = _raw(trained_model, scene.image)
        found.append(len(fastsam.everything_masks(raw, scene.image)))
        prompts = fastsam.make_prompts(scene.image, 8, seed=0, masks=scene.masks)
        masks = fastsam.prompt_masks(raw, scene.image, prompts)
        assert len(masks) == len(prompts)
        for prompt, mask in zip(prompts, masks, strict=True):
            if mask is None:
                continue
            answered += 1
            assert mask.shape == scene.image.shape[:2] and mask.dtype == bool
            if prompt.kind == "box":  # a box prompt picks one mask: compare with the object
                best = max(mask_iou(mask, gt) for gt in scene.masks)
                ious.append(best)
    assert min(found) >= 1, f"masks found at conf {fastsam.DEFAULT_CONF}: {found}"
    assert answered >= 8, f"only {answered} of 16 prompts got a mask"
    assert np.mean(ious) > 0.5, f"box-prompt IoU with the drawn shapes: {ious}"


def test_prompt_masks_match_ultralytics_end_to_end(tmp_path: Path,
                                                   trained_model: fastsam.FastSAMRaw) -> None:
    from ultralytics import FastSAM

    path = fastsam.save_fastsam_checkpoint(trained_model, tmp_path / "FastSAM-s.pt")
    scene = shape_scene(0, SIZE, seed=fastsam.EVAL_SCENE_SEED)
    prompts = fastsam.make_prompts(scene.image, 4, seed=1, masks=scene.masks)
    ours = fastsam.prompt_masks(_raw(trained_model, scene.image), scene.image, prompts)
    model = FastSAM(str(path))
    for prompt, mine in zip(prompts, ours, strict=True):
        (theirs,) = model.predict(scene.image[..., ::-1].copy(), imgsz=SIZE, conf=0.4, iou=0.9,
                                  retina_masks=True, verbose=False, **prompt.as_kwargs())
        if mine is None:
            assert theirs.masks is None or len(theirs) == 0
            continue
        merged = theirs.masks.data.bool().any(0).numpy()
        # ultralytics' predictor runs the fused model: equal up to float rounding.
        assert mask_iou(mine, merged) > 0.98


def test_any_runtime_layout(trained_model: fastsam.FastSAMRaw) -> None:
    scene = shape_scene(0, SIZE, seed=fastsam.EVAL_SCENE_SEED)
    raw = _raw(trained_model, scene.image)
    channels_last = {"output0": raw["output0"].transpose(0, 2, 1),
                     "proto": raw["proto"].transpose(0, 2, 3, 1)}
    prompts = fastsam.make_prompts(scene.image, 4, seed=0, masks=scene.masks)
    a = fastsam.prompt_masks(raw, scene.image, prompts)
    b = fastsam.prompt_masks(channels_last, scene.image, prompts)
    for x, y in zip(a, b, strict=True):
        assert (x is None and y is None) or np.array_equal(x, y)


_NO_NETWORK_SCRIPT = textwrap.dedent("""
    import json, socket, sys

    attempts = []
    def refuse(*args, **kwargs):
        attempts.append(repr(args[:2]))
        raise OSError("network disabled by test")
    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.getaddrinfo = refuse
    socket.create_connection = refuse
    socket.gethostbyname = refuse

    from pathlib import Path
    import numpy as np
    from models import fastsam
    from fixtures.shapes import shape_scene

    module = fastsam.fastsam_fixture_weights(fastsam.build_fastsam_s(512))
    path = fastsam.save_fastsam_checkpoint(module, Path(sys.argv[1]) / "FastSAM-s.pt")
    from ultralytics import FastSAM
    scene = shape_scene(0, 512, seed=fastsam.EVAL_SCENE_SEED)
    (result,) = FastSAM(str(path)).predict(scene.image[..., ::-1].copy(), imgsz=512,
                                           conf=0.4, iou=0.9, verbose=False)
    import torch
    with torch.no_grad():
        out0, proto = module(torch.from_numpy(fastsam.letterbox(scene.image, 512)))
    masks = fastsam.prompt_masks({"output0": out0.numpy(), "proto": proto.numpy()},
                                 scene.image, fastsam.make_prompts(scene.image, 4, 0, scene.masks))
    print(json.dumps({"attempts": attempts, "predicted": len(result),
                      "prompted": sum(m is not None for m in masks)}))
""")


def test_no_network_reached(tmp_path: Path) -> None:
    # A fresh interpreter: ultralytics' import-time probes count too, and a fresh cache dir
    # checks that first-time setup (settings, fonts) needs no download either.
    env = {**os.environ, "SEGCONFORM_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, "-c", _NO_NETWORK_SCRIPT, str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["attempts"] == [], report
    assert report["predicted"] >= 1 and report["prompted"] >= 1, report
    assert not (tmp_path / "runs").exists()  # ultralytics wrote nothing into the working dir
    config = tmp_path / "cache" / "libraries" / "ultralytics" / "config" / "Ultralytics"
    assert (config / "Arial.ttf").is_file() and (config / "Arial.Unicode.ttf").is_file()
    assert json.loads((config / "settings.json").read_text())["sync"] is False
