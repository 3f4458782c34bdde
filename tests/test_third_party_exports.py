"""Third-party exports judged: FastSAM-s exported by ultralytics' own exporter, through --artifact.

ultralytics 8.4 exports LiteRT with litert-torch and quantises int8 with ai-edge-quantizer
(`ultralytics/utils/export/litert.py`), the same libraries as the suite's own converters,
installed here; no TensorFlow, onnx2tf or download. Its conventions: NCHW float32 input, outputs
named `serving_default_output_{0,1}_output[_dequant]` (matched by shape), box rows divided by the
input size (`_NormalizeCoords`, the suite's own convention), float32 I/O around an int8 interior,
and a metadata.json zip entry appended to the flatbuffer. int8 calibrates on the same 16 fixture
scenes (calibration seed, never evaluated) as the suite's own int8 export, through a dataset
YAML in tmp. ultralytics' ONNX export: tests/test_user_artifact.py.

ultralytics' int8 export is not reproducible unless torch is seeded: its calibration loader
shuffles the images with a generator seeded from `torch.initial_seed()`, and ai-edge-quantizer
keeps a moving average of each tensor's min/max (weight 0.95 on the past), so the order moves
the int8 scales. Six exports of the same weights and images gave output0 cosine 0.974-0.998
(parity's int8 budget 0.98 failed by four of them) and mean mask IoU 0.958-0.974. The export
here seeds torch (CALIBRATION_ORDER_SEED); the canaries at the end pin both causes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

# Measured on the fixture weights (AMD EPYC, no AVX2), 48 prompts on 4 scenes (21 large, 27
# small); the bands hold every calibration order tried (six exports).
CALIBRATION_ORDER_SEED = 0
INT8_IOU_MEAN = (0.94, 0.99)  # measured 0.9686; six orders 0.958-0.974 (the suite's own: 0.9671)
INT8_IOU_LARGE = (0.90, 0.99)  # measured 0.9481; 0.925-0.957 (own: 0.9382)
INT8_IOU_SMALL = (0.96, 1.0)  # measured 0.9845; 0.975-0.988 (own: 0.9896)
INT8_MISSING_AT_MOST = 0.05  # measured 0 of 48 in every order (own: 0)
INT8_OUTPUT0_COSINE = (0.95, 0.999)  # measured 0.9786; 0.974-0.998 (own: 0.9734, a known failure)


def _calibration_yaml(folder: Path) -> Path:
    """The suite's int8 calibration scenes as PNGs, in a one-class dataset YAML of their own."""
    from PIL import Image

    from models.fastsam import to_uint8_rgb
    from models.registry import get_spec

    spec = get_spec("fastsam_s")
    images = folder / "images" / "calibration"
    images.mkdir(parents=True)
    for k, image in enumerate(spec.calibration_images(spec.input_size, 16)):
        Image.fromarray(to_uint8_rgb(image)).save(images / f"scene_{k:02d}.png")
    data = folder / "calibration.yaml"
    data.write_text(f"path: {folder}\ntrain: images/calibration\nval: images/calibration\n"
                    "names:\n  0: object\n")
    return data


def _ultralytics_litert_exports() -> dict[str, Path]:
    """FastSAM-s (fixture weights) exported by `YOLO(...).export(format="litert")`, fp32 and
    int8, kept between runs (keyed by the weights file, ultralytics' and its converters' versions,
    the calibration scenes): the two exports take about a minute."""
    import tempfile

    from models import fastsam
    from models.export.cache import (
        arrays_digest,
        cache_root,
        content_key,
        file_sha256,
        key_lock,
        library_versions,
    )
    from models.registry import get_spec

    spec = get_spec("fastsam_s")
    key = content_key({
        "weights": file_sha256(fastsam.fixture_weights_path()),
        "versions": library_versions(("ultralytics", "litert-torch", "ai-edge-quantizer")),
        "calibration": arrays_digest([spec.calibration_images(spec.input_size, 16)]),
        "imgsz": fastsam.EDGE_SIZE, "torch_seed": CALIBRATION_ORDER_SEED,
    })
    folder = cache_root() / "test_inputs"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {fmt: folder / f"ultralytics_fastsam_s_{fmt}-{key}.tflite"
             for fmt in ("tflite_fp32", "tflite_int8")}
    with key_lock(paths["tflite_int8"]):
        if all(p.is_file() for p in paths.values()):
            return paths
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            module = fastsam.build_fastsam_s()
            fastsam.fastsam_fixture_weights(module)
            checkpoint = fastsam.save_fastsam_checkpoint(module, work / "FastSAM-s.pt")
            data = _calibration_yaml(work / "calibration")
            fastsam.ensure_offline()
            from ultralytics import YOLO

            for fmt, options in (("tflite_fp32", {}), ("tflite_int8", {"quantize": 8,
                                                                       "data": str(data)})):
                # The seed fixes the calibration order (module docstring), not the caller's RNG.
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(CALIBRATION_ORDER_SEED)
                    made = YOLO(str(checkpoint), task="segment").export(
                        format="litert", imgsz=fastsam.EDGE_SIZE, **options)
                shutil.copyfile(made, paths[fmt].with_suffix(".tmp"))
                paths[fmt].with_suffix(".tmp").replace(paths[fmt])
    return paths


@pytest.fixture(scope="module")
def ultralytics_litert() -> dict[str, Path]:
    """ultralytics' own LiteRT fp32 and int8 exports of FastSAM-s (fixture weights)."""
    return _ultralytics_litert_exports()


def _within(value: float, band: tuple[float, float]) -> bool:
    return band[0] <= value <= band[1]


@pytest.mark.extended
def test_ultralytics_litert_int8_runs_the_mask_suite_with_iou_by_size_bucket(
        ultralytics_litert: dict[str, Path], tmp_path: Path, inline_suite) -> None:
    """`pytest --artifact fastsam_s=<ultralytics' LiteRT fp32 / int8>`: both files read as what
    they are, prompt masks judged by size bucket. int8 keeps every mask (IoU as the suite's own
    int8); its output0 sits at parity's int8 cosine budget, below it in this calibration order
    (0.9786 < 0.98), as the suite's own int8 (0.9734, a known failure for its own export only)."""
    from models.export.cache import file_sha256
    from models.user_artifact import infer_format

    fp32, int8 = ultralytics_litert["tflite_fp32"], ultralytics_litert["tflite_int8"]
    assert infer_format(fp32) == "tflite_fp32" and infer_format(int8) == "tflite_int8"
    code, out, results = inline_suite(
        tmp_path, "conformance/test_prompt_masks.py", "conformance/test_parity.py",
        "-k", "fastsam_s-tflite_fp32 or fastsam_s-tflite_int8",
        f"--artifact=fastsam_s={fp32}", f"--artifact=fastsam_s={int8}")
    rows = {(r["suite"], r["format"]): r for r in results["results"] if r["profile"] == "cpu"}
    assert len(rows) == 4, out[-3000:]
    for (_, fmt), row in rows.items():
        path = fp32 if fmt == "tflite_fp32" else int8
        assert row["info"]["artifact"] == f"user file (sha256 {file_sha256(path)[:12]})"

    masks = rows[("prompt_masks", "tflite_int8")]
    assert masks["outcome"] == "passed", out[-3000:]
    m = masks["metrics"]
    assert m["n_masks"] == m["n_masks_large"] + m["n_masks_small"] == 48
    assert m["n_masks_large"] > 0 and m["n_masks_small"] > 0
    figures = {"mean": m["mask_iou_mean"], "large": m["mask_iou_large"],
               "small": m["mask_iou_small"], "missing": m["mask_missing_rate"]}
    assert _within(figures["mean"], INT8_IOU_MEAN), figures
    assert _within(figures["large"], INT8_IOU_LARGE), figures
    assert _within(figures["small"], INT8_IOU_SMALL), figures
    assert figures["missing"] <= INT8_MISSING_AT_MOST, figures

    exact = rows[("prompt_masks", "tflite_fp32")]
    assert exact["outcome"] == "passed", out[-3000:]
    assert exact["metrics"]["mask_iou_mean"] >= 0.999
    assert exact["metrics"]["mask_missing_rate"] == 0.0

    parity = rows[("parity", "tflite_fp32")]
    assert parity["outcome"] == "passed", out[-3000:]
    assert parity["metrics"]["snr_db"] >= 100  # the same graph as PyTorch's, fused BatchNorm
    info = parity["info"]
    assert info["input_layout"] == "NCHW" and info["input_dtype"] == "float32"
    assert info["outputs_matched_by"] == "output0:shape,proto:shape"
    assert "normalised" in info["output_convention"]

    # int8 parity: no known failure covers a user's file, so the int8 budget (cosine >= 0.98 on
    # each output) judges it. output0 sits at the budget's edge, on either side depending on
    # the calibration order: the verdict must follow the figure, and the figure stay in band.
    quantised = rows[("parity", "tflite_int8")]
    cosine = quantised["info"]["per_output"]["output0"]["cosine"]
    assert _within(cosine, INT8_OUTPUT0_COSINE), quantised.get("message", cosine)
    assert quantised["info"]["per_output"]["proto"]["cosine"] >= 0.98
    assert quantised["info"]["calibration"] == "user file: calibrated outside the suite"
    if cosine < 0.98:
        assert quantised["outcome"] == "failed", out[-3000:]
        assert f"cosine = {cosine:g} (budget >= 0.98)" in quantised["message"]
        assert f"output 'output0': cosine = {cosine:g} (budget >= 0.98)" in out
        assert code == 1
    else:
        assert quantised["outcome"] == "passed", out[-3000:]
        assert code == 0


# --- canaries: why ultralytics' int8 export differs from run to run ----------------------------


def test_ultralytics_shuffles_int8_calibration_images_by_the_torch_seed(tmp_path: Path) -> None:
    """ultralytics 8.4's calibration loader (build_dataloader's default shuffle=True) orders the
    images by a generator seeded from torch.initial_seed(): random per process unless seeded.
    When this fails, the order is fixed and the export's CALIBRATION_ORDER_SEED can go."""
    from types import SimpleNamespace

    import numpy as np
    from PIL import Image

    from models.fastsam import ensure_offline

    images = tmp_path / "images" / "calibration"
    images.mkdir(parents=True)
    for k in range(8):
        Image.fromarray(np.full((32, 32, 3), 20 * k, np.uint8)).save(images / f"scene_{k}.png")
    data = tmp_path / "calibration.yaml"
    data.write_text(f"path: {tmp_path}\ntrain: images/calibration\nval: images/calibration\n"
                    "names:\n  0: object\n")
    ensure_offline()
    from ultralytics.engine.exporter import Exporter

    def order(seed: int) -> list[str]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            exporter = Exporter(overrides={"format": "litert", "quantize": 8, "data": str(data),
                                           "imgsz": 32, "batch": 1})
            exporter.model, exporter.imgsz = SimpleNamespace(task="segment"), [32, 32]
            return [Path(batch["im_file"][0]).name
                    for batch in exporter.get_int8_calibration_dataloader()]

    first, again, other = order(1), order(1), order(2)
    assert sorted(first) == sorted(other) == [f"scene_{k}.png" for k in range(8)]
    assert first == again  # the seed decides the order ...
    assert first != other  # ... and another seed gives another one


def test_ai_edge_quantizer_calibration_keeps_a_moving_average_of_min_max() -> None:
    """ai-edge-quantizer 0.10.0 calibrates each tensor's range as a moving average (0.95 on the
    past), not the min/max over all samples: the first samples weigh most, so their order moves
    the int8 scales. When this fails, the range no longer depends on the order."""
    import inspect

    from ai_edge_quantizer import quantizer
    from ai_edge_quantizer.utils import qsv_utils

    # Quantizer.calibrate (what ultralytics and the suite call) takes the Calibrator's default.
    assert "qsv_update_func" not in inspect.signature(quantizer.Quantizer.calibrate).parameters
    updated = qsv_utils.moving_average_update({"min": -1.0, "max": 1.0}, {"min": -3.0, "max": 3.0})
    assert updated == pytest.approx({"min": -1.1, "max": 1.1})  # the all-sample range: 3
