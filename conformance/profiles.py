"""Device profiles (profiles.toml) and how the host is recognised."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PROFILES_FILE = Path(__file__).with_name("profiles.toml")
DEVICE_MARKERS = ("gpu", "cpu", "pixel2", "pi5", "coral")


@dataclass(frozen=True)
class Profile:
    """One device profile; `listed` None (formats = "all" in profiles.toml): every format."""

    name: str
    description: str
    listed: tuple[str, ...] | None
    threads: int
    device: str
    detect: str

    @property
    def formats(self) -> tuple[str, ...]:
        """The formats the profile runs; "all": PyTorch eager and every row that runs on its
        device, read when asked, so a format added as a row is run (and required) at once."""
        if self.listed is not None:
            return self.listed
        from models.formats import FORMATS, REFERENCE_FORMAT

        return (REFERENCE_FORMAT, *(n for n, row in FORMATS.items() if self.device in row.devices))


@cache
def load_profiles(path: Path = PROFILES_FILE) -> dict[str, Profile]:
    """All profiles by name."""
    with open(path, "rb") as handle:
        table = tomllib.load(handle)
    return {name: Profile(name=name, description=row["description"],
                          listed=None if row["formats"] == "all" else tuple(row["formats"]),
                          threads=int(row["threads"]),
                          device=row["device"], detect=row["detect"])
            for name, row in table.items()}


def markers_for_format(fmt: str, device: str = "cpu") -> list[str]:
    """Device markers of the profiles that run `fmt` on `device`."""
    return [p.name for p in load_profiles().values() if fmt in p.formats and p.device == device]


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _raspberry_pi_5() -> bool:
    model = Path("/proc/device-tree/model")
    return model.is_file() and "Raspberry Pi 5" in model.read_text(errors="ignore")


def _adb_device() -> bool:
    adb = shutil.which("adb")
    if adb is None:
        return False
    out = subprocess.run([adb, "devices"], capture_output=True, text=True, timeout=10,
                         check=False).stdout
    return any(line.endswith("\tdevice") for line in out.splitlines())


def _edge_tpu() -> bool:
    from models.runtimes.edgetpu import list_edge_tpus

    return bool(list_edge_tpus())


_DETECTORS = {"always": lambda: True, "cuda": _cuda, "rpi5": _raspberry_pi_5,
              "adb": _adb_device, "edgetpu": _edge_tpu}


# Set by --assume-device PROFILE (and inherited by child processes): this host is that
# profile's device, for boards the detection misses and for tests of the on-device path.
ASSUME_DEVICE_ENV = "SEGCONFORM_ASSUME_DEVICE"


def host_matches(profile_name: str) -> bool:
    """Whether this host is the profile's device (latency budgets apply only then)."""
    if os.environ.get(ASSUME_DEVICE_ENV) == profile_name:
        return True
    return _detected(profile_name)


@cache
def _detected(profile_name: str) -> bool:
    return bool(_DETECTORS[load_profiles()[profile_name].detect]())


def device_label(profile_name: str) -> str | None:
    """`pi5 profile, numerics on x86_64` when this host is not the profile's device, else None."""
    if host_matches(profile_name):
        return None
    import platform

    return f"{profile_name} profile, numerics on {platform.machine()}"


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what the platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


# Instruction-set extensions that decide which int8 kernels XNNPACK can use (x86, then Arm):
# an int8 speed-up is a property of these, so every timing names them.
INT8_ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
                  "amx_int8", "asimddp", "i8mm", "sve")


def int8_isa(cpuinfo: str | None = None) -> str:
    """The INT8_ISA_FLAGS this CPU has, space-separated ('' where /proc/cpuinfo is absent)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            found = set(value.split())
            return " ".join(f for f in INT8_ISA_FLAGS if f in found)
    return ""


def host_description() -> str:
    """What this host is, for skip reasons."""
    import platform

    return f"{platform.machine()} {platform.system()} ({platform.node()})"
