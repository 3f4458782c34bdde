"""Layer-wise localisation names the layer that was broken on purpose, and none when clean."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from models.localise import (
    LayerDiff,
    Localisation,
    compare_layers,
    first_divergence,
    localise,
    onnx_intermediates,
    onnx_module_path,
    thresholds_db,
    torch_intermediates,
)

LITE = "deeplabv3plus_mnv3_lite"
BROKEN_ONNX_NODE = "/high_level/high_level.6/block/block.0/block.0.0/Conv"
# litert-torch's name for the same module (expand conv of the 7th inverted residual).
BROKEN_TFLITE_SCOPE = ("InvertedResidual_6/torch.nn.modules.container.Sequential_block/"
                       "torchvision.ops.misc.Conv2dNormActivation_0/")
BROKEN_LAYER = "high_level.6.block.0"


@pytest.fixture(scope="module")
def lite():
    """Reference model, one input and the ONNX / TFLite fp32 exports (default cache)."""
    from conformance.reference import ReferenceStore
    from models.registry import get_spec

    spec = get_spec(LITE)
    store = ReferenceStore()
    ref = store.get(spec)
    session = store.session(spec)
    return SimpleNamespace(model=ref.model, inputs=ref.inputs[0],
                           onnx=session.export("onnx").path,
                           tflite=session.export("tflite_fp32").path)


def break_onnx_conv(source: Path, target: Path, node_name: str, factor: float = -3.0) -> Path:
    """Copy of an ONNX file with one Conv's weight initializer scaled by `factor`."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    node = next(n for n in model.graph.node if n.name == node_name)
    init = next(i for i in model.graph.initializer if i.name == node.input[1])
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * factor, init.name))
    onnx.save(model, str(target))
    return target


def break_tflite_conv(source: Path, target: Path, scope: str, factor: float = -3.0) -> Path:
    """Copy of a .tflite with the weight buffer of the first conv under `scope` scaled."""
    from models.runtimes.tflite import make_interpreter

    interpreter = make_interpreter(source, builtin_ops_only=True)
    names = {d["index"]: d["name"] for d in interpreter.get_tensor_details()}
    op = next(op for op in interpreter._get_ops_details()
              if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")
              and scope in names[op["outputs"][0]])
    weights = interpreter.get_tensor(op["inputs"][1])
    data = source.read_bytes()
    assert data.count(weights.tobytes()) == 1, "weight bytes not unique in the file"
    target.write_bytes(data.replace(weights.tobytes(),
                                    (weights * factor).astype(weights.dtype).tobytes()))
    return target


def test_onnx_module_path() -> None:
    assert onnx_module_path("/low_level/low_level.0/low_level.0.0/Conv") == "low_level.0.0"
    assert onnx_module_path("/aspp/branches.4/project/project.0/Conv") == \
        "aspp.branches.4.project.0"
    assert onnx_module_path("/high_level/high_level.5/block/block.2/fc1/Conv") == \
        "high_level.5.block.2.fc1"
    assert onnx_module_path("/Resize") is None
    assert onnx_module_path("Identity_12") is None


def rows(*snrs: float) -> list[LayerDiff]:
    """Layer rows with these SNRs, in order."""
    return [LayerDiff(f"l{k}", "Conv2d", (1,), s, 1.0, f"t{k}") for k, s in enumerate(snrs)]


def test_first_divergence_ignores_float_noise_and_side_branches() -> None:
    assert first_divergence(rows(float("inf"), 130.0, 110.0, 95.0)) is None  # float noise
    # A side branch (e.g. a squeeze-excitation gate at 110 dB) is no baseline for a drop.
    assert first_divergence(rows(130.0, 75.0, 110.0, 56.0)) is None
    assert first_divergence(rows(130.0, 120.0, -9.5, -9.0)) == 2
    assert first_divergence(rows(130.0, 70.0, 45.0)) == 2  # 25 dB below every earlier layer
    assert first_divergence(rows(130.0, 29.0)) == 1  # below the floor
    # A transient dip that the next layers recover from is not the divergence; the layer
    # after which the error stays down is.
    assert first_divergence(rows(130.0, 12.0, 120.0, 125.0, 118.0, 6.0, 5.0, 4.0)) == 5
    assert first_divergence(rows(130.0, 12.0, 120.0, 125.0, 118.0)) is None
    # One mis-mapped row inside healthy ones, with a real break later: the break is named.
    assert first_divergence(rows(130.0, 12.0, 120.0, 125.0, 6.0, 5.0, 4.0, 4.0)) == 4


def test_int8_noise_building_up_is_not_a_break() -> None:
    """A quantised ViT: the patch embedding at 36 dB, the tokens settle ~15 dB lower (int8
    noise, no break) and a dip at one mis-mapped row; the break is where it falls and stays."""
    quantised = rows(35.8, 19.5, 17.7, 22.4, 20.2, -2.4, 19.1, 24.5, 21.0, 24.9, 2.5, 2.7, -1.1,
                     2.1, 6.2, 4.4)
    assert first_divergence(quantised, *thresholds_db("tflite_int8"), quantised=True) == 10


def test_official_form_int8_names_the_decoder_layer_right_after_the_text_similarity() -> None:
    """ai-edge-quantizer zeroes SemiVL's official einsum similarity (a method of the decode
    head, no module of its own): localisation names the decode head's first layer after it,
    and the healthy layer before, not the backbone's int8 noise."""
    from conformance.reference import ReferenceStore
    from models.registry import get_spec

    spec = get_spec("semivl_small_official")
    store = ReferenceStore()
    ref = store.get(spec)
    path = store.session(spec).export("tflite_int8").path
    where = localise("tflite_int8", path, ref.model, ref.inputs[1], ["image"])
    assert where.first_divergent == "decode_head.conv1", where.explain()
    assert "after backbone.proj" in where.summary(), where.summary()
    healthy = where.rows[: where.index]
    assert min(r.snr_db for r in healthy if r.layer.startswith("backbone.layers")) < 0 < min(
        r.snr_db for r in healthy[-5:]), where.explain()  # the dip before it was skipped


@pytest.mark.parametrize("fmt", ["onnx", "tflite_fp32"])
def test_clean_artifact_has_no_divergent_layer(lite, fmt: str) -> None:
    path = lite.onnx if fmt == "onnx" else lite.tflite
    where = localise(fmt, path, lite.model, lite.inputs, ["image"])
    assert where.mapping == "name" and len(where.rows) > 100, where.explain()
    assert where.first_divergent is None, where.explain()
    assert min(r.snr_db for r in where.rows) > 60, where.explain()


def test_broken_onnx_layer_is_named(lite, tmp_path: Path) -> None:
    broken = break_onnx_conv(lite.onnx, tmp_path / "broken.onnx", BROKEN_ONNX_NODE)
    where = localise("onnx", broken, lite.model, lite.inputs, ["image"])
    assert where.first_divergent.startswith(BROKEN_LAYER), where.explain()
    assert where.summary().startswith(f"first diverging layer: {BROKEN_LAYER}")
    before = where.rows[: where.index]
    assert before and min(r.snr_db for r in before) > 60, where.explain()
    table = where.table().splitlines()
    assert len(table) <= 11 and any(line.startswith("> ") for line in table)


def test_broken_tflite_layer_is_named(lite, tmp_path: Path) -> None:
    broken = break_tflite_conv(lite.tflite, tmp_path / "broken.tflite", BROKEN_TFLITE_SCOPE)
    where = localise("tflite_fp32", broken, lite.model, lite.inputs, ["image"])
    assert where.first_divergent.startswith(BROKEN_LAYER), where.explain()
    assert "SNR" in where.summary() and "→" in where.summary()


def test_order_mapping_finds_the_same_layer(lite, tmp_path: Path) -> None:
    """Without usable names (tensors renamed), execution order and shapes still find it."""
    broken = break_onnx_conv(lite.onnx, tmp_path / "broken.onnx", BROKEN_ONNX_NODE)
    torch_rows = torch_intermediates(lite.model, lite.inputs, ["image"])
    exported = [t._replace(owner=None)
                for t in onnx_intermediates(broken, lite.inputs, ["image"])]
    where: Localisation = compare_layers("onnx", torch_rows, exported, "order")
    assert where.mapping == "order"
    assert where.first_divergent.startswith(BROKEN_LAYER), where.explain()


def test_unknown_format_is_refused(lite) -> None:
    with pytest.raises(ValueError, match="torchscript"):
        localise("torchscript", Path("x.pt"), lite.model, lite.inputs, ["image"])


def test_torch_rows_drop_containers_repeating_a_child() -> None:
    import torch

    conv = torch.nn.Conv2d(3, 4, 1)
    torch.nn.init.constant_(conv.weight, -1.0)
    model = torch.nn.Sequential(torch.nn.Sequential(conv, torch.nn.ReLU(inplace=True)))
    rows = torch_intermediates(model, {"x": np.ones((1, 3, 2, 2), np.float32)}, ["x"])
    assert [name for name, _, _ in rows] == ["0.0", "0.1"]
    # The conv output was copied before the in-place ReLU overwrote it.
    assert rows[0][2].max() < 0 and rows[1][2].max() == 0
