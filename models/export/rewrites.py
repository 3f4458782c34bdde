"""Named export rewrites: workarounds for converter bugs, applied only while converting.

A model's builder follows its reference implementation; where a converter mishandles one of
its operations, the step is a method of its own and a rewrite here swaps that method, on the
module instances only and only during conversion, for an equivalent form the converter gets
right. A spec opts in by name (`ModelSpec.rewrites`); each rewrite says which formats need it,
which bug it avoids, and which canary test (`tests/test_converter_canaries.py`) pins that bug,
so the day a release fixes it the canary fails and names the rewrite that can go.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models import fastsam, semivl


@dataclass(frozen=True)
class Rewrite:
    """One workaround: `target.method` is replaced by `replacement` while converting."""

    name: str
    target: type[nn.Module]
    method: str
    replacement: Callable
    formats: tuple[str, ...]  # conversions that need it; derived formats inherit it
    tool: str  # the converter with the bug, with the version it was seen in
    bug: str  # the symptom, in numbers
    canary: str  # test in tests/test_converter_canaries.py that pins the bug
    family: str = "semivl"  # the model family whose modules it targets


# ---------------------------------------------------------------- the equivalent forms


def repeat_skip_3d(self: semivl.Up, skip: Tensor, n: int) -> Tensor:
    """`Up.repeat_skip` in 3-D: the same copies, image-major, without a 5-D tensor.

    The copies are made by doubling concatenations (blocks of 1, 2, 4, ... copies; the blocks
    of n's binary ones joined by one more: 1 + 4 + 16 for 21 classes), not by `expand`:
    litert-torch converts an expand to BROADCAST_TO, which XNNPACK (ai-edge-litert 2.3.0) does
    not take; on TFLite's reference kernel it was 8 ms of SemiVL small's 49 ms (fp32 and int8
    alike). Canary: test_xnnpack_broadcast_to_is_still_undelegated.
    """
    if n < 1:
        raise ValueError(f"repeat_skip_3d: {n} copies requested; Up needs at least one")
    batch, channels, height, width = skip.shape
    block = skip.reshape(batch, 1, channels * height * width)
    copies, count = [], n
    while count:
        if count & 1:
            copies.append(block)
        count >>= 1
        if count:
            block = torch.cat([block, block], dim=1)
    flat = copies[0] if len(copies) == 1 else torch.cat(copies, dim=1)
    return flat.reshape(batch * n, channels, height, width)


def similarity_as_linear(self: semivl.VLGHead, embedding: Tensor, text: Tensor) -> Tensor:
    """`VLGHead.similarity` as a linear layer whose weights are the normalised text."""
    batch, _, height, width = embedding.shape
    tokens = F.normalize(embedding.flatten(2).transpose(1, 2), dim=-1)  # (B, h*w, D)
    similarity = F.linear(tokens, F.normalize(text, dim=-1)).transpose(1, 2)  # (B, N, h*w)
    return similarity.reshape(batch, text.shape[0], height, width)


def hardswish_scaled_first(self: nn.Hardswish, x: Tensor) -> Tensor:
    """hard-swish as (x / 6) * relu6(x + 3): a MUL and an ADD with a fused RELU6 in TFLite.

    litert-torch folds the textbook x * relu6(x + 3) / 6 (and x * hardsigmoid(x)) back into
    one HARD_SWISH op; with the scale applied to x first it keeps the two ops.
    """
    return (x * (1.0 / 6.0)) * F.relu6(x + 3.0)


def output0_in_parts(self: fastsam.FastSAMRaw, images: Tensor) -> tuple[Tensor, ...]:
    """FastSAM-s's output0 as three outputs (box, score, mask coefficients) and proto."""
    return self.output0_parts(images)


REWRITES: dict[str, Rewrite] = {r.name: r for r in (
    Rewrite("up_skip_repeat_3d", semivl.Up, "repeat_skip", repeat_skip_3d, ("tflite_fp32",),
            tool="litert-torch 0.10.0",
            bug="a 5-D expand+reshape (einops repeat) concatenated between two convs converts "
                "to wrong values: minimal module SNR -2 dB; semivl_small fp32 SNR 7.8 dB, "
                "argmax agreement 94.1% (127 dB, 100% with the rewrite). Its copies are "
                "concatenations, not an expand, for a second reason: BROADCAST_TO stays out of "
                "XNNPACK (canary test_xnnpack_broadcast_to_is_still_undelegated)",
            canary="test_litert_5d_expand_between_convs_is_still_wrong"),
    Rewrite("similarity_as_linear", semivl.VLGHead, "similarity", similarity_as_linear,
            ("tflite_fp32",),
            tool="ai-edge-quantizer 0.10.0 (static_wi8_ai8) on litert-torch 0.10.0's graph",
            bug="the einsum becomes a BATCH_MATMUL with the constant text as operand; in int8 "
                "every output is the zero point: minimal module SNR 0 dB; semivl_small int8 "
                "argmax agreement 1.7% (78.5% with the rewrite)",
            canary="test_int8_einsum_with_constant_text_is_still_zeroed"),
    Rewrite("hardswish_as_mul_relu6", nn.Hardswish, "forward", hardswish_scaled_first,
            ("tflite_fp32",),
            tool="ai-edge-litert 2.3.0 (XNNPACK) on litert-torch 0.10.0's HARD_SWISH",
            bug="int8 HARD_SWISH has no XNNPACK kernel: DeepLabv3+ lite's 19 run on TFLite's "
                "reference kernels and cut the int8 graph into 20 partitions; Coral's op table "
                "has no HARD_SWISH either, so the Edge TPU would run only the stem conv",
            canary="test_xnnpack_int8_hard_swish_is_still_undelegated", family="deeplabv3plus"),
    # Not a wrong conversion but a limit of the quantiser: the file's outputs change (three
    # instead of output0; the TFLite runner joins them, models/runtimes/base.py output_slots).
    Rewrite("output0_in_parts", fastsam.FastSAMRaw, "forward", output0_in_parts,
            ("tflite_fp32",),
            tool="ai-edge-quantizer 0.10.0 (static_wi8_ai8)",
            bug="an activation tensor gets one int8 scale (no per-channel activation ranges): "
                "FastSAM-s's output0 packs a score row (0-1) with mask-coefficient rows (about "
                "+-13), so a range wide enough for the coefficients leaves the scores a few "
                "levels (score row cosine 0.938, masks IoU 0.866) and one fitted to the scores "
                "clips the coefficients (output0 cosine 0.973)",
            canary="test_aeq_activation_ranges_are_still_per_tensor", family="fastsam"),
)}


def check_names(names: Iterable[str], owner: str) -> tuple[str, ...]:
    """The names as a tuple; an unknown one raises ValueError naming `owner`."""
    names = tuple(names)
    unknown = [n for n in names if n not in REWRITES]
    if unknown:
        raise ValueError(f"{owner}: unknown export rewrite(s) {unknown}; "
                         f"known: {', '.join(sorted(REWRITES))}")
    return names


def rewrites_for(names: Iterable[str], format_name: str) -> tuple[str, ...]:
    """Those of `names` that the conversion to `format_name` itself needs."""
    return tuple(n for n in names if format_name in REWRITES[n].formats)


@contextlib.contextmanager
def applied(model: nn.Module, names: Iterable[str]) -> Iterator[nn.Module]:
    """`model` with the named rewrites in place; everything is restored on exit.

    A rewrite whose target class does not occur in `model` is an error: a spec that names
    it would otherwise record a rewrite that changed nothing.
    """
    patched: list[tuple[nn.Module, str]] = []
    try:
        for name in check_names(names, type(model).__name__):
            rewrite = REWRITES[name]
            modules = [m for m in model.modules() if isinstance(m, rewrite.target)]
            if not modules:
                raise ValueError(f"export rewrite {name!r} targets {rewrite.target.__name__}, "
                                 f"which {type(model).__name__} does not contain")
            for module in modules:
                if rewrite.method in vars(module):
                    raise ValueError(f"export rewrite {name!r}: {rewrite.target.__name__}."
                                     f"{rewrite.method} is already replaced")
                # An instance attribute shadows the class's method for this module only.
                setattr(module, rewrite.method, types.MethodType(rewrite.replacement, module))
                patched.append((module, rewrite.method))
        yield model
    finally:
        for module, method in reversed(patched):
            delattr(module, method)


