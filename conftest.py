"""Root conftest: offline switches (before any ML library is imported), options, plugins."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
os.environ.setdefault("SEGCONFORM_CACHE", str(ROOT / ".cache" / "segconform"))

from models.offline import configure_offline  # noqa: E402

configure_offline(Path(os.environ["SEGCONFORM_CACHE"]) / "libraries")

pytest_plugins = ["conformance.report", "conformance.options", "conformance.offline",
                  "conformance.parallel"]
