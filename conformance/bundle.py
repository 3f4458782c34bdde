"""On-device bundles: artifact + inputs + PyTorch reference outputs + manifest.

Writing happens on the workstation (after export); reading and verifying needs only numpy,
pytest and the format's runtime (e.g. ai-edge-litert on a Raspberry Pi), never torch.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.export.cache import file_sha256, library_versions

MANIFEST = "manifest.json"
SCHEMA = "segconform.bundle/1"


def _link_or_copy(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _tflite_io(path: Path) -> dict:
    try:
        from models.runtimes.tflite import make_interpreter

        interpreter = make_interpreter(path, threads=1)
    except Exception as err:  # the manifest is still useful without it
        return {"error": str(err)}

    def describe(details):
        return [{"name": d["name"], "shape": [int(s) for s in d["shape"]],
                 "dtype": np.dtype(d["dtype"]).name,
                 "quantization": [float(d["quantization"][0]), int(d["quantization"][1])]}
                for d in details]

    return {"inputs": describe(interpreter.get_input_details()),
            "outputs": describe(interpreter.get_output_details())}


def activation_ranges(path: Path) -> dict[str, list[float]]:
    """Real [min, max] of each quantised activation of a .tflite: the calibrated ranges."""
    from models.export.edgetpu_graph import read_graph
    from models.runtimes.tflite import make_interpreter

    graph = read_graph(path)
    activations = {t.index for op in graph.ops for t in (*op.inputs, *op.outputs)
                   if t is not None and not t.constant}
    ranges = {}
    for detail in make_interpreter(path, threads=1).get_tensor_details():
        scale, zero_point = detail["quantization"]
        dtype = np.dtype(detail["dtype"])
        if detail["index"] not in activations or not scale or dtype.kind not in "iu":
            continue
        limits = np.iinfo(dtype)
        ranges[detail["name"]] = [float(np.float32(scale * (limits.min - zero_point))),
                                  float(np.float32(scale * (limits.max - zero_point)))]
    return ranges


def write_bundle(root: Path, spec, fmt: str, artifact, inputs: list[dict[str, np.ndarray]],
                 outputs: list[dict[str, np.ndarray]], weights: str,
                 calibration: str = "") -> Path:
    """Write (or refresh) the bundle of one model x format under root/model/format.

    `calibration` says which images calibrated a quantised artifact; its activation ranges
    then go into the manifest too.
    """
    folder = Path(root) / spec.name / fmt
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"model{artifact.path.suffix}"
    _link_or_copy(artifact.path, target)
    np.savez(folder / "inputs.npz", **{f"{i}/{k}": v for i, x in enumerate(inputs)
                                        for k, v in x.items()})
    np.savez(folder / "reference.npz", **{f"{i}/{k}": v for i, x in enumerate(outputs)
                                           for k, v in x.items()})
    manifest = {
        "schema": SCHEMA,
        "model": spec.name,
        "format": fmt,
        "task": spec.task,
        "num_classes": spec.num_classes,
        "artifact": target.name,
        "sha256": {name: file_sha256(folder / name)
                   for name in (target.name, "inputs.npz", "reference.npz")},
        "inputs": {i.name: {"shape": list(i.shape), "dtype": i.dtype} for i in spec.inputs},
        "outputs": {k: {"shape": list(v.shape), "dtype": str(v.dtype)}
                    for k, v in outputs[0].items()},
        # Outputs the file may deliver in parts along axis 1 (the runner joins them).
        "output_parts": {name: list(parts) for name, parts in spec.output_parts},
        "images": len(inputs),
        "weights": weights,
        "export": {k: v for k, v in artifact.meta.items() if k != "compiler_log"},
        "versions": library_versions(("torch", "onnx", "onnxruntime", "litert-torch",
                                      "ai-edge-litert", "ai-edge-quantizer", "numpy")),
        "host": platform.platform(),
    }
    if artifact.path.suffix == ".tflite":
        manifest["tflite_io"] = _tflite_io(target)
    if calibration:
        manifest["calibration"] = calibration
        if artifact.path.suffix == ".tflite":
            try:
                manifest["activation_ranges"] = activation_ranges(target)
            except Exception as err:  # the bundle is still usable without them
                manifest["activation_ranges"] = {"error": f"{type(err).__name__}: {err}"}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str))
    return folder


class BundleError(ValueError):
    """A bundle that is incomplete or altered; names the file."""


@dataclass
class Bundle:
    """A bundle read back from disk, hashes verified."""

    folder: Path
    manifest: dict
    inputs: list[dict[str, np.ndarray]]
    outputs: list[dict[str, np.ndarray]]

    @property
    def artifact(self) -> Path:
        return self.folder / self.manifest["artifact"]


def _unflatten(path: Path) -> list[dict[str, np.ndarray]]:
    with np.load(path) as data:
        items: dict[int, dict[str, np.ndarray]] = {}
        for key in data.files:
            index, name = key.split("/", 1)
            items.setdefault(int(index), {})[name] = data[key]
    return [items[i] for i in sorted(items)]


def read_bundle(folder: Path) -> Bundle:
    """Read and verify a bundle folder (manifest schema and sha256 of every file)."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{manifest_path}: no bundle manifest")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as err:
        raise BundleError(f"{manifest_path}: not valid JSON ({err})") from err
    if manifest.get("schema") != SCHEMA:
        raise BundleError(f"{manifest_path}: schema {manifest.get('schema')!r}, expected {SCHEMA}")
    for name, digest in manifest["sha256"].items():
        path = folder / name
        if not path.is_file():
            raise BundleError(f"{path}: listed in the manifest but missing")
        if file_sha256(path) != digest:
            raise BundleError(f"{path}: sha256 differs from the manifest (file altered)")
    return Bundle(folder, manifest, _unflatten(folder / "inputs.npz"),
                  _unflatten(folder / "reference.npz"))


def find_bundles(path: Path) -> list[Path]:
    """Bundle folders at or under `path`."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return [path]
    return sorted(p.parent for p in path.rglob(MANIFEST))
