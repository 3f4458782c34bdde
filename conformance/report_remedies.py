"""The report's remedies: each declared remedy before and after, and a repair row per failure.

Figures come from the results of this run only (conformance/remedies.py declares the pairs), so
a before and its after were measured on the same machine in the same session.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conformance.remedies import REMEDIES, Remedy, repair_advice, repair_rows
from conformance.report_html import (
    _case_key,
    _case_link,
    _e,
    _is_finite,
    deciding_text,
)
from models.formats import FLOAT_TFLITE as FLOAT_FORMAT  # the issue's speed ratios' base

Index = dict[tuple[str, str, str], Mapping[str, Any]]  # (suite, model, format) -> result
# Per suite, the figures a remedy row shows (the ones its targets are stated in); where a
# suite serves two tasks, the first set the case recorded.
SHOWN: dict[str, tuple[tuple[str, ...], ...]] = {
    "parity": (("argmax_agreement", "agreement_miou"), ("cosine", "snr_db")),
    "accuracy": (("miou_ratio", "agreement_miou"),),
    "prompt_masks": (("mask_iou_mean", "mask_iou_large", "mask_iou_small", "mask_missing_rate"),),
    "latency": (("p50_ms",),),
    "edgetpu": (("tpu_op_fraction",),),
}
NAN = float("nan")


def remedies_html(results: list[dict[str, Any]]) -> str:
    """Both tables, for the results of one profile at a time (the first one seen)."""
    if not results:
        return ""
    profile = results[0]["profile"]
    index: Index = {(r["suite"], r["model"], r["format"]): r for r in results
                    if r["profile"] == profile}
    shown = [r for r in REMEDIES if any((s, *case) in index for s in SHOWN
                                        for case in (r.before, r.after))]
    parts = []
    if shown:
        head = ("<tr><th>remedy</th><th></th><th>case</th><th>parity set: agreement / "
                "agreement mIoU (masks: cosine / SNR dB)</th><th>fixture photos: agreement / "
                "agreement mIoU (PyTorch top-class share); masks: mean / large / small IoU / "
                "missing rate, raw cosine / SNR</th><th>held-out set: mIoU ratio / "
                "agreement mIoU (masks: mean / large / small IoU / missing rate)</th>"
                f"<th>p50 ms</th><th>speed vs {FLOAT_FORMAT} (int8: its own, timed "
                "alternately)</th>"
                "<th>speed vs eager</th>"
                "<th>Edge TPU ops ahead of first violation</th></tr>")
        body = "".join(_remedy_rows(remedy, index) for remedy in shown)
        cases = {case for remedy in shown for case in (remedy.before, remedy.after)}
        timed = [index.get(("latency", *case)) for case in cases]  # the rows' own timings
        cpus = sorted({f"{r['info']['cpu']} ({r['info'].get('cpu_isa') or 'ISA not read'})"
                       for r in timed if r and r.get("info", {}).get("cpu")
                       and _is_finite(r.get("metrics", {}).get("p50_ms"))})
        where = f"<p>Timed on: {_e('; '.join(cpus))}</p>" if cpus else ""
        parts.append(f'<h2>Remedies, before and after ({_e(profile)}, this run)</h2>{where}'
                     f'<table id="sc-remedies" class="segconform">{head}{body}</table>')
    rows = repair_rows(results)
    if rows:
        body = "".join(_repair_row(row, index) for row in rows if row["profile"] == profile)
        parts.append('<h2>Repair rows: every quantised case that failed</h2>'
                     '<table id="sc-repairs" class="segconform"><tr><th>case</th><th>suite'
                     "</th><th>verdict</th><th>remedy: its after case in this run</th>"
                     f"<th>otherwise</th></tr>{body}</table>")
    return "".join(parts)


def _remedy_rows(remedy: Remedy, index: Index) -> str:
    rows = []
    for label, (model, fmt) in (("before", remedy.before), ("after", remedy.after)):
        name = (f'<td rowspan="2"><b>{_e(remedy.name)}</b><br/><small>{_e(remedy.change)} '
                f"(fixes {_e(remedy.fixes)})</small></td>") if label == "before" else ""
        latency = index.get(("latency", model, fmt))
        # A quantised file: timed alternately with the fp32 file it was quantised from (the
        # latency suite). A float file: its p50 against the remedied model's fp32 p50.
        ratio = (latency or {}).get("metrics", {}).get("speedup_vs_fp32")
        fp32 = index.get(("latency", remedy.after[0], FLOAT_FORMAT))
        if fmt == FLOAT_FORMAT and fp32 and latency:
            ratio = fp32["metrics"].get("p50_ms", NAN) / latency["metrics"].get("p50_ms", NAN)
        if not _is_finite(ratio):
            ratio = None
        task = "prompt_masks" if ("prompt_masks", model, fmt) in index else "accuracy"
        cells = [_suite_cell(index, "parity", model, fmt), _photo_cell(index, model, fmt),
                 _suite_cell(index, task, model, fmt),
                 _suite_cell(index, "latency", model, fmt),
                 _text_cell(f"{ratio:.2f}x" if ratio is not None else "not run"),
                 _suite_cell(index, "latency", model, fmt, (("speedup_vs_eager",),), "x"),
                 _suite_cell(index, "edgetpu", model, fmt)]
        rows.append(f"<tr>{name}<td>{label}</td><td>{_e(model)} · {_e(fmt)}</td>"
                    f"{''.join(cells)}</tr>")
    return "".join(rows)


def _suite_cell(index: Index, suite: str, model: str, fmt: str,
                choices: tuple[tuple[str, ...], ...] | None = None, unit: str = "") -> str:
    result = index.get((suite, model, fmt))
    if result is None:
        return _text_cell("not run")
    for names in choices or SHOWN[suite]:
        values = [result["metrics"].get(m) for m in names]
        if any(_is_finite(v) for v in values):
            break
    else:
        return _text_cell(result["outcome"], result["outcome"])
    text = " / ".join(f"{v:.4g}{unit}" if _is_finite(v) else "–" for v in values)
    return _text_cell(f"{text} ({result['outcome']})", result["outcome"])


def _photo_cell(index: Index, model: str, fmt: str) -> str:
    def photos(suite: str) -> Mapping[str, Any]:
        found = (index.get((suite, model, fmt)) or {}).get("info", {}).get("fixture_photos")
        return found if isinstance(found, Mapping) else {}

    parity, masks = photos("parity"), photos("prompt_masks")
    if "argmax_agreement" in parity:
        return _text_cell(f"{parity['argmax_agreement']:.4g} / {parity['agreement_miou']:.4g} "
                          f"({parity['reference_top_class_share']:.0%})")
    shown = []
    if masks:
        shown.append("masks " + " / ".join(
            _number(masks.get(k)) for k in SHOWN["prompt_masks"][0])
            + f" ({_number(masks.get('n_masks'))} prompts)")
    if "cosine" in parity:
        parts = ", ".join(f"{name} {_number(value)}"
                          for name, value in parity.get("part_cosine", {}).items())
        shown.append(f"cosine {_number(parity['cosine'])} / SNR {_number(parity['snr_db'])} dB"
                     + (f" (parts: {parts})" if parts else ""))
    return _text_cell("; ".join(shown) if shown else "not measured")


def _number(value: Any) -> str:
    return f"{value:.4g}" if _is_finite(value) else "–"


def _text_cell(text: str, outcome: str = "") -> str:
    css = f' class="sc-cell sc-{_e(outcome)}"' if outcome else ""
    return f"<td{css}>{_e(text)}</td>"


def _repair_row(row: Mapping[str, Any], index: Index) -> str:
    failed = index[(row["suite"], row["model"], row["format"])]
    remedies = []
    for remedy in row["remedies"]:
        model, fmt = remedy["after"].split("/")
        after = index.get((row["suite"], model, fmt))
        figure = f": {deciding_text(after)}" if after else ""
        remedies.append(f'<span class="sc-{_e(remedy["outcome"])}">{_e(remedy["name"])} → '
                        f"{_e(model)} · {_e(fmt)} {_e(remedy['outcome'])}{_e(figure)}</span>")
    fixed = any(r["outcome"] == "passed" for r in row["remedies"])
    otherwise = "" if fixed else repair_advice(row)
    return (f"<tr><td>{_case_link(_case_key(failed))}</td><td>{_e(row['suite'])}</td>"
            f'<td class="sc-cell sc-{_e(row["outcome"])}">{_e(row["outcome"])}: '
            f"{_e(deciding_text(failed))}</td><td>{'<br/>'.join(remedies) or 'none declared'}"
            f"</td><td>{_e(otherwise)}</td></tr>")
