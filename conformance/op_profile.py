"""The per-op profile of each TFLite case (models/runtimes/tflite_profile.py), for the latency
suite, its failure messages and the report. The suite's own files keep theirs beside them,
keyed by the file, the thread count, this CPU and the profiler's code; a user's file is
profiled afresh and nothing is written beside it."""

from __future__ import annotations

from conformance.profiles import cpu_model
from models.export.cache import cached_json, content_key, source_digest
from models.formats import FORMATS
from models.runtimes.tflite_profile import profile_tflite


def profiled(fmt: str) -> bool:
    """Whether the format's row asks for the per-op profile."""
    row = FORMATS.get(fmt)
    return bool(row and row.op_profile)


def op_profile(artifact, threads: int) -> dict:
    """The profile summary of a case's TFLite artifact at `threads` threads."""
    if artifact.is_user_file:
        return profile_tflite(artifact.path, threads).summary() | {"cpu": cpu_model()}
    key = content_key({"artifact": artifact.path.name, "threads": threads, "cpu": cpu_model(),
                       "code": source_digest("models.runtimes.tflite_profile")})
    path = artifact.path.with_name(f"{artifact.path.stem}.ops-{key}.json")
    return cached_json(path, lambda: profile_tflite(artifact.path, threads).summary()
                       | {"cpu": cpu_model()})


def profile_text(summary: dict) -> str:
    """One line: delegation, partitions, what XNNPACK left out and what it cost."""
    by_type = summary["by_type"]
    left = ", ".join(f"{op} x{count} ({by_type[op]['ms_not_delegated']:.1f} ms)"
                     for op, count in summary["not_delegated"].items())
    boundary = ", ".join(f"{op} {n}" for op, n in summary["boundary_ops"].items() if n)
    return (f"XNNPACK takes {summary['delegated']} of {summary['ops']} ops in "
            f"{summary['partitions']} partition(s)"
            + (f"; not delegated: {left}" if left else "")
            + (f"; {boundary}" if boundary else "")
            + f"; per-op sum {summary['sum_of_ops_ms']:.1f} ms vs whole model "
              f"{summary['whole_ms']:.1f} ms ({summary['threads']} threads, {summary['cpu']})")

