"""Export rewrites: PyTorch's numbers unchanged, applied only while converting, recorded."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models import deeplabv3plus, fastsam, semivl  # noqa: E402
from models.export import FORMATS, ExportSession  # noqa: E402
from models.export.request import ExportRequest  # noqa: E402
from models.export.rewrites import REWRITES, applied, rewrites_for  # noqa: E402
from models.registry import InputSpec, ModelSpec, count_parameters, get_spec  # noqa: E402

# Largest change a rewrite may make to PyTorch's outputs (absolute). The skip repeat only
# moves values: exact. The similarity as a linear layer may reorder float32 sums of unit
# vectors: float noise, 1e-6 on cosines in [-1, 1], 1e-5 on the logits (|logits| < 10).
# hard-swish as (x / 6) * relu6(x + 3) rounds differently from x * relu6(x + 3) / 6: one ulp of
# each activation (|x| < 8 here: 1e-6), carried through 15 blocks to the logits.
TOLERANCE = {
    "up_skip_repeat_3d": {"step": 0.0, "logits": 0.0},
    "similarity_as_linear": {"step": 1e-6, "logits": 1e-5},
    "hardswish_as_mul_relu6": {"step": 1e-6, "logits": 1e-4},
    # The parts are slices of the same tensor: exact.
    "output0_in_parts": {"step": 0.0, "logits": 0.0},
}
SEMIVL_REWRITES = sorted(n for n, r in REWRITES.items() if r.family == "semivl")


@pytest.fixture(scope="module")
def small() -> semivl.SemiVL:
    return semivl.build_semivl(semivl.SMALL_CONFIG, seed=3)


@pytest.fixture(scope="module")
def lite() -> deeplabv3plus.DeepLabV3Plus:
    return deeplabv3plus.build_deeplabv3plus(21, lite=True, seed=3)


@pytest.fixture(scope="module")
def fastsam_small() -> fastsam.FastSAMRaw:
    return fastsam.build_fastsam_s(128)


def _image(seed: int = 0, batch: int = 2) -> torch.Tensor:
    images = np.random.default_rng(seed).uniform(0, 1, (batch, 3, 256, 256))
    return torch.from_numpy(semivl.preprocess(images)["image"])


def _step_inputs(model: torch.nn.Module, name: str) -> tuple[torch.nn.Module, tuple]:
    """The module a rewrite replaces a method of, and arguments for that method."""
    if name == "up_skip_repeat_3d":
        return model.decode_head.up1, (torch.randn(2, 16, 32, 32), 21)
    if name == "similarity_as_linear":
        return model.decode_head, (model.backbone(_image())[-1], model.text_embeddings)
    if name == "hardswish_as_mul_relu6":  # over hard-swish's kinks at -3 and 3, and beyond
        return model.low_level[0][2], (torch.linspace(-8, 8, 4001).reshape(1, 1, 1, -1),)
    raise AssertionError(f"no inputs for rewrite {name}: add them with its tolerance")


def _copies(args: tuple) -> tuple:
    return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)


def test_every_rewrite_has_a_tolerance_a_canary_and_a_bug() -> None:
    assert set(TOLERANCE) == set(REWRITES)
    canaries = (Path(__file__).parent / "test_converter_canaries.py").read_text()
    for rewrite in REWRITES.values():
        assert f"def {rewrite.canary}(" in canaries, rewrite.name
        assert rewrite.tool and rewrite.bug and rewrite.formats
        assert callable(getattr(rewrite.target, rewrite.method)), rewrite.name


# output0_in_parts changes the outputs' structure, not their values: its own test below.
@pytest.mark.parametrize("name", sorted(n for n, r in REWRITES.items() if r.family != "fastsam"))
def test_rewrite_leaves_pytorch_outputs_unchanged(request: pytest.FixtureRequest,
                                                  name: str) -> None:
    rewrite = REWRITES[name]
    tol = TOLERANCE[name]
    model = request.getfixturevalue({"semivl": "small", "deeplabv3plus": "lite"}[rewrite.family])
    torch.manual_seed(0)
    module, args = _step_inputs(model, name)
    x = _image(1)
    with torch.no_grad():
        # Clones: torchvision's hard-swish is in place.
        official_step = getattr(module, rewrite.method)(*_copies(args))
        official = model(x)
        with applied(model, [name]):
            # The method really is the workaround here, and the call goes through it.
            assert getattr(module, rewrite.method).__func__ is rewrite.replacement
            step = getattr(module, rewrite.method)(*_copies(args))
            logits = model(x)
    assert rewrite.method not in vars(module)  # restored
    torch.testing.assert_close(step, official_step, rtol=0, atol=tol["step"])
    torch.testing.assert_close(logits, official, rtol=0, atol=tol["logits"])


def test_output0_in_parts_gives_output0_in_parts_exactly(
        fastsam_small: fastsam.FastSAMRaw) -> None:
    from models.runtimes.base import IOSpec, join_parts, output_slots

    images = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        output0, proto = fastsam_small(images)
        with applied(fastsam_small, ["output0_in_parts"]):
            parts = fastsam_small(images)
    assert "forward" not in vars(fastsam_small)  # restored
    assert [p.shape[1] for p in parts[:3]] == list(fastsam.OUTPUT0_PARTS)
    # The runner's join (file order: the three parts, then proto) gives PyTorch's output0.
    io = IOSpec(inputs={}, outputs=("output0", "proto"),
                output_parts=dict(get_spec("fastsam_s").output_parts))
    slots = output_slots(io, len(parts))
    joined = join_parts([(*slot, p.numpy()) for slot, p in zip(slots, parts, strict=True)])
    tol = TOLERANCE["output0_in_parts"]["logits"]
    np.testing.assert_allclose(joined["output0"], output0.numpy(), rtol=0, atol=tol)
    np.testing.assert_allclose(joined["proto"], proto.numpy(), rtol=0, atol=tol)


def test_rewrites_keep_parameters_and_state_dict(small: semivl.SemiVL) -> None:
    before = {k: v.clone() for k, v in small.state_dict().items()}
    with applied(small, SEMIVL_REWRITES):
        during = small.state_dict()
        assert list(during) == list(before)
        for key, value in before.items():
            assert torch.equal(during[key], value), key
        assert count_parameters(small) == get_spec("semivl_small").expected_params
    assert all(REWRITES[n].method not in vars(m) for n in SEMIVL_REWRITES
               for m in small.modules())


def test_applied_restores_the_model_when_the_conversion_fails(small: semivl.SemiVL) -> None:
    with pytest.raises(RuntimeError, match="converter crashed"), \
            applied(small, ["up_skip_repeat_3d"]):
        raise RuntimeError("converter crashed")
    assert "repeat_skip" not in vars(small.decode_head.up1)
    assert "repeat_skip" not in vars(small.decode_head.up2)


def test_bad_rewrite_names_and_targets_are_one_clear_line(small: semivl.SemiVL) -> None:
    with pytest.raises(ValueError, match=r"SemiVL: unknown export rewrite\(s\) \['no_such'\]"), \
            applied(small, ["no_such"]):
        pass
    with pytest.raises(ValueError, match=r"targets Up, which Conv2d does not contain"), \
            applied(torch.nn.Conv2d(1, 1, 1), ["up_skip_repeat_3d"]):
        pass
    with applied(small, ["up_skip_repeat_3d"]), pytest.raises(ValueError, match="already"), \
            applied(small, ["up_skip_repeat_3d"]):
        pass


def test_semivl_specs_apply_every_rewrite_and_the_official_spec_none() -> None:
    for name in ("semivl_small", "semivl_vitb16"):
        assert set(get_spec(name).rewrites) == set(SEMIVL_REWRITES), name
    official, small = get_spec("semivl_small_official"), get_spec("semivl_small")
    assert official.rewrites == ()
    # Same model and weights: only the conversion differs.
    assert official.build is small.build and official.fixture_weights is small.fixture_weights
    assert official.formats == ("tflite_fp32", "tflite_int8")
    for name in REWRITES:
        assert rewrites_for([name], "tflite_fp32") == (name,)
        assert rewrites_for([name], "onnx") == ()


def test_deeplab_specs_rewrite_hardswish_and_the_official_lite_not() -> None:
    for name in ("deeplabv3plus_mnv3_lite", "deeplabv3plus_mnv3_conventional"):
        assert get_spec(name).rewrites == ("hardswish_as_mul_relu6",), name
    official = get_spec("deeplabv3plus_mnv3_lite_official")
    lite = get_spec("deeplabv3plus_mnv3_lite")
    assert official.rewrites == () and official.build is lite.build
    assert official.fixture_weights is lite.fixture_weights
    assert official.formats == ("tflite_int8", "edgetpu")


# ------------------------------------------------------------------ through ExportSession


class UpOnly(torch.nn.Module):
    """A SemiVL Up block alone: the smallest model an Up rewrite applies to."""

    def __init__(self) -> None:
        super().__init__()
        self.block = semivl.Up(32, 16, 8)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.block(x, skip)


def probe_converter(request: ExportRequest) -> dict:
    """Stands in for a converter: notes whether the rewrite is in place while it runs."""
    request.out_path.write_bytes(b"probe")
    return {"converter": "probe", "saw_rewrite": "repeat_skip" in vars(request.model.block)}


def _up_session(tmp_path: Path, rewrites: tuple[str, ...]) -> ExportSession:
    spec = ModelSpec(name="up_only", family="test", build=UpOnly,
                     inputs=(InputSpec("x", (3, 32, 4, 4)), InputSpec("skip", (1, 8, 8, 8))),
                     output_names=("y",), task="semantic", num_classes=16,
                     expected_params=None, rewrites=rewrites)
    torch.manual_seed(0)
    example = {"x": np.random.default_rng(0).normal(size=(3, 32, 4, 4)).astype(np.float32),
               "skip": np.random.default_rng(1).normal(size=(1, 8, 8, 8)).astype(np.float32)}
    return ExportSession(spec=spec, model=UpOnly().eval(), weights_key="w", example=example,
                         calibration=[example], root=tmp_path)


@pytest.fixture
def probe_formats(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("torchscript", "tflite_fp32", "tflite_int8"):
        monkeypatch.setitem(FORMATS, name, dataclasses.replace(
            FORMATS[name], converter="tests.test_rewrites:probe_converter"))


@pytest.mark.usefixtures("probe_formats")
def test_session_applies_rewrites_for_their_formats_only_and_records_them(
        tmp_path: Path) -> None:
    session = _up_session(tmp_path, ("up_skip_repeat_3d",))
    fp32, int8, script = (session.export(f) for f in ("tflite_fp32", "tflite_int8", "torchscript"))
    assert fp32.meta["saw_rewrite"] and fp32.meta["rewrites"] == ["up_skip_repeat_3d"]
    # int8 quantises the rewritten fp32 file: the rewrite is in it, not re-applied to torch.
    assert not int8.meta["saw_rewrite"] and int8.meta["rewrites"] == ["up_skip_repeat_3d"]
    assert not script.meta["saw_rewrite"] and script.meta["rewrites"] == []
    assert "repeat_skip" not in vars(session.model.block)  # PyTorch's reference is untouched
    stored = json.loads(fp32.path.with_suffix(".json").read_text())
    assert stored["rewrites"] == ["up_skip_repeat_3d"]

    plain = _up_session(tmp_path, ())
    for fmt in ("tflite_fp32", "tflite_int8"):  # the key includes the rewrites, upstream's too
        assert plain.key(FORMATS[fmt]) != session.key(FORMATS[fmt])
        assert plain.export(fmt).meta["rewrites"] == []
    assert plain.key(FORMATS["torchscript"]) == session.key(FORMATS["torchscript"])
    again = _up_session(tmp_path, ("up_skip_repeat_3d",)).export("tflite_int8")
    assert again.cache_hit and again.meta["rewrites"] == ["up_skip_repeat_3d"]


@pytest.mark.usefixtures("probe_formats")
def test_an_edited_rewrite_makes_a_new_artifact(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import models.export as export

    session = _up_session(tmp_path, ("up_skip_repeat_3d",))
    before = {f: session.key(FORMATS[f]) for f in ("tflite_fp32", "tflite_int8", "torchscript")}
    real = export.source_digest
    monkeypatch.setattr(export, "source_digest", lambda module: "edited" if
                        module == "models.export.rewrites" else real(module))
    after = {f: session.key(FORMATS[f]) for f in before}
    assert after["tflite_fp32"] != before["tflite_fp32"]
    assert after["tflite_int8"] != before["tflite_int8"]  # through its upstream
    assert after["torchscript"] == before["torchscript"]  # no rewrite applies to it


@pytest.mark.usefixtures("probe_formats")
def test_session_names_an_unknown_rewrite(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"model up_only: unknown export rewrite"):
        _up_session(tmp_path, ("up_skip_repeat_5d",)).export("tflite_fp32")


def test_session_rewrite_makes_the_real_tflite_conversion_correct(tmp_path: Path) -> None:
    pytest.importorskip("litert_torch")
    from models.runtimes.base import IOSpec
    from models.runtimes.tflite import TFLiteRunner

    session = _up_session(tmp_path, ("up_skip_repeat_3d",))
    with torch.no_grad():
        expected = session.model(*(torch.from_numpy(session.example[k]) for k in ("x", "skip")))
    artifact = session.export("tflite_fp32")
    io = IOSpec(inputs={"x": (3, 32, 4, 4), "skip": (1, 8, 8, 8)}, outputs=("y",),
                output_shapes={"y": tuple(expected.shape)})
    got = TFLiteRunner(artifact.path, io).run(session.example)["y"]
    np.testing.assert_allclose(got, expected.numpy(), rtol=0, atol=1e-4)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 21])
def test_repeat_skip_3d_gives_the_official_copies_image_major(n: int) -> None:
    from models.export.rewrites import repeat_skip_3d

    skip = torch.randn(2, 3, 4, 5)
    official = semivl.Up.repeat_skip(None, skip, n)
    assert torch.equal(repeat_skip_3d(None, skip, n), official)
    assert torch.equal(official[n], skip[1])  # the second image's copies follow the first's
    with pytest.raises(ValueError, match="0 copies requested"):
        repeat_skip_3d(None, skip, 0)
