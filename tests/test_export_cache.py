"""A second run re-exports nothing; a change of weights exports anew."""

from __future__ import annotations

from pathlib import Path

import torch

from conformance.reference import ReferenceStore
from models.export import ExportSession
from models.export.cache import weights_digest
from models.registry import get_spec

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
