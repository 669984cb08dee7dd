"""The suite's network rule (tests/conftest.py): sockets reach loopback only, and no name other
than a loopback one is looked up."""

import socket
import urllib.request

import pytest
from pytest_socket import SocketBlockedError, SocketConnectBlockedError

# pytest-socket warns as it refuses; here the refusal is the expected outcome.
pytestmark = pytest.mark.filterwarnings("ignore:A test tried to:UserWarning")


def test_a_connection_beyond_loopback_is_refused():
    # 192.0.2.1 is TEST-NET-1 (RFC 5737), routed nowhere. The refusal comes before any packet is
    # sent; the timeout only bounds the test should the guard ever be missing.
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("192.0.2.1", 80), timeout=1)


def test_a_library_cannot_look_up_an_outside_name():
    with pytest.raises(SocketBlockedError, match=r"example\.com"):
        urllib.request.urlopen("http://example.com/", timeout=1)


def test_loopback_stays_open_for_the_tests_of_real_services():
    with socket.create_server(("127.0.0.1", 0)) as server, socket.create_connection(server.getsockname(), timeout=5):
        pass
    assert socket.getaddrinfo("localhost", 80)
