"""The per-op TFLite profile: which ops XNNPACK takes and what each costs, on real exports."""

from __future__ import annotations

import pytest

from conformance.op_profile import profile_text
from conformance.reference import ReferenceStore
from models.registry import get_spec
from models.runtimes.tflite_profile import profile_tflite

LITE = "deeplabv3plus_mnv3_lite"
LITE_OFFICIAL = "deeplabv3plus_mnv3_lite_official"  # without export rewrite hardswish_as_mul_relu6


@pytest.fixture(scope="module")
def lite_files() -> dict:
    spec = get_spec(LITE)
    session = ReferenceStore().session(spec)
    files = {fmt: session.export(fmt).path for fmt in ("tflite_fp32", "tflite_fp16", "tflite_int8")}
    official = ReferenceStore().session(get_spec(LITE_OFFICIAL))
    return files | {"official_int8": official.export("tflite_int8").path}


def test_every_op_is_timed_and_the_sum_accounts_for_the_whole(lite_files) -> None:
    profile = profile_tflite(lite_files["tflite_fp32"], threads=1)
    assert len(profile.ops) > 100 and all(op.ms > 0 for op in profile.ops)
    # Ratios measured in one run, not absolute times: the cut-out ops add up to the model.
    assert 0.5 < profile.sum_ms / profile.whole_ms < 2.0, (profile.sum_ms, profile.whole_ms)
    assert profile.delegated == len(profile.ops) and profile.partitions == 1


def test_int8_hard_swish_falls_out_of_xnnpack_and_is_named(lite_files) -> None:
    """MobileNetV3's int8 HARD_SWISH has no XNNPACK kernel here: each one splits the graph
    into another partition and runs on the reference kernels."""
    profile = profile_tflite(lite_files["official_int8"], threads=1)
    summary = profile.summary()
    assert summary["not_delegated"] == {"HARD_SWISH": 19}, summary["not_delegated"]
    assert summary["partitions"] == 20
    assert summary["by_type"]["HARD_SWISH"]["ms_not_delegated"] > 0
    assert summary["boundary_ops"] == {"QUANTIZE": 2, "DEQUANTIZE": 0, "TRANSPOSE": 2}
    text = profile_text(summary | {"cpu": "this CPU"})
    assert text.startswith("XNNPACK takes 119 of 138 ops in 20 partition(s); not delegated: "
                           "HARD_SWISH x19 ("), text


def test_int8_with_the_hardswish_rewrite_is_one_xnnpack_partition(lite_files) -> None:
    summary = profile_tflite(lite_files["tflite_int8"], threads=1).summary()
    assert summary["not_delegated"] == {} and summary["partitions"] == 1, summary
    assert "HARD_SWISH" not in summary["by_type"]


def test_fp16_weight_dequantize_is_timed_inside_the_op_that_uses_it(lite_files) -> None:
    """fp16 files hold weights as fp16 constants behind DEQUANTIZE; XNNPACK folds them. Cut out
    alone, a conv would see dynamic weights and be refused: each constant's DEQUANTIZE goes
    into its consumer's model, and the file is as delegated as XNNPACK runs it."""
    summary = profile_tflite(lite_files["tflite_fp16"], threads=1).summary()
    assert summary["not_delegated"] == {}, summary["not_delegated"]
    assert summary["folded_dequantize"] == summary["boundary_ops"]["DEQUANTIZE"] == 71
    assert summary["partitions"] == 1 and "DEQUANTIZE" not in summary["by_type"]
