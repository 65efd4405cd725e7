"""Prometheus metrics of the daemon (`GET /metrics`, daemon/api.py; names in docs/api.md).

One owner per number: `DaemonCollector` reads the daemon's own state when Prometheus scrapes
(the cluster core's status, the ownership core's failover count, the balancer's table and
counters, the health checks' state), so nothing is counted twice. The only observations kept
here are the ones no other part keeps: each health check's duration and each failed check
(`CheckMetrics.observe`, called by the check scheduler when a check ends).

Quorum: `hadirector_quorum` (and `hadirector_quorum_votes{kind=present|expected}`) come from the
cluster core's quorum (cluster/quorum.py), exported only where quorum decides something: three or
more nodes, a witness, `expected_votes` or `wait_for_all`. Two plain nodes (votequorum's two_node,
always quorate) have no such metric rather than a constant 1.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest

from ..render.lvs import decode_snapshot, lvs_json
from .clock import now_ms

log = logging.getLogger(__name__)

# health checks take from under a millisecond (connect on a LAN) to their timeout (seconds)
CHECK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UP_STATES = ("up", "active")  # cluster/membership.py: heard within deadtime


class CheckMetrics:
    """What the check scheduler reports at the end of each check (checks/scheduler.py on_result)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram("hadirector_check_duration_seconds",
                                  "How long each health check of a real took (its timeout when it timed out)",
                                  ("virtual", "real"), buckets=CHECK_BUCKETS, registry=registry)
        self.failures = Counter("hadirector_check_failures", "Health checks of a real that failed",
                                ("virtual", "real"), registry=registry)

    def observe(self, key, seconds: float, ok: bool) -> None:
        from ..config.names import real_text
        labels = (key.virtual, real_text(key))
        self.duration.labels(*labels).observe(max(0.0, seconds))
        if not ok:
            self.failures.labels(*labels).inc()


class DaemonCollector:
    """A prometheus_client collector reading daemon `d` at scrape time."""

    def __init__(self, d) -> None:
        self.d = d

    def describe(self):
        return []  # unchecked collector: families vary with the configuration

    def collect(self):
        d = self.d
        if d.core is None:
            return
        yield from self._cluster(d)
        yield from self._quorum(d)
        if d.balancer is not None:
            yield from self._reals(d)

    def _cluster(self, d):
        st = d.core.status(now_ms())
        peer_up = GaugeMetricFamily("hadirector_peer_up", "1 while the peer node is heard (up or active)",
                                    labels=("node",))
        link_up = GaugeMetricFamily("hadirector_link_up", "1 while the peer is heard on that heartbeat link",
                                    labels=("node", "link"))
        for name, p in sorted(st["peers"].items()):
            peer_up.add_metric((name,), 1.0 if p["state"] in UP_STATES else 0.0)
            for link, s in sorted(p["links"].items()):
                link_up.add_metric((name, link), 1.0 if s == "up" else 0.0)
        yield peer_up
        yield link_up
        held = GaugeMetricFamily("hadirector_group_held", "1 while this node holds (runs) the group",
                                 labels=("group",))
        failovers = CounterMetricFamily("hadirector_failovers",
                                        "Times the group moved to a node that did not hold it, as this node saw "
                                        "it since it started", labels=("group",))
        counts = d.core.ownership.failovers
        for name, g in sorted(st["groups"].items()):
            held.add_metric((name,), 1.0 if d.core.node in g["holders"] and g["state"] == "held" else 0.0)
            failovers.add_metric((name,), float(counts.get(name, 0)))
        yield held
        yield failovers
        dropped = CounterMetricFamily("hadirector_heartbeat_dropped",
                                      "Heartbeat packets dropped, by reason (bad auth, replay, ...)",
                                      labels=("reason",))
        for reason, n in sorted(st["packets"].items()):
            if reason != "ok":
                dropped.add_metric((reason,), float(n))
        yield dropped

    def _quorum(self, d):
        # the core's quorum (cluster/quorum.py); absent where quorum decides nothing: two nodes
        # without a witness, expected_votes or wait_for_all (votequorum's two_node, always quorate)
        q = d.core.status(now_ms()).get("quorum")
        if not q or (q.get("two_node") and not q.get("wait_for_all")):
            return
        g = GaugeMetricFamily("hadirector_quorum", "1 while this node's partition has quorum")
        g.add_metric((), 1.0 if q["quorate"] else 0.0)
        yield g
        votes = GaugeMetricFamily("hadirector_quorum_votes", "votes in this node's partition, and expected",
                                  labels=("kind",))
        votes.add_metric(("present",), float(q["votes"]))
        votes.add_metric(("expected",), float(q["expected"]))
        yield votes

    def _reals(self, d):
        snap = d.balancer.lvs()
        desired, stats = decode_snapshot(snap)
        table = lvs_json(desired, stats)
        installed = {(s["key"], _hp(r["address"], r["port"])): r for s in table["services"] for r in s["reals"]}
        up = GaugeMetricFamily("hadirector_real_up", "1 while the real's health check says up",
                               labels=("virtual", "real"))
        for c in sorted((snap.get("checks") or {}).values(), key=lambda c: (c["virtual"], c["address"], c["port"])):
            up.add_metric((c["virtual"], _hp(c["address"], c["port"])), 1.0 if c["state"] == "up" else 0.0)
        yield up
        weight = GaugeMetricFamily("hadirector_real_weight",
                                   "The real's weight in the installed table (0: quiescent or drained)",
                                   labels=("virtual", "real"))
        active = GaugeMetricFamily("hadirector_real_active_connections",
                                   "Active connections to the real (ipvsadm ActiveConn)", labels=("virtual", "real"))
        conns = CounterMetricFamily("hadirector_real_connections", "Connections scheduled to the real",
                                    labels=("virtual", "real"))
        nbytes = CounterMetricFamily("hadirector_real_bytes", "Bytes to (in) and from (out) the real",
                                     labels=("virtual", "real", "direction"))
        for (vs, real), r in sorted(installed.items()):
            weight.add_metric((vs, real), float(r["weight"]))
            active.add_metric((vs, real), float(r["active"]))
            conns.add_metric((vs, real), float(r["stats"]["conns"]))
            nbytes.add_metric((vs, real, "in"), float(r["stats"]["inbytes"]))
            nbytes.add_metric((vs, real, "out"), float(r["stats"]["outbytes"]))
        yield from (weight, active, conns, nbytes)


def _hp(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


class Metrics:
    """The registry of one daemon: its collector and the check observations."""

    def __init__(self, d) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.checks = CheckMetrics(self.registry)
        self.registry.register(DaemonCollector(d))

    def text(self) -> bytes:
        return generate_latest(self.registry)
