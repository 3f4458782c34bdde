"""Bad options are refused in pytest_configure with one line, before any test runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.registry import all_specs
from tests.suite_run import SUITE_PLUGINS

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("bare_inner_sessions")

# Register the models at import: pytester drops the modules imported after its snapshot (taken
# before a test's body runs), and a family module imported again would register twice.
all_specs()

# If any test ran, it leaves this file behind.
INNER = '''
from pathlib import Path


def test_would_run():
    Path("a_test_ran").write_text("yes")
'''


def refused(pytester: pytest.Pytester, *args: str) -> str:
    """Run an inner session with the suite's plugins; return its single error line."""
    pytester.syspathinsert(ROOT)
    pytester.makepyfile(test_inner=INNER)
    run = pytester.runpytest(*SUITE_PLUGINS, *args)
    errors = [line for line in run.errlines if line.startswith("ERROR:")]
    output = "\n".join(run.outlines + run.errlines)
    assert run.ret == pytest.ExitCode.USAGE_ERROR, output
    assert len(errors) == 1 and "Traceback" not in output, output
    assert not (pytester.path / "a_test_ran").exists()
    return errors[0]


def test_unknown_model_in_checkpoint(pytester: pytest.Pytester, tmp_path: Path) -> None:
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"")
    line = refused(pytester, f"--checkpoint=deeplab_lite={weights}")
    for part in ("--checkpoint", f"'deeplab_lite={weights}'", "unknown model 'deeplab_lite'",
                 "known: ", "deeplabv3plus_mnv3_lite"):
        assert part in line, line


def test_missing_checkpoint_file_is_refused_at_start(pytester: pytest.Pytester,
                                                     tmp_path: Path) -> None:
    line = refused(pytester, f"--checkpoint=deeplabv3plus_mnv3_lite={tmp_path / 'no.pt'}")
    assert "does not exist" in line and "--checkpoint" in line, line


def test_int8_recipe_for_another_model_is_refused_at_start(pytester: pytest.Pytester,
                                                           tmp_path: Path) -> None:
    from models.export.int8_recipe import Int8Recipe

    recipe = Int8Recipe("deeplabv3plus_mnv3_lite", float=("x",)).save(tmp_path / "recipe.json")
    line = refused(pytester, f"--int8-recipe=semivl_small={recipe}")
    for part in ("--int8-recipe semivl_small=", "recipe.json",
                 "a recipe for model 'deeplabv3plus_mnv3_lite', not 'semivl_small'"):
        assert part in line, line


def test_int8_recipe_for_a_model_without_a_mixed_row_is_refused_at_start(
        pytester: pytest.Pytester, tmp_path: Path) -> None:
    from models.export.int8_recipe import Int8Recipe

    # Nothing would convert with it: accepted, it would judge nothing and say nothing.
    recipe = Int8Recipe("deeplabv3plus_mnv3_lite", float=("x",)).save(tmp_path / "recipe.json")
    line = refused(pytester, f"--int8-recipe=deeplabv3plus_mnv3_lite={recipe}")
    assert line == (f"ERROR: --int8-recipe deeplabv3plus_mnv3_lite={recipe}: "
                    "deeplabv3plus_mnv3_lite has no tflite_int8_mixed row to judge the recipe "
                    "(models with one: semivl_small); add tflite_int8_mixed to its formats in "
                    "models/ to replay a recipe for it"), line


def test_int8_recipe_under_a_profile_without_the_mixed_format_is_refused(
        pytester: pytest.Pytester, tmp_path: Path) -> None:
    from models.export.int8_recipe import Int8Recipe

    recipe = Int8Recipe("semivl_small", float=("x",)).save(tmp_path / "recipe.json")
    line = refused(pytester, f"--int8-recipe=semivl_small={recipe}", "--profile", "gpu")
    assert line.startswith(f"ERROR: --int8-recipe semivl_small={recipe}: profile gpu runs no "
                           "tflite_int8_mixed (its formats: "), line
    assert line.endswith("judge the recipe with -m cpu or -m pi5"), line


def test_undeclared_metric_in_budget(pytester: pytest.Pytester) -> None:
    line = refused(pytester, "--budget", "parity.torchscript.min_snr_dbb=10")
    for part in ("--budget", "'parity.torchscript.min_snr_dbb=10'", "unknown metric 'snr_dbb'",
                 "known: ", "snr_db", "argmax_agreement"):
        assert part in line, line


@pytest.mark.parametrize(("value", "message"), [
    ("paritty.onnx.min_snr_db=10", "unknown suite 'paritty'; known: parity"),
    ("parity.onnxx.min_snr_db=10",
     "unknown format or precision class 'onnxx'; known formats: torch_eager"),
    ("latency.onnx.pi6.max_p50_ms=10", "unknown profile or task 'pi6'; known: cpu"),
    ("latency.onnx.min_p50_ms=10", "p50_ms is lower-is-better: its budget is max_p50_ms"),
    ("parity.onnx.snr=3", "budget keys start with min_ or max_"),
])
def test_bad_budget_override(pytester: pytest.Pytester, value: str, message: str) -> None:
    line = refused(pytester, "--budget", value)
    assert f"--budget {value!r}: {message}" in line, line


@pytest.mark.parametrize("option", ["--report-json", "--junitxml", "--html"])
def test_report_path_under_a_regular_file(pytester: pytest.Pytester, option: str) -> None:
    (pytester.path / "notes.txt").write_text("a file, not a folder")
    line = refused(pytester, f"{option}=notes.txt/out/report")
    assert f"{option} notes.txt/out/report: cannot write there" in line, line
    assert f"{pytester.path / 'notes.txt'} is a file, not a folder" in line, line


def test_report_path_that_is_a_folder(pytester: pytest.Pytester) -> None:
    (pytester.path / "out.json").mkdir()
    line = refused(pytester, "--report-json=out.json")
    assert f"{pytester.path / 'out.json'} is a folder" in line, line


def test_baseline_that_is_not_a_results_file(pytester: pytest.Pytester) -> None:
    (pytester.path / "base.json").write_text("[1, 2]")
    line = refused(pytester, "--baseline=base.json")
    assert "--baseline base.json: not a segconform results.json" in line, line
    line = refused(pytester, "--baseline=nowhere.json")
    assert "--baseline nowhere.json: file not found" in line, line


def test_good_options_run_the_tests(pytester: pytest.Pytester) -> None:
    """The checks refuse only what is wrong: valid overrides and paths run."""
    pytester.syspathinsert(ROOT)
    pytester.makepyfile(test_inner=INNER)
    run = pytester.runpytest("-p", "conformance.report", "-p", "conformance.options",
                             "-p", "no:cacheprovider", "--budget",
                             "parity.tflite_int8.min_argmax_agreement=0.95", "--budget",
                             "latency.tflite_int8.pi5.max_p50_ms=400",
                             "--report-json=new/dir/r.json", "--junitxml=new/j.xml")
    run.assert_outcomes(passed=1)


def test_calibration_folder_without_images_is_refused_at_start(pytester: pytest.Pytester,
                                                               tmp_path: Path) -> None:
    line = refused(pytester, f"--calibration={tmp_path}")
    assert line == (f"ERROR: --calibration {tmp_path}: no image files "
                    "(.jpg, .jpeg, .png, .bmp, .webp)"), line
