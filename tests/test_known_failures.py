"""Known failures are bands, not cliffs: noise inside the band stays an expected failure; a
value outside it, either way, fails as `known failure moved`."""

from __future__ import annotations

import pytest

from conformance.budgets import (
    KnownFailure,
    find_known_failure,
    known_failures,
    load_budgets,
    settle,
)

KNOWN = KnownFailure(suite="parity", model="m*", format="tflite_int8", reason="why",
                     expect={"argmax_agreement": (0.86, 0.92)})
FAILING = "m-tflite_int8 parity: 1 budget(s) failed: argmax_agreement = 0.89 (budget >= 0.9)"


@pytest.mark.parametrize("value", [0.86, 0.8851, 0.89, 0.9005, 0.92])
def test_noise_inside_the_band_is_an_expected_failure(value: float) -> None:
    with pytest.raises(pytest.xfail.Exception, match=r"inside its band \(argmax_agreement = "):
        settle(KNOWN, {"argmax_agreement": value}, FAILING)


@pytest.mark.parametrize("value", [0.05, 0.8599, 0.9201, 0.999])
def test_a_value_outside_the_band_fails_as_moved(value: float) -> None:
    with pytest.raises(pytest.fail.Exception,
                       match=r"known failure moved: argmax_agreement = .*declared band "
                             r"\[0\.86, 0\.92\]"):
        settle(KNOWN, {"argmax_agreement": value}, FAILING if value < 0.9 else None)


def test_a_missing_metric_is_outside_the_band() -> None:
    with pytest.raises(pytest.fail.Exception, match="argmax_agreement = nan"):
        settle(KNOWN, {}, FAILING)


def test_in_band_but_passing_budgets_is_a_declaration_error() -> None:
    with pytest.raises(pytest.fail.Exception, match="band overlaps the passing side"):
        settle(KNOWN, {"argmax_agreement": 0.9}, None)


def test_without_a_known_failure_a_failure_fails_and_a_pass_passes() -> None:
    settle(None, {"argmax_agreement": 0.99}, None)
    with pytest.raises(pytest.fail.Exception, match="budget"):
        settle(None, {"argmax_agreement": 0.5}, FAILING)


@pytest.mark.parametrize("expect", [None, {}, {"argmax_agreement": [0.9]},
                                    {"argmax_agreement": [0.92, 0.86]}])
def test_an_entry_without_a_band_is_refused(expect) -> None:
    entry = {"suite": "parity", "model": "m", "format": "onnx", "reason": "r"}
    if expect is not None:
        entry["expect"] = expect
    with pytest.raises(ValueError, match="band"):
        known_failures({"known_failure": [entry]})


def test_fixture_only_entries_never_apply_to_a_users_checkpoint() -> None:
    table = {"known_failure": [{"suite": "parity", "model": "m*", "format": "tflite_int8",
                                "reason": "r", "weights": "fixture",
                                "expect": {"argmax_agreement": [0.1, 0.2]}}]}
    assert find_known_failure(table, "parity", "m1", "tflite_int8", fixture_weights=True)
    assert find_known_failure(table, "parity", "m1", "tflite_int8", fixture_weights=False) is None


def test_every_declared_known_failure_has_a_band() -> None:
    entries = known_failures(load_budgets())
    assert all(entry.expect for entry in entries)
