"""Latency per model x format with pytest-benchmark, against the active profile's budgets.

Budgets with absolute milliseconds belong to a device and apply only on that host; elsewhere
the case measures, reports and skips with the local figure. The speed ratio to PyTorch eager
comes from eager and the format run alternately in the same test, so load hits both alike;
a quantised TFLite file's speed-up over its own fp32 upstream is measured the same way.
"""

from __future__ import annotations

import pytest

from conformance.case_context import CaseContext
from conformance.latency import ROUNDS, WARMUP, judge_latency, latency_figures
from conformance.matrix import Case, format_cases
from conformance.op_profile import op_profile, profile_text, profiled
from conformance.profiles import cpu_model, int8_isa, load_profiles
from conformance.reference import run_eager
from conformance.runners import calibration_info, case_io, load_case_runner
from models.formats import FLOAT_TFLITE as FP32
from models.formats import REFERENCE_FORMAT, upstreams
from models.runtimes import load_runner
from models.runtimes.timing import interleaved_ratio, timing_plan

SUITE = "latency"
EAGER = REFERENCE_FORMAT


# Under pytest-xdist no other worker runs while a latency case is timed (conformance/parallel.py).
pytestmark = pytest.mark.timed_alone


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _eager(case: Case, references, threads: int):
    import torch

    ref = references.get(case.spec)
    torch.set_num_threads(threads)
    inputs = ref.inputs[0]
    return ref, lambda: run_eager(ref.model, case.spec, inputs)


def _interleaved_speedup(case: Case, references, threads: int, infer,
                         warmup: int = WARMUP, rounds: int = ROUNDS) -> float:
    """Eager p50 / format p50 from alternating runs, so background load hits both alike."""
    _, eager = _eager(case, references, threads)
    return interleaved_ratio(eager, infer, warmup, rounds)


def _fp32_speedup(case: Case, references, ref, threads: int, infer, warmup: int,
                  rounds: int) -> float:
    """TFLite fp32 p50 / format p50, alternating: the fp32 file this one was quantised from."""
    fp32 = references.session(case.spec).export_own(FP32).path
    runner = load_runner(FP32, fp32, case_io(case.spec, ref), threads=threads)
    inputs = ref.inputs[0]
    return interleaved_ratio(lambda: runner.run(inputs), infer, warmup, rounds)


def _cases() -> list:
    return format_cases(formats=(EAGER,), gpu=False, include_eager=True) + format_cases(gpu=False)


@pytest.mark.parametrize("case", _cases())
def test_latency(case: Case, context: CaseContext, references, benchmark) -> None:
    """Median and p90 of single-image inference after warm-up, at the profile's threads."""
    threads = load_profiles()[context.profile].threads
    # Speed-ups depend on the CPU's int8 instructions: every timing names the CPU it ran on.
    context.record(info={"cpu": cpu_model(), "cpu_isa": int8_isa()})
    if case.format == EAGER:
        ref, infer = _eager(case, references, threads)
        context.record(info={"runtime": "torch eager", "threads": threads})
    else:
        ref, artifact, runner = load_case_runner(case, references, threads=threads)
        inputs = ref.inputs[0]

        def infer():
            return runner.run(inputs)

        context.record(info={**runner.describe(), "artifact": artifact.label,
                             **calibration_info(case, ref, artifact)})
    if benchmark.disabled:
        pytest.skip("latency not measured: pytest-benchmark is disabled (--benchmark-disable)")
    benchmark.group = f"{case.model} ({context.profile}, {threads} threads)"
    warmup, rounds = timing_plan(infer, WARMUP, ROUNDS)  # fewer rounds for a slow call
    benchmark.pedantic(infer, rounds=rounds, warmup_rounds=warmup, iterations=1)
    metrics = latency_figures(benchmark.stats.stats.data)
    if case.format != EAGER and _torch_available():
        # Both calls are warm by now (the format just ran its rounds, eager its own case):
        # one warm-up each before alternating.
        metrics["speedup_vs_eager"] = _interleaved_speedup(case, references, threads, infer,
                                                           1, rounds)
    if case.device == "cpu" and FP32 in upstreams(case.format) and not artifact.is_user_file:
        try:  # shown, not judged: a problem with the fp32 file must not fail this case
            metrics["speedup_vs_fp32"] = _fp32_speedup(case, references, ref, threads, infer,
                                                       1, rounds)
        except Exception as err:
            context.record(info={"speedup_vs_fp32": f"not measured: {type(err).__name__}: "
                                                    f"{str(err)[:200]}"})
    context.record(metrics=metrics, info={"rounds": rounds, "warmup": warmup + 1})
    title = f"{case} latency on {context.profile}"
    if case.format != EAGER and profiled(case.format):
        # Where the time goes, op by op: what XNNPACK leaves to the reference kernels.
        summary = op_profile(artifact, threads)
        context.record(info={"op_profile": summary})
        title += f"\n{profile_text(summary)}"
    budget = context.budget
    if "speedup_vs_eager" not in metrics and case.format != EAGER:
        # torch was not importable here (a device host): there is no ratio to judge.
        budget.pop("min_speedup_vs_eager", None)
        context.record(info={"speedup_vs_eager": "not measured: torch is not installed here"})
    judge_latency(title, metrics, budget, context.profile, context.known)
