"""--artifact: a user's exported file runs through the suites in place of the suite's export."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from models.registry import InputSpec, ModelSpec
from models.runtimes import ArtifactError
from models.runtimes.signature import FileSignature, TensorSignature
from models.user_artifact import infer_format, open_user_artifact, tflite_format

LITE = "deeplabv3plus_mnv3_lite"
SIZE = 256
LITE_OUT = {"logits": (1, 21, SIZE, SIZE)}


def _onnx(module: nn.Module, path: Path, shape: tuple, outputs=("logits",)) -> Path:
    torch.onnx.export(module.eval(), (torch.zeros(shape),), str(path), input_names=["image"],
                      output_names=list(outputs), opset_version=17, dynamo=False)
    return path


def _tiny_spec(size: int = 16) -> ModelSpec:
    def build() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 1)).eval()

    return ModelSpec(name="tiny", family="tiny", build=build,
                     inputs=(InputSpec("image", (1, 3, size, size)),), output_names=("logits",),
                     task="semantic", num_classes=3, expected_params=None)


# --- (a) the format from the file ----------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [("m.pt", "torchscript"),
                                                ("m.ptl", "torchscript_lite"),
                                                ("m.ONNX", "onnx")])
def test_format_from_suffix(name: str, expected: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(b"not read for these suffixes")
    assert infer_format(path) == expected


def test_unknown_suffix_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"x")
    with pytest.raises(ArtifactError) as caught:
        infer_format(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and "MODEL:FORMAT=PATH" in message


def _sig(io_dtype: str, tensors: set[str]) -> FileSignature:
    io = (TensorSignature("x", (1, 3, 8, 8), io_dtype),)
    return FileSignature(inputs=io, outputs=io, tensor_dtypes=frozenset(tensors))


def test_tflite_format_rules_on_tensor_types() -> None:
    assert tflite_format(_sig("float32", {"float32", "int32"})) == "tflite_fp32"
    assert tflite_format(_sig("float32", {"float32", "float16"})) == "tflite_fp16"
    assert tflite_format(_sig("int8", {"int8", "int32"})) == "tflite_int8"
    # int8 weights behind float I/O (dynamic-range quantisation) are int8 too.
    assert tflite_format(_sig("float32", {"float32", "int8"})) == "tflite_int8"
    assert tflite_format(_sig("float32", {"edgetpu"})) == "edgetpu"


@pytest.fixture(scope="module")
def tiny_tflites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny model as fp32, fp16 and int8 .tflite, made by the suite's own converters."""
    from models.export import ExportSession
    from models.export.cache import weights_digest

    spec = _tiny_spec()
    model = spec.build()
    rng = np.random.default_rng(0)
    calibration = [{"image": rng.random((1, 3, 16, 16), dtype=np.float32)} for _ in range(4)]
    session = ExportSession(spec=spec, model=model, weights_key=weights_digest(model),
                            example=calibration[0], calibration=calibration,
                            root=tmp_path_factory.mktemp("cache"))
    return {fmt: session.export(fmt).path for fmt in ("tflite_fp32", "tflite_fp16", "tflite_int8")}


@pytest.mark.parametrize("fmt", ["tflite_fp32", "tflite_fp16", "tflite_int8"])
def test_tflite_format_read_from_the_file(tiny_tflites: dict[str, Path], fmt: str,
                                          tmp_path: Path) -> None:
    renamed = tmp_path / "user.tflite"  # the file name says nothing about the precision
    shutil.copy(tiny_tflites[fmt], renamed)
    assert infer_format(renamed) == fmt


# --- (c) a file of another model, and files a runtime refuses ------------------------------


def test_other_input_size_is_refused_in_one_line(tmp_path: Path) -> None:
    from models.registry import get_spec

    path = _onnx(nn.Conv2d(3, 21, 1), tmp_path / "user.onnx", (1, 3, 512, 512))
    with pytest.raises(ArtifactError) as caught:
        open_user_artifact(get_spec(LITE), "onnx", path, LITE_OUT, {})
    assert str(caught.value) == (
        f"{path}: does not fit {LITE}: input 'image' expects (1, 3, 256, 256) NCHW or "
        "(1, 256, 256, 3) NHWC, file has (1, 3, 512, 512)")


def test_other_class_count_is_refused_in_one_line(tmp_path: Path) -> None:
    """A 91-class file (as the conventional DeepLab's) where the lite one (21) is expected."""
    from models.registry import get_spec

    path = _onnx(nn.Conv2d(3, 91, 1), tmp_path / "conventional.onnx", (1, 3, SIZE, SIZE))
    with pytest.raises(ArtifactError) as caught:
        open_user_artifact(get_spec(LITE), "onnx", path, LITE_OUT, {})
    assert str(caught.value) == (
        f"{path}: does not fit {LITE}: output 'logits' expects (1, 21, 256, 256) NCHW or "
        "(1, 256, 256, 21) NHWC, file has (1, 91, 256, 256)")


def test_outputs_matched_by_shape_when_names_differ(tmp_path: Path) -> None:
    """Two outputs in the other order under other names: each found by its shape."""

    class TwoHeads(nn.Module):
        def forward(self, image):
            return image[:, :1] * 2.0, image + 1.0

    path = tmp_path / "two.onnx"
    torch.onnx.export(TwoHeads(), (torch.zeros(1, 3, 8, 8),), str(path), input_names=["x"],
                      output_names=["out_a", "out_b"], opset_version=17, dynamo=False)
    spec = ModelSpec(name="two", family="t", build=TwoHeads,
                     inputs=(InputSpec("image", (1, 3, 8, 8)),), output_names=("full", "one"),
                     task="semantic", num_classes=3, expected_params=None)
    image = np.arange(192, dtype=np.float32).reshape(1, 3, 8, 8)
    runner = open_user_artifact(spec, "onnx", path, {"full": (1, 3, 8, 8), "one": (1, 1, 8, 8)},
                                {"image": image})
    got = runner.run({"image": image})
    np.testing.assert_array_equal(got["full"], image + 1.0)
    np.testing.assert_array_equal(got["one"], image[:, :1] * 2.0)
    assert runner.describe()["outputs_matched_by"] == "full:shape,one:shape"


def test_nhwc_onnx_is_fed_channels_last(tmp_path: Path) -> None:
    class FromNHWC(nn.Module):
        def forward(self, image):
            return image.permute(0, 3, 1, 2) * 3.0

    path = _onnx(FromNHWC(), tmp_path / "nhwc.onnx", (1, 8, 8, 3))
    spec = _tiny_spec(8)
    image = np.random.default_rng(1).random((1, 3, 8, 8), dtype=np.float32)
    runner = open_user_artifact(spec, "onnx", path, {"logits": (1, 3, 8, 8)}, {"image": image})
    np.testing.assert_allclose(runner.run({"image": image})["logits"], image * 3.0, rtol=1e-6)
    assert runner.describe()["input_layout"] == "NHWC"


def test_a_checkpoint_given_as_torchscript_is_refused_with_a_hint(tmp_path: Path) -> None:
    spec = _tiny_spec()
    path = tmp_path / "weights.pt"
    torch.save(spec.build().state_dict(), path)
    with pytest.raises(ArtifactError) as caught:
        open_user_artifact(spec, "torchscript", path, {"logits": (1, 3, 16, 16)},
                           {"image": np.zeros((1, 3, 16, 16), np.float32)})
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: not a loadable TorchScript")
    assert "--checkpoint MODEL=PATH" in message


# --- (d) the export cache never sees the user's file ----------------------------------------


def fake_convert(request) -> dict:
    """A converter for the fake formats below: records its upstream in the file."""
    request.out_path.write_text(f"made from {request.upstream}")
    return {"converter": "fake"}


def test_user_file_is_not_cached_and_never_an_upstream(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from models import export
    from models.export import ExportFormat, ExportSession

    convert = f"{__name__}:fake_convert"
    runner = "models.runtimes.onnx:OnnxRunner"  # never loaded: this test only exports
    monkeypatch.setattr(export, "FORMATS", {
        "first": ExportFormat("first", ".txt", convert, runner, "float32"),
        "second": ExportFormat("second", ".txt", convert, runner, "float32", upstream="first")})
    user = tmp_path / "user" / "first.txt"
    user.parent.mkdir()
    user.write_text("the user's file")
    spec, cache = _tiny_spec(), tmp_path / "cache"
    session = ExportSession(spec=spec, model=None, weights_key="w", example={}, calibration=[],
                            root=cache, user_files={"first": user})
    given = session.export("first")
    assert given.path == user and given.is_user_file
    assert given.label.startswith("user file (sha256 ") and not cache.exists()
    second = session.export("second")
    # The suite's own "first" was made as the upstream: the user's file fed nothing.
    assert session.converter_calls == ["first", "second"]
    assert str(user) not in second.path.read_text()
    assert all(user.read_bytes() != f.read_bytes() for f in cache.rglob("*") if f.is_file())


# --- options --------------------------------------------------------------------------------


def test_unknown_model_is_a_usage_error_listing_the_known_names(tmp_path: Path) -> None:
    from conformance.options import parse_artifacts

    path = tmp_path / "x.onnx"
    path.write_bytes(b"x")
    with pytest.raises(pytest.UsageError) as caught:
        parse_artifacts([f"nosuch={path}"])
    assert "unknown model 'nosuch'; known: " in str(caught.value)
    assert LITE in str(caught.value) and "fastsam_s" in str(caught.value)
    with pytest.raises(pytest.UsageError, match="not tested as torchscript"):
        parse_artifacts([f"fastsam_s:torchscript={path}"])
    assert parse_artifacts([f"{LITE}={path}"]) == {LITE: {"onnx": path}}


def test_unknown_model_stops_the_run_before_any_test(tmp_path: Path, inline_suite) -> None:
    path = tmp_path / "x.onnx"
    path.write_bytes(b"x")
    code, out, _ = inline_suite(tmp_path, "conformance/test_parity.py", "--collect-only",
                             f"--artifact=nosuch={path}")
    assert code == 4, out[-2000:]
    assert "--artifact 'nosuch=" in out and f"known: deeplabv3plus_mnv3_conventional, {LITE}" in out


# --- (b)+(c)+(d) through the parity suite ----------------------------------------------------


class NHWCInput(nn.Module):
    """What a user exporting for a phone often does: channels-last input, permuted inside."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(image.permute(0, 3, 1, 2))


def _lite_with_spread_classifier() -> nn.Module:
    """The lite model with a classifier whose classes split the evaluation images' pixels.

    Random init predicts one class nearly everywhere, which the parity suite refuses as a
    degenerate reference: a seeded projection, standardised and centred per class on the
    suite's evaluation images (synthetic VOC, seed 2), spreads the decisions over all classes.
    """
    from fixtures.voc import synthetic_samples
    from models.registry import get_spec

    spec = get_spec(LITE)
    model = spec.build()
    images = np.stack([s.image for s in synthetic_samples(4, SIZE, seed=2)])
    batch = torch.from_numpy(spec.preprocess(images.transpose(0, 3, 1, 2) / np.float32(255))
                             ["image"])
    seen = {}
    hook = model.classifier.register_forward_hook(lambda m, i, o: seen.setdefault("f", i[0]))
    with torch.no_grad():
        model(batch)
    hook.remove()
    features = seen["f"].permute(1, 0, 2, 3).reshape(seen["f"].shape[1], -1)
    projection = torch.randn(21, features.shape[0], generator=torch.Generator().manual_seed(1))
    response = projection @ features
    scale = response.std(1, keepdim=True)
    with torch.no_grad():
        model.classifier.weight.copy_((projection / scale)[:, :, None, None])
        model.classifier.bias.copy_(-(response.mean(1, keepdim=True) / scale)[:, 0])
    return model


def _users_nhwc_tflite(model: nn.Module) -> Path:
    """The model exported channels-last with litert-torch, as a user would (kept between runs:
    the conversion takes minutes; keyed by the weights and the converter's version)."""
    import litert_torch

    from models.export.cache import cache_root, weights_digest

    path = cache_root() / "test_inputs" / (
        f"user_nhwc_{LITE}-{weights_digest(model)[:16]}-{litert_torch.__version__}.tflite")
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        litert_torch.convert(NHWCInput(model).eval(), (torch.zeros(1, SIZE, SIZE, 3),)).export(
            str(path.with_suffix(".tmp.tflite")))
        path.with_suffix(".tmp.tflite").replace(path)
    return path


def test_users_nhwc_tflite_passes_parity_and_a_wrong_file_fails_alone(
        tmp_path: Path, inline_suite) -> None:
    from models.export.cache import file_sha256

    model = _lite_with_spread_classifier()
    checkpoint = tmp_path / "user_lite.pt"
    torch.save(model.state_dict(), checkpoint)
    tflite = tmp_path / "user.tflite"
    shutil.copy(_users_nhwc_tflite(model), tflite)
    wrong = _onnx(nn.Conv2d(3, 91, 1), tmp_path / "wrong.onnx", (1, 3, SIZE, SIZE))
    cache = tmp_path / "cache"
    code, out, results = inline_suite(
        tmp_path, "conformance/test_parity.py", "-k", f"{LITE}-tflite_fp32 or {LITE}-onnx",
        f"--checkpoint={LITE}={checkpoint}", f"--artifact={LITE}={tflite}",
        f"--artifact={LITE}:onnx={wrong}", f"--export-cache={cache}")
    rows = {r["format"]: r for r in results["results"] if r["profile"] == "cpu"}
    passed = rows["tflite_fp32"]
    assert passed["outcome"] == "passed", out[-3000:]
    assert passed["info"]["artifact"] == f"user file (sha256 {file_sha256(tflite)[:12]})"
    assert passed["info"]["input_layout"] == "NHWC" and passed["info"]["cache"] == "user file"
    assert passed["metrics"]["argmax_agreement"] >= 0.99
    failed = rows["onnx"]
    assert failed["outcome"] == "failed"
    assert f"{wrong}: does not fit {LITE}: output 'logits' expects (1, 21, 256, 256)" \
        in failed["message"] and "file has (1, 91, 256, 256)" in failed["message"]
    assert "another exception occurred" not in out  # the one line, not echoed twice
    assert code == 1
    # (d) the cache gained no file for either user file (nor any export: both were given).
    cached = [p for p in cache.rglob("*") if p.is_file() and LITE in str(p.relative_to(cache))]
    assert not [p for p in cached if p.suffix in (".tflite", ".onnx") or "tflite" in p.name
                or "onnx" in p.name], cached


# --- (e) FastSAM-s exported by ultralytics itself ---------------------------------------------


def test_ultralytics_onnx_of_fastsam_runs_through_prompt_masks_and_parity(
        tmp_path: Path, inline_suite) -> None:
    """ultralytics' ONNX keeps box rows in pixels and names proto 'output1': both handled."""
    from models import fastsam

    module = fastsam.build_fastsam_s()
    fastsam.fastsam_fixture_weights(module)
    checkpoint = fastsam.save_fastsam_checkpoint(module, tmp_path / "FastSAM-s.pt")
    fastsam.ensure_offline()
    from ultralytics import YOLO

    exported = Path(YOLO(str(checkpoint), task="segment").export(
        format="onnx", imgsz=fastsam.EDGE_SIZE, simplify=False, opset=17, dynamic=False))
    code, out, results = inline_suite(
        tmp_path, "conformance/test_prompt_masks.py", "conformance/test_parity.py",
        "-k", "fastsam_s-onnx", f"--artifact=fastsam_s={exported}",
        f"--export-cache={tmp_path / 'cache'}")
    rows = {r["suite"]: r for r in results["results"] if r["profile"] == "cpu"}
    assert rows["prompt_masks"]["outcome"] == "passed", out[-3000:]
    assert rows["prompt_masks"]["metrics"]["n_masks"] > 0
    assert rows["parity"]["outcome"] == "passed", out[-3000:]
    info = rows["parity"]["info"]
    assert info["artifact"].startswith("user file (sha256 ")
    assert "input pixels" in info["output_convention"]
    assert info["outputs_matched_by"] == "output0:name,proto:shape"
    assert code == 0


def test_fastsam_box_units_are_detected_by_value_range() -> None:
    """Pixel box rows (ultralytics' ONNX) are divided by the input size; normalised ones kept."""
    from models.fastsam import output_convention
    from models.registry import get_spec

    spec = get_spec("fastsam_s")
    rng = np.random.default_rng(0)
    normalised = rng.random((1, 37, 64), dtype=np.float32)
    pixels = normalised.copy()
    pixels[:, :4] *= 512
    convert, text = output_convention({"output0": pixels}, spec)
    assert "input pixels" in text
    np.testing.assert_allclose(convert({"output0": pixels, "proto": 1})["output0"], normalised,
                               rtol=1e-6)
    convert, text = output_convention({"output0": normalised}, spec)
    assert convert is None and "normalised" in text
    # fastsam_s_official's reference keeps pixels: a normalised file is scaled up to it.
    official = get_spec("fastsam_s_official")
    convert, text = official.output_convention({"output0": normalised}, official)
    assert "multiplied by" in text
    np.testing.assert_allclose(convert({"output0": normalised})["output0"], pixels, rtol=1e-6)
    convert, text = official.output_convention({"output0": pixels}, official)
    assert convert is None and "input pixels" in text


def test_outputs_in_parts_are_fitted_in_order_and_refused_out_of_order() -> None:
    from models.registry import get_spec
    from models.user_artifact import fit_signature

    spec = get_spec("fastsam_s")
    shapes = {"output0": (1, 37, 5376), "proto": (1, 32, 128, 128)}
    image = TensorSignature("images", (1, 3, 512, 512), "float32")

    def outputs(*rows: int) -> FileSignature:
        return FileSignature(inputs=(image,), outputs=(
            TensorSignature("proto_out", (1, 32, 128, 128), "int8"),
            *(TensorSignature(f"part{n}", (1, n, 5376), "int8") for n in rows)))

    fit = fit_signature(spec, Path("own.tflite"), outputs(4, 1, 32), shapes, quantised_io=True,
                        in_parts=True)
    assert fit.output_order == ("proto", "output0", "output0", "output0")
    assert fit.matched_by == {"output0": "shape-in-parts", "proto": "shape"}
    with pytest.raises(ArtifactError, match=r"output 'output0' expects \(1, 37, 5376\) \(or in "
                       r"parts of \(4, 1, 32\) rows along axis 1, in that order\), file has "
                       r"'proto_out' .*, 'part32' \(1, 32, 5376\), 'part4'"):
        fit_signature(spec, Path("mine.tflite"), outputs(32, 4, 1), shapes, quantised_io=True,
                      in_parts=True)


def test_the_suites_own_fastsam_int8_file_runs_as_a_users_file() -> None:
    """A bundle's FastSAM-s int8 file (output0 as three int8 outputs) given back as --artifact:
    the same outputs as the suite's own runner gives."""
    from conformance.reference import ReferenceStore
    from conformance.runners import case_io
    from models.registry import get_spec
    from models.runtimes import load_runner

    spec = get_spec("fastsam_s")
    store = ReferenceStore()
    ref = store.get(spec)
    artifact = store.session(spec).export("tflite_int8")
    shapes = ref.output_shapes
    own = load_runner("tflite_int8", artifact.path, case_io(spec, ref))
    users = open_user_artifact(spec, "tflite_int8", artifact.path, shapes, ref.inputs[0])
    assert users.describe()["outputs_matched_by"] == "output0:shape-in-parts,proto:shape"
    got, expected = users.run(ref.inputs[0]), own.run(ref.inputs[0])
    assert set(got) == {"output0", "proto"}
    for name in got:
        np.testing.assert_array_equal(got[name], expected[name])


# --- (f) an official-form SemiVL TFLite, made by litert-torch without the export rewrites ------


def test_official_form_semivl_tflite_fails_and_names_the_up_block(
        tmp_path: Path, inline_suite) -> None:
    """The file a user gets from litert-torch on SemiVL's official code: parity fails with the
    numbers and the localisation names the decoder's Up block that holds the converter bug;
    the suite's own export of the same model (with rewrites) passes beside it."""
    from conformance.reference import ReferenceStore
    from models.registry import get_spec

    official = get_spec("semivl_small_official")
    store = ReferenceStore()
    users = tmp_path / "semivl_small_official.tflite"
    shutil.copy(store.session(official).export("tflite_fp32").path, users)
    code, out, results = inline_suite(
        tmp_path, "conformance/test_parity.py", "-k", "semivl_small-tflite_fp32",
        f"--artifact=semivl_small={users}")
    rows = {r["model"]: r for r in results["results"] if r["format"] == "tflite_fp32"}
    judged = rows["semivl_small"]
    assert judged["outcome"] == "failed" and code == 1, out[-3000:]
    assert judged["info"]["artifact"].startswith("user file (sha256 ")
    assert "argmax_agreement = " in judged["message"] and "(budget >= 0.999)" in judged["message"]
    assert judged["info"]["first_divergent_layer"].startswith("decode_head.up"), judged["info"]
    assert "first diverging layer: decode_head.up" in out  # in the failure's full text
    # Without the user's file, the suite's own (rewritten) export of the same model passes.
    code, out, results = inline_suite(tmp_path / "own", "conformance/test_parity.py", "-k",
                                      "semivl_small-tflite_fp32")
    own = next(r for r in results["results"] if r["model"] == "semivl_small")
    assert own["outcome"] == "passed" and "up_skip_repeat_3d" in own["info"]["rewrites"], out
