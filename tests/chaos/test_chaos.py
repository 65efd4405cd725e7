"""The chaos suite: a director pair in network namespaces under real faults, judged from the client's
side (hadirector.lab.chaos; issue 10). Root only.

Every scenario builds a fresh lab: two directors running `hadirector run` from heartbeat files
(keepalive 100 ms, warntime 250 ms, deadtime 500 ms, initdead 1 s, auto_failback on; heartbeat on
its own switch, hb), a client sending an HTTP request to the VIP every 10 ms, and an observer that
asks "who has VIP" by ARP every 10 ms. From those:

  double_ms  time two MACs answered one ARP request (10 ms windows)
  outage_ms  the longest run of the client's requests that got no answer (by send time)
  moves      how often the single MAC answering ARP changed
  silent_ms  time nobody answered ARP

The limits below have margins for a loaded 2-core CI machine: the issue's targets (double <= 20 ms
everywhere; no outage above 50 ms without a move; service back within deadtime + 200 ms) are what
bench/chaos.py measures and docs/benchmarks.md reports. What a test asserts is the behaviour: who
answers, how often it moves, and that nobody is left answering twice. A fault is shown to have
taken effect before its outcome is judged.
"""

from __future__ import annotations

import pytest

from hadirector.lab import chaos
from hdtest import need_root

DOUBLE_MAX = 20  # ms: the target, met in every scenario
FAILOVER_MAX = chaos.DEADTIME + 500  # ms: service back within deadtime + 200 ms, plus CI margin
STEADY_OUTAGE_MAX = 200  # ms: scenarios without a move (target 50 ms; margin for a loaded host)
QUIET_MAX = 50  # ms of ARP windows nobody answered, where the holder never changes


def run(name: str) -> chaos.Measurement:
    need_root("ip", "nft")
    return chaos.run(name)


def log(m: chaos.Measurement, node: str) -> str:
    return m.logs[node]


def test_kill9_with_links_down():
    """Power loss of the holder (daemon killed -9, its links down at once). Expected: dir-b takes
    the VIP after deadtime (probing from warntime on finds nobody answering, so it does not delay
    the takeover): one move, no double answer, outage about deadtime."""
    m = run("kill9_links_down")
    assert m.holders == ["dir-a", "dir-b"], m.explain()
    assert m.double_ms <= DOUBLE_MAX, m.explain()
    assert m.outage_ms <= FAILOVER_MAX, m.explain()


def test_kill9_with_links_up():
    """The holder's daemon is killed -9; its address stays and its links are up. Before, its kernel
    answered forever beside dir-b's. Expected: no daemon renews the lease, so its kernel falls
    silent within the lease (300 ms) and dir-b takes over at deadtime: one move, no double."""
    m = run("kill9_links_up")
    assert m.holders == ["dir-a", "dir-b"] and m.final == ("dir-b",), m.explain()
    assert m.double_ms <= DOUBLE_MAX, m.explain()
    assert m.outage_ms <= FAILOVER_MAX, m.explain()


def test_sigstop_2s_then_sigcont():
    """The holder's daemon is stopped for 2 s (SIGSTOP), then continues. Before: both answered for
    1.5 s. Expected: its lease runs out, dir-b takes over; after SIGCONT dir-a knows it stalled,
    renews nothing and yields; auto_failback (on) hands the VIP back: at most those two moves,
    never two answering."""
    m = run("sigstop_2s")
    assert "loop did not run" in log(m, "dir-a"), m.explain()  # the stall happened and was seen
    assert m.double_ms <= DOUBLE_MAX, m.explain()
    assert m.holders in (["dir-a", "dir-b", "dir-a"], ["dir-a"]), m.explain()
    assert m.final == ("dir-a",), m.explain()
    assert m.outage_ms <= FAILOVER_MAX, m.explain()


def test_heartbeat_switch_dead_5s():
    """The heartbeat switch drops every frame for 5 s, carriers up, public LAN fine. Before: dir-b
    took over after deadtime and both answered for 4.6 s. Expected: dir-b declares dir-a dead but
    sees it still answer for the VIP on eth0, so it does not take over and says why; no move."""
    m = run("hb_switch_dead_5s")
    assert m.extra["dropped"] > 50, m.explain()  # the switch really dropped the heartbeats
    assert "dir-a: active -> dead" in log(m, "dir-b"), m.explain()
    assert "peer dir-a is silent on every heartbeat link but answers for 198.18.0.100 on eth0: " \
           "heartbeat links down, not taking over" in log(m, "dir-b"), m.explain()
    assert m.holders == ["dir-a"] and m.double_ms <= DOUBLE_MAX, m.explain()
    assert m.silent_ms <= QUIET_MAX and m.outage_ms <= STEADY_OUTAGE_MAX, m.explain()


@pytest.mark.parametrize("percent", [30, 50])
def test_random_heartbeat_loss_30s(percent):
    """30 % or 50 % of the heartbeat frames are dropped at random for 30 s. Before (50 %): ten moves
    of the VIP, double answers and 700 ms nobody answering. Expected: no move, no double."""
    m = run(f"hb_loss_{percent}")
    # 2 directors x 10 heartbeats/s x 30 s = 600 frames, of which `percent` % dropped; half of that at least
    assert m.extra["dropped"] > 3 * percent, m.explain()
    assert m.holders == ["dir-a"] and m.double_ms <= DOUBLE_MAX, m.explain()
    assert m.silent_ms <= QUIET_MAX and m.outage_ms <= STEADY_OUTAGE_MAX, m.explain()


def test_every_heartbeat_link_cut_and_healed():
    """Heartbeat on two links (hb and the public LAN); both cut for 5 s (the switch drops hb and
    the LAN's UDP 694; ARP and traffic flow), then healed. Before: both answered during the cut,
    and the heal cost moves. Expected: no move during the cut nor at the heal, no double."""
    m = run("partition_heal")
    assert m.extra["dropped"] > 50 and "dir-a: active -> dead" in log(m, "dir-b"), m.explain()
    assert m.holders == ["dir-a"] and m.double_ms <= DOUBLE_MAX, m.explain()
    assert m.silent_ms <= QUIET_MAX and m.outage_ms <= STEADY_OUTAGE_MAX, m.explain()
    assert "released" not in log(m, "dir-a") and "releasing" not in log(m, "dir-a"), m.explain()


def test_holders_public_nic_down_heartbeat_up():
    """seeds/003: the holder's public NIC dies while its heartbeat lives; ping node 198.18.0.10
    (ipfail). Expected: dir-a loses its ping node, hands the VIP to dir-b (clean handover, release
    before acquire); when the NIC is back, auto_failback returns it: two moves, no double."""
    m = run("public_nic_down")
    assert "ping node 198.18.0.10: down" in log(m, "dir-a"), m.explain()
    assert m.holders == ["dir-a", "dir-b", "dir-a"], m.explain()
    assert m.double_ms <= DOUBLE_MAX, m.explain()
    assert m.outage_ms <= FAILOVER_MAX + chaos.DEADTIME, m.explain()  # deadping, then the handover


def test_different_authkeys_secret():
    """dir-b's authkeys has another secret: neither accepts the other's heartbeats. Before:
    permanent split brain. Expected: the drop names its source and the authkeys index; each node
    probes before taking the VIP after initdead, so exactly one answers; the other says the peer
    answers on eth0 and stays out."""
    m = run("authkeys_differ")
    b = log(m, "dir-b")
    assert "dropped packet from 198.18.1.2 (bad_auth)" in b and "authkeys index 1" in b, m.explain()
    assert m.double_ms <= DOUBLE_MAX and len(m.final) == 1 and len(m.holders) == 1, m.explain()
    other = "dir-b" if m.final == ("dir-a",) else "dir-a"
    assert "answers for 198.18.0.100 on eth0" in log(m, other), m.explain()
    links = m.status["dir-b"]["links"]
    assert links["ucast:eth1"]["dropped"].get("bad_auth", 0) > 0, m.explain()


def test_different_udpport():
    """dir-b's ha.cf says udpport 695: their datagrams draw ICMP port unreachable. Before:
    permanent split brain with no hint. Expected: "nothing listens on ADDR:PORT (udpport or ucast
    differs?)" in the log and per link in status; exactly one answers for the VIP."""
    m = run("udpport_differ")
    assert "nothing listens on 198.18.1.3:694 (udpport or ucast differs?)" in log(m, "dir-a"), m.explain()
    assert "nothing listens on 198.18.1.2:695 (udpport or ucast differs?)" in log(m, "dir-b"), m.explain()
    unreachable = m.status["dir-a"]["links"]["ucast:eth1"]["unreachable"]
    assert unreachable and unreachable[0]["address"] == "198.18.1.3", m.explain()
    assert m.double_ms <= DOUBLE_MAX and len(m.final) == 1 and len(m.holders) == 1, m.explain()


def test_flood_of_bad_datagrams():
    """20,000 datagrams a second for 10 s to both directors' heartbeat port from a host on the
    heartbeat switch: garbage, bad MACs, truncated, replayed captured heartbeats, oversized.
    Expected: each counted under its reason and dropped; no move, no double."""
    m = run("flood")
    assert m.extra["flood_result"]["sent"]["replay"] > 10_000 and m.extra["flood_replays"] > 0, m.explain()
    for node in ("dir-a", "dir-b"):
        dropped = m.status[node]["dropped"]
        for reason in ("bad_version", "bad_auth", "truncated", "replayed", "oversized"):
            assert dropped.get(reason, 0) > 0, (node, reason, dropped, m.explain())
    assert m.holders == ["dir-a"] and m.double_ms <= DOUBLE_MAX, m.explain()
    assert m.silent_ms <= QUIET_MAX and m.outage_ms <= STEADY_OUTAGE_MAX, m.explain()
