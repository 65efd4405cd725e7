"""net/netns.py: the one implementation of entering a network namespace (net/, lab/ and the nft
data plane all use it), against real namespaces made by the lab."""

from __future__ import annotations

import errno
import os
import socket
import threading

import pytest

from hadirector.net.netns import NetnsError, NetnsWorker, in_netns, netns_path, netns_socket


def _ns_inode() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def test_names_and_paths():
    assert netns_path("hdt-x") == "/run/netns/hdt-x"
    assert netns_path("/proc/1/ns/net") == "/proc/1/ns/net"
    for bad in ("", ".", "..", "a/b"):
        with pytest.raises(ValueError, match="bad network namespace name"):
            netns_path(bad)


def test_none_means_here_and_needs_no_root():
    home = _ns_inode()
    with in_netns(None):
        assert _ns_inode() == home
    s = netns_socket(None, socket.AF_INET, socket.SOCK_DGRAM)
    s.close()


def test_a_missing_namespace_is_an_error_naming_it_with_its_errno():
    home = _ns_inode()
    with pytest.raises(NetnsError) as err:
        with in_netns("hdt-no-such-namespace"):
            raise AssertionError("the body must not run")
    assert err.value.errno == errno.ENOENT and "hdt-no-such-namespace" in str(err.value)
    assert not err.value.transient and _ns_inode() == home
    with pytest.raises(NetnsError) as err:
        NetnsWorker("hdt-no-such-namespace")
    assert err.value.errno == errno.ENOENT


def test_socket_belongs_to_the_namespace_and_the_thread_comes_home(lab):
    a = lab.host("a")
    a.connect(lab.switch("lan"), "198.18.0.2/24")
    home = _ns_inode()
    with in_netns(a.netns):
        inside = _ns_inode()
    assert inside != home and _ns_inode() == home
    # 198.18.0.2 exists only in a's namespace: binding it proves where the socket lives
    s = netns_socket(a.netns, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("198.18.0.2", 0))
    finally:
        s.close()
    here = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(OSError) as err:
            here.bind(("198.18.0.2", 0))
        assert err.value.errno == errno.EADDRNOTAVAIL
    finally:
        here.close()


def test_worker_stays_inside(lab):
    a = lab.host("a")
    home = _ns_inode()
    with NetnsWorker(a.netns) as w:
        first = w.call(_ns_inode)
        assert first != home and w.call(_ns_inode) == first
        assert w.call(threading.get_ident) != threading.get_ident()
        s = w.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.close()
    assert _ns_inode() == home
