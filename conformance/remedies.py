"""The remedies the suite ships, each declared once as a before/after pair of cases.

A remedy is judged in the same run as the failure it answers: the export as the converter or
the quantiser makes it (`before`) and the export with the remedy applied (`after`) are both
rows of the matrix, so every suite measures both. The report sets their figures side by side
(parity set, fixture photos, held-out synthetic set, latency), and gives every quantised case
that failed a repair row: the remedy declared for it and how that remedy fared in this run,
or what the suite can do instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from models.formats import FORMATS, precision_of, upstreams

QUANTISED = ("int8", "float16")  # precision classes a repair row is owed to
DECISION_SUITES = ("parity", "accuracy", "latency", "prompt_masks", "edgetpu")
FAILED = ("failed", "xfailed", "error")


@dataclass(frozen=True)
class Remedy:
    """One change that turns the `before` case into the `after` case, and why it exists."""

    name: str
    before: tuple[str, str]  # (model, format) as the converter or quantiser makes it
    after: tuple[str, str]  # (model, format) with the remedy applied
    change: str  # what the remedy changes, in words
    fixes: str  # what it is meant to fix: "accuracy" or "speed"

    def __post_init__(self) -> None:
        for model, fmt in (self.before, self.after):
            if fmt not in FORMATS:
                raise ValueError(f"remedy {self.name!r}: unknown format {fmt!r} ({model})")
        if self.fixes not in ("accuracy", "speed"):
            raise ValueError(f"remedy {self.name!r}: fixes must be accuracy or speed")


REMEDIES: tuple[Remedy, ...] = (
    Remedy("export rewrite hardswish_as_mul_relu6",
           ("deeplabv3plus_mnv3_lite_official", "tflite_int8"),
           ("deeplabv3plus_mnv3_lite", "tflite_int8"),
           "hard-swish written (x / 6) * relu6(x + 3): XNNPACK has no int8 HARD_SWISH kernel",
           "speed"),
    Remedy("export rewrite hardswish_as_mul_relu6 (Edge TPU)",
           ("deeplabv3plus_mnv3_lite_official", "edgetpu"),
           ("deeplabv3plus_mnv3_lite", "edgetpu"),
           "the same rewrite: Coral's op table has no HARD_SWISH, so the TPU stops at the stem",
           "speed"),
    Remedy("export rewrites up_skip_repeat_3d + similarity_as_linear",
           ("semivl_small_official", "tflite_fp32"), ("semivl_small", "tflite_fp32"),
           "litert-torch 0.10.0 converts the 5-D repeat to wrong values; rewritten as 4-D",
           "accuracy"),
    Remedy("export rewrites up_skip_repeat_3d + similarity_as_linear (int8)",
           ("semivl_small_official", "tflite_int8"), ("semivl_small", "tflite_int8"),
           "the same rewrites; the constant-text einsum is a linear layer, not a BATCH_MATMUL "
           "that int8 zeroes", "accuracy"),
    Remedy("box rows normalised + output0 in parts + min/max ranges on the Segment head",
           ("fastsam_s_official", "tflite_int8"), ("fastsam_s", "tflite_int8"),
           "box rows divided by the input size in the graph, output0's box, score and "
           "coefficient rows as three int8 outputs (export rewrite output0_in_parts), true "
           "min/max ranges on the head: in one int8 scale with pixel boxes every score is 0",
           "accuracy"),
    Remedy("int8 recipe fixtures/int8_recipes/semivl_small.json",
           ("semivl_small", "tflite_int8"), ("semivl_small", "tflite_int8_mixed"),
           "the layers the repair search found kept in float, the rest int8", "accuracy"),
    Remedy("int16 activations (w8a16)",
           ("semivl_small", "tflite_int8"), ("semivl_small", "tflite_w8a16"),
           "every activation int16, weights int8 (ai-edge-quantizer static_wi8_ai16)",
           "accuracy"),
)


def remedies_for(model: str, fmt: str) -> list[Remedy]:
    """The remedies whose `before` is (model, fmt)."""
    return [r for r in REMEDIES if r.before == (model, fmt)]


def in_a_remedy(model: str, fmt: str) -> bool:
    """Whether (model, fmt) is the before or the after of a declared remedy."""
    return any((model, fmt) in (r.before, r.after) for r in REMEDIES)


def quantised(fmt: str) -> bool:
    """Whether format `fmt` quantises (int8, int16 activations, fp16)."""
    return precision_of(fmt) in QUANTISED


def repair_rows(results: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per quantised case that failed (or failed as known): what answers it.

    Each row names the case and suite, and `remedies`: per declared remedy, the after case's
    outcome in the same suite in this run (or "not run"). `searched` carries the repair
    search's summary where --int8-repair ran, `layers_to_change` the Edge TPU's count, and
    `upstream` the float upstream's outcome where it fails too (then int8 is not the cause).
    """
    results = list(results)
    index = {(r["suite"], r["model"], r["format"], r["profile"]): r for r in results}
    rows = []
    for r in sorted(results, key=lambda r: (r["model"], r["format"], r["suite"], r["profile"])):
        if r["outcome"] not in FAILED or r["suite"] not in DECISION_SUITES \
                or not quantised(r["format"]):
            continue
        row: dict[str, Any] = {"suite": r["suite"], "model": r["model"], "format": r["format"],
                               "profile": r["profile"], "outcome": r["outcome"], "remedies": []}
        for remedy in remedies_for(r["model"], r["format"]):
            after = index.get((r["suite"], *remedy.after, r["profile"]))
            row["remedies"].append({"name": remedy.name, "after": "/".join(remedy.after),
                                    "outcome": after["outcome"] if after else "not run"})
        info = r.get("info") or {}
        if isinstance(info.get("int8_repair"), Mapping):
            row["searched"] = info["int8_repair"].get("summary", "")
        if isinstance(info.get("layers_to_change"), list):
            row["layers_to_change"] = len(info["layers_to_change"])
        chain = upstreams(r["format"])
        source = chain[-1] if chain else None  # the float file the chain starts from
        above = index.get((r["suite"], r["model"], source, r["profile"])) if source else None
        if above and above["outcome"] in FAILED:
            row["upstream"] = f"{source} {above['outcome']}"
        rows.append(row)
    return rows


def repair_advice(row: Mapping[str, Any]) -> str:
    """What the suite offers for a failed quantised case that no declared remedy passes."""
    if row.get("upstream"):
        return (f"its float upstream ({row['upstream']}) fails too: the error comes before "
                "quantisation (converter findings in the README)")
    if row["format"] == "edgetpu":
        return "full integer only: the layers that would have to change are in the case"
    if row.get("searched"):
        return f"repair search: {row['searched']}"
    if row["suite"] == "latency":
        return "no remedy declared: the case's op profile names the ops outside XNNPACK"
    return ("no remedy declared: pytest --int8-repair searches a mixed-precision recipe "
            "(parity suite)")
