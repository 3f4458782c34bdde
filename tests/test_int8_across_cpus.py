"""int8 figures on another CPU: the same files under an emulated AVX-only x86-64 (qemu-user).

XNNPACK picks its int8 micro-kernels by instruction set, and they do not all round alike:
SemiVL small's full-int8 file keeps 0.948 of PyTorch's decisions with AVX-512 and 0.876 on an
AVX-only CPU. A gate must not flip between the two, so each figure of such a case must sit
inside its declared known-failure band on both; the mixed-precision recipe, whose float layers
hold the ISA-sensitive ops, must give the same figures on both. Runs where `qemu-x86_64` is
installed (`.ci/run` installs Debian's qemu-user); skips elsewhere, naming the package.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.budgets import budget_for, find_known_failure, load_budgets, violations
from conformance.reference import ReferenceStore
from models.registry import get_spec
from tests.int8_figures import figures as host_figures
from tests.int8_figures import write_case

ROOT = Path(__file__).resolve().parents[1]
QEMU = shutil.which("qemu-x86_64")
AVX_ONLY = "SandyBridge"  # AVX, no AVX2/FMA/AVX-512: the oldest x86-64 XNNPACK kernel family
# Emulation runs ~30x slower than the host: the banded case uses the parity case's 4 images
# (its band was measured on them), the same-figures check one.
IMAGES = 4

pytestmark = [pytest.mark.extended, pytest.mark.skipif(
    QEMU is None, reason="qemu-x86_64 not installed (Debian: apt-get install qemu-user)")]


def _figures(case: Path, paths: list[Path], cpu: str | None,
             images: int = IMAGES) -> dict[str, dict[str, float]]:
    python = str(Path(sys.executable).resolve())
    command = [python, "-m", "tests.int8_figures", str(case), str(images), *map(str, paths)]
    if cpu:
        command = [QEMU, "-cpu", cpu, *command]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return {Path(p).name: f for p, f in figures.items()}


@pytest.fixture(scope="module")
def semivl_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """The parity case (inputs, PyTorch logits) and the suite's own int8-class files."""
    spec = get_spec("semivl_small")
    store = ReferenceStore()
    ref = store.get(spec)
    session = store.session(spec)
    case = write_case(tmp_path_factory.mktemp("cpus") / "semivl_small.npz", spec, ref.inputs,
                      ref.outputs, IMAGES)
    return case, {fmt: session.export(fmt).path for fmt in ("tflite_int8", "tflite_int8_mixed")}


def test_full_int8_differs_between_cpus_but_stays_inside_its_band(semivl_files) -> None:
    case, files = semivl_files
    host = _figures(case, [files["tflite_int8"]], None)[files["tflite_int8"].name]
    avx = _figures(case, [files["tflite_int8"]], AVX_ONLY)[files["tflite_int8"].name]
    known = find_known_failure(load_budgets(), "parity", "semivl_small", "tflite_int8")
    assert known is not None
    for name, figures in (("host", host), (AVX_ONLY, avx)):
        assert not known.moved(figures), f"{name}: {figures} outside {known.band_text()}"
    # The finding itself: when XNNPACK's kernels agree across CPUs, narrow the band.
    assert abs(host["argmax_agreement"] - avx["argmax_agreement"]) > 1e-3 \
        or host["argmax_agreement"] < 0.9, (host, avx)


def test_mixed_recipe_gives_the_same_figures_on_both_cpus(semivl_files) -> None:
    case, files = semivl_files
    path = files["tflite_int8_mixed"]
    host = _figures(case, [path], None, images=1)[path.name]
    avx = _figures(case, [path], AVX_ONLY, images=1)[path.name]
    assert host == pytest.approx(avx, abs=1e-4), (host, avx)
    budget = budget_for(load_budgets(), "parity", "tflite_int8_mixed")
    assert not violations(host, budget), (host, budget)


@pytest.fixture(scope="module")
def fastsam_cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[list[Path], Path]]:
    """Per model (FastSAM-s before and after the remedies, same weights): its parity images,
    one case file each, and its int8 file."""
    store, folder = ReferenceStore(), tmp_path_factory.mktemp("cpus")
    found = {}
    for name in ("fastsam_s", "fastsam_s_official"):
        spec = get_spec(name)
        ref = store.get(spec)
        cases = [write_case(folder / f"{name}_{i}.npz", spec, ref.inputs[i:i + 1],
                            ref.outputs[i:i + 1], 1) for i in range(IMAGES)]
        found[name] = cases, store.session(spec).export("tflite_int8").path
    return found


@pytest.mark.parametrize("name", ["fastsam_s", "fastsam_s_official"])
def test_fastsam_int8_gives_the_same_figures_on_both_cpus(fastsam_cases, name: str) -> None:
    """The int8 file gives its worst scene (what the cosine budget judges) the same figures with
    AVX-512 and on an AVX-only CPU, so its parity verdict is the host's. Emulation costs ~25 s
    per scene, so only the worst scene is emulated."""
    cases, path = fastsam_cases[name]
    host = [host_figures(str(case), [str(path)], 1)[str(path)] for case in cases]
    worst = min(range(len(cases)), key=lambda i: host[i]["cosine"])
    avx = _figures(cases[worst], [path], AVX_ONLY, images=1)[path.name]
    assert avx == pytest.approx(host[worst], abs=1e-4), (host[worst], avx)
    budget = budget_for(load_budgets(), "parity", "tflite_int8", task="prompt_masks")
    # Both pass: the official file's failure is its masks (prompt_masks' known failure), which
    # follow from these same raw outputs.
    assert budget and not violations(host[worst], budget), (host[worst], budget)
