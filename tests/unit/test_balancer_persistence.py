"""Persistence templates with a hand-advanced clock (ip_vs_sched_persist semantics)."""

import ipaddress

import pytest

from hadirector.balancer.persistence import PersistenceTable, netmask_prefix
from hadirector.balancer.schedulers import Dest, RoundRobin


def ip(s):
    return int(ipaddress.ip_address(s))


@pytest.fixture
def rr():
    ds = [Dest(k, i + 1, 80, 1) for i, k in enumerate("ABC")]
    s = RoundRobin()
    s.update(ds)
    return s, ds


def connect(table, sched, client, now):
    dest, t = table.schedule(client, now, lambda: sched.schedule(client, 0, 0, 80, now))
    table.attach(t, now)
    return dest, t


def test_client_stays_on_one_real_until_timeout(rr):
    sched, _ = rr
    table = PersistenceTable(timeout=300, prefix=32)
    c = ip("203.0.113.7")
    first, t = connect(table, sched, c, 0.0)
    table.release(t, 1.0)
    # other clients rotate the rr position meanwhile
    for i, now in enumerate([10.0, 100.0, 250.0, 300.5]):
        other, ot = connect(table, sched, ip("203.0.113.100") + i, now)
        table.release(ot, now)
        dest, t = connect(table, sched, c, now)
        assert dest is first
        table.release(t, now)
    # 300 s after the last use (and no connection open) the template is gone: rescheduled
    assert table.lookup(c, 300.5 + 299.9) is not None
    assert table.lookup(c, 300.5 + 300.1) is None


def test_template_lives_while_connections_exist(rr):
    sched, _ = rr
    table = PersistenceTable(timeout=60, prefix=32)
    c = ip("203.0.113.8")
    first, t = connect(table, sched, c, 0.0)  # a long connection, open for 1000 s
    assert table.lookup(c, 500.0) is t
    table.release(t, 1000.0)
    assert table.lookup(c, 1059.0) is t  # 60 s after the last one ended
    assert table.lookup(c, 1060.5) is None
    assert first.persist == 0  # the expired template released its count


def test_timeout_refreshed_by_each_new_connection(rr):
    sched, _ = rr
    table = PersistenceTable(timeout=60, prefix=32)
    c = ip("203.0.113.9")
    first, t = connect(table, sched, c, 0.0)
    table.release(t, 0.5)
    for now in (50.0, 100.0, 150.0):  # each within 60 s of the previous
        d, t = connect(table, sched, c, now)
        table.release(t, now + 0.5)
        assert d is first
    assert table.lookup(c, 210.0) is t
    assert table.lookup(c, 211.0) is None


def test_netmask_groups_clients(rr):
    sched, _ = rr
    table = PersistenceTable(timeout=60, prefix=netmask_prefix("255.255.255.0", False))
    a, _ = connect(table, sched, ip("198.51.100.1"), 0.0)
    b, _ = connect(table, sched, ip("198.51.100.254"), 1.0)
    c, _ = connect(table, sched, ip("198.51.101.1"), 2.0)
    assert a is b and c is not a
    assert len(table) == 2


def test_removed_real_invalidates_template(rr):
    sched, ds = rr
    table = PersistenceTable(timeout=60, prefix=32)
    c = ip("192.0.2.44")
    first, t = connect(table, sched, c, 0.0)
    first.available = False
    sched.update([d for d in ds if d is not first])
    again, _ = connect(table, sched, c, 1.0)
    assert again is not first


def test_quiesced_real_keeps_template_unless_expire_quiescent_template(rr):
    sched, ds = rr
    for expire, stays in ((False, True), (True, False)):
        for d in ds:
            d.set_weight(1)
        table = PersistenceTable(timeout=60, prefix=32, expire_quiescent_template=expire)
        c = ip("192.0.2.45")
        first, t = connect(table, sched, c, 0.0)
        first.set_weight(0)  # ldirectord quiescent=yes on failure
        again, _ = connect(table, sched, c, 1.0)
        assert (again is first) == stays


def test_no_destination_creates_no_template():
    d = Dest("A", 1, 80, 0)
    s = RoundRobin()
    s.update([d])
    table = PersistenceTable(timeout=60, prefix=32)
    assert table.schedule(5, 0.0, lambda: s.schedule(5, 0, 0, 80, 0.0)) is None
    assert len(table) == 0


def test_expire_sweep_and_deadline(rr):
    sched, ds = rr
    table = PersistenceTable(timeout=10, prefix=32)
    _, t1 = connect(table, sched, 1, 0.0)
    table.release(t1, 0.0)
    _, t2 = connect(table, sched, 2, 5.0)  # still open
    assert table.next_deadline() == 10.0
    assert table.expire(10.0) == 1
    assert len(table) == 1 and sum(d.persist for d in ds) == 1


def test_netmask_parsing():
    assert netmask_prefix(None, False) == 32
    assert netmask_prefix("255.255.0.0", False) == 16
    assert netmask_prefix("64", True) == 64
    assert netmask_prefix(None, True) == 128
    with pytest.raises(ValueError, match="contiguous dotted-quad"):
        netmask_prefix("255.0.255.0", False)
    with pytest.raises(ValueError, match="prefix length 0..128"):
        netmask_prefix("129", True)


def test_clear_drops_every_template_and_open_connections_still_release(rr):
    sched, ds = rr
    table = PersistenceTable(timeout=60, prefix=32)
    open_one = connect(table, sched, ip("203.0.113.20"), 0.0)[1]
    for i in range(1, 3):
        table.release(connect(table, sched, ip("203.0.113.20") + i, 0.0)[1], 0.0)
    assert len(table) == 3 and sum(d.persist for d in ds) == 3
    table.clear()
    assert len(table) == 0 and sum(d.persist for d in ds) == 0
    assert table.lookup(ip("203.0.113.20"), 1.0) is None
    table.release(open_one, 2.0)  # the connection made through a cleared template ends later
    assert open_one.controlled == 0 and len(table) == 0 and sum(d.persist for d in ds) == 0
