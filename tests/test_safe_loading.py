"""Checkpoints load weights-only; a file that needs pickle loads only with --trust-checkpoint."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
from torch import nn

from models.checkpoint import (
    CheckpointError,
    UntrustedCheckpointError,
    checkpoint_label,
    load_state_dict_file,
)
from models.registry import all_specs, get_spec
from tests.pickle_payload import WritesMarker

SPECS = ("deeplabv3plus_mnv3_lite", "semivl_small")  # both through models.checkpoint


def _refusal(call, path: Path) -> str:
    """Run `call`, require the one-line 'needs pickle' refusal naming `path` and the flag."""
    with pytest.raises(UntrustedCheckpointError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: needs pickle to load"), message
    assert f"--trust-checkpoint {path} if you trust it" in message, message
    return message


def _same_weights(a: nn.Module, b: nn.Module) -> None:
    for key, value in a.state_dict().items():
        assert torch.equal(b.state_dict()[key], value), key


@pytest.fixture(scope="module")
def sources() -> dict[str, nn.Module]:
    """A model per spec whose weights differ from a fresh build (seeded differently)."""
    models = {}
    for name in SPECS:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(123)
            model = get_spec(name).build()
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(torch.randn_like(p) * 0.01)
        models[name] = model
    return models


@pytest.mark.parametrize("name", SPECS)
def test_pickled_checkpoint_runs_nothing_without_trust(name: str, sources, tmp_path: Path) -> None:
    spec, source = get_spec(name), sources[name]
    marker = tmp_path / "payload_ran"
    path = tmp_path / "user.pt"
    torch.save({"state_dict": source.state_dict(), "hook": WritesMarker(marker)}, path)

    message = _refusal(lambda: spec.load_checkpoint(spec.build(), path), path)
    assert "tests.pickle_payload.write_marker" in message  # names what it refused
    assert not marker.exists(), "the payload ran although the file was not trusted"

    loaded = spec.load_checkpoint(spec.build(), path, trusted=frozenset({path.resolve()}))
    assert marker.exists()  # trusted: unpickled for real, as the user asked
    _same_weights(source, loaded)
    assert checkpoint_label(path, loaded) == (
        f"user checkpoint {path} (unpickled: trusted with --trust-checkpoint)")


@pytest.mark.parametrize("name", SPECS)
def test_plain_state_dict_loads_without_trust(name: str, sources, tmp_path: Path) -> None:
    spec, source = get_spec(name), sources[name]
    path = tmp_path / "plain.pt"
    torch.save({"model": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    loaded = spec.load_checkpoint(spec.build(), path)
    _same_weights(source, loaded)
    assert checkpoint_label(path, loaded) == f"user checkpoint {path}"


def test_trust_is_per_file_and_compares_resolved_paths(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    source = nn.Linear(3, 2)
    marker = tmp_path / "payload_ran"
    (tmp_path / "sub").mkdir()
    path = tmp_path / "user.pt"
    torch.save({"state_dict": source.state_dict(), "hook": WritesMarker(marker)}, path)
    other = tmp_path / "other.pt"
    torch.save(source.state_dict(), other)

    _refusal(lambda: load_state_dict_file(nn.Linear(3, 2), path, trusted={other}), path)
    assert not marker.exists()
    monkeypatch.chdir(tmp_path / "sub")  # the same file, spelled relative and through '..'
    loaded = load_state_dict_file(nn.Linear(3, 2), path, trusted={Path("../user.pt")})
    assert marker.exists()
    _same_weights(source, loaded)
    # Trust is permission, not a mode: a trusted plain file still loads weights-only.
    plain = load_state_dict_file(nn.Linear(3, 2), other, trusted={other})
    assert "unpickled" not in checkpoint_label(other, plain)


def test_junk_is_not_mistaken_for_a_pickle(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError) as caught:
        load_state_dict_file(nn.Linear(3, 2), junk)
    message = str(caught.value)
    assert not isinstance(caught.value, UntrustedCheckpointError)
    assert message.startswith(f"{junk}: not a readable PyTorch checkpoint"), message
    assert "--trust-checkpoint" not in message  # never advise trusting a broken file


def test_torchscript_archive_loads_without_trust(tmp_path: Path) -> None:
    # OpenAI's CLIP files are TorchScript: torch.jit.load builds no Python objects from pickle.
    source = nn.Linear(3, 2)
    path = tmp_path / "traced.pt"
    torch.jit.trace(source, torch.zeros(1, 3)).save(str(path))
    with pytest.warns(UserWarning, match="TorchScript archive"):
        loaded = load_state_dict_file(nn.Linear(3, 2), path)
    _same_weights(source, loaded)
    assert "unpickled" not in checkpoint_label(path, loaded)


def test_every_checkpoint_loader_takes_the_trusted_files() -> None:
    loaders = {s.name: s.load_checkpoint for s in all_specs() if s.load_checkpoint}
    assert loaders
    for name, loader in loaders.items():
        assert "trusted" in inspect.signature(loader).parameters, name


def test_trust_option_names_a_missing_file() -> None:
    from conformance.options import parse_trusted

    with pytest.raises(pytest.UsageError, match=r"--trust-checkpoint 'nope\.pt': no such file"):
        parse_trusted(["nope.pt"])


# --- FastSAM: ultralytics checkpoints pickle whole modules --------------------------------


@pytest.fixture(scope="module")
def fastsam_source():
    from models import fastsam

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        module = fastsam.build_fastsam_s(64)
        with torch.no_grad():
            for p in module.parameters():
                p.add_(torch.randn_like(p) * 0.01)
    return module


def test_fastsam_pickled_checkpoint_needs_trust(fastsam_source, tmp_path: Path) -> None:
    import copy

    from models import fastsam

    marker = tmp_path / "payload_ran"
    path = tmp_path / "FastSAM-s.pt"
    # ultralytics' layout (a pickled SegmentationModel) plus a payload beside it.
    torch.save({"model": copy.deepcopy(fastsam_source.model), "ema": None,
                "hook": WritesMarker(marker)}, path)
    message = _refusal(lambda: fastsam.load_fastsam_checkpoint(path, size=64), path)
    assert "ultralytics.nn.tasks.SegmentationModel" in message
    assert not marker.exists(), "the payload ran although the file was not trusted"

    loaded = fastsam.load_fastsam_checkpoint(path, size=64, trusted={path})
    assert marker.exists()
    _same_weights(fastsam_source, loaded)
    assert "unpickled: trusted" in checkpoint_label(path, loaded)


def test_fastsam_plain_state_dict_loads_without_trust(fastsam_source, tmp_path: Path) -> None:
    from models import fastsam

    path = tmp_path / "state.pt"
    torch.save(fastsam_source.model.state_dict(), path)
    spec_loader = get_spec("fastsam_s").load_checkpoint
    loaded = spec_loader(fastsam.build_fastsam_s(64), path)
    _same_weights(fastsam_source, loaded)
    assert checkpoint_label(path, loaded) == f"user checkpoint {path}"
