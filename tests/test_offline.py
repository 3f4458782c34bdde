"""The --block-network plugin (conformance/offline.py): public hosts fail, loopback works.

.ci/run runs the whole default tier under it; these tests check the plugin itself in-process.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from conformance.offline import ENV, is_loopback, needs_dns

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("bare_inner_sessions")

PUBLIC = '''
import socket
import urllib.request


def test_http_to_a_public_host():
    urllib.request.urlopen("http://example.com/", timeout=2)


def test_connect_to_a_public_address():
    socket.create_connection(("192.0.2.1", 443), timeout=0.5)  # TEST-NET-1, never routed
'''

LOOPBACK = '''
import os
import socket
import threading

import pytest


def echo_server(family, host):
    server = socket.socket(family, socket.SOCK_STREAM)
    server.bind((host, 0))
    server.listen(1)

    def serve():
        conn, _ = server.accept()
        conn.sendall(conn.recv(16).upper())
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_tcp_on_loopback(host):
    server = echo_server(socket.AF_INET, "127.0.0.1")
    with socket.create_connection((host, server.getsockname()[1]), timeout=5) as client:
        client.sendall(b"ping")
        assert client.recv(16) == b"PING"
    server.close()


def test_tcp_on_ipv6_loopback():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        server = echo_server(socket.AF_INET6, "::1")
    except OSError as err:
        pytest.skip(f"::1 not configured: {err}")
    with socket.create_connection(("::1", server.getsockname()[1]), timeout=5) as client:
        client.sendall(b"v6")
        assert client.recv(16) == b"V6"
    server.close()


def test_unix_sockets(tmp_path):
    a, b = socket.socketpair(socket.AF_UNIX)
    a.sendall(b"x")
    assert b.recv(1) == b"x"
    path = str(tmp_path / "s")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    client = socket.socket(socket.AF_UNIX)
    client.connect(path)
    client.close()
    server.close()


def test_children_inherit_the_switch():
    assert os.environ["SEGCONFORM_BLOCK_NETWORK"] == "1"
'''

SWALLOWED = '''
import socket


def test_library_that_swallows_the_error():
    try:  # as an "am I online?" probe does
        socket.create_connection(("192.0.2.1", 80), timeout=0.5)
    except OSError:
        pass
'''


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.syspathinsert(ROOT)
    pytester.makepyfile(test_inner=source)
    return pytester.runpytest("-p", "conformance.offline", "-p", "no:cacheprovider", *args)


def test_public_host_fails_with_a_message_naming_it(pytester: pytest.Pytester) -> None:
    result = run(pytester, PUBLIC, "--block-network")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*NetworkBlocked: network blocked (--block-network / SEGCONFORM_BLOCK_NETWORK=1): "
        "getaddrinfo to example.com; the suite must run offline*",
        "*NetworkBlocked: network blocked (--block-network / SEGCONFORM_BLOCK_NETWORK=1): "
        "connect to 192.0.2.1:443; the suite must run offline*",
    ])


def test_loopback_and_unix_sockets_work(pytester: pytest.Pytester) -> None:
    result = run(pytester, LOOPBACK, "--block-network")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("skipped", 0) == 5, result.outlines[-20:]
    assert "failed" not in outcomes and "error" not in outcomes, result.outlines[-40:]


def test_a_swallowed_attempt_still_fails_the_run(pytester: pytest.Pytester) -> None:
    result = run(pytester, SWALLOWED, "--block-network")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*network blocked: 1 attempt(s)*", "connect 192.0.2.1:80"])


def test_environment_variable_enables_it(pytester: pytest.Pytester,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "1")
    result = run(pytester, PUBLIC)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*NetworkBlocked*connect to 192.0.2.1:443*"])


def test_session_end_restores_sockets_and_environment(pytester: pytest.Pytester,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    before = (socket.socket.connect, socket.socket.sendto, socket.getaddrinfo)
    result = run(pytester, LOOPBACK, "--block-network")
    assert "failed" not in result.parseoutcomes()
    assert (socket.socket.connect, socket.socket.sendto, socket.getaddrinfo) == before
    assert ENV not in os.environ


def test_off_unless_asked(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    source = '''
import os

from conformance.offline import active_guard


def test_not_blocking(pytestconfig):
    assert active_guard(pytestconfig) is None
    assert "SEGCONFORM_BLOCK_NETWORK" not in os.environ
'''
    run(pytester, source).assert_outcomes(passed=1)


@pytest.mark.parametrize(("host", "local", "dns"), [
    ("127.0.0.1", True, False), ("127.8.9.10", True, False), ("::1", True, False),
    ("::ffff:127.0.0.1", True, False), ("localhost", True, False), (None, True, False),
    ("", True, False), (b"localhost", True, False), ("192.0.2.1", False, False),
    ("2001:db8::1", False, False), ("example.com", False, True), ("0.0.0.0", False, False),
])
def test_what_counts_as_local(host, local: bool, dns: bool) -> None:
    assert is_loopback(host) is local
    assert needs_dns(host) is dns
