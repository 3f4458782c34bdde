"""Getting a runnable artifact for a case: export through the cache, load, or skip/fail clearly."""

from __future__ import annotations

import pytest

from conformance.matrix import Case
from models.export import ExportError
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
    try:
        artifact = references.session(case.spec).export(case.format)
    except ExportError as err:
        pytest.fail(f"{case}: export failed: {err}", pytrace=False)
    if artifact.is_user_file:
        return ref, artifact, _user_file_runner(case, ref, artifact, threads)
    io = IOSpec(inputs={i.name: i.shape for i in case.spec.inputs},
                outputs=case.spec.output_names, output_shapes=ref.output_shapes)
    try:
        runner = load_runner(case.format, artifact.path, io, threads=threads,
                             device=case.device, meta=artifact.meta)
    except RuntimeUnavailable as err:
        pytest.skip(f"{case.format}: {err}")
    return ref, artifact, runner


def _user_file_runner(case: Case, ref, artifact, threads: int):
    """A user's --artifact file fitted to the model; one line when it does not fit or load."""
    from models.user_artifact import open_user_artifact

    try:
        return open_user_artifact(case.spec, case.format, artifact.path, ref.output_shapes,
                                  ref.inputs[0], threads=threads, device=case.device,
                                  meta=artifact.meta)
    except RuntimeUnavailable as err:
        problem, skip = f"{case.format}: {err}", True
    except ArtifactError as err:
        problem, skip = str(err), False
    # Outside the except block: the one line alone, without a chained-exception echo.
    if skip:
        pytest.skip(problem)
    pytest.fail(problem, pytrace=False)
