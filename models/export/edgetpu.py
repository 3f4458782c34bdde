"""Edge TPU: compile with edgetpu_compiler when present; always a static check here.

The static check against Coral's documented op table reads the int8 .tflite and applies
each rule of `models.export.edgetpu_rules.RULES` (op table, per-op constraints, full 8-bit
quantisation, static shapes, tensor rank) to every op, and measures the constant parameter
bytes against the Edge TPU's 8 MiB on-chip memory. It is not the compiler: where Coral's
text names no threshold, the compiler may still refuse an op this check passes.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from models.export.edgetpu_graph import Op, read_graph
from models.export.edgetpu_rules import CHANGES, OP_CHANGES, RULES, Rule
from models.export.request import ExportRequest

# "The Edge TPU includes a small amount of RAM that's used to store the model's parameter
# data locally" (https://coral.ai/docs/edgetpu/multiple-edgetpu); "fits in the Edge TPU
# cache (~8 MB)" (https://coral.ai/docs/edgetpu/pipeline). Parameters beyond it are not a
# failure: the compiler streams them from host memory on every inference (slower).
EDGETPU_SRAM_BYTES = 8 * 1024 * 1024
STATIC_CHECK = "static check against Coral's documented op table"


@dataclass(frozen=True)
class Violation:
    """One op breaking one rule, with what breaks it."""

    rule: Rule
    op: Op
    detail: str

    def describe(self) -> str:
        """`op 12 MEAN -> name int8[1, 16, 16] (input ... reduced along z ...)`."""
        return f"{self.op.describe()} ({self.detail})"


def check_ops(ops: list[Op], rules: tuple[Rule, ...] = RULES) -> list[Violation]:
    """Every (op, rule) pair where the op breaks the rule, in op order."""
    found = []
    for op in ops:
        for rule in rules:
            if rule.applies_to(op):
                detail = rule.check(op)
                if detail is not None:
                    found.append(Violation(rule, op, detail))
    return found


@dataclass
class EdgeTPUCompatibility:
    """Result of the static check against Coral's documented op table for one .tflite."""

    path: str
    op_counts: dict[str, int] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    parameter_bytes: int = 0

    @property
    def total_ops(self) -> int:
        return sum(self.op_counts.values())

    @property
    def compatible(self) -> bool:
        return not self.violations

    @property
    def rules_violated(self) -> list[str]:
        """Names of the violated rules, in the rule table's order."""
        names = {v.rule.name for v in self.violations}
        return [rule.name for rule in RULES if rule.name in names]

    @property
    def unsupported_ops(self) -> dict[str, int]:
        """Ops not in Coral's table, with their counts."""
        counts: dict[str, int] = {}
        for v in self.violations:
            if v.rule.name == "supported_op":
                counts[v.op.name] = counts.get(v.op.name, 0) + 1
        return counts

    @property
    def ops_before_first_violation(self) -> int:
        """Ops ahead of the first violating one (all ops when none violates)."""
        return min((v.op.index for v in self.violations), default=self.total_ops)

    @property
    def tpu_op_fraction(self) -> float:
        """Share of ops ahead of the first violation: the compiler partitions only once."""
        return self.ops_before_first_violation / self.total_ops if self.total_ops else 1.0

    @property
    def parameter_fraction_of_sram(self) -> float:
        """Constant parameter bytes over the Edge TPU's 8 MiB on-chip memory."""
        return self.parameter_bytes / EDGETPU_SRAM_BYTES

    def layers_to_change(self, module_of: Callable[[str], str | None] | None = None
                         ) -> list[dict]:
        """Each layer that breaks a rule, with its ops and what would have to change.

        `module_of` maps an op's output tensor name to the PyTorch module that made it; a
        layer without one is named by its tensor. One row per (layer, rule), in op order.
        """
        rows: dict[tuple[str, str], dict] = {}
        for v in self.violations:
            tensor = v.op.outputs[0].name if v.op.outputs else f"op {v.op.index}"
            layer = module_of(tensor) if module_of else None
            if layer is None:
                path = tensor.split(";")[0]
                # No submodule in the path: the top module's own forward made it.
                layer = path if "/" in path else f"{path.rsplit('.', 1)[-1]}.forward"
            change = OP_CHANGES.get(v.op.name) if v.rule.name == "supported_op" else None
            row = rows.setdefault((layer, v.rule.name), {
                "layer": layer, "rule": v.rule.name, "ops": [],
                "change": change or CHANGES[v.rule.name]})
            row["ops"].append(f"{v.op.name} op {v.op.index}")
        return list(rows.values())

    def explain(self) -> str:
        """A few lines: each violated rule with its first op, shapes and Coral's text."""
        if self.compatible:
            lines = [f"{self.path}: passes the {STATIC_CHECK} ({self.total_ops} ops, "
                     f"{len(RULES)} rules)"]
        else:
            count = len(self.rules_violated)
            lines = [f"{self.path}: {count} rule{'s' if count > 1 else ''} violated in the "
                     f"{STATIC_CHECK}; the first violation is op "
                     f"{self.ops_before_first_violation} of {self.total_ops}"]
        for name in self.rules_violated:
            hits = [v for v in self.violations if v.rule.name == name]
            more = f" and {len(hits) - 1} more ops" if len(hits) > 1 else ""
            lines.append(f"{name}: {hits[0].describe()}{more}; "
                         f"Coral: \"{hits[0].rule.documented}\"")
        size = f"{self.parameter_bytes:,} bytes ({self.parameter_bytes / 2**20:.2f} MiB)"
        share = f"{self.parameter_fraction_of_sram:.1%} of the Edge TPU's 8 MiB on-chip memory"
        if self.parameter_bytes > EDGETPU_SRAM_BYTES:
            lines.append(f"warning: constant parameters {size}, {share}: not a failure, but "
                         "the compiler streams what does not fit from host memory on every "
                         "inference (slower)")
        else:
            lines.append(f"parameters: {size}, {share}")
        return "\n  ".join(lines)


def layers_text(layers: list[dict], shown: int = 6) -> str:
    """'layers that would have to change for the Edge TPU: LAYER (OPS; RULE): CHANGE ...'."""
    if not layers:
        return "no layer would have to change for the Edge TPU"
    lines = []
    for row in layers[:shown]:
        ops = ", ".join(row["ops"][:3]) + (f" and {len(row['ops']) - 3} more"
                                           if len(row["ops"]) > 3 else "")
        lines.append(f"{row['layer']} ({ops}; {row['rule']}): {row['change']}")
    if len(layers) > shown:
        lines.append(f"and {len(layers) - shown} more layers")
    return ("layers that would have to change for the Edge TPU (full integer, no float "
            "fallback):\n  " + "\n  ".join(lines))


def check_edgetpu_compatibility(path: Path) -> EdgeTPUCompatibility:
    """Run the static check against Coral's documented op table on a .tflite."""
    from models.runtimes.tflite import make_interpreter

    # Loading first gives a corrupt file the same one-line ArtifactError as every runner.
    make_interpreter(Path(path), threads=1, builtin_ops_only=True)
    graph = read_graph(Path(path))
    report = EdgeTPUCompatibility(path=str(path), violations=check_ops(graph.ops),
                                  parameter_bytes=graph.parameter_bytes)
    for op in graph.ops:
        report.op_counts[op.name] = report.op_counts.get(op.name, 0) + 1
    return report


def export_edgetpu(request: ExportRequest) -> dict:
    """Compile the int8 model with edgetpu_compiler if on PATH; else record the check."""
    if request.upstream is None:
        raise ValueError("Edge TPU export needs the int8 .tflite as upstream")
    compat = check_edgetpu_compatibility(request.upstream)
    meta = {"compatible": compat.compatible, "compatibility": compat.explain(),
            "op_counts": compat.op_counts, "rules_violated": compat.rules_violated,
            "parameter_bytes": compat.parameter_bytes}
    compiler = shutil.which("edgetpu_compiler")
    if compiler is None:
        shutil.copyfile(request.upstream, request.out_path)
        meta.update(compiled=False, converter="none: edgetpu_compiler not on PATH "
                    f"(int8 model copied; {STATIC_CHECK} run here)")
        return meta
    out_dir = request.out_path.parent / (request.out_path.stem + "_compiler")
    out_dir.mkdir(exist_ok=True)
    run = subprocess.run([compiler, "-s", "-d", "-k", "10", "-o", str(out_dir),
                          str(request.upstream)], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"edgetpu_compiler failed on {request.upstream}: {run.stderr[-2000:]}")
    compiled = next(out_dir.glob("*_edgetpu.tflite"))
    shutil.copyfile(compiled, request.out_path)
    meta.update(compiled=True, converter=f"{compiler} -s -d -k 10",
                compiler_log=run.stdout[-4000:])
    return meta
