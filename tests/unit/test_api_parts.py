"""The pure parts of the HTTP API (issue 14): `ADDR:PORT`, the [api] model, the event bus and the
events it makes of the daemon's log lines, the failover count of the ownership core. The server
itself is tested on real daemons (tests/integration/test_daemon_api.py)."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from pydantic import ValidationError

from hadirector.cluster.actions import MaintenanceChanged, NodeChanged, OwnerChanged
from hadirector.cluster.eventlog import describe
from hadirector.cluster.messages import Mark
from hadirector.cluster.sim import LinkModel, Sim, cluster_config
from hadirector.config.listen import format_listen, parse_listen
from hadirector.config.model import Api
from hadirector.daemon.events import BusHandler, EventBus, event_of, kind_of


@pytest.mark.parametrize("text,want", [("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:80", ("::1", 80)),
                                       ("0.0.0.0:0", ("0.0.0.0", 0)), (" 198.18.0.1:65535 ", ("198.18.0.1", 65535))])
def test_listen_good(text, want):
    assert parse_listen(text) == want
    assert parse_listen(format_listen(*want)) == want


@pytest.mark.parametrize("text,says", [("127.0.0.1", "expected ADDR:PORT"), (":80", "expected ADDR:PORT"),
                                       ("localhost:80", "expected an IP address"),
                                       ("::1:80", "in brackets"), ("127.0.0.1:65536", "a port 0..65535"),
                                       ("127.0.0.1:http", "a port 0..65535"), ("[127.0.0.1:80", "IP address")])
def test_listen_bad(text, says):
    with pytest.raises(ValueError, match=says):
        parse_listen(text)


def test_api_model():
    assert Api(listen="[::1]:8080").listen == "[::1]:8080"
    assert Api(listen="127.0.0.1:80").max_connections == 64
    with pytest.raises(ValidationError, match="TLS needs both cert_file and key_file"):
        Api(listen="127.0.0.1:80", key_file="/k")
    with pytest.raises(ValidationError, match="expected an IP address"):
        Api(listen="example.org:80")
    with pytest.raises(ValidationError):
        Api(listen="127.0.0.1:80", max_connections=0)


# --------------------------------------------------------------------------- events

def _event(i: int) -> dict:
    return {"time": float(i), "kind": "cluster", "event": "x", "text": f"e{i}"}


def test_bus_keeps_the_recent_ones_and_numbers_them():
    async def go():
        bus = EventBus(keep=3, queue=10)
        for i in range(5):
            bus.publish(_event(i))
        assert [e["text"] for e in bus.recent] == ["e2", "e3", "e4"]
        sub, backlog = bus.subscribe()
        assert [e["id"] for e in backlog] == [3, 4, 5]
        _, since = bus.subscribe(since=4)
        assert [e["id"] for e in since] == [5]
        bus.publish(_event(5))
        assert (await sub.queue.get())["text"] == "e5"
    asyncio.run(go())


def test_a_subscriber_that_falls_behind_is_cut_off_not_waited_for():
    async def go():
        bus = EventBus(keep=10, queue=4)
        slow, _ = bus.subscribe()
        fast, _ = bus.subscribe()
        for i in range(4):
            bus.publish(_event(i))
            await fast.queue.get()
        assert not slow.dropped and slow.queue.qsize() == 4
        bus.publish(_event(4))  # the fifth unread event: the slow one is dropped, the fast one gets it
        assert slow.dropped and slow.wake.is_set() and slow not in bus.subscribers
        assert bus.dropped_subscribers == 1
        assert (await fast.queue.get())["text"] == "e4" and not fast.dropped
    asyncio.run(go())


@pytest.mark.parametrize("name,kind", [("real-down", "check"), ("real-up", "check"), ("owner-changed", "cluster"),
                                       ("maintenance-changed", "maintenance"), ("balancer-active", "balancer"),
                                       ("quorum-changed", "balancer"), ("request-result", "operator"),
                                       ("node-changed", "cluster"), ("reload", "cluster")])
def test_kinds(name, kind):
    assert kind_of(name) == kind


def _logged(items, me="beta") -> list[dict]:
    """What the bus gets when the daemon logs these core outputs as node.py does."""
    async def go():
        bus = EventBus()
        log = logging.getLogger("hadirector.test_api_parts")
        log.setLevel(logging.DEBUG)
        log.propagate = False
        handler = BusHandler(bus, asyncio.get_running_loop(), me)
        log.addHandler(handler)
        try:
            for a in items:
                line = describe(a, me)
                log.log(line.level, "%s", line.text, extra={"fields": line.fields})
            log.debug("a debug line", extra={"fields": {"EVENT": "x"}})  # not an event: below INFO
            log.warning("a line that names no event")
        finally:
            log.removeHandler(handler)
        return list(bus.recent)
    return asyncio.run(go())


def test_events_carry_the_log_words_and_the_fields():
    mark = Mark("TCP 198.18.0.100:80", "198.18.0.11:80", "drain", 10, "alpha", "root@alpha", 1764636000)
    items = [OwnerChanged("web", "alpha", "beta", "node alpha dead"), NodeChanged("alpha", "active", "dead", "silent"),
             MaintenanceChanged((mark,))]
    got = _logged(items)
    assert len(got) == 3
    owner, node, maint = got
    assert owner["text"] == describe(items[0], "beta").text == "group web: owner alpha -> beta (node alpha dead)"
    assert owner["kind"] == "cluster" and owner["event"] == "owner-changed" and owner["group"] == "web"
    assert owner["level"] == "notice" and owner["director"] == "beta" and owner["node"] == "beta"
    assert node["node"] == "alpha" and node["level"] == "warning" and node["text"].startswith("node alpha: active -> dead")
    assert maint["kind"] == "maintenance" and maint["virtual"] == "TCP 198.18.0.100:80"
    assert maint["real"] == "198.18.0.11:80" and "maintenance drain" in maint["text"]
    assert all(isinstance(e["time"], float) for e in got)


def test_a_record_without_an_event_is_none():
    rec = logging.LogRecord("hadirector", logging.INFO, __file__, 1, "hello %s", ("x",), None)
    assert event_of(rec, "alpha") is None
    rec.fields = {"EVENT": "real-down", "VIRTUAL": "TCP 1.2.3.4:80", "REAL": "5.6.7.8:80", "NODE": "alpha"}
    e = event_of(rec, None)
    assert e["text"] == "hello x" and e["kind"] == "check" and e["director"] == "alpha" and e["real"] == "5.6.7.8:80"


def test_events_logged_from_another_thread_reach_the_loop():
    async def go():
        bus = EventBus()
        handler = BusHandler(bus, asyncio.get_running_loop(), "alpha")
        rec = logging.LogRecord("hadirector", logging.WARNING, __file__, 1, "from a thread", (), None)
        rec.fields = {"EVENT": "x"}
        threads = []
        bus.listeners.append(lambda e: threads.append(threading.get_ident()))
        await asyncio.to_thread(handler.emit, rec)
        await asyncio.sleep(0)
        assert [e["text"] for e in bus.recent] == ["from a thread"]
        assert threads == [threading.get_ident()]  # published on the loop's thread, not the worker's
    asyncio.run(go())


# --------------------------------------------------------------------------- failovers

def test_failovers_are_counted_by_the_ownership_core():
    s = Sim(cluster_config(groups={"web": "alpha"}), seed=2, link=LinkModel())
    s.run(2500)
    core = lambda n: s.nodes[n].core  # noqa: E731
    assert core("beta").ownership.failovers["web"] == 0  # the first start is not a failover
    s.crash("alpha")
    s.run(2000)
    assert s.owner("web") == "beta"
    assert core("beta").ownership.failovers["web"] == 1
    s.restart("alpha")
    s.run(4000)  # auto_failback: back to alpha, a move to a node that did not hold it
    assert s.owner("web") == "alpha"
    assert core("beta").ownership.failovers["web"] == 2


# --------------------------------------------------------------------------- run --api

def test_run_api_for_a_heartbeat_directory(tmp_path, capsys):
    """`hadirector run --api ADDR:PORT [--api-token-file F]` gives any configuration an [api]
    table, checked as the loader checks one."""
    from legacy_util import load, make_ha_dir

    from hadirector.commands.run import with_api
    loaded = load(make_ha_dir(tmp_path))
    assert loaded.legacy and loaded.config.api is None
    assert with_api(loaded, None, None) is loaded
    got = with_api(loaded, "[::1]:0", None)
    assert got.config.api.listen == "[::1]:0" and got.config.api.token_file is None
    assert got.config.cluster == loaded.config.cluster and got.legacy
    token = tmp_path / "token"
    token.write_text("abc\n")
    token.chmod(0o600)
    got = with_api(loaded, "127.0.0.1:8080", str(token))
    assert got.config.api.token_file == str(token)
    token.chmod(0o640)
    capsys.readouterr()
    assert with_api(loaded, "127.0.0.1:8080", str(token)) is None
    assert f"--api-token-file ({token}): readable by group (mode 0640)" in capsys.readouterr().err
    assert with_api(loaded, None, str(token)) is None
    assert "needs --api ADDR:PORT" in capsys.readouterr().err


def test_the_dashboard_files_are_read_once_from_a_folder(tmp_path):
    from hadirector.daemon.api import STATIC_MAX, load_dashboard
    assert load_dashboard(tmp_path / "none") == {}
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "app.js").write_text("1")
    (tmp_path / ".hidden").write_text("x")
    (tmp_path / "big.bin").write_bytes(b"x" * (STATIC_MAX + 1))
    (tmp_path / "sub").mkdir()
    assert load_dashboard(tmp_path) == {"index.html": b"<!doctype html>", "app.js": b"1"}
