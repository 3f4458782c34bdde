"""A second run re-exports nothing; a change of weights or of the code that exports anew."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from conformance.reference import ReferenceStore
from models.export import FORMATS as EXPORT_FORMATS
from models.export import ExportFormat, ExportSession
from models.export.cache import source_digest, weights_digest
from models.registry import InputSpec, ModelSpec, get_spec

FORMATS = ("torchscript", "onnx")


def _session(store: ReferenceStore, spec, root: Path, model=None) -> ExportSession:
    ref = store.get(spec)
    model = model or ref.model
    return ExportSession(spec=spec, model=model, weights_key=weights_digest(model),
                         example=ref.inputs[0], calibration=ref.calibration, root=root)


def test_second_session_takes_every_artifact_from_the_cache(tmp_path: Path) -> None:
    spec = get_spec("deeplabv3plus_mnv3_lite")
    store = ReferenceStore(count=1)
    first = _session(store, spec, tmp_path)
    paths = {fmt: first.export(fmt).path for fmt in FORMATS}
    assert first.converter_calls == list(FORMATS)
    second = _session(store, spec, tmp_path)
    for fmt in FORMATS:
        artifact = second.export(fmt)
        assert artifact.cache_hit and artifact.path == paths[fmt]
    assert second.converter_calls == []


def test_changed_weights_get_a_new_artifact(tmp_path: Path) -> None:
    spec = get_spec("deeplabv3plus_mnv3_lite")
    store = ReferenceStore(count=1)
    original = _session(store, spec, tmp_path).export("onnx")
    model = spec.build()
    model.load_state_dict(store.get(spec).model.state_dict())
    with torch.no_grad():
        model.classifier.bias.add_(1.0)
    changed = _session(store, spec, tmp_path, model=model).export("onnx")
    assert not changed.cache_hit and changed.path != original.path


# --- the key sees code: converter and family sources, architecture libraries, tools --------

TOY_FAMILY = '''"""A toy model family: one 1x1 convolution."""
import torch
from torch import nn


def build() -> nn.Module:
    torch.manual_seed(0)
    return nn.Conv2d(3, 2, 1).eval()
'''
TOY_CONVERTER = '''"""A toy converter: TorchScript in a module of its own, for tests to edit."""
from models.export.torchscript import export_torchscript as export  # noqa: F401
'''
TOY_FORMAT = "toy_torchscript"


@dataclass
class Toy:
    """A toy family and converter written to files, and sessions that export through them."""

    root: Path
    family_file: Path
    converter_file: Path
    spec: ModelSpec

    def session(self) -> ExportSession:
        model = self.spec.build()
        return ExportSession(spec=self.spec, model=model, weights_key=weights_digest(model),
                             example={"image": np.zeros((1, 3, 8, 8), np.float32)},
                             calibration=[], root=self.root / "cache")


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Toy]:
    # Names unique to this test: a module imported by an earlier test must not be reused.
    suffix = tmp_path.name.replace("-", "_")
    family, converter = f"toy_family_{suffix}", f"toy_converter_{suffix}"
    (tmp_path / f"{family}.py").write_text(TOY_FAMILY)
    (tmp_path / f"{converter}.py").write_text(TOY_CONVERTER)
    monkeypatch.syspath_prepend(str(tmp_path))
    build = importlib.import_module(family).build
    spec = ModelSpec(name="toy", family="toy", build=build,
                     inputs=(InputSpec("image", (1, 3, 8, 8)),), output_names=("logits",),
                     task="semantic", num_classes=2, expected_params=None)
    monkeypatch.setitem(EXPORT_FORMATS, TOY_FORMAT,
                        ExportFormat(TOY_FORMAT, ".pt", f"{converter}:export",
                                     "models.runtimes.torchscript:TorchScriptRunner", "float32",
                                     ("torch",)))
    yield Toy(tmp_path, tmp_path / f"{family}.py", tmp_path / f"{converter}.py", spec)
    for name in (family, converter):
        sys.modules.pop(name, None)


def test_unchanged_recipe_reuses_the_artifact(toy: Toy) -> None:
    first = toy.session()
    made = first.export(TOY_FORMAT)
    assert first.converter_calls == [TOY_FORMAT] and not made.cache_hit
    assert made.meta["recipe"]["converter_source"] == source_digest(
        EXPORT_FORMATS[TOY_FORMAT].converter_module)
    again = toy.session()
    reused = again.export(TOY_FORMAT)
    assert reused.cache_hit and reused.path == made.path
    assert again.converter_calls == []


@pytest.mark.parametrize("edited", ["converter_file", "family_file"])
def test_an_edited_recipe_makes_a_new_artifact(toy: Toy, edited: str) -> None:
    original = toy.session().export(TOY_FORMAT)
    path: Path = getattr(toy, edited)
    path.write_text(path.read_text() + "# edited: another recipe, the same weights\n")
    session = toy.session()
    changed = session.export(TOY_FORMAT)
    assert session.converter_calls == [TOY_FORMAT]
    assert not changed.cache_hit and changed.path != original.path


def test_architecture_library_versions_are_in_the_key(toy: Toy,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from models.export import cache

    fmt = EXPORT_FORMATS[TOY_FORMAT]
    before = toy.session().key(fmt)
    real_version = cache.metadata.version

    def upgraded(name: str) -> str:
        return "99.0.0" if name == "ultralytics" else real_version(name)

    monkeypatch.setattr(cache.metadata, "version", upgraded)
    session = toy.session()
    assert session.recipe(fmt)["architecture_versions"]["ultralytics"] == "99.0.0"
    assert session.key(fmt) != before


def test_whether_edgetpu_compiler_runs_is_in_the_key(toy: Toy,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    fmt = EXPORT_FORMATS["edgetpu"]
    empty, with_compiler = toy.root / "empty_bin", toy.root / "bin"
    empty.mkdir()
    with_compiler.mkdir()
    compiler = with_compiler / "edgetpu_compiler"
    compiler.write_text("#!/bin/sh\necho 'Edge TPU Compiler version 16.0.384591198'\n")
    compiler.chmod(0o755)
    session = toy.session()
    monkeypatch.setenv("PATH", str(empty))
    assert session.recipe(fmt)["tools"] == {"edgetpu_compiler": "absent"}
    without = session.key(fmt)
    monkeypatch.setenv("PATH", str(with_compiler))
    assert session.recipe(fmt)["tools"] == {
        "edgetpu_compiler": "Edge TPU Compiler version 16.0.384591198"}
    assert session.key(fmt) != without
