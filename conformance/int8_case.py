"""int8 debugging of one parity case: the per-layer table, and on request the repair search.

Both are cached beside the artifact (a JSON keyed by the artifact, the float upstream, the images
and, for the repair, the budget), so a warm run pays for neither.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from conformance.budgets import violations
from conformance.int8_repair import search_repair
from conformance.metrics.parity import parity_figures
from conformance.metrics.quant_sensitivity import layer_sensitivity, ranked
from models.export.cache import arrays_digest, cached_json, content_key, source_digest
from models.formats import FORMATS, precision_of

SENSITIVITY_IMAGES = 2  # parity images the table is measured on
SHOWN_LAYERS = 12  # rows kept in the report and results.json
SPEED_RUNS = 5  # interleaved runs for the repair's speed cost (advice, not a budget)
# The search must pass each budget with this much to spare: int8 kernels differ between CPUs
# (SemiVL small's int8 agreement is 0.948 on AVX-512 and 0.876 on AVX-only XNNPACK), so a
# recipe that only just passes here would flip the verdict on another machine.
HEADROOM = 0.02
RECIPES = Path(__file__).resolve().parents[1] / "reports" / "int8_recipes"


def debuggable(format_name: str) -> bool:
    """Quantised TFLite formats made by ai-edge-quantizer from the suite's fp32 file."""
    row = FORMATS.get(format_name)
    return bool(row and precision_of(format_name) == "int8" and row.suffix == ".tflite"
                and row.upstream == "tflite_fp32")


def sensitivity_table(case, ref, artifact, fp32_path: Path) -> dict:
    """{"layers", "images", "rows": the SHOWN_LAYERS most sensitive, "ranked": every tensor}."""
    inputs = ref.inputs[:SENSITIVITY_IMAGES]
    key = content_key({"artifact": artifact.path.name, "fp32": Path(fp32_path).name,
                       "inputs": arrays_digest(a for x in inputs for a in x.values()),
                       "code": source_digest("conformance.metrics.quant_sensitivity")})
    path = artifact.path.with_name(f"{artifact.path.stem}.sensitivity-{key}.json")

    def make() -> dict:
        rows = ranked(layer_sensitivity(fp32_path, artifact.path, inputs,
                                        [i.name for i in case.spec.inputs]))
        return {"layers": len(rows), "images": len(inputs),
                "rows": [r.to_json() for r in rows[:SHOWN_LAYERS]],
                "ranked": [r.tensor for r in rows]}

    return cached_json(path, make)


def sensitive_hint(table: dict, count: int = 3) -> str:
    """'most sensitive layers (own SNR): a 9.2 dB, b 9.3 dB, ...' for a failure message."""
    rows = table.get("rows", [])[:count]
    listed = ", ".join(f"{r['layer']} ({r['op']}) {r['own_db']:.1f} dB" for r in rows)
    return f"most sensitive int8 layers (own SNR): {listed}" if rows else ""


def tightened(budget: dict[str, float], headroom: float = HEADROOM) -> dict[str, float]:
    """Each min_ budget raised and each max_ lowered by `headroom` of its value's scale.

    A fraction (a min_ budget at most 1) is raised by `headroom`, but never past half its gap
    to 1: cosine >= 0.98 becomes 0.99, not an unreachable 1.0.
    """
    return {key: (min(limit + headroom, (limit + 1.0) / 2) if key.startswith("min_")
                  and limit <= 1.0 else limit * (1 + headroom) if key.startswith("min_")
                  else limit * (1 - headroom)) for key, limit in budget.items()}


def repair_case(case, ref, session, artifact, fp32_path: Path, budget: dict[str, float],
                table: dict, class_axis: int | None, folder: Path = RECIPES) -> dict:
    """Run (or read back) the repair search for a failing case; the recipe is saved in `folder`."""
    from conformance.runners import case_io
    from models.export.int8_recipe import Int8Recipe, quantize_static
    from models.export.tflite import signature_samples
    from models.runtimes import ArtifactError, load_runner

    target = tightened(budget)
    key = content_key({"artifact": artifact.path.name, "budget": sorted(target.items()),
                       "ranked": table["ranked"],
                       "inputs": arrays_digest(a for x in ref.inputs for a in x.values()),
                       "code": source_digest("conformance.int8_repair")})
    work = artifact.path.with_name(f"{artifact.path.stem}.repair-{key}")
    io = case_io(case.spec, ref)
    samples = signature_samples(case.spec, session.calibration)

    def quantised(recipe: Int8Recipe) -> Path:
        out = work / f"trial-{recipe.digest()}.tflite"
        if not out.exists():
            work.mkdir(parents=True, exist_ok=True)
            quantize_static(fp32_path, out, samples, recipe.aeq_recipe(),
                            min_max_scope=getattr(case.spec, "int8_min_max_scope", None))
        return out

    def trial(recipe: Int8Recipe) -> tuple[bool, dict[str, float] | str]:
        try:
            runner = load_runner("tflite_int8", quantised(recipe), io, threads=2)
            got = [runner.run(x) for x in ref.inputs]
        except ArtifactError as err:  # e.g. a mixed file whose outputs are NaN: a finding
            return False, str(err).split(": ", 1)[-1][:200]
        metrics, _ = parity_figures(ref.outputs, got, class_axis=class_axis)
        return not violations(metrics, target), metrics

    def make() -> dict:
        repair = search_repair(case.model, table["ranked"], trial)
        speeds = {precision: _speed_ratio(artifact.path, quantised(recipe), io, ref.inputs[0])
                  for precision, recipe in repair.found.items()}
        if speeds:  # of the passing recipes, the fastest
            repair.recipe = repair.found[max(speeds, key=speeds.get)]
        data = {**repair.to_json(), "model": case.model, "searched_budget": target,
                "speed_vs_int8_by_precision": speeds}
        if repair.recipe is not None:
            data["speed_vs_int8"] = speeds[_precision(repair.recipe)]
        return data

    data = cached_json(work.parent / f"{work.name}.json", make)
    if data.get("recipe"):
        saved = folder / f"{case.model}.json"
        folder.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(data["recipe"], indent=1) + "\n")
        data["saved"] = str(saved)
    return data


def _precision(recipe) -> str:
    return "int16" if recipe.int16 else "float"


def _speed_ratio(int8_path: Path, mixed_path: Path, io, inputs: dict[str, np.ndarray]) -> float:
    """p50 of the int8 file over p50 of the repaired one, runs interleaved (>1: repair faster)."""
    from models.runtimes import load_runner
    from models.runtimes.timing import interleaved_ratio

    int8, mixed = (load_runner("tflite_int8", p, io, threads=2) for p in (int8_path, mixed_path))
    return round(interleaved_ratio(lambda: int8.run(inputs), lambda: mixed.run(inputs),
                                   warmup=1, rounds=SPEED_RUNS), 3)
