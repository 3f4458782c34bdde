"""Verify on-device bundles: `pytest -m pi5 --bundle PATH` with numpy + a TFLite runtime only.

Parity against the stored PyTorch outputs, and latency against the profile's budgets (which
apply where the host is the profile's device), each judged by the bundle's model task.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.budgets import explain, judge_outputs
from conformance.bundle import find_bundles, read_bundle
from conformance.case_context import open_bundle_case
from conformance.latency import ROUNDS, WARMUP, judge_latency, latency_figures
from conformance.metrics.parity import figures_by_output, parity_figures
from conformance.profiles import load_profiles, markers_for_format
from conformance.runners import skip_unavailable
from models.runtimes import IOSpec, RuntimeUnavailable, load_runner
from models.runtimes.timing import time_calls

SUITE = "parity"


def _bundle_params(config: pytest.Config) -> list:
    root = config.getoption("--bundle")
    if not root:
        return []
    params = []
    for folder in find_bundles(Path(root)):
        fmt = folder.name
        marks = [getattr(pytest.mark, m) for m in markers_for_format(fmt)]
        params.append(pytest.param(folder, marks=marks, id=f"{folder.parent.name}-{fmt}"))
    if not params:
        raise pytest.UsageError(f"--bundle {root}: no bundle (manifest.json) found there")
    return params


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "bundle_dir" in metafunc.fixturenames:
        metafunc.parametrize("bundle_dir", _bundle_params(metafunc.config))


def _bundle_runner(bundle_dir: Path, threads: int | None = None):
    bundle = read_bundle(bundle_dir)
    manifest = bundle.manifest
    io = IOSpec(inputs={k: tuple(v["shape"]) for k, v in manifest["inputs"].items()},
                outputs=tuple(manifest["outputs"]),
                output_shapes={k: tuple(v["shape"]) for k, v in manifest["outputs"].items()},
                output_parts={k: tuple(v) for k, v in manifest.get("output_parts", {}).items()})
    options = {"threads": threads} if threads else {}
    try:
        runner = load_runner(manifest["format"], bundle.artifact, io,
                             meta=manifest.get("export", {}), **options)
    except RuntimeUnavailable as err:
        skip_unavailable(manifest["format"], err)
    return bundle, runner


def test_bundle_parity(bundle_dir: Path, budgets: dict, profile_name: str, request) -> None:
    """The bundled artifact reproduces the stored PyTorch outputs within the parity budget."""
    manifest = read_bundle(bundle_dir).manifest
    context = open_bundle_case(request, budgets, SUITE, manifest, profile_name,
                               info={"bundle": str(bundle_dir)})
    bundle, runner = _bundle_runner(bundle_dir)
    semantic = manifest["task"] == "semantic"
    got = [runner.run(inputs) for inputs in bundle.inputs]
    metrics, reports = parity_figures(bundle.outputs, got, class_axis=1 if semantic else None)
    context.record(metrics=metrics, info=runner.describe())
    failed = judge_outputs(metrics, figures_by_output(reports), context.budget,
                           context.output_budget)
    assert not failed, explain(f"bundle {bundle_dir}", metrics, context.budget,
                               hint=f"weights: {manifest['weights']}", found=failed)


@pytest.mark.timed_alone
def test_bundle_latency(bundle_dir: Path, budgets: dict, profile_name: str, request) -> None:
    """p50/p90 of the bundled artifact at the profile's threads, against its latency budget."""
    manifest = read_bundle(bundle_dir).manifest
    context = open_bundle_case(request, budgets, "latency", manifest, profile_name,
                               info={"bundle": str(bundle_dir)})
    threads = load_profiles()[profile_name].threads
    bundle, runner = _bundle_runner(bundle_dir, threads=threads)
    inputs = bundle.inputs[0]
    times, warmup = time_calls(lambda: runner.run(inputs), WARMUP, ROUNDS)  # fewer if slow
    metrics = latency_figures(times)
    context.record(metrics=metrics,
                   info={**runner.describe(), "rounds": len(times), "warmup": warmup})
    judge_latency(f"bundle {bundle_dir} latency on {profile_name}", metrics, context.budget,
                  profile_name)
