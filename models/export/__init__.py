"""`ExportSession`: a model's artifacts per format, converted through the content-keyed cache."""

from __future__ import annotations

import functools
import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models.export.cache import (
    arrays_digest,
    cache_root,
    content_key,
    key_lock,
    library_versions,
    log_conversion,
    source_digest,
    tool_version,
)
from models.export.int8_recipe import Int8Recipe
from models.formats import FORMATS, ExportFormat, calibrated

if TYPE_CHECKING:  # the request module imports torch; bundles on devices must not
    from models.export.request import ExportRequest


# The libraries whose code builds each family's architecture: an upgrade can change the graph
# without changing a weight, so their versions are part of every artifact key of the family.
ARCHITECTURE_LIBRARIES: dict[str, tuple[str, ...]] = {
    "deeplabv3plus": ("torchvision",),
    "semivl": ("open_clip_torch",),
    "fastsam": ("ultralytics",),
}
# A family not listed above is keyed on all of them: a spurious re-export, never a stale hit.
ALL_ARCHITECTURE_LIBRARIES = tuple(sorted({n for v in ARCHITECTURE_LIBRARIES.values() for n in v}))


def family_module(spec) -> str:
    """The module (or package directly under the top level) where `spec.build` is defined."""
    build = spec.build
    while isinstance(build, functools.partial):
        build = build.func
    # models.semivl.vit -> models.semivl: a family split into a package is hashed whole.
    return ".".join(build.__module__.split(".")[:2])


class ExportError(RuntimeError):
    """A converter failed; the message names model, format and the converter's error."""


@dataclass
class Artifact:
    """An exported file and what is known about how it was made."""

    model: str
    format: str
    path: Path
    meta: dict = field(default_factory=dict)
    cache_hit: bool = False

    @property
    def is_user_file(self) -> bool:
        """A user's own file (--artifact), not an export of the suite."""
        return self.meta.get("origin") == "user"

    @property
    def label(self) -> str:
        """What the report says about the artifact: the cached file's name, or the user's."""
        if self.is_user_file:
            return f"user file (sha256 {self.meta['sha256'][:12]})"
        return self.path.name


@dataclass
class ExportSession:
    """Exports of one model with fixed weights, inputs and calibration; cached on disk.

    `converter_calls` counts real conversions in this process, so tests can prove that a
    second run re-exports nothing. `user_files` (format -> path, from --artifact) replace
    the export of those formats; they never enter the cache and are never an upstream.
    """

    spec: object
    model: object
    weights_key: str
    example: dict[str, np.ndarray]
    calibration: list[dict[str, np.ndarray]]
    root: Path | None = None
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    converter_calls: list[str] = field(default_factory=list)
    user_files: dict[str, Path] = field(default_factory=dict)
    user_artifacts: dict[str, Artifact] = field(default_factory=dict)
    int8_recipe: Int8Recipe | None = None  # what formats with uses_recipe convert with

    def recipe(self, fmt: ExportFormat) -> dict:
        """The code that makes the artifact: converter and family sources, libraries, tools."""
        libraries = ARCHITECTURE_LIBRARIES.get(self.spec.family, ALL_ARCHITECTURE_LIBRARIES)
        recipe = {
            "converter_source": source_digest(fmt.converter_module),
            "family_source": source_digest(family_module(self.spec)),
            "architecture_versions": library_versions(libraries),
        }
        if self.rewrites(fmt):  # an edited rewrite is another conversion
            recipe["rewrites_source"] = source_digest("models.export.rewrites")
        if fmt.uses_calibration:  # the calibration and quantisation code the converter calls
            recipe["quantize_source"] = source_digest("models.export.int8_recipe")
        if fmt.tools:  # e.g. whether edgetpu_compiler ran, and which one
            recipe["tools"] = {tool: tool_version(tool) for tool in fmt.tools}
        return recipe

    def key(self, fmt: ExportFormat) -> str:
        """Content hash of everything the artifact depends on, code included."""
        parts = {
            "model": self.spec.name,
            "weights": self.weights_key,
            "inputs": [(i.name, i.shape, i.dtype) for i in self.spec.inputs],
            "outputs": list(self.spec.output_names),
            "format": fmt.name,
            "converter": fmt.converter,
            "versions": library_versions(fmt.libraries),
            "recipe": self.recipe(fmt),
        }
        if fmt.uses_calibration:
            parts["calibration"] = arrays_digest(
                a for sample in self.calibration for a in sample.values()
            )
        if fmt.upstream:
            parts["upstream"] = self.key(FORMATS[fmt.upstream])
        if fmt.uses_recipe:
            parts["int8_recipe"] = self.int8_recipe.digest() if self.int8_recipe else None
        scope = getattr(self.spec, "int8_min_max_scope", None)
        if scope and calibrated(fmt.name):  # absent when unset: other models keep their keys
            parts["int8_min_max_scope"] = scope
        rewrites = self.rewrites(fmt)
        if rewrites:  # absent when none, so artifacts of models without rewrites keep their keys
            parts["rewrites"] = list(rewrites)
        return content_key(parts)

    def own_rewrites(self, fmt: ExportFormat) -> tuple[str, ...]:
        """The spec's export rewrites that this format's own conversion applies."""
        names = getattr(self.spec, "rewrites", ())
        if not names:
            return ()
        from models.export.rewrites import check_names, rewrites_for  # imports torch

        return rewrites_for(check_names(names, f"model {self.spec.name}"), fmt.name)

    def rewrites(self, fmt: ExportFormat) -> tuple[str, ...]:
        """Rewrites in effect in this format's artifact: its upstream's, then its own."""
        inherited = self.rewrites(FORMATS[fmt.upstream]) if fmt.upstream else ()
        return inherited + tuple(n for n in self.own_rewrites(fmt) if n not in inherited)

    def export(self, format_name: str) -> Artifact:
        """The user's file for `format_name` if given, else the suite's own export."""
        if format_name in self.user_files:
            if format_name not in self.user_artifacts:
                from models.user_artifact import user_artifact

                self.user_artifacts[format_name] = user_artifact(
                    self.spec.name, format_name, self.user_files[format_name])
            return self.user_artifacts[format_name]
        return self.export_own(format_name)

    def export_own(self, format_name: str) -> Artifact:
        """The suite's artifact for `format_name`, from the cache or converted now."""
        if format_name in self.artifacts:
            return self.artifacts[format_name]
        fmt = FORMATS[format_name]
        # The suite's own upstream: a user's fp32 file must not be quantised under our key.
        upstream = self.export_own(fmt.upstream).path if fmt.upstream else None
        root = self.root or cache_root()
        folder = root / self.spec.name
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{fmt.name}-{self.key(fmt)}"
        path, meta_path = folder / f"{stem}{fmt.suffix}", folder / f"{stem}.json"
        error_path = folder / f"{stem}.error.json"
        # Another process (an xdist worker, a host on a shared cache) may be converting the
        # same key: wait for it and reuse its file rather than convert twice.
        with key_lock(folder / stem):
            artifact = self._cached(fmt, path, meta_path, error_path)
            if artifact is None:
                artifact = self._convert(fmt, path, meta_path, error_path, upstream)
                log_conversion(root, {"model": self.spec.name, "format": fmt.name,
                                      "key": path.stem,
                                      "seconds": artifact.meta["export_seconds"]})
        self.artifacts[format_name] = artifact
        return artifact

    def _cached(self, fmt: ExportFormat, path: Path, meta_path: Path,
                error_path: Path) -> Artifact | None:
        if error_path.exists():
            # A deterministic conversion that failed once fails again: say so without redoing it.
            error = json.loads(error_path.read_text())
            raise ExportError(f"{self.spec.name} -> {fmt.name}: {error['error']} "
                              f"(cached failure; delete {error_path} to retry)")
        if not (path.exists() and meta_path.exists()):
            return None
        meta = json.loads(meta_path.read_text())
        # Files cached before rewrites were recorded: their key says none were applied.
        meta.setdefault("rewrites", list(self.rewrites(fmt)))
        return Artifact(self.spec.name, fmt.name, path, meta, cache_hit=True)

    def _convert(self, fmt: ExportFormat, path: Path, meta_path: Path, error_path: Path,
                 upstream: Path | None) -> Artifact:
        from models.export.request import ExportRequest

        request = ExportRequest(spec=self.spec, model=self.model, example=self.example,
                                out_path=path.with_suffix(".tmp" + fmt.suffix),
                                calibration=self.calibration if fmt.uses_calibration else [],
                                upstream=upstream,
                                int8_recipe=self.int8_recipe if fmt.uses_recipe else None)
        self.converter_calls.append(fmt.name)
        start = time.perf_counter()
        try:
            meta = self._run_converter(fmt, request)
        except Exception as err:
            message = f"{type(err).__name__}: {str(err).strip().splitlines()[0][:300]}"
            error_path.write_text(json.dumps({
                "error": message, "traceback": traceback.format_exc()[-4000:]}))
            request.out_path.unlink(missing_ok=True)
            raise ExportError(f"{self.spec.name} -> {fmt.name}: {message}") from err
        request.out_path.replace(path)
        meta = {**meta, "rewrites": list(self.rewrites(fmt)),
                "export_seconds": round(time.perf_counter() - start, 2),
                "versions": library_versions(fmt.libraries), "recipe": self.recipe(fmt),
                "key": path.stem}
        meta_path.write_text(json.dumps(meta, indent=1, default=str))
        return Artifact(self.spec.name, fmt.name, path, meta, cache_hit=False)

    def _run_converter(self, fmt: ExportFormat, request: ExportRequest) -> dict:
        own = self.own_rewrites(fmt)
        if not own:
            return fmt.load_converter()(request)
        from models.export.rewrites import applied

        # Only for this conversion: the same module object stays PyTorch's reference.
        with applied(request.model, own):
            return fmt.load_converter()(request)
