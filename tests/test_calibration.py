"""Calibration the user controls: --calibration DIR, --calibration-count N, and what is recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conformance.options import calibration_problem
from conformance.reference import ReferenceStore, _split
from models.export import FORMATS, ExportSession
from models.formats import calibrated
from models.registry import get_spec

LITE = "deeplabv3plus_mnv3_lite"


def _photos(folder: Path, count: int, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for k in range(count):
        pixels = rng.integers(0, 255, size=(40, 56, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"cal_{k:02d}.png")
    return folder


def _int8_key(spec, calibration: np.ndarray) -> str:
    session = ExportSession(spec=spec, model=None, weights_key="w", example={},
                            calibration=_split(spec, calibration))
    return session.key(FORMATS["tflite_int8"])


def test_default_calibration_never_holds_an_evaluation_image() -> None:
    spec = get_spec(LITE)
    store = ReferenceStore()
    calibration, source = store._calibration(spec)
    evaluation, _ = store._eval_images(spec)
    assert len(calibration) == 16 and "fixture calibration photos" in source
    for image in evaluation:
        assert not any(np.array_equal(image, c) for c in calibration)


def test_calibration_folder_and_count_pick_the_images_and_the_int8_key(tmp_path: Path) -> None:
    spec = get_spec(LITE)
    folder = _photos(tmp_path / "mine", 3)
    default, _ = ReferenceStore()._calibration(spec)
    mine, source = ReferenceStore(calibration_dir=folder, calibration_count=2)._calibration(spec)
    assert mine.shape == (2, 3, *spec.input_size)
    assert source == f"--calibration {folder}: 2 images (cal_00, cal_01)"
    # The calibration set is part of the artifact key: other images, another int8 file.
    assert _int8_key(spec, mine) != _int8_key(spec, default)
    fewer, _ = ReferenceStore(calibration_count=8)._calibration(spec)
    assert len(fewer) == 8 and _int8_key(spec, fewer) != _int8_key(spec, default)


def test_only_quantised_formats_record_their_calibration() -> None:
    assert {name for name in FORMATS if calibrated(name)} == {
        "tflite_int8", "tflite_w8a16", "tflite_int8_mixed", "edgetpu"}


@pytest.mark.parametrize(("make", "count", "message"), [
    (lambda tmp: tmp / "absent", None, "--calibration {tmp}/absent: not a directory"),
    (lambda tmp: tmp, None, "--calibration {tmp}: no image files"),
    (lambda tmp: _photos(tmp / "ok", 1), 0, "--calibration-count 0: must be at least 1"),
])
def test_bad_calibration_options_are_one_line(tmp_path: Path, make, count, message) -> None:
    problem = calibration_problem(str(make(tmp_path)), count, None)
    assert problem is not None and problem.startswith(message.format(tmp=tmp_path)), problem


def test_calibrating_on_the_evaluated_images_is_refused(tmp_path: Path) -> None:
    calibration = _photos(tmp_path / "cal", 3)
    evaluated = _photos(tmp_path / "eval", 2)  # same seed: cal_00 and cal_01 are the same files
    problem = calibration_problem(str(calibration), None, str(evaluated))
    assert problem == (f"--calibration {calibration}: 2 image(s) also in --images {evaluated} "
                       "(cal_00.png, cal_01.png); calibrate on other images")
    assert calibration_problem(str(calibration), None, str(_photos(tmp_path / "o", 2, 1))) \
        is None


# ------------------------------------------- one calibration per image, both statistics


def _conv_fp32(tmp_path: Path):
    torch = pytest.importorskip("torch")
    from models.export.request import ExportRequest
    from models.export.tflite import export_tflite_fp32
    from models.registry import InputSpec, ModelSpec

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                                 torch.nn.Conv2d(4, 2, 1)).eval()
    spec = ModelSpec(name="calib", family="calib", build=lambda: module,
                     inputs=(InputSpec("x", (1, 3, 8, 8)),), output_names=("y",),
                     task="semantic", num_classes=0, expected_params=None)
    rng = np.random.default_rng(0)
    samples = [{"args_0": (rng.normal(size=(1, 3, 8, 8)) * (1 + 3 * k)).astype(np.float32)}
               for k in range(6)]
    path = tmp_path / "calib.tflite"
    export_tflite_fp32(ExportRequest(spec=spec, model=module, example={"x": samples[0]["args_0"]},
                                     out_path=path))
    return path, samples


def test_per_image_moving_average_is_the_librarys_own_calibration(tmp_path: Path) -> None:
    """Folding each image's ranges gives ai-edge-quantizer's calibrate bit for bit, so a model
    with min/max-scoped tensors keeps the library's ranges everywhere else."""
    from ai_edge_quantizer import quantizer, recipe

    from models.export.int8_recipe import per_sample_calibration

    path, samples = _conv_fp32(tmp_path)
    qt = quantizer.Quantizer(str(path))
    qt.load_quantization_recipe(recipe.static_wi8_ai8())
    library = qt.calibrate({"serving_default": samples})
    smoothed, widest = per_sample_calibration(qt, samples)
    assert set(library) == set(smoothed) == set(widest)
    for tensor, qsv in library.items():
        for key, value in qsv.items():
            assert np.array_equal(value, smoothed[tensor][key]), (tensor, key)
    # The samples widen in turn: the moving average lags the true range on some tensor.
    assert any(np.any(widest[t]["max"] > smoothed[t]["max"]) for t in library if library[t])


def test_min_max_scope_gives_the_tensors_it_names_their_true_range(tmp_path: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import recipe

    from models.export.int8_recipe import quantize_static

    path, samples = _conv_fp32(tmp_path)

    def scales(name: str, **options) -> dict[str, float]:
        out = tmp_path / f"{name}.tflite"
        quantize_static(path, out, samples, recipe.static_wi8_ai8(), **options)
        return {d["name"]: float(d["quantization"][0])
                for d in Interpreter(model_path=str(out)).get_tensor_details()
                if d["quantization"][0]}

    smoothed, widest = scales("plain"), scales("min_max", statistic="min_max")
    # Every tensor named: the file min/max calibration makes, not the moving average's.
    assert scales("every", min_max_scope=".") == widest != smoothed
    # One tensor named: its scale is min/max's, and no tensor the scope leaves out moves
    # (only the named one, or an op output that inherits its input's scale, may change).
    moved = sorted(t for t in widest if widest[t] != smoothed[t])
    one = scales("one", min_max_scope=f"^{moved[0]}$")
    assert one[moved[0]] == widest[moved[0]]
    changed = {t for t in one if one[t] != smoothed[t]}
    assert moved[0] in changed and changed < set(moved), (moved, changed)
    with pytest.raises(ValueError, match="matches no calibrated tensor"):
        quantize_static(path, tmp_path / "none.tflite", samples, recipe.static_wi8_ai8(),
                        min_max_scope="^no_such_tensor$")


def test_every_suite_names_the_images_that_calibrated_an_int8_case_in_results_json(tmp_path: Path,
                                                                    inline_suite) -> None:
    # Latency is not timed here (--benchmark-disable): its case records what it loaded first.
    code, out, results = inline_suite(
        tmp_path, "conformance", "-m", "cpu", "--benchmark-disable", "-k",
        f"{LITE}-tflite_int8 or {LITE}-edgetpu or (test_prompt_masks and fastsam_s-tflite_int8)")
    ran = {(r["suite"], r["model"], r["format"]): r for r in results["results"]
           # Edge TPU execution skips off-device; latency records what it loaded, then skips.
           if r["outcome"] != "skipped" or (r["suite"], r["format"]) == ("latency", "tflite_int8")}
    assert code == 0, out[-2000:]
    assert sorted(ran) == [("accuracy", LITE, "tflite_int8"), ("edgetpu", LITE, "edgetpu"),
                           ("latency", LITE, "tflite_int8"), ("parity", LITE, "tflite_int8"),
                           ("prompt_masks", "fastsam_s", "tflite_int8")], out[-2000:]
    store = ReferenceStore()
    for key, result in ran.items():
        source = store.get(get_spec(result["model"])).calibration_source
        assert source and result["info"].get("calibration") == source, (key, result["info"])
    # The same run's parity case carries its per-layer table into results.json.
    table = ran["parity", LITE, "tflite_int8"]["info"]["int8_sensitivity"]
    assert table["layers"] >= len(table["rows"]) > 0 and table["images"] > 0, table
    assert {"layer", "tensor", "own_snr_db", "carried_snr_db"} <= set(table["rows"][0])
