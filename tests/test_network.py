"""The test suite runs without network: only loopback and Unix sockets are allowed.

setup.cfg passes ``--disable-socket --allow-unix-socket --allow-hosts=127.0.0.1,localhost,::1``
to pytest (pytest-socket) and ``tests/conftest.py`` adds that host names other than localhost
are not resolved and that tests marked ``enable_socket`` are held to loopback too. These tests
check that a connection anywhere else fails at once, in-process, without a packet leaving the
machine (192.0.2.1 is TEST-NET-1, reserved for documentation), while what dask needs works.
"""

import asyncio
import socket
import threading
import urllib.request

import pytest
import pytest_socket

BLOCKED = (pytest_socket.SocketBlockedError, pytest_socket.SocketConnectBlockedError)
pytestmark = pytest.mark.filterwarnings("ignore:A test tried to")


def test_suite_is_configured_to_block(pytestconfig):
    assert pytestconfig.getoption("--disable-socket")
    assert pytestconfig.getoption("--allow-unix-socket")
    hosts = set(pytestconfig.getoption("--allow-hosts").split(","))
    assert hosts == {"127.0.0.1", "localhost", "::1"}


def test_connection_to_the_internet_is_refused():
    with pytest.raises(pytest_socket.SocketConnectBlockedError, match="192.0.2.1"):
        socket.create_connection(("192.0.2.1", 80), timeout=5)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(pytest_socket.SocketConnectBlockedError):
            s.connect(("8.8.8.8", 80))       # what dask's get_ip() does
    finally:
        s.close()


def test_dns_and_urls_are_refused():
    with pytest.raises(BLOCKED, match="pypi.org"):
        socket.getaddrinfo("pypi.org", 443)
    with pytest.raises(BLOCKED):
        urllib.request.urlopen("https://pypi.org/simple/", timeout=5)
    with pytest.raises(BLOCKED):
        urllib.request.urlopen("http://192.0.2.1/", timeout=5)


@pytest.mark.enable_socket
def test_enable_socket_marker_still_loopback_only():
    with pytest.raises(pytest_socket.SocketConnectBlockedError):
        socket.create_connection(("192.0.2.1", 80), timeout=5)
    _loopback_round_trip("127.0.0.1")


def _loopback_round_trip(host):
    server = socket.create_server((host, 0))
    port = server.getsockname()[1]

    def serve():
        conn, _ = server.accept()
        with conn:
            conn.sendall(conn.recv(16).upper())
    t = threading.Thread(target=serve)
    t.start()
    try:
        with socket.create_connection((host, port), timeout=10) as c:
            c.sendall(b"ping")
            assert c.recv(16) == b"PING"
    finally:
        t.join(10)
        server.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_works(host):
    """dask's schedulers and workers talk over loopback TCP."""
    _loopback_round_trip(host)


def test_unix_sockets_and_asyncio_work():
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"x")
        assert b.recv(1) == b"x"

    async def nothing():
        await asyncio.sleep(0)
        return 1
    assert asyncio.run(nothing()) == 1
