"""The report plugin: results JSON against its schema, JUnit properties, the HTML page."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conformance import figures, report_html
from conformance.report_schema import RESULTS_SCHEMA, SCHEMA_ID, validate

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

# An inner session that stands in for the conformance suites: one case of each outcome.
FAKE_SUITE = '''
import pathlib

import numpy as np
import pytest

from conformance import figures
from conformance.results import attach_figure, record_case

IMAGE = np.random.default_rng(0).integers(0, 255, size=(64, 96, 3), dtype=np.uint8)
REF = np.zeros((64, 96), dtype=np.int64)
REF[16:48, 24:72] = 15
GOT = REF.copy()
GOT[16:32, 24:48] = 8


def _overlay(request, caption):
    if figures.can_draw():
        attach_figure(request, caption, figures.segmentation_overlay(IMAGE, REF, GOT, 21))


def test_parity_pass(request):
    record_case(request, suite="parity", model="deeplabv3plus_lite", format="onnx",
                profile="cpu", metrics={"argmax_agreement": 0.998, "max_abs_err": 2e-5},
                budgets={"min_argmax_agreement": 0.99},
                info={"runtime": "onnxruntime", "threads": np.int64(2),
                      "weights": pathlib.Path("fixtures/weights.pt")})
    _overlay(request, "image 0")


def test_accuracy_fail(request):
    record_case(request, suite="accuracy", model="deeplabv3plus_lite", format="tflite_int8",
                profile="cpu", metrics={"miou_drop": 4.2, "agreement_miou": 0.81},
                budgets={"max_miou_drop": 2.0}, info={"delegate": "XNNPACK", "threads": 2})
    _overlay(request, "image 0")
    _overlay(request, "image 1")
    assert 4.2 <= 2.0, "mIoU drop 4.20 points > budget 2.00 (worst class: cat)"


def test_edgetpu_skip(request):
    record_case(request, suite="edgetpu", model="deeplabv3plus_lite", format="edgetpu",
                profile="coral")
    pytest.skip("no Edge TPU attached")


@pytest.mark.xfail(reason="known int8 drop on small masks", strict=True)
def test_prompt_masks_xfail(request):
    record_case(request, suite="prompt_masks", model="fastsam_s", format="tflite_int8",
                profile="pi5", metrics={"mask_iou_mean": 0.33, "snr_db": float("inf")},
                budgets={"min_mask_iou_mean": 0.7})
    if figures.can_draw():
        attach_figure(request, "prompt 0", figures.prompt_mask_overlay(
            IMAGE, (10, 10, 60, 50), REF > 0, GOT > 8))
    assert 0.33 >= 0.7, "mean IoU 0.330 < budget 0.700"


@pytest.mark.parametrize(("fmt", "p50"), [("torch_eager", 40.0), ("onnx", 21.0),
                                          ("tflite_int8", 55.0)])
def test_latency(request, fmt, p50):
    record_case(request, suite="latency", model="deeplabv3plus_lite", format=fmt,
                profile="cpu", metrics={"p50_ms": p50, "p90_ms": p50 * 1.2},
                budgets={"max_p50_ms": 50.0})
    assert p50 <= 50.0, f"p50 {p50} ms > budget 50 ms"


@pytest.fixture
def phone(request):
    record_case(request, suite="parity", model="semivl_small", format="torchscript_lite",
                profile="pixel2")
    raise RuntimeError("adb: no device")


def test_parity_on_phone(phone):
    pass


def test_not_a_conformance_case():
    pass
'''

# A case skipped by a marker before its context opened: the report names its matrix cell from
# the same identity the context would have had (the module's SUITE x the real Case).
FAKE_PARITY = '''
from types import SimpleNamespace

import pytest

from conformance.matrix import Case

SUITE = "parity"
SPEC = SimpleNamespace(name="semivl_small", task="semantic")  # what a Case reads of its spec


@pytest.mark.skip(reason="edgetpu_compiler not installed")
@pytest.mark.parametrize("case", [Case(SPEC, "edgetpu")], ids=str)
def test_parity(case):
    pass
'''

EXPECTED_OUTCOMES = {
    "test_fake.py::test_parity_pass": ("passed", ""),
    "test_fake.py::test_accuracy_fail": (
        "failed", "mIoU drop 4.20 points > budget 2.00 (worst class: cat)"),
    "test_fake.py::test_edgetpu_skip": ("skipped", "no Edge TPU attached"),
    "test_fake.py::test_prompt_masks_xfail": (
        "xfailed", "known int8 drop on small masks — mean IoU 0.330 < budget 0.700"),
    "test_fake.py::test_latency[torch_eager-40.0]": ("passed", ""),
    "test_fake.py::test_latency[onnx-21.0]": ("passed", ""),
    "test_fake.py::test_latency[tflite_int8-55.0]": ("failed", "p50 55.0 ms > budget 50 ms"),
    "test_fake.py::test_parity_on_phone": ("error", "error in setup: RuntimeError: adb: no device"),
    "test_parity.py::test_parity[semivl_small-edgetpu]": (
        "skipped", "edgetpu_compiler not installed"),
}


def run_fake_suite(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run the fake suite with the report plugin in an inner session."""
    pytester.syspathinsert(ROOT)
    pytester.makepyfile(test_fake=FAKE_SUITE, test_parity=FAKE_PARITY)
    return pytester.runpytest("-p", "conformance.report", "-p", "no:cacheprovider", *args)


def test_results_json_validates_and_carries_outcomes(pytester: pytest.Pytester) -> None:
    run = run_fake_suite(pytester)
    run.assert_outcomes(passed=4, failed=2, skipped=2, xfailed=1, errors=1)
    document = json.loads((pytester.path / "reports" / "results.json").read_text())

    assert validate(document) == []
    assert document["schema"] == SCHEMA_ID
    by_id = {r["nodeid"]: r for r in document["results"]}
    assert {k: (r["outcome"], r["message"]) for k, r in by_id.items()} == EXPECTED_OUTCOMES
    assert by_id["test_fake.py::test_parity_pass"]["metrics"] == {
        "argmax_agreement": 0.998, "max_abs_err": 2e-5}
    assert by_id["test_fake.py::test_parity_pass"]["info"] == {
        "runtime": "onnxruntime", "threads": 2, "weights": "fixtures/weights.pt"}
    assert by_id["test_fake.py::test_prompt_masks_xfail"]["metrics"]["snr_db"] == "inf"
    skipped = by_id["test_parity.py::test_parity[semivl_small-edgetpu]"]
    assert (skipped["suite"], skipped["model"], skipped["format"], skipped["profile"]) == (
        "parity", "semivl_small", "edgetpu", "cpu")
    summary = document["summary"]
    assert (summary["total"], summary["passed"], summary["failed"], summary["error"]) == (
        9, 3, 2, 1)
    assert summary["exit_status"] == 1
    assert "numpy" in document["environment"]["libraries"]


def test_results_json_matches_jsonschema_where_installed(pytester: pytest.Pytester) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema not installed")
    run_fake_suite(pytester)
    document = json.loads((pytester.path / "reports" / "results.json").read_text())
    jsonschema.Draft202012Validator.check_schema(RESULTS_SCHEMA)
    jsonschema.validate(document, RESULTS_SCHEMA)


def test_schema_validator_reports_what_is_wrong() -> None:
    document = {"schema": "other/1", "created": "x", "environment": {}, "summary": {},
                "results": [{"suite": "parity", "outcome": "exploded", "metrics": {"a": "x"}}]}
    errors = "\n".join(validate(document))
    assert "expected 'segconform.results/1'" in errors
    assert "$.environment: missing 'libraries'" in errors
    assert "$.results[0]: missing 'model'" in errors
    assert "$.results[0].outcome: 'exploded' not one of" in errors
    assert "$.results[0].metrics.a" in errors


def test_report_json_path_option_and_no_pytest_html(pytester: pytest.Pytester) -> None:
    # As on a Raspberry Pi: no pytest-html, no pytest-metadata; the JSON is still written.
    run = run_fake_suite(pytester, "--report-json", "out/custom.json", "-p", "no:html",
                         "-p", "no:metadata")
    run.assert_outcomes(passed=4, failed=2, skipped=2, xfailed=1, errors=1)
    document = json.loads((pytester.path / "out" / "custom.json").read_text())
    assert validate(document) == [] and len(document["results"]) == 9
    assert not (pytester.path / "reports" / "results.json").exists()


@pytest.mark.parametrize("family", ["xunit1", "xunit2"])
def test_junit_properties_carry_the_metrics(pytester: pytest.Pytester, family: str) -> None:
    # pytest writes user_properties as <properties> for both families (checked here);
    # xunit1 is what the README recommends, as xunit2's XSD has no <properties> per case.
    run_fake_suite(pytester, "--junitxml=reports/junit.xml", "-o", f"junit_family={family}")
    document = json.loads((pytester.path / "reports" / "results.json").read_text())
    tree = ET.parse(pytester.path / "reports" / "junit.xml")
    properties = {}
    for case in tree.iter("testcase"):
        name = f"{case.get('classname').replace('.', '/')}.py::{case.get('name')}"
        properties[name] = {p.get("name"): p.get("value") for p in case.iter("property")}

    for result in document["results"]:
        props = properties[result["nodeid"]]
        for key in ("suite", "model", "format", "profile"):
            assert props[key] == result[key]
        for metric, value in result["metrics"].items():
            assert props[f"metric.{metric}"] == str(value)
        for metric, value in result["budgets"].items():
            assert props[f"budget.{metric}"] == str(value)
    assert properties["test_fake.py::test_accuracy_fail"]["metric.miou_drop"] == "4.2"
    assert properties["test_fake.py::test_parity_pass"]["info.threads"] == "2"
    suite_properties = {p.get("name") for p in tree.getroot().iter("property")}
    assert "version.numpy" in suite_properties


def test_html_report_has_matrix_overlays_and_plot(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_html", reason="pytest-html not installed")
    pytest.importorskip("PIL", reason="Pillow not installed")
    run_fake_suite(pytester, "--html=reports/report.html", "--self-contained-html")
    page = (pytester.path / "reports" / "report.html").read_text()

    matrix = re.search(r'<table id="segconform-matrix".*?</table>', page, re.S)
    assert matrix, "verdict matrix missing"
    assert 'class="sc-cell sc-failed"' in matrix.group()
    assert 'title="no Edge TPU attached"' in matrix.group()
    assert "argmax_agreement 0.998 ≥ 0.99" in matrix.group()
    assert "miou_drop 4.2 ✗ ≤ 2" in matrix.group()  # the failing metric decides the cell
    assert page.index('id="sc-verdict"') < page.index('id="segconform-matrix"')
    assert re.search(r'<svg class="sc-svg"[^>]*aria-label="cpu: latency"', page)
    assert 'data-budget="max_p50_ms"' in page
    # Overlays are compressed thumbnails in the case sections, not PNG extras in the table.
    assert page.count("data:image/webp;base64,") == 4
    assert "data:image/png;base64," not in page
    assert "XNNPACK" in page and "Runtimes and weights" in page
    assert 'id="case-deeplabv3plus_lite-tflite_int8-cpu"' in page
    # Self-contained: nothing for a browser to fetch.
    assert not re.search(r'src="(https?:)?//|<link |url\((https?:)?//', page)


def test_html_report_needs_no_matplotlib(pytester: pytest.Pytester,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pytest_html", reason="pytest-html not installed")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    run_fake_suite(pytester, "--html=reports/report.html", "--self-contained-html")
    page = (pytester.path / "reports" / "report.html").read_text()
    assert 'data-budget="max_p50_ms"' in page  # the latency chart is SVG written here
    assert 'id="segconform-matrix"' in page


def test_plugin_import_pulls_in_no_heavy_library() -> None:
    # The plugin has to load on a Raspberry Pi that has numpy, pytest and a TFLite runtime.
    code = ("import sys, conformance.report, conformance.figures; "
            "print(sorted(m for m in ('torch', 'tensorflow', 'onnxruntime', 'ultralytics', "
            "'matplotlib', 'PIL', 'pytest_html') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_segmentation_overlay_is_a_small_four_panel_png() -> None:
    pytest.importorskip("PIL", reason="Pillow not installed")
    from PIL import Image

    image = np.zeros((512, 384, 3), dtype=np.uint8)
    ref = np.zeros((512, 384), dtype=np.int64)
    got = ref.copy()
    got[:256] = 1
    png = figures.segmentation_overlay(image, ref, got, num_classes=21)
    picture = Image.open(io.BytesIO(png))
    assert picture.height <= 256 + 20
    assert picture.width <= 4 * 192 + 3 * 8
    assert base64.b64encode(png)[:8] == base64.b64encode(b"\x89PNG\r\n\x1a\n")[:8]


def test_voc_palette_matches_the_dataset_colours() -> None:
    palette = figures.voc_palette()
    assert palette[0].tolist() == [0, 0, 0]
    assert palette[1].tolist() == [128, 0, 0]
    assert palette[15].tolist() == [192, 128, 128]  # person
    assert palette[255].tolist() == [224, 224, 192]  # ignore


def test_prompt_overlay_accepts_points_boxes_and_missing_masks() -> None:
    pytest.importorskip("PIL", reason="Pillow not installed")
    image = np.full((100, 200, 3), 0.5, dtype=np.float32)
    mask = np.zeros((50, 100), dtype=bool)
    mask[10:20, 10:40] = True
    for prompt in [(20, 30), (5, 5, 80, 60), [[1, 2], [3, 4]]]:
        assert figures.prompt_mask_overlay(image, prompt, mask, None)[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="prompt must be"):
        figures.prompt_mask_overlay(image, (1, 2, 3), mask, mask)


def _latency(fmt: str, p50: float, **extra: Any) -> dict[str, Any]:
    metrics = {"p50_ms": p50, "p90_ms": p50 * 1.5, **extra.pop("metrics", {})}
    return {"suite": "latency", "model": "m", "format": fmt, "profile": "pi5",
            "outcome": "passed", "metrics": metrics, "info": {}, "message": "",
            "nodeid": f"t::{fmt}", "budgets": extra.pop("budgets", {})}


def test_latency_chart_draws_each_recorded_budget_at_its_value() -> None:
    # Suites record budgets under their keys (max_p50_ms); the chart reads the same keys.
    rows = [_latency("torch_eager", 100.0),
            _latency("tflite_int8", 600.0, budgets={"max_p50_ms": 512.0, "max_p90_ms": 800.0})]
    svg = report_html.latency_svg(rows, "pi5")
    lines = dict(re.findall(r'data-budget="(\w+)"[^>]*y1="([\d.]+)"', svg))
    assert set(lines) == {"max_p50_ms", "max_p90_ms"}
    bar_top = float(re.findall(r'class="sc-bar"[^>]*y="([\d.]+)"', svg)[1])
    # 512 ms is drawn below the 600 ms bar's top (larger y), 800 ms above it.
    assert float(lines["max_p90_ms"]) < bar_top < float(lines["max_p50_ms"])


def test_speedup_is_the_recorded_interleaved_ratio_not_a_ratio_of_p50s() -> None:
    # Eager p50 100 over ONNX p50 50 would say ×2; the in-test interleaved ratio says 1.8.
    rows = [_latency("torch_eager", 100.0),
            _latency("onnx", 50.0, metrics={"speedup_vs_eager": 1.8},
                     budgets={"min_speedup_vs_eager": 0.33})]
    charts = report_html.latency_html(rows)
    assert "×1.8<" in charts and "×2<" not in charts
    assert 'data-budget="min_speedup_vs_eager"' in charts


def test_matrix_cell_shows_the_deciding_metric_and_the_known_band() -> None:
    base = {"suite": "parity", "model": "m", "format": "tflite_int8", "profile": "cpu",
            "nodeid": "t", "message": ""}
    failed = {**base, "outcome": "failed", "metrics": {"argmax_agreement": 0.999,
                                                       "snr_db": 12.0},
              "budgets": {"min_argmax_agreement": 0.99, "min_snr_db": 20.0}, "info": {}}
    assert report_html.deciding_text(failed) == "snr_db 12 ✗ ≥ 20"
    band = {"reason": "converter bug", "band": {"argmax_agreement": [0.86, 0.92]}}
    xfailed = {**failed, "outcome": "xfailed", "metrics": {"argmax_agreement": 0.9},
               "info": {"known_failure": band}}
    assert report_html.deciding_text(xfailed) == "argmax_agreement 0.9 in [0.86, 0.92]"
    moved = {**xfailed, "outcome": "failed", "metrics": {"argmax_agreement": 0.7}}
    assert report_html.deciding_text(moved) == "argmax_agreement 0.7 ∉ [0.86, 0.92]"
    section = report_html.case_html(("m", "tflite_int8", "cpu"), [xfailed], {}, {})
    assert "Known failure</b>, band argmax_agreement in [0.86, 0.92]: converter bug" in section


def test_runtime_table_has_fixed_columns_whatever_the_info() -> None:
    result = {"suite": "accuracy", "model": "m", "format": "onnx", "profile": "cpu",
              "outcome": "passed", "metrics": {}, "budgets": {}, "message": "", "nodeid": "t",
              "info": {"runtime": "onnxruntime", "version": "1.32.0", "threads": 2,
                       "weights_sha256": "ab" * 32, "per_class_iou": [0.5] * 91,
                       "dataset": "synthetic VOC v2 (8 held-out images, seed 7)"}}
    table = report_html.runtimes_html([result])
    head = re.findall(r"<th>(.*?)</th>", table)
    assert head == ["case", "artifact", "converter", "runtime", "delegate · threads",
                    "weights sha256", "cache"]
    assert "onnxruntime · 1.32.0" in table and ">abababababab<" in table
    assert "0.5" not in table and "synthetic" not in table  # long values: the case section


def test_per_class_iou_is_a_bar_chart_of_the_classes_present() -> None:
    svg = report_html.per_class_iou_svg([0.9, "nan", 0.25, 1.0], worst=2)
    assert svg.startswith('<svg class="sc-svg sc-iou"')
    assert svg.count("<rect") == 3  # class 1 was never present
    assert "lowest: class 2, 0.250" in svg
    assert 'stroke="#d0342c"' in svg  # the worst class is outlined


def test_regression_view_colours_by_the_metric_direction(tmp_path: Path) -> None:
    before = {"results": [{"suite": "parity", "model": "m", "format": "onnx", "profile": "cpu",
                           "metrics": {"argmax_agreement": 0.99, "snr_db": 40.0,
                                       "max_abs_err": 0.01, "cosine": 0.999}}]}
    path = tmp_path / "before.json"
    path.write_text(json.dumps(before))
    now = {"suite": "parity", "model": "m", "format": "onnx", "profile": "cpu",
           "outcome": "failed", "budgets": {}, "info": {}, "message": "", "nodeid": "t",
           "metrics": {"argmax_agreement": 0.95, "snr_db": 45.0, "max_abs_err": 0.02,
                       "cosine": 0.999}}
    view = report_html.regression_html([now], str(path))
    chips = {name: kind for kind, name in re.findall(
        r'class="sc-chip sc-(regressed|worse|better)"[^>]*>(\w+) ', view)}
    # Lower agreement is worse (beyond its allowance); higher SNR is better; a higher error
    # is worse, within [baseline]'s allowance (inf: left to the budgets).
    assert chips == {"argmax_agreement": "regressed", "snr_db": "better",
                     "max_abs_err": "worse"}
    assert "argmax_agreement 0.99 → 0.95 ↓" in view and "1 unchanged" in view
    assert "1 case(s) regressed" in view


def test_metrics_table_puts_each_budget_beside_its_metric() -> None:
    from conformance.results import CaseResult

    result = CaseResult(suite="parity", model="m", format="onnx", profile="cpu",
                        metrics={"snr_db": 70.0, "cosine": 0.99},
                        budgets={"min_snr_db": 60.0, "max_max_rel_err": 1e-4})
    page = report_html.metrics_table_html(result.to_json())
    assert "<tr><td>snr_db</td><td>70</td><td>≥ 60</td><td></td><td>dB</td><td>✓</td></tr>" in page
    assert "<tr><td>cosine</td><td>0.99</td><td></td><td></td><td></td><td></td></tr>" in page
    # A budget whose metric was not measured shows once, under the metric's name.
    assert "<td>max_rel_err</td><td>—</td><td>≤ 0.0001</td>" in page
    assert "min_snr_db" not in page
    assert report_html.key_metric_text(result.to_json()) == "snr_db 70 ≥ 60"


def test_thumbnail_is_a_fraction_of_the_overlay_png() -> None:
    pytest.importorskip("PIL", reason="Pillow not installed")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, size=(256, 256, 3), dtype=np.uint8)
    ref = np.zeros((256, 256), dtype=np.int64)
    ref[64:192, 64:192] = 15
    png = figures.segmentation_overlay(image, ref, np.roll(ref, 8, axis=1), 21)
    mime, data = figures.thumbnail(png)
    assert mime in ("image/webp", "image/jpeg")
    assert len(data) < len(png) / 3, (len(data), len(png))


def test_per_output_figures_sit_beside_the_budget_they_answer_to() -> None:
    table = report_html.per_output_html(
        {"output0": {"cosine": 0.973, "snr_db": 14.0}, "proto": {"cosine": 0.993}},
        {"min_cosine": 0.98})
    assert re.findall(r"<th>(.*?)</th>", table) == ["per output (worst image)", "budget",
                                                    "output0", "proto"]
    assert '<tr><td>cosine</td><td>≥ 0.98</td><td class="sc-bad">0.973</td><td>0.993</td>' \
        in table
    assert "<tr><td>snr_db</td><td></td><td>14</td><td>—</td></tr>" in table


def test_edgetpu_case_shows_the_layers_that_would_have_to_change() -> None:
    layers = [{"layer": "low_level.0.2", "ops": [f"HARD_SWISH op {i}" for i in range(6)],
               "rule": "supported_op", "change": "export rewrite hardswish_as_mul_relu6"}]
    table = report_html._layers_to_change_html(layers)
    assert "Layers that would have to change for the Edge TPU" in table
    assert ("<tr><td>low_level.0.2</td><td>HARD_SWISH op 0, HARD_SWISH op 1, HARD_SWISH op 2, "
            "HARD_SWISH op 3 (+2)</td><td>supported_op</td>"
            "<td>export rewrite hardswish_as_mul_relu6</td></tr>") in table
    assert report_html._layers_to_change_html([]) == ""
    assert "layers_to_change" in report_html._DRAWN_INFO  # not also a raw key/value line


def test_int8_case_shows_its_ranked_sensitivity_table_and_plot() -> None:
    from conformance.metrics.quant_sensitivity import LayerSensitivity, ranked

    def row(k: int, own: float, carried: float) -> LayerSensitivity:
        return LayerSensitivity(k, "CONV_2D", f"pkg.M/torch.nn.Conv2d_conv{k};{k}", "int8",
                                own, 200.0, 45.0, carried, 1.5)

    rows = ranked([row(0, 38.0, 37.5), row(1, 9.2, 9.0), row(2, 21.0, 8.8)])
    html = report_html._sensitivity_html({"int8_sensitivity": {
        "layers": 3, "images": 2, "rows": [r.to_json() for r in rows]}})
    assert "3 most sensitive of 3 quantised ops" in html and "2 image(s)" in html
    # Ranked by their own error: conv1 (9.2 dB), conv2, conv0; each with what it carries.
    assert re.findall(r"<td>(\d)</td><td class=\"sc-clip\" title=\"[^\"]*\">(\w+)</td>",
                      html) == [("1", "conv1"), ("2", "conv2"), ("3", "conv0")]
    assert "<td>9.2</td><td>200</td><td>45</td><td>9</td><td>1.5</td>" in html
    svg = re.search(r"<svg class=\"sc-svg sc-sensitivity\".*?</svg>", html)
    assert svg and svg.group(0).count("<rect") == 3 and svg.group(0).count("<title>carried ") == 3
    assert report_html._sensitivity_html({}) == ""


def test_the_host_names_its_cpu_and_the_int8_instructions_it_has() -> None:
    from conformance.profiles import int8_isa
    from conformance.report import host_environment

    x86 = "model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma avx512f avx512_vnni ht\n"
    arm = "processor\t: 0\nFeatures\t: fp asimd asimddp i8mm crc32\n"
    assert int8_isa(x86) == "avx avx2 fma avx512f avx512_vnni"
    assert int8_isa(arm) == "asimddp i8mm" and int8_isa("") == ""
    environment = host_environment()
    assert isinstance(environment["cpu"], str) and environment["cpu"]
    assert isinstance(environment["cpu_isa"], str)
