"""daemon/sdnotify.py against a real AF_UNIX datagram socket (a path and the abstract namespace),
the STATUS line of the pure renderer, and the watchdog rule."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from hadirector.daemon.node import watchdog_ok
from hadirector.daemon.sdnotify import SystemdNotify, socket_address
from hadirector.render.cluster import service_status


@pytest.fixture(params=["path", "abstract"])
def receiver(request, tmp_path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        name = str(tmp_path / "notify.sock")
        s.bind(name)
    else:
        name = f"@hadirector-test-{uuid.uuid4().hex}"
        s.bind(b"\0" + name[1:].encode())
    s.settimeout(5)
    yield s, name
    s.close()


def test_messages_arrive_as_one_datagram(receiver):
    sock, name = receiver
    env = {"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "4000000", "OTHER": "kept"}
    sd = SystemdNotify.from_environ(env)
    assert env == {"OTHER": "kept"}, "the systemd variables are removed, so children do not inherit them"
    assert sd.enabled and sd.watchdog_interval == 2.0
    assert sd.notify(READY=1, STATUS="active,\n holding   lb") is None
    assert sock.recv(4096) == b"READY=1\nSTATUS=active, holding lb"
    assert sd.notify(WATCHDOG=1) is None
    assert sock.recv(4096) == b"WATCHDOG=1"
    sd.close()


def test_without_a_socket_nothing_is_sent_and_nothing_fails():
    sd = SystemdNotify.from_environ({})
    assert not sd.enabled and sd.watchdog_interval is None
    assert sd.notify(READY=1) is None


def test_watchdog_meant_for_another_pid_is_not_ours():
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert SystemdNotify.from_environ(env).watchdog_interval is None
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}
    assert SystemdNotify.from_environ(env).watchdog_interval == 0.5
    for bad in ("", "0", "-1", "soon"):
        assert SystemdNotify.from_environ({"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": bad}).watchdog_interval is None


def test_a_gone_socket_is_reported_not_raised(tmp_path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(tmp_path / "n.sock"))
    s.close()  # the file stays, nobody reads: ECONNREFUSED
    sd = SystemdNotify(str(tmp_path / "n.sock"))
    err = sd.notify(READY=1)
    assert err is not None and "n.sock" in err
    assert SystemdNotify(str(tmp_path / "absent")).notify(READY=1) is not None


def test_socket_address():
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@abc") == b"\0abc"
    assert socket_address("") is None and socket_address("relative") is None


def _snap(status="active", **groups):
    return {"status": status, "groups": {g: {"state": st, "holders": h} for g, (st, h) in groups.items()}}


@pytest.mark.parametrize("snap,stopping,want", [
    (_snap("starting", lb=("stopping", ["alpha"])), False, "starting (waiting for peers): stopping lb"),
    (_snap("starting", lb=("none", [])), False, "starting (waiting for peers)"),
    (_snap(lb=("held", ["alpha"]), web=("held", ["alpha"])), False, "active, holding lb, web"),
    (_snap(lb=("starting", ["alpha"])), False, "active, starting lb"),
    (_snap(lb=("claim", [])), False, "active, claiming lb"),
    (_snap(lb=("none", ["beta"]), web=("none", [])), False, "backup (lb held by beta; web not held)"),
    (_snap(), False, "backup"),
    (_snap(lb=("stopping", ["alpha"])), True, "leaving: stopping lb"),
    (_snap("leaving", lb=("none", ["beta"])), False, "leaving"),
])
def test_service_status(snap, stopping, want):
    assert service_status("alpha", snap, stopping) == want


@pytest.mark.parametrize("late,overdue,ok", [
    (0.0, 0.0, True), (0.5, 0.0, True), (0.51, 0.0, False), (0.0, 0.5, True), (0.0, 0.6, False),
])
def test_watchdog_ok(late, overdue, ok):
    assert watchdog_ok(late, overdue, 0.5) is ok
