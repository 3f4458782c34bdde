"""The HTML report renders offline in a real browser: headless Chromium, network off."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

FAKE_SUITE = '''
import numpy as np
import pytest

from conformance import figures
from conformance.results import attach_figure, record_case

IMAGE = np.random.default_rng(0).integers(0, 255, size=(64, 96, 3), dtype=np.uint8)
REF = np.zeros((64, 96), dtype=np.int64)
REF[16:48, 24:72] = 15


@pytest.mark.parametrize("fmt", ["onnx", "tflite_int8"])
def test_parity(request, fmt):
    got = REF.copy()
    if fmt == "tflite_int8":
        got[16:40, 24:60] = 8
    agreement = float((got == REF).mean())
    record_case(request, suite="parity", model="deeplabv3plus_lite", format=fmt, profile="cpu",
                metrics={"argmax_agreement": agreement}, budgets={"min_argmax_agreement": 0.95})
    attach_figure(request, "image 0", figures.segmentation_overlay(IMAGE, REF, got, 21))
    assert agreement >= 0.95, f"argmax agreement {agreement:.3f} < budget 0.950"


def test_edgetpu(request):
    record_case(request, suite="edgetpu", model="deeplabv3plus_lite", format="edgetpu",
                profile="coral")
    pytest.skip("no Edge TPU attached")


@pytest.mark.parametrize(("fmt", "p50"), [("torch_eager", 40.0), ("onnx", 21.0)])
def test_latency(request, fmt, p50):
    record_case(request, suite="latency", model="deeplabv3plus_lite", format=fmt,
                profile="cpu", metrics={"p50_ms": p50, "p90_ms": p50 * 1.2},
                budgets={"max_p50_ms": 50.0})
'''


def chromium_binary() -> str | None:
    """Chromium or Chrome on this host, if any."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def chromium(binary: str, profile_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with networking disabled (any host lookup fails)."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile_dir}"]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=120,
                          check=False)


def test_html_report_renders_offline_in_chromium(pytester: pytest.Pytester,
                                                 tmp_path: Path) -> None:
    binary = chromium_binary()
    if binary is None:
        pytest.skip("Chromium not found (chromium, chromium-browser, google-chrome on PATH, "
                    "or /usr/bin/chromium); install it to render the HTML report")
    pytest.importorskip("pytest_html", reason="pytest-html not installed")
    pytest.importorskip("PIL", reason="Pillow not installed")
    pytest.importorskip("matplotlib", reason="matplotlib not installed")
    pytester.syspathinsert(ROOT)
    pytester.makepyfile(test_fake=FAKE_SUITE)
    pytester.runpytest("-p", "conformance.report", "-p", "no:cacheprovider",
                       "--html=reports/report.html", "--self-contained-html")
    page = (pytester.path / "reports" / "report.html").as_uri()

    dumped = chromium(binary, tmp_path / "profile-dom", "--dump-dom", page)
    dom = dumped.stdout
    assert dumped.returncode == 0 and "<html" in dom, dumped.stderr[-2000:]
    matrix = re.search(r'<table id="segconform-matrix".*?</table>', dom, re.S)
    assert matrix, "verdict matrix not in the rendered page"
    assert 'class="sc-cell sc-failed"' in matrix.group()
    assert 'title="no Edge TPU attached"' in matrix.group()
    assert re.search(r'<img alt="latency cpu" src="data:image/png;base64,', dom)
    # pytest-html's script builds the results table: an overlay image in it proves it ran.
    results = dom[dom.index('id="results-table"'):]
    assert re.search(r'<img src="data:image/png;base64,', results), "no overlay rendered"
    assert 'class="col-scmodel">deeplabv3plus_lite<' in results

    shot = tmp_path / "report.png"
    shot_run = chromium(binary, tmp_path / "profile-shot", f"--screenshot={shot}",
                        "--window-size=1280,1600", "--hide-scrollbars", page)
    assert shot.is_file() and shot.stat().st_size > 10_000, shot_run.stderr[-2000:]
