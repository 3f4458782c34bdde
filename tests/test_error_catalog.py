"""The error catalog: every bad input gives one clear line naming the file and the problem.

`SEGCONFORM_SHOW_ERRORS=1 pytest -s tests/test_error_catalog.py` prints each message
(docs/error_catalog.md is copied from that output).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from models.runtimes import ArtifactError, IOSpec, RuntimeUnavailable, load_runner

ROOT = Path(__file__).resolve().parents[1]
LITE = "deeplabv3plus_mnv3_lite"
SIZE = 256
IO = IOSpec(inputs={"image": (1, 3, SIZE, SIZE)}, outputs=("logits",),
            output_shapes={"logits": (1, 21, SIZE, SIZE)})
ARTIFACT_FORMATS = ("torchscript", "torchscript_lite", "onnx", "tflite_fp32")


def expect_one_line(kind: type[BaseException], call, *needles: object) -> str:
    """Run `call`, require `kind` with a one-line message containing every needle."""
    with pytest.raises(kind) as caught:
        call()
    message = str(caught.value)
    if os.environ.get("SEGCONFORM_SHOW_ERRORS"):
        print(f"\n{kind.__name__}: {message}")
    assert "\n" not in message, message
    for needle in needles:
        assert str(needle) in message, f"{needle!r} not in {message!r}"
    return message


@pytest.fixture(scope="module")
def lite():
    """The lite model's reference and its exports (default cache: hits after the first run)."""
    from conformance.reference import ReferenceStore
    from models.registry import get_spec

    spec = get_spec(LITE)
    store = ReferenceStore()
    session = store.session(spec)
    artifacts = {fmt: session.export(fmt) for fmt in ARTIFACT_FORMATS}
    return SimpleNamespace(spec=spec, store=store, ref=store.get(spec), artifacts=artifacts)


def tiny_onnx(path: Path, shape: tuple, op: str = "Identity") -> Path:
    """A one-node ONNX model 'image' -> 'logits' (Identity, or Div by zero for NaN)."""
    import onnx
    from onnx import TensorProto, helper

    nodes, inits = [helper.make_node("Identity", ["image"], ["logits"])], []
    if op == "DivByZero":
        inits = [helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0])]
        nodes = [helper.make_node("Div", ["image", "zero"], ["logits"])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what onnxruntime 1.32 reads, whatever onnx writes by default
    onnx.save(model, path)
    return path


# --- corrupt and truncated artifacts ------------------------------------------------------


@pytest.mark.parametrize("fmt", ARTIFACT_FORMATS)
def test_truncated_artifact(lite, fmt: str, tmp_path: Path) -> None:
    source = lite.artifacts[fmt].path
    broken = tmp_path / f"truncated{source.suffix}"
    broken.write_bytes(source.read_bytes()[: source.stat().st_size // 3])
    expect_one_line(ArtifactError, lambda: load_runner(fmt, broken, IO), broken)


@pytest.mark.parametrize("fmt", ARTIFACT_FORMATS)
def test_not_a_model_file(fmt: str, tmp_path: Path) -> None:
    suffix = {"torchscript": ".pt", "torchscript_lite": ".ptl", "onnx": ".onnx"}.get(fmt,
                                                                                     ".tflite")
    junk = tmp_path / f"photo{suffix}"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    expect_one_line(ArtifactError, lambda: load_runner(fmt, junk, IO), junk)


# --- an artifact of another model ----------------------------------------------------------


def test_other_architecture_onnx(tmp_path: Path) -> None:
    """The conventional DeepLab (91 classes) given where the lite one (21) is expected."""
    from models.export.onnx import export_onnx
    from models.export.request import ExportRequest
    from models.registry import get_spec

    spec = get_spec("deeplabv3plus_mnv3_conventional")
    path = tmp_path / "deeplabv3plus_mnv3_conventional.onnx"
    example = {"image": np.zeros((1, 3, SIZE, SIZE), np.float32)}
    export_onnx(ExportRequest(spec=spec, model=spec.build(), example=example, out_path=path))
    expect_one_line(ArtifactError, lambda: load_runner("onnx", path, IO),
                    path, "(1, 91, 256, 256)", "(1, 21, 256, 256)", "axis 1: 91 vs 21")


def test_other_input_size_onnx(tmp_path: Path) -> None:
    path = tiny_onnx(tmp_path / "exported_at_320.onnx", (1, 3, 320, 320))
    expect_one_line(ArtifactError, lambda: load_runner("onnx", path, IO),
                    path, "(1, 3, 320, 320)", "(1, 3, 256, 256)")


def test_other_output_shape_at_run(tmp_path: Path) -> None:
    """TorchScript declares no shapes: a wrong output is caught on the first run instead."""
    import torch

    path = tmp_path / "three_channels.pt"
    torch.jit.trace(torch.nn.Identity(), torch.zeros(1, 3, SIZE, SIZE)).save(str(path))
    runner = load_runner("torchscript", path, IO)
    image = {"image": np.zeros((1, 3, SIZE, SIZE), np.float32)}
    expect_one_line(ArtifactError, lambda: runner.run(image),
                    path, "(1, 3, 256, 256)", "(1, 21, 256, 256)", "axis 1: 3 vs 21")


# --- wrong inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ARTIFACT_FORMATS)
def test_wrong_input_shape(lite, fmt: str) -> None:
    runner = load_runner(fmt, lite.artifacts[fmt].path, IO)
    image = {"image": np.zeros((1, 3, 128, 128), np.float32)}
    expect_one_line(ArtifactError, lambda: runner.run(image),
                    runner.path, "(1, 3, 128, 128)", "(1, 3, 256, 256)")


@pytest.mark.parametrize("fmt", ARTIFACT_FORMATS)
def test_wrong_input_dtype(lite, fmt: str) -> None:
    runner = load_runner(fmt, lite.artifacts[fmt].path, IO)
    pixels = {"image": np.zeros((1, 3, SIZE, SIZE), np.uint8)}
    expect_one_line(ArtifactError, lambda: runner.run(pixels), runner.path, "uint8", "float32")


# --- non-finite outputs --------------------------------------------------------------------


def test_nan_output_onnx(tmp_path: Path) -> None:
    path = tiny_onnx(tmp_path / "divides_by_zero.onnx", (1, 3, 4, 4), op="DivByZero")
    io = IOSpec(inputs={"image": (1, 3, 4, 4)}, outputs=("logits",))
    runner = load_runner("onnx", path, io)
    zeros = {"image": np.zeros((1, 3, 4, 4), np.float32)}
    expect_one_line(ArtifactError, lambda: runner.run(zeros), path, "'logits'", "48/48 NaN/Inf")


def test_inf_output_torchscript(tmp_path: Path) -> None:
    import torch

    class Explodes(torch.nn.Module):
        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return torch.exp(image * 1000.0)

    path = tmp_path / "explodes.pt"
    torch.jit.trace(Explodes(), torch.zeros(1, 3, 4, 4)).save(str(path))
    io = IOSpec(inputs={"image": (1, 3, 4, 4)}, outputs=("logits",))
    runner = load_runner("torchscript", path, io)
    ones = {"image": np.ones((1, 3, 4, 4), np.float32)}
    expect_one_line(ArtifactError, lambda: runner.run(ones), path, "48/48 NaN/Inf")


# --- checkpoints ---------------------------------------------------------------------------


def _renamed(state: dict) -> dict:
    renamed = dict(state)
    renamed["head.weight"] = renamed.pop("classifier.weight")
    return {"state_dict": renamed}


def _conventional(state: dict) -> dict:
    from models.registry import get_spec

    return get_spec("deeplabv3plus_mnv3_conventional").build().state_dict()


# (file name, what to save given the lite model's state_dict, truncate?, expected fragments)
CHECKPOINTS = {
    "renamed": (_renamed, False,
                ("1 missing (e.g. classifier.weight)", "1 unexpected (e.g. head.weight)")),
    "conventional": (_conventional, False,
                     ("unexpected", "with other shapes", "(256, 960, 1, 1)")),
    "truncated": (lambda state: state, True, ("not a readable PyTorch checkpoint",)),
    "list": (lambda state: [1, 2, 3], False, ("expected a state_dict, found list",)),
    # Training scripts often save their argparse options beside the weights: that needs pickle.
    "pickled": (lambda state: {"state_dict": state, "args": argparse.Namespace(lr=0.01)}, False,
                ("needs pickle to load", "argparse.Namespace", "--trust-checkpoint")),
}


@pytest.fixture(scope="module")
def lite_state():
    from models.registry import get_spec

    spec = get_spec(LITE)
    return spec, spec.build().state_dict()


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_bad_checkpoint(lite_state, name: str, tmp_path: Path) -> None:
    import torch

    from models.checkpoint import CheckpointError, load_state_dict_file

    spec, state = lite_state
    content, truncate, fragments = CHECKPOINTS[name]
    path = tmp_path / f"{name}.pt"
    torch.save(content(state), path)
    if truncate:
        path.write_bytes(path.read_bytes()[:100_000])
    expect_one_line(CheckpointError, lambda: load_state_dict_file(spec.build(), path),
                    path, *fragments)


# --- missing runtimes ----------------------------------------------------------------------

MISSING = {
    "onnx": (("onnxruntime",), "pip install onnxruntime"),
    "tflite_fp32": (("ai_edge_litert", "ai_edge_litert.interpreter", "tflite_runtime",
                     "tflite_runtime.interpreter"), "pip install ai-edge-litert"),
    "torchscript": (("torch",), "pip install torch"),
}


@pytest.mark.parametrize("fmt", sorted(MISSING))
def test_missing_runtime(lite, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    modules, pip = MISSING[fmt]
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # import of it raises ImportError
    expect_one_line(RuntimeUnavailable,
                    lambda: load_runner(fmt, lite.artifacts[fmt].path, IO), pip)


def test_missing_runtime_skips_the_case(lite, monkeypatch: pytest.MonkeyPatch) -> None:
    from conformance.matrix import Case
    from conformance.runners import load_case_runner

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    case = Case(lite.spec, "onnx")
    message = expect_one_line(pytest.skip.Exception,
                              lambda: load_case_runner(case, lite.store, threads=2),
                              "onnx:", "pip install onnxruntime")
    assert "Error" not in message.split(":")[0]


# --- datasets and images --------------------------------------------------------------------


def _first(voc: Path, folder: str) -> Path:
    return sorted((voc / "VOC2012" / folder).iterdir())[0]


def _unlink(path: Path) -> Path:
    path.unlink()
    return path


def _rgb_label(path: Path) -> Path:
    from PIL import Image

    Image.open(path).convert("RGB").save(path)
    return path


def _garbage(path: Path) -> Path:
    path.write_bytes(b"not a jpeg")
    return path


def _no_split_list(voc: Path) -> Path:
    return _unlink(voc / "VOC2012/ImageSets/Segmentation/val.txt")


# What breaks a freshly written two-image dataset -> the path and words the error must carry.
DATASET_DAMAGE = {
    "root missing": (lambda voc: voc.parent / "nowhere", ("dataset folder not found",)),
    "split list missing": (_no_split_list, ("VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt",)),
    "image missing": (lambda voc: _unlink(_first(voc, "JPEGImages")), ("listed in val.txt",)),
    "label not palette": (lambda voc: _rgb_label(_first(voc, "SegmentationClass")),
                          ("mode RGB",)),
    "image undecodable": (lambda voc: _garbage(_first(voc, "JPEGImages")),
                          ("cannot decode image",)),
}


@pytest.mark.parametrize("damage", DATASET_DAMAGE)
def test_bad_voc_dataset(damage: str, tmp_path: Path) -> None:
    from fixtures.voc import DatasetError, read_voc_split, write_voc_dataset

    voc = write_voc_dataset(tmp_path, count=2, size=32)
    spoil, fragments = DATASET_DAMAGE[damage]
    path = spoil(voc)
    root = path if damage == "root missing" else voc
    expect_one_line(DatasetError, lambda: read_voc_split(root), path, *fragments)


@pytest.mark.parametrize("content", [b"", b"GIF89a" + b"\0" * 10, "half"])
def test_image_undecodable(content, tmp_path: Path) -> None:
    from PIL import Image

    from fixtures.images import ImageFileError, read_rgb

    path = tmp_path / "photo.png"
    if content == "half":
        Image.fromarray(np.full((64, 64, 3), 7, np.uint8)).save(path)
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    expect_one_line(ImageFileError, lambda: read_rgb(path), path, "cannot decode image")


def test_image_missing(tmp_path: Path) -> None:
    from fixtures.images import ImageFileError, read_rgb

    path = tmp_path / "nowhere.jpg"
    expect_one_line(ImageFileError, lambda: read_rgb(path), path, "not found")


# --- reports folder --------------------------------------------------------------------------


def test_reports_not_writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root ignores chmod, so the permission check itself is made to say no.

    The UsageError built from this reason is tested in tests/test_usage_errors.py.
    """
    from conformance import options

    (tmp_path / "reports").mkdir()
    monkeypatch.setattr(options.os, "access", lambda path, mode: False)
    reason = options.unwritable(tmp_path / "reports" / "junit.xml")
    assert reason == f"{tmp_path / 'reports'} is not writable"


# --- one format's failure never aborts the others -------------------------------------------

BROKEN_NODE = "/high_level/high_level.6/block/block.0/block.0.0/Conv"


def break_onnx_weights(source: Path, target: Path, node_name: str) -> None:
    """Write `source` to `target` with one Conv's weights scaled by -3: loads, computes garbage."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    node = next(n for n in model.graph.node if n.name == node_name)
    init = next(i for i in model.graph.initializer if i.name == node.input[1])
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * -3.0, init.name))
    onnx.save(model, str(target))


def run_parity_subprocess(tmp_path: Path, cache: Path, select: str,
                          extra_env: dict[str, str] | None = None) -> tuple[str, dict]:
    """Run the parity suite on `select` in a fresh interpreter; (output, results by format)."""
    results = tmp_path / "results.json"
    env = {**os.environ, "SEGCONFORM_CACHE": str(cache), **(extra_env or {})}
    # Bundles go to tmp: this run's must not replace the repository's reports/bundles.
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-o", "addopts=--strict-markers", f"--bundle-dir={tmp_path / 'bundles'}",
               "--report-json", str(results), "conformance/test_parity.py", "-k", select]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    output = done.stdout + done.stderr
    assert results.is_file(), output[-3000:]
    rows = json.loads(results.read_text())["results"]
    return output, {row["format"]: row for row in rows}


def cache_with_links(lite, tmp_path: Path) -> Path:
    """A private cache whose files link to the default cache's (corrupt copies, not links)."""
    from models.export.cache import cache_root

    cache = tmp_path / "cache"
    folder = cache / LITE
    folder.mkdir(parents=True)
    for item in lite.artifacts["onnx"].path.parent.iterdir():
        if item.suffix != ".lock":  # locks belong to a cache; filelock refuses a linked one
            (folder / item.name).symlink_to(item)
    (cache / "fixture_weights").symlink_to(cache_root() / "fixture_weights")
    return cache


def test_one_format_failure_does_not_abort_the_others(lite, tmp_path: Path) -> None:
    cache = cache_with_links(lite, tmp_path)
    onnx_file = cache / LITE / lite.artifacts["onnx"].path.name
    onnx_file.unlink()
    break_onnx_weights(lite.artifacts["onnx"].path, onnx_file, BROKEN_NODE)
    output, by_format = run_parity_subprocess(
        tmp_path, cache, f"{LITE} and (torchscript or onnx or tflite_fp32) and not cuda")
    outcomes = {fmt: row["outcome"] for fmt, row in by_format.items()}
    assert outcomes == {"torchscript": "passed", "torchscript_lite": "passed",
                        "onnx": "failed", "tflite_fp32": "passed"}, output[-3000:]
    message = by_format["onnx"]["message"]
    assert f"{LITE}-onnx parity vs PyTorch eager" in message, message
    assert re.search(r"snr_db = -?\d+(\.\d+)? \(budget >= 60\)", message), message
    # The report keeps the first line; the full assertion message carries the localisation.
    assert "first diverging layer: high_level.6.block.0" in output, output[-3000:]
    assert by_format["onnx"]["info"]["first_divergent_layer"].startswith("high_level.6.block.0")
