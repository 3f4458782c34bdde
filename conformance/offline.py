"""pytest plugin: the whole session offline (--block-network or SEGCONFORM_BLOCK_NETWORK=1).

Python-level sockets may reach loopback (127.0.0.0/8, ::1, localhost) and local AF_UNIX
sockets only; anything else raises `NetworkBlocked` naming the host. Every blocked attempt is
also recorded, and a session with any attempt fails even where a library swallowed the error
(ultralytics-style "am I online?" probes). The option sets the variable, so child pytest
processes (tests/suite_run.py) block too. Code that opens sockets in C (outside Python's
`socket` module) is not covered.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

import pytest

ENV = "SEGCONFORM_BLOCK_NETWORK"
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


class NetworkBlocked(OSError):
    """A connection or lookup of a non-loopback host while the network is blocked."""


def _text(host: Any) -> str:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    return str(host).split("%", 1)[0]  # drop an IPv6 zone id


def _address(host: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(_text(host))
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return mapped or address


def is_loopback(host: Any) -> bool:
    """Whether `host` (an address or a name; None or "" is this host) stays on this machine."""
    if host in (None, "", b""):
        return True
    if _text(host).lower() in _LOOPBACK_NAMES:
        return True
    address = _address(host)
    return address is not None and address.is_loopback


def needs_dns(host: Any) -> bool:
    """Whether looking `host` up would ask a name server (an address literal would not)."""
    return not is_loopback(host) and _address(host) is None


class NetworkGuard:
    """Patches `socket` so that only loopback is reachable; `remove()` restores what it found."""

    _PATCHED = ("connect", "connect_ex", "sendto")
    _LOOKUPS = ("getaddrinfo", "gethostbyname", "gethostbyname_ex")

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._saved: dict[str, Any] = {}

    def install(self) -> None:
        """Patch socket methods and name lookups (nesting-safe: a later install wraps this)."""
        for name in self._PATCHED:
            self._saved[name] = getattr(socket.socket, name)
            setattr(socket.socket, name, self._method(name, self._saved[name]))
        for name in self._LOOKUPS:
            self._saved[name] = getattr(socket, name)
            setattr(socket, name, self._lookup(name, self._saved[name]))

    def remove(self) -> None:
        """Put back the functions found at install time."""
        for name in self._PATCHED:
            setattr(socket.socket, name, self._saved[name])
        for name in self._LOOKUPS:
            setattr(socket, name, self._saved[name])
        self._saved.clear()

    def _block(self, what: str, host: Any, port: Any = None) -> NetworkBlocked:
        target = f"{host}:{port}" if port is not None else str(host)
        self.attempts.append(f"{what} {target}")
        return NetworkBlocked(f"network blocked (--block-network / {ENV}=1): {what} to "
                              f"{target}; the suite must run offline")

    def _method(self, name: str, original):
        guard = self

        def blocked(sock: socket.socket, *args: Any) -> Any:
            address = args[-1]  # connect(address), sendto(data[, flags], address)
            if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple) \
                    and not is_loopback(address[0]):
                raise guard._block(name, address[0], address[1])
            return original(sock, *args)

        blocked.__name__ = name
        return blocked

    def _lookup(self, name: str, original):
        guard = self

        def blocked(host: Any, *args: Any, **kwargs: Any) -> Any:
            # Address literals pass: connect() judges the address itself.
            if needs_dns(host):
                raise guard._block(name, host)
            return original(host, *args, **kwargs)

        blocked.__name__ = name
        return blocked


_GUARD = pytest.StashKey[NetworkGuard]()
_ENV_BEFORE = pytest.StashKey["str | None"]()


def active_guard(config: pytest.Config) -> NetworkGuard | None:
    """The session's guard, None when the network is not blocked."""
    return config.stash.get(_GUARD, None)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("segconform").addoption(
        "--block-network", action="store_true", default=False,
        help=f"fail any non-loopback connection or DNS lookup (also: {ENV}=1)")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Install the guard before collection imports any test module."""
    if not (config.getoption("--block-network") or os.environ.get(ENV) == "1"):
        return
    config.stash[_ENV_BEFORE] = os.environ.get(ENV)
    os.environ[ENV] = "1"  # inherited by child pytest processes
    guard = NetworkGuard()
    guard.install()
    config.stash[_GUARD] = guard


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A run that tried the network fails, even when the error was swallowed."""
    guard = active_guard(session.config)
    if guard is not None and guard.attempts and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """List every blocked attempt."""
    guard = active_guard(config)
    if guard is None or not guard.attempts:
        return
    terminalreporter.write_sep("-", f"network blocked: {len(guard.attempts)} attempt(s)",
                               red=True)
    for attempt in guard.attempts[:20]:
        terminalreporter.write_line(attempt, red=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Restore sockets and the variable (an in-process pytester run must not leak them)."""
    guard = active_guard(config)
    if guard is None:
        return
    guard.remove()
    before = config.stash[_ENV_BEFORE]
    if before is None:
        os.environ.pop(ENV, None)
    else:
        os.environ[ENV] = before
