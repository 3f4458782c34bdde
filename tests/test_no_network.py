"""The default suite needs no network: a slice runs, exports included, with sockets blocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LITE = "deeplabv3plus_mnv3_lite"

# Loaded by every Python started with this folder on PYTHONPATH (subprocesses included).
SITECUSTOMIZE = '''
import os
import socket

_LOG = os.environ.get("SEGCONFORM_NETLOG")


def _record(kind, detail):
    if _LOG:
        with open(_LOG, "a") as log:
            log.write(f"{os.getpid()} {kind} {detail!r}\\n")


def _blocked(kind, detail):
    _record(kind, detail)
    return OSError(f"network blocked by tests/test_no_network.py: {kind} {detail!r}")


_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex


def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        raise _blocked("connect", address)
    return _connect(self, address)  # local (AF_UNIX) sockets are not network


def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        raise _blocked("connect_ex", address)
    return _connect_ex(self, address)


def create_connection(address, *args, **kwargs):
    raise _blocked("create_connection", address)


def getaddrinfo(host, *args, **kwargs):
    raise _blocked("getaddrinfo", host)


socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
socket.create_connection, socket.getaddrinfo = create_connection, getaddrinfo
_record("armed", "")
'''



def test_the_block_catches_a_connection(tmp_path: Path) -> None:
    """The harness is not vacuous: an HTTP request under it fails and is logged."""
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "network.log"
    env = {**os.environ, "SEGCONFORM_NETLOG": str(log), "PYTHONPATH": str(tmp_path)}
    probe = "import urllib.request as u; u.urlopen('http://example.com', timeout=5)"
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode != 0 and "network blocked" in done.stderr, done.stderr[-2000:]
    assert "example.com" in log.read_text()


def test_parity_slice_runs_offline(tmp_path: Path) -> None:
    """TorchScript, TorchScript lite and ONNX of the lite model: exported now, then checked."""
    from models.export.cache import cache_root

    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    cache = tmp_path / "cache"  # empty but for the fixture weights: the exports happen here
    cache.mkdir()
    (cache / "fixture_weights").symlink_to(cache_root() / "fixture_weights")
    log, results = tmp_path / "network.log", tmp_path / "results.json"
    env = {**os.environ, "SEGCONFORM_NETLOG": str(log), "SEGCONFORM_CACHE": str(cache),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(site),
                                                       os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-o", "addopts=--strict-markers", f"--bundle-dir={tmp_path / 'bundles'}",
               "--report-json", str(results), "conformance/test_parity.py",
               "-k", f"{LITE} and (onnx or torchscript) and not cuda"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    output = (done.stdout + done.stderr)[-3000:]
    lines = log.read_text().splitlines() if log.is_file() else []
    assert any(" armed " in line for line in lines), "the socket block was not loaded"
    attempts = [line for line in lines if " armed " not in line]
    assert not attempts, f"network use attempted: {attempts[:5]}"
    assert done.returncode == 0, output
    rows = json.loads(results.read_text())["results"]
    outcomes = {row["format"]: row["outcome"] for row in rows}
    assert outcomes == {"torchscript": "passed", "torchscript_lite": "passed",
                        "onnx": "passed"}, output
    assert all(row["info"].get("cache") == "exported" for row in rows), output
