"""Getting a runnable artifact for a case: export through the cache, load, or skip/fail clearly."""

from __future__ import annotations

from typing import NoReturn

import pytest

from conformance.matrix import Case
from models.export import ExportError
from models.formats import FORMATS, calibrated
from models.runtimes import ArtifactError, IOSpec, RuntimeUnavailable, load_runner


def load_case_runner(case: Case, references, threads: int):
    """(reference, artifact, runner); skip when the runtime or device is absent here.

    A user's file given with --artifact for this (model, format) replaces the suite's export.
    """
    if case.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            pytest.skip("no CUDA device on this host (gpu profile)")
    ref = references.get(case.spec)
    session = references.session(case.spec)
    if FORMATS[case.format].uses_recipe and session.int8_recipe is None \
            and case.format not in session.user_files:
        pytest.skip(f"{case.format}: no int8 recipe for {case.model} (a user checkpoint, or none "
                    f"committed): find one with --int8-repair, replay it with "
                    f"--int8-recipe {case.model}=FILE")
    try:
        artifact = session.export(case.format)
    except ExportError as err:
        pytest.fail(f"{case}: export failed: {err}", pytrace=False)
    if artifact.is_user_file:
        return ref, artifact, _user_file_runner(case, ref, artifact, threads)
    io = case_io(case.spec, ref)
    try:
        runner = load_runner(case.format, artifact.path, io, threads=threads,
                             device=case.device, meta=artifact.meta)
    except RuntimeUnavailable as err:
        skip_unavailable(case.format, err)
    return ref, artifact, runner


def case_io(spec, ref) -> IOSpec:
    """What a runner of the model's files is asked for: names, shapes, outputs in parts."""
    return IOSpec(inputs={i.name: i.shape for i in spec.inputs}, outputs=spec.output_names,
                  output_shapes=ref.output_shapes,
                  output_parts=dict(getattr(spec, "output_parts", ())))


def calibration_info(case: Case, ref, artifact) -> dict[str, str]:
    """{"calibration": which images calibrated this case's artifact}, for quantised formats."""
    if not calibrated(case.format):
        return {}
    if artifact.is_user_file:
        return {"calibration": "user file: calibrated outside the suite"}
    return {"calibration": ref.calibration_source}


def skip_unavailable(fmt: str, err: RuntimeUnavailable) -> NoReturn:
    """Skip a case whose runtime is absent here; a skip for a missing package carries
    `missing_package` and `format`, which `--require-formats` turns into a failure where the
    active profile lists the format (conformance/options.py)."""
    skip = pytest.skip.Exception(f"{fmt}: {err}")  # a plain skip, as pytest.skip() raises
    skip.missing_package, skip.format = err.package, fmt
    raise skip


def _user_file_runner(case: Case, ref, artifact, threads: int):
    """A user's --artifact file fitted to the model; one line when it does not fit or load."""
    from models.user_artifact import open_user_artifact

    try:
        return open_user_artifact(case.spec, case.format, artifact.path, ref.output_shapes,
                                  ref.inputs[0], threads=threads, device=case.device,
                                  meta=artifact.meta)
    except RuntimeUnavailable as err:
        skip_unavailable(case.format, err)
    except ArtifactError as err:
        problem = str(err)
    # Outside the except block: the one line alone, without a chained-exception echo.
    pytest.fail(problem, pytrace=False)
