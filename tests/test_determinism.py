"""Same inputs, same numbers: references, artifacts and whole runs repeat (latency aside)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.runtimes import IOSpec, load_runner
from tests.suite_run import run_suite

ROOT = Path(__file__).resolve().parents[1]
LITE = "deeplabv3plus_mnv3_lite"
LATENCY_METRICS = ("p50_ms", "p90_ms", "mean_ms", "speedup_vs_eager", "p90_over_p50")


@pytest.fixture(scope="module")
def lite():
    """The lite spec and one reference store on the default cache."""
    from conformance.reference import ReferenceStore
    from models.registry import get_spec

    spec = get_spec(LITE)
    store = ReferenceStore()
    return spec, store, store.get(spec)


def assert_same_arrays(first: list[dict], second: list[dict], what: str) -> None:
    assert len(first) == len(second), what
    for k, (a, b) in enumerate(zip(first, second, strict=True)):
        assert a.keys() == b.keys(), what
        for name in a:
            assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), \
                f"{what} {k} {name!r}: max diff {np.max(np.abs(a[name] - b[name]))}"


def test_two_reference_builds_are_identical(lite) -> None:
    from conformance.reference import ReferenceStore

    spec, _, first = lite
    second = ReferenceStore().get(spec)
    assert second is not first and second.model is not first.model
    assert first.weights_key == second.weights_key
    assert np.array_equal(first.images, second.images)
    assert np.array_equal(first.labels, second.labels)
    assert_same_arrays(first.inputs, second.inputs, "input")
    assert_same_arrays(first.outputs, second.outputs, "reference output")
    assert_same_arrays(first.calibration, second.calibration, "calibration input")


@pytest.mark.slow  # fitting takes minutes on two shared cores; run with --runslow
def test_fixture_weights_rebuilt_from_scratch_match_the_cached_ones(lite, tmp_path) -> None:
    """Fitting the fixture weights again (empty cache) gives the same bytes as before."""
    from conformance.reference import ReferenceStore

    spec, _, cached = lite
    fresh = ReferenceStore(cache_dir=tmp_path).get(spec)
    assert "cached" not in fresh.weights  # really fitted now, not read back
    assert fresh.weights_key == cached.weights_key
    assert_same_arrays(cached.outputs, fresh.outputs, "reference output")


@pytest.mark.parametrize("fmt", ["torchscript", "onnx", "tflite_fp32"])
def test_two_runs_of_an_artifact_are_identical(lite, fmt: str) -> None:
    from conformance.metrics.parity import compare_output

    spec, store, ref = lite
    path = store.session(spec).export(fmt).path
    io = IOSpec(inputs={i.name: i.shape for i in spec.inputs}, outputs=spec.output_names,
                output_shapes=ref.output_shapes)
    runs = []
    for _ in range(2):
        runner = load_runner(fmt, path, io, threads=2)  # a fresh session each time
        runs.append([runner.run(x) for x in ref.inputs[:2]])
    assert_same_arrays(runs[0], runs[1], f"{fmt} output")
    figures = [[compare_output("logits", e["logits"], g["logits"], class_axis=1).as_metrics()
                for e, g in zip(ref.outputs[:2], run, strict=True)] for run in runs]
    assert figures[0] == figures[1]


SLICE = ("conformance/test_parity.py", "conformance/test_latency.py",
         "-k", f"{LITE} and onnx and not cuda")


def _by_case(results: dict) -> dict[tuple[str, str], dict[str, float]]:
    return {(row["suite"], row["format"]): row["metrics"] for row in results["results"]}


def test_two_suite_runs_differ_only_in_latency(tmp_path: Path, inline_suite) -> None:
    """One run in a fresh interpreter, one in this one: two processes, the same figures."""
    fresh, here = tmp_path / "fresh", tmp_path / "here"
    fresh.mkdir()
    here.mkdir()
    _, out, fresh_results = run_suite(fresh, *SLICE)
    assert fresh_results, out[-3000:]
    _, out, here_results = inline_suite(here, *SLICE)
    assert here_results, out[-3000:]
    first, second = _by_case(fresh_results), _by_case(here_results)
    assert set(first) == set(second) == {("parity", "onnx"), ("latency", "onnx")}
    assert set(LATENCY_METRICS[:3]) <= set(first["latency", "onnx"])
    for case, metrics in first.items():
        steady = {k: v for k, v in metrics.items() if k not in LATENCY_METRICS}
        again = {k: v for k, v in second[case].items() if k not in LATENCY_METRICS}
        assert steady == again, f"{case}: {steady} vs {again}"
    assert first["parity", "onnx"], "parity recorded no figures"
