"""Canaries: each pins one converter bug on a minimal module, beside its working twin.

A canary converts the official form of a step (the code SemiVL's builder runs) and asserts
the bug is still there; the twin (the export rewrite's form, or the official form where the
bug only hits an alternative) must convert correctly, which shows the failure is the
converter's. The day a release fixes a bug, its canary fails and names what can go.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_litert")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from conformance.metrics.parity import snr_db  # noqa: E402
from models import semivl  # noqa: E402
from models.export import rewrites  # noqa: E402
from models.export.request import ExportRequest  # noqa: E402
from models.export.tflite import export_tflite_fp32, export_tflite_int8  # noqa: E402
from models.registry import InputSpec, ModelSpec  # noqa: E402
from models.runtimes.base import IOSpec  # noqa: E402
from models.runtimes.tflite import TFLiteRunner  # noqa: E402

CORRECT_DB = 60.0  # a float conversion that is right agrees to float noise (~120 dB here)


def _tools(*names: str) -> str:
    return ", ".join(f"{n} {version(n)}" for n in names)


def _fixed(what: str, figures: str, tools: str) -> str:
    return f"{tools}: {what} converts correctly now ({figures}). {{}}"


def _rewrite_can_go(name: str) -> str:
    family = rewrites.REWRITES[name].family
    return (f"Export rewrite {name!r} can go: delete it from models/export/rewrites.py, from "
            f"EXPORT_REWRITES in models/{family}.py and this canary.")


def _tflite(module: nn.Module, inputs: dict[str, np.ndarray], tmp_path: Path,
            int8: bool = False, calibration: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(PyTorch output, TFLite output) through the suite's own converters and runner."""
    module = module.eval()
    spec = ModelSpec(name="canary", family="canary", build=lambda: module,
                     inputs=tuple(InputSpec(k, v.shape) for k, v in inputs.items()),
                     output_names=("y",), task="semantic", num_classes=0, expected_params=None)
    with torch.no_grad():
        expected = module(*(torch.from_numpy(v) for v in inputs.values())).numpy()
    fp32 = tmp_path / "canary_fp32.tflite"
    export_tflite_fp32(ExportRequest(spec=spec, model=module, example=inputs, out_path=fp32))
    path = fp32
    if int8:
        rng = np.random.default_rng(1)
        samples = [{k: rng.normal(size=v.shape).astype(np.float32) for k, v in inputs.items()}
                   for _ in range(calibration)]
        path = tmp_path / "canary_int8.tflite"
        export_tflite_int8(ExportRequest(spec=spec, model=module, example=inputs, out_path=path,
                                         calibration=samples, upstream=fp32))
    io = IOSpec(inputs={k: v.shape for k, v in inputs.items()}, outputs=("y",),
                output_shapes={"y": expected.shape})
    return expected, TFLiteRunner(path, io).run(inputs)["y"]


def _normal(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


# ------------------------------------------------------- 1: Up's 5-D expand between convs


class SkipConcat(nn.Module):
    """SemiVL's Up in miniature: conv → concat a per-class copy of a skip map → conv."""

    def __init__(self, repeat) -> None:
        super().__init__()
        self.before = nn.Conv2d(4, 4, 3, padding=1)
        self.after = nn.Conv2d(8, 4, 3, padding=1)
        self.repeat = repeat  # the official Up.repeat_skip or the rewrite's form

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.before(x)
        skip = self.repeat(self, skip, x.shape[0] // skip.shape[0])
        return self.after(torch.cat([x, skip], dim=1))


def test_litert_5d_expand_between_convs_is_still_wrong(tmp_path: Path) -> None:
    inputs = {"x": _normal(3, 4, 8, 8), "skip": _normal(1, 4, 8, 8, seed=1)}
    torch.manual_seed(0)
    official = SkipConcat(semivl.Up.repeat_skip)
    twin = SkipConcat(rewrites.repeat_skip_3d)
    twin.load_state_dict(official.state_dict())
    ref, got = _tflite(official, inputs, tmp_path / "official")
    ref_twin, got_twin = _tflite(twin, inputs, tmp_path / "twin")
    official_db, twin_db = snr_db(ref, got), snr_db(ref_twin, got_twin)
    assert twin_db >= CORRECT_DB, f"canary broken: the 3-D twin converts at {twin_db:.1f} dB"
    assert official_db < 20.0, _fixed(
        "a 5-D expand+reshape concatenated between two convs",
        f"SNR {official_db:.1f} dB, max error {np.abs(got - ref).max():.2g}",
        _tools("litert-torch")).format(_rewrite_can_go("up_skip_repeat_3d") + " Keep its "
                                       "copies by concatenation while "
                                       "test_xnnpack_broadcast_to_is_still_undelegated holds.")


def test_xnnpack_broadcast_to_is_still_undelegated(tmp_path: Path) -> None:
    """Why repeat_skip_3d copies by doubling concatenations, not by a 3-D expand."""
    from models.runtimes.tflite_profile import profile_tflite

    def expand_3d(self, skip: torch.Tensor, n: int) -> torch.Tensor:
        batch, channels, height, width = skip.shape
        flat = skip.reshape(batch, 1, channels * height * width).expand(-1, n, -1)
        return flat.reshape(batch * n, channels, height, width)

    inputs = {"x": _normal(5, 4, 8, 8), "skip": _normal(1, 4, 8, 8, seed=1)}
    torch.manual_seed(0)
    expanded, doubled = SkipConcat(expand_3d), SkipConcat(rewrites.repeat_skip_3d)
    doubled.load_state_dict(expanded.state_dict())
    profiles = {}
    for name, module in (("expand", expanded), ("doubled", doubled)):
        ref, got = _tflite(module, inputs, tmp_path / name)
        assert snr_db(ref, got) >= CORRECT_DB, (name, snr_db(ref, got))
        profiles[name] = profile_tflite(tmp_path / name / "canary_fp32.tflite").summary()
    assert profiles["doubled"]["not_delegated"] == {}, (
        f"canary broken: the doubling form is not all XNNPACK ops: {profiles['doubled']}")
    assert profiles["expand"]["not_delegated"] == {"BROADCAST_TO": 1}, _fixed(
        "XNNPACK takes BROADCAST_TO", f"not delegated: {profiles['expand']['not_delegated']}",
        _tools("litert-torch", "ai-edge-litert")).format(
        "repeat_skip_3d (models/export/rewrites.py) may copy with expand again.")


# ------------------------------------------------------- 2: expand of the ASPP image pool


class PooledBroadcast(nn.Module):
    """ASPP in miniature: a conv branch and the image pool (pool → 1x1 conv → back to the map
    size), concatenated, → conv. Without the conv branch the expand converts correctly."""

    def __init__(self, expand: bool) -> None:
        super().__init__()
        self.expand = expand
        self.branch = nn.Conv2d(16, 16, 1)
        self.gap = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(16, 16, 1))
        self.out = nn.Conv2d(32, 16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = self.gap(x)
        if self.expand:
            pool = pool.expand(-1, -1, *x.shape[-2:])
        else:  # the official ASPPPooling
            pool = F.interpolate(pool, size=x.shape[-2:], mode="bilinear", align_corners=True)
        return self.out(torch.cat([self.branch(x), pool], dim=1))


def test_litert_expand_of_pooled_map_still_fails_to_allocate(tmp_path: Path) -> None:
    inputs = {"x": _normal(3, 16, 4, 4)}
    torch.manual_seed(0)
    official = PooledBroadcast(expand=False)
    ref, got = _tflite(official, inputs, tmp_path / "official")
    assert snr_db(ref, got) >= CORRECT_DB, "canary broken: the official resize converts wrongly"
    broadcast = PooledBroadcast(expand=True)
    broadcast.load_state_dict(official.state_dict())
    try:
        ref, got = _tflite(broadcast, inputs, tmp_path / "expand")
    except Exception as err:
        assert "BROADCAST_TO" in str(err) or "broadcast" in str(err).lower(), err
        return
    pytest.fail(_fixed("an expand of a pooled (B, C, 1, 1) map before a concat",
                       f"SNR {snr_db(ref, got):.1f} dB", _tools("litert-torch")).format(
        "No rewrite depends on it (SemiVL's ASPP pool is the official bilinear resize); the "
        "comment in models/semivl.py ASPPPooling and this canary can go."))


# ------------------------------------------------- 3: int8 einsum with the constant text


class TextSimilarity(nn.Module):
    """VLGHead's similarity in miniature: conv → cosine similarity with constant text."""

    def __init__(self, similarity) -> None:
        super().__init__()
        self.before = nn.Conv2d(8, 8, 1)
        self.register_buffer("text", F.normalize(torch.randn(5, 8), dim=-1))
        self.similarity = similarity  # the official VLGHead.similarity or the rewrite's form

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.similarity(self, self.before(x), self.text)


def test_int8_einsum_with_constant_text_is_still_zeroed(tmp_path: Path) -> None:
    inputs = {"x": _normal(1, 8, 4, 4)}
    torch.manual_seed(0)
    official = TextSimilarity(semivl.VLGHead.similarity)
    twin = TextSimilarity(rewrites.similarity_as_linear)
    twin.load_state_dict(official.state_dict())
    ref, got = _tflite(official, inputs, tmp_path / "official", int8=True)
    ref_twin, got_twin = _tflite(twin, inputs, tmp_path / "twin", int8=True)
    twin_db = snr_db(ref_twin, got_twin)
    # 24 dB measured; 15 dB keeps a margin for quantiser changes, far above the bug's 0 dB.
    assert twin_db >= 15.0, f"canary broken: the linear twin quantises at {twin_db:.1f} dB"
    spread = float(np.ptp(got))  # the bug: every output is the zero point, i.e. 0.0
    assert spread == 0.0 and snr_db(ref, got) < 1.0, _fixed(
        "int8 of a batch matmul with a constant operand (torch.einsum with the text)",
        f"SNR {snr_db(ref, got):.1f} dB, output spread {spread:.3g}",
        _tools("litert-torch", "ai-edge-quantizer", "ai-edge-litert")).format(
        _rewrite_can_go("similarity_as_linear"))


# ------------------------------------------- 4: int8 HARD_SWISH outside XNNPACK's int8 kernels


class ConvHardswish(nn.Module):
    """MobileNetV3's block in miniature: conv → hard-swish → conv."""

    def __init__(self) -> None:
        super().__init__()
        self.before = nn.Conv2d(3, 16, 3, padding=1)
        self.act = nn.Hardswish()
        self.after = nn.Conv2d(16, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.after(self.act(self.before(x)))


def test_xnnpack_int8_hard_swish_is_still_undelegated(tmp_path: Path) -> None:
    from models.runtimes.tflite_profile import profile_tflite

    inputs = {"x": _normal(1, 3, 32, 32)}
    torch.manual_seed(0)
    module = ConvHardswish()
    ref, got = _tflite(module, inputs, tmp_path / "official", int8=True)
    official = profile_tflite(tmp_path / "official" / "canary_int8.tflite").summary()
    with rewrites.applied(module, ["hardswish_as_mul_relu6"]):
        ref_twin, got_twin = _tflite(module, inputs, tmp_path / "twin", int8=True)
    twin = profile_tflite(tmp_path / "twin" / "canary_int8.tflite").summary()
    twin_db = snr_db(ref_twin, got_twin)
    assert twin["not_delegated"] == {} and "HARD_SWISH" not in twin["by_type"], (
        f"canary broken: the rewrite's form is not all XNNPACK ops: {twin['by_type']}")
    # Measured 30 dB for both forms; the rewrite must not cost int8 accuracy.
    assert twin_db >= 20.0 and snr_db(ref, got) >= 20.0, (twin_db, snr_db(ref, got))
    assert official["not_delegated"] == {"HARD_SWISH": 1}, _fixed(
        "XNNPACK runs int8 HARD_SWISH", f"not delegated: {official['not_delegated']}",
        _tools("litert-torch", "ai-edge-quantizer", "ai-edge-litert")).format(
        _rewrite_can_go("hardswish_as_mul_relu6") + " (Coral's op table still has no "
        "HARD_SWISH: keep it for the Edge TPU unless the table changed.)")


# ------------------------------------------- 5: calibration ranges that depend on image order


def test_aeq_calibration_range_still_depends_on_sample_order(tmp_path: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import recipe

    from models.export.int8_recipe import quantize_static
    from models.export.tflite import signature_samples

    torch.manual_seed(0)
    module = nn.Conv2d(3, 3, 1).eval()
    spec = ModelSpec(name="canary", family="canary", build=lambda: module,
                     inputs=(InputSpec("x", (1, 3, 16, 16)),), output_names=("y",),
                     task="semantic", num_classes=0, expected_params=None)
    fp32 = tmp_path / "canary_fp32.tflite"
    export_tflite_fp32(ExportRequest(spec=spec, model=module, example={"x": _normal(1, 3, 16, 16)},
                                     out_path=fp32))
    narrow = [{"x": _normal(1, 3, 16, 16, seed=1)}]
    wide = [{"x": 10 * _normal(1, 3, 16, 16, seed=k)} for k in range(2, 9)]

    def output_scale(samples: list[dict], statistic: str) -> float:
        out = tmp_path / f"{statistic}-{len(list(tmp_path.iterdir()))}.tflite"
        quantize_static(fp32, out, signature_samples(spec, samples), recipe.static_wi8_ai8(),
                        statistic)
        return float(Interpreter(model_path=str(out)).get_output_details()[0]["quantization"][0])

    narrow_first = output_scale(narrow + wide, "moving_average")
    wide_first = output_scale(wide + narrow, "moving_average")
    # The alternative (min_max): the same range in any order, the widest one.
    min_max = output_scale(narrow + wide, "min_max")
    assert min_max == pytest.approx(output_scale(wide + narrow, "min_max"))
    assert min_max >= 0.99 * wide_first, (min_max, wide_first)
    # Measured (ai-edge-quantizer 0.10.0): output scale 0.0498 narrow-first, 0.136 wide-first,
    # 0.153 with min_max: seven wide images later the first, narrow one still rules the range.
    assert narrow_first < 0.6 * wide_first, _fixed(
        "calibration no longer depends on the order of the images",
        f"output scale {narrow_first:.4g} narrow-first vs {wide_first:.4g} wide-first",
        _tools("ai-edge-quantizer")).format(
        "The README's calibration-order finding can go.")


# --------------------------------------- 6: one int8 scale per activation tensor (FastSAM-s)


class ScoresBesideCoefficients(nn.Module):
    """FastSAM-s's output0 in miniature: a score row (0-1) beside wide coefficient rows."""

    def __init__(self, in_parts: bool) -> None:
        super().__init__()
        self.in_parts = in_parts

    def forward(self, x: torch.Tensor):
        scores, coefficients = torch.sigmoid(x), 12.0 * torch.tanh(x)
        if self.in_parts:
            return scores, coefficients
        return torch.cat([scores, coefficients], dim=1)


def test_aeq_activation_ranges_are_still_per_tensor(tmp_path: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    x = {"x": _normal(1, 1, 8, 8)}
    rng = np.random.default_rng(1)
    samples = [{"x": rng.normal(size=(1, 1, 8, 8)).astype(np.float32)} for _ in range(8)]
    scores_err, scales = {}, {}
    for in_parts in (False, True):
        module = ScoresBesideCoefficients(in_parts).eval()
        spec = ModelSpec(name="canary", family="canary", build=lambda m=module: m,
                         inputs=(InputSpec("x", (1, 1, 8, 8)),), output_names=("y",),
                         task="semantic", num_classes=0, expected_params=None,
                         output_parts=(("y", (1, 1)),))
        fp32, int8 = tmp_path / f"parts{in_parts}.tflite", tmp_path / f"parts{in_parts}_int8.tflite"
        export_tflite_fp32(ExportRequest(spec=spec, model=module, example=x, out_path=fp32))
        export_tflite_int8(ExportRequest(spec=spec, model=module, example=x, out_path=int8,
                                         calibration=samples, upstream=fp32))
        io = IOSpec(inputs={"x": (1, 1, 8, 8)}, outputs=("y",), output_shapes={"y": (1, 2, 8, 8)},
                    output_parts={"y": (1, 1)})
        got = TFLiteRunner(int8, io).run(x)["y"]  # the parts joined back into y
        expected = torch.sigmoid(torch.from_numpy(x["x"])).numpy()
        scores_err[in_parts] = float(np.abs(got[:, :1] - expected).max())
        scales[in_parts] = [d["quantization_parameters"]["scales"].size
                            for d in Interpreter(model_path=str(int8)).get_output_details()]
    # Measured (ai-edge-quantizer 0.10.0): in one tensor the scores share the coefficients'
    # scale (about 24/255) and are off by up to half a step; as their own output, by 1/510.
    assert scales[True] == [1, 1]
    assert scores_err[True] < 0.01, scores_err
    assert scales[False] == [1] and scores_err[False] > 0.02, _fixed(
        "an activation tensor can have per-channel int8 ranges",
        f"output scales {scales[False]}, score error {scores_err[False]:.4f}",
        _tools("ai-edge-quantizer")).format(_rewrite_can_go("output0_in_parts"))
