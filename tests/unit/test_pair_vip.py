"""Two node cores whose groups carry a VIP, on simulated heartbeat links and a simulated public LAN
(cluster/sim.py): address probing before a takeover, kernel leases, conflicts, no flaps (issue 10).

Timing: keepalive 100 ms, warntime 300 ms, deadtime 500 ms, initdead 1000 ms; so (guard.py) the
lease is 300 ms renewed every 100 ms, and a probe goes out every 25 ms.

Besides the simulator's "two nodes run the group" record, every test checks what a client sees:
`answer_violations`, the moments two kernels answer for one address.
"""

import pytest

from hadirector.cluster.actions import (AcquireGroup, AddressConflict, HeldElsewhere, Lease,
                                        NodeChanged, ProbeAddress, Reannounce, ReleaseGroup, Stalled)
from hadirector.cluster.sim import LinkModel, Sim, cluster_config

DEADTIME = 500
VIP_A = "198.18.0.100"
LOSSY = LinkModel(loss=0.05, delay=(1, 20), dup=0.05, replay=0.05)


def sim(seed=7, link=LOSSY, run=2000, leases=True, **cfg):
    cfg.setdefault("vips", True)
    s = Sim(cluster_config(**cfg), seed=seed, link=link, leases=leases)
    s.run(run)
    return s


def owners(s):
    return {g.name: s.owner(g.name) for g in s.config.groups}


def after(events, t0):
    return [(t, a) for t, a in events if t >= t0]


def acquired(s, node, group, t0=0):
    return [t for t, a in after(s.events(node, AcquireGroup), t0) if a.group == group]


def test_vip_groups_start_at_home_with_leases_and_no_probing_when_both_are_heard():
    s = sim()
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}
    assert s.answer_violations == [] and s.violations == []
    leases = [a for _, a in s.events("alpha", Lease) if a.group == "g-alpha"]
    assert leases and leases[0].addresses == (VIP_A,)
    assert s.nodes["alpha"].lease["g-alpha"] > s.now  # renewed, still valid
    # both were heard before anybody claimed: the handshake is the check, nothing to probe
    assert not s.events("alpha", ProbeAddress) and not s.events("beta", ProbeAddress)


def test_heartbeat_cut_with_the_lan_up_is_no_failover():
    """Every heartbeat link between the two is cut, the public LAN works: beta declares alpha
    dead but alpha still answers for its VIP, so beta does not take it (and says why, once)."""
    s = sim()
    t0 = s.now
    s.cut(None, "alpha", "beta")
    s.run(5000)
    assert s.nodes["beta"].core.membership.node_state("alpha") == "dead"
    assert acquired(s, "beta", "g-alpha", t0) == [] and acquired(s, "alpha", "g-beta", t0) == []
    held = [e for _, e in after(s.events("beta", HeldElsewhere), t0)]
    assert [(e.group, e.address, e.mac, e.nodes) for e in held] == \
        [("g-alpha", VIP_A, s.macs["alpha"], ("alpha",))]
    status = s.nodes["beta"].core.status(s.now)
    assert status["peers"]["alpha"]["state"] == "dead" and status["peers"]["alpha"]["alive_on"] == "eth0"
    assert s.running("g-alpha") == ["alpha"] and s.running("g-beta") == ["beta"]
    s.heal()
    t1 = s.now
    s.run(3000)
    assert not after(s.events("alpha", ReleaseGroup), t1) and not after(s.events("beta", ReleaseGroup), t1)
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}
    assert s.answer_violations == [] and s.violations == []


def test_power_loss_failover_is_not_delayed_by_probing():
    s = sim()
    s.crash("alpha")
    t0 = s.now
    s.run(2000)
    (t,) = acquired(s, "beta", "g-alpha", t0)
    assert DEADTIME <= t - t0 <= DEADTIME + 150
    # the probes went out from warntime on, before deadtime
    probes = [t for t, a in after(s.events("beta", ProbeAddress), t0) if a.address == VIP_A]
    assert probes and probes[0] - t0 < DEADTIME
    assert s.answer_violations == []


@pytest.mark.parametrize("how", ["kill", "freeze"])
def test_a_dead_or_frozen_daemons_kernel_goes_silent_before_the_peer_takes_over(how):
    """kill -9 (resources stay) or SIGSTOP: the holder renews no lease, so its kernel stops
    answering within the lease (300 ms); beta, probing from warntime, finds the wire clear by
    deadtime. At no moment do two kernels answer."""
    s = sim()
    getattr(s, how)("alpha")
    t0 = s.now
    s.run(2000)
    assert "g-alpha" in s.nodes["alpha"].running  # its address is still there...
    assert not s.answers("alpha", "g-alpha")  # ...but its kernel is silent
    (t,) = acquired(s, "beta", "g-alpha", t0)
    assert t - t0 <= DEADTIME + 150
    assert s.answer_violations == []


@pytest.mark.parametrize("first", ["timer", "packets", "arp"])
def test_sigstop_2s_then_resume(first):
    """The issue's SIGSTOP case. During the freeze beta takes over; after the resume alpha, which
    knows it stalled and whose lease ran out, renews nothing, yields to beta and takes the group
    back only by auto_failback's handover: at most that one move after the resume, and never two
    kernels answering. Every order of timer, datagram and ARP frame after the freeze: the stall
    is noticed on whichever input comes first (an ARP frame of beta's takeover that waited in the
    address watch's socket once made alpha renew its lease and defend the VIP before it knew)."""
    s = sim(link=LinkModel())
    s.freeze("alpha")
    t0 = s.now
    s.run(2000)
    s.thaw("alpha", packets_first=first == "packets", arp_first=first == "arp")
    t1 = s.now
    s.run(3000)
    assert [e for _, e in after(s.events("alpha", Stalled), t1)]
    assert acquired(s, "beta", "g-alpha", t0)[0] - t0 <= DEADTIME + 150
    # no lease renewal between the resume and alpha's own re-acquisition by failback
    reacq = acquired(s, "alpha", "g-alpha", t1)
    assert len(reacq) == 1
    assert not [t for t, a in after(s.events("alpha", Lease), t1) if a.group == "g-alpha" and t < reacq[0]]
    assert [a.reason for _, a in after(s.events("alpha", ReleaseGroup), t1)] == \
        ["split brain: this node stalled; beta kept it running"]
    assert [a.reason for _, a in after(s.events("beta", ReleaseGroup), t1)] == \
        ["auto_failback to preferred node alpha"]
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}
    assert s.answer_violations == []


def test_sigstop_2s_with_auto_failback_off_settles_with_one_move():
    s = sim(link=LinkModel(), auto_failback="off")
    s.freeze("alpha")
    s.run(2000)
    s.thaw("alpha", packets_first=True)
    t1 = s.now
    s.run(3000)
    assert owners(s) == {"g-alpha": "beta", "g-beta": "beta"}
    assert not acquired(s, "alpha", "g-alpha", t1) and not after(s.events("beta", ReleaseGroup), t1)
    assert s.answer_violations == []


def test_a_stall_shorter_than_the_lease_changes_nothing():
    """Frozen 230 ms right after a renewal: more than two keepalives, so a stall, but the lease
    (300 ms) never ran out, so the kernel answered all along and no peer can have taken over."""
    s = sim(link=LinkModel())
    for _ in range(200):
        last = s.events("alpha", Lease)[-1][0]
        if last == s.now:
            break
        s.run(1)
    assert last == s.now
    s.freeze("alpha")
    s.run(230)
    s.thaw("alpha", packets_first=True)
    t1 = s.now
    s.run(2000)
    assert [e for _, e in after(s.events("alpha", Stalled), t1)]
    assert not after(s.events("alpha", ProbeAddress), t1)
    assert not after(s.events("alpha", ReleaseGroup), t1) and not after(s.events("beta", AcquireGroup), t1)
    assert s.answers("alpha", "g-alpha")
    assert s.answer_violations == []


def test_a_stall_longer_than_the_lease_probes_before_renewing():
    """400 ms: alpha's lease ran out (its kernel went quiet) but beta waited for deadtime; alpha
    probes its own VIP, finds nobody else, renews, and keeps its group."""
    s = sim(link=LinkModel())
    s.freeze("alpha")
    s.run(400)
    s.thaw("alpha", packets_first=True)
    t1 = s.now
    assert not s.answers("alpha", "g-alpha")
    s.run(2000)
    probes = [t for t, a in after(s.events("alpha", ProbeAddress), t1)]
    renewals = [t for t, a in after(s.events("alpha", Lease), t1) if a.group == "g-alpha"]
    assert probes and renewals and renewals[0] > probes[0]
    assert renewals[0] - t1 < 200
    assert not after(s.events("alpha", ReleaseGroup), t1) and not acquired(s, "beta", "g-alpha", t1)
    assert s.answers("alpha", "g-alpha") and s.answer_violations == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_half_the_heartbeats_lost_for_30s_no_move(seed):
    s = sim(seed=seed, link=LinkModel(loss=0.5, delay=(1, 5)), links=1)
    t0 = s.now
    s.run(30_000)
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}
    for n in ("alpha", "beta"):
        assert not after(s.events(n, ReleaseGroup), t0) and not after(s.events(n, AcquireGroup), t0)
    assert s.answer_violations == []


@pytest.mark.parametrize("stagger", [0, 300, -300])
def test_nodes_that_never_hear_each_other_answer_once(stagger):
    """Different authkeys secrets or udpports: the two never hear each other. Each takes what it
    thinks is unowned after initdead, but probes first; only one answers for each VIP, whoever
    starts first."""
    s = Sim(cluster_config(vips=True), seed=4, link=LOSSY, start=False)
    s.cut(None, "alpha", "beta")
    s.boot("alpha", 1, at=max(0, -stagger))
    s.boot("beta", 1, at=max(0, stagger))
    s.run(5000)
    for g in ("g-alpha", "g-beta"):
        assert len([n for n in ("alpha", "beta") if s.answers(n, g)]) == 1, (g, s.running(g))
    if stagger == 0:  # at the same time: the preferred node wins the simultaneous probe
        assert s.answers("alpha", "g-alpha") and s.answers("beta", "g-beta")
    assert s.answer_violations == []


def test_without_leases_a_frozen_holder_keeps_the_peer_out():
    """A node without nftables: its frozen daemon's kernel keeps answering. Probing still keeps
    the peer from taking the VIP while it does."""
    s = sim(leases=False)
    s.freeze("alpha")
    t0 = s.now
    s.run(2000)
    assert acquired(s, "beta", "g-alpha", t0) == []
    s.thaw("alpha")
    s.run(2000)
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}
    assert s.answer_violations == []


def test_after_a_full_partition_the_lan_heals_first_and_the_defended_address_wins():
    """LAN and heartbeat both cut: each side takes everything (nothing can tell them apart).
    The LAN heals first: alpha sees beta claim g-alpha's VIP, defends it once (RFC 5227) and,
    being the keeper (preferred), keeps it; beta, hearing the defence, lets go."""
    s = sim()
    t0 = s.now
    s.partition(("alpha",), ("beta",))
    s.run(3000)
    assert s.running("g-alpha") == ["alpha", "beta"]
    s.heal_lan()
    t1 = s.now
    # beta's kernel announces its copy (e.g. a periodic garp_refresh) and alpha sees it
    s.call("alpha", "address_seen", VIP_A, "claim", s.macs["beta"], s.macs["alpha"], "eth0")
    s.run(1000)
    conflicts = [e for _, e in after(s.events("alpha", AddressConflict), t1)]
    assert conflicts and conflicts[0].keeper == "alpha"
    assert Reannounce("g-alpha") in [a for _, a in after(s.events("alpha", Reannounce), t1)]
    rel = [a.reason for _, a in after(s.events("beta", ReleaseGroup), t1) if a.group == "g-alpha"]
    assert rel == [f"address conflict: {s.macs['alpha']} answers for {VIP_A} on eth0; alpha keeps it"]
    assert s.running("g-alpha") == ["alpha"]
    assert [v for v in s.overlaps_outside((t0, t1 + 200)) if v[1] == "g-alpha"] == []
