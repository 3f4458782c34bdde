"""Keep ultralytics, open_clip, matplotlib and keras offline, and their litter in the suite cache.

Call `configure_offline(cache_root)` before any of those libraries is imported: ultralytics reads
its switches and probes DNS at import time, and writes settings, fonts and runs under $HOME
unless told otherwise.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import warnings
from pathlib import Path

# Font names ultralytics looks up (plots, int8 export) before it tries to download them.
_ULTRALYTICS_FONTS = ("Arial.ttf", "Arial.Unicode.ttf")

_configured: Path | None = None


def configure_offline(cache_root: Path) -> Path:
    """Point every cache and settings dir under `cache_root` and switch all network use off."""
    global _configured
    cache_root = Path(cache_root).resolve()
    yolo_dir = cache_root / "ultralytics"
    env = {
        "YOLO_OFFLINE": "1",  # no DNS probe at import, no hub/events
        "YOLO_AUTOINSTALL": "false",  # else ultralytics pip-installs missing extras at run time
        "YOLO_CONFIG_DIR": str(yolo_dir / "config"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "MPLCONFIGDIR": str(cache_root / "matplotlib"),
        "XDG_CACHE_HOME": str(cache_root / "xdg"),
        "KERAS_HOME": str(cache_root / "keras"),
    }
    if _configured == cache_root and all(os.environ.get(k) == v for k, v in env.items()):
        return cache_root

    if "ultralytics" in sys.modules and os.environ.get("YOLO_CONFIG_DIR") != env["YOLO_CONFIG_DIR"]:
        # Its ONLINE flag and settings path were fixed at import; we can only fix the settings.
        warnings.warn(
            "ultralytics was imported before configure_offline(); its import-time network probe "
            "already ran and its settings file stays where it was",
            RuntimeWarning,
            stacklevel=2,
        )
    os.environ.update(env)
    for key in ("YOLO_CONFIG_DIR", "MPLCONFIGDIR", "XDG_CACHE_HOME", "KERAS_HOME"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)

    _install_fonts(Path(env["YOLO_CONFIG_DIR"]) / "Ultralytics")
    _write_ultralytics_settings(yolo_dir)
    _configured = cache_root
    return cache_root


def _find_spec(name: str):
    # An import blocker (tests) or a broken install must read as "absent", not crash here.
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def _install_fonts(user_config_dir: Path) -> None:
    # matplotlib ships DejaVuSans; found through its spec so matplotlib is not imported here.
    spec = _find_spec("matplotlib")
    if spec is None or spec.origin is None:
        return
    source = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    if not source.is_file():
        return
    user_config_dir.mkdir(parents=True, exist_ok=True)
    for name in _ULTRALYTICS_FONTS:
        target = user_config_dir / name
        if not target.is_file() or target.stat().st_size != source.stat().st_size:
            shutil.copyfile(source, target)


def _write_ultralytics_settings(yolo_dir: Path) -> None:
    if _find_spec("ultralytics") is None:
        return
    # Importing ultralytics.utils is safe now: the environment above is already in place.
    from ultralytics.utils import SETTINGS

    wanted = {
        "sync": False,  # no telemetry / events
        "api_key": "",
        "runs_dir": str(yolo_dir / "runs"),  # default is ./runs in the working directory
        "datasets_dir": str(yolo_dir / "datasets"),
        "weights_dir": str(yolo_dir / "weights"),
        "clearml": False,
        "comet": False,
        "dvc": False,
        "mlflow": False,
        "raytune": False,
        "tensorboard": False,
        "wandb": False,
        "vscode_msg": False,
        "openvino_msg": False,
    }
    changed = {k: v for k, v in wanted.items() if SETTINGS.get(k) != v}
    if changed:  # only write when needed, so repeated calls do not touch the file
        SETTINGS.update(changed)
