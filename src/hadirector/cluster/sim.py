"""A deterministic simulation of several NodeCores joined by lossy in-memory links.

For tests and experiments only (it is pure too: no sockets, no real time). Everything is driven
by one event queue in simulated milliseconds and one seeded `random.Random`, so a seed replays the
same run exactly. It models:

* links: per link name, loss probability, delay range, duplication probability and replay
  probability (a delivered datagram is delivered again later: the codec must drop it), plus cuts
  of one direction of one link between two nodes;
* resources: AcquireGroup starts a group after `start_delay` ms (then group_started, or
  group_failed when the test asked for a failure), ReleaseGroup/StopStale stop it after
  `stop_delay` ms (then group_stopped). A group counts as *running* on a node from AcquireGroup
  until its stop completes, i.e. while any of its resources may be up;
* ping nodes: a Probe is answered after 1 ms when the test says the address is reachable from
  that node;
* power loss (`crash`: resources gone, node silent), daemon kill (`kill`: resources stay, node
  silent) and restart with the next generation (`restart`);
* the public LAN, for groups with VIPs (`cluster_config(vips=...)`): each node has a MAC; a node's
  kernel *answers* for a group's address while the group runs there and (with `leases`, the
  default) its last `Lease` has not run out, even while its daemon is frozen or killed. A
  `ProbeAddress` is answered (address_seen "claim", 1 ms later) by every node whose kernel answers
  and reaches the prober (`cut_lan`), and seen as a rival probe by the other daemons; a group that
  starts is announced (gratuitous ARP) to the daemons on the LAN, as is a Reannounce.

After every step `check()` records every moment two nodes run the same group; tests read
`violations` (or `overlaps_outside` to ignore windows where they made a partition). For groups
with VIPs it also records `answer_violations`: moments two kernels answer for one address, which
is what a client sees.
"""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass, field

from ..config.model import (Auth, Cluster, Config, FenceDevice, Fencing, Group, Link, PingGroup, Quorum,
                            ScriptResource, Timing, VipResource)
from .actions import (AcquireGroup, Fence, Lease, LeaveComplete, Probe, ProbeAddress, Reannounce,
                      ReleaseGroup, StopStale, Transmit)
from .maintenance import MaintenanceMap
from .node import NodeCore, group_addresses


def cluster_config(nodes=("alpha", "beta"), groups=None, *, links: int = 2, auto_failback="on",
                   keepalive=100, deadtime=500, warntime=300, initdead=1000, method="sha256",
                   key="sim-key", ping=(), ping_groups=(), name="sim", vips=None,
                   fencing: int | None = None, quorum=None) -> Config:
    """A small valid Config for simulations: `links` ucast links (eth0, eth1, ...) and
    `groups` = {name: preferred node} (default: one group per node, "g-<node>"); `vips` = {group:
    address} gives those groups a VIP (first resource), True gives each group one; `fencing` =
    the fencing delay turns fencing on (one device that fences every node); `quorum` is a
    config.model.Quorum or its keys as a dict ([cluster.quorum]). Times in ms."""
    groups = groups if groups is not None else {f"g-{n}": n for n in nodes}
    if vips is True:
        vips = {g: f"198.18.0.{100 + i}" for i, g in enumerate(groups)}
    vips = vips or {}
    return Config(
        cluster=Cluster(
            name=name, nodes=tuple(nodes),
            links=tuple(Link(kind="ucast", interface=f"eth{i}", peers=(f"198.18.{i}.1",))
                        for i in range(links)),
            timing=Timing(keepalive=f"{keepalive}ms", deadtime=f"{deadtime}ms",
                          warntime=f"{warntime}ms", initdead=f"{initdead}ms"),
            auth=Auth(method=method, key=key if method != "crc" else ""),
            auto_failback=auto_failback, ping=tuple(ping),
            ping_groups=tuple(PingGroup(name=n, addresses=tuple(a)) for n, a in ping_groups),
            fencing=None if fencing is None else Fencing(devices=(FenceDevice(agent="fence_sim"),),
                                                         delay=f"{fencing}ms"),
            quorum=Quorum.model_validate(quorum) if isinstance(quorum, dict) else (quorum or Quorum())),
        groups=tuple(Group(name=g, preferred_node=p, resources=(
            *((VipResource(address=vips[g]),) if g in vips else ()), ScriptResource(name=f"svc-{g}")))
            for g, p in groups.items()))


@dataclass
class LinkModel:
    loss: float = 0.0
    delay: tuple[int, int] = (1, 5)  # ms, inclusive
    dup: float = 0.0
    replay: float = 0.0  # chance a delivered datagram is delivered again 50..3000 ms later


@dataclass
class SimNode:
    name: str
    core: NodeCore
    generation: int
    up: bool = True  # daemon running
    frozen: bool = False  # daemon stopped (SIGSTOP): no timers, packets queue in `inbox`
    inbox: list = field(default_factory=list)
    running: set[str] = field(default_factory=set)  # groups whose resources may be up here
    starting: dict[str, int] = field(default_factory=dict)  # group -> start token
    actions: list = field(default_factory=list)  # (time, action) of everything the core returned
    mac: str = ""
    lease: dict[str, int] = field(default_factory=dict)  # group -> lease end (kernel)


class Sim:
    def __init__(self, config: Config, *, seed: int = 1, start_delay=(20, 60), stop_delay=(20, 60),
                 link: LinkModel | None = None, start: bool = True, stagger: int = 0,
                 leases: bool = True):
        self.config = config
        self.rng = random.Random(seed)
        self.now = 0
        self.start_delay = start_delay
        self.stop_delay = stop_delay
        self.links = {name: (link or LinkModel()) for name in self._link_names()}
        self.cuts: set[tuple[str, str, str]] = set()  # (link, from, to)
        self.fail_start: set[tuple[str, str]] = set()  # (node, group) whose next start fails
        self.nodes: dict[str, SimNode] = {}
        self.reachable: dict[str, set[str]] = {}
        self._queue: list = []
        self._tie = itertools.count()
        self._token = itertools.count(1)
        self.violations: list[tuple[int, str, tuple[str, ...]]] = []
        self.answer_violations: list[tuple[int, str, tuple[str, ...]]] = []
        self.leases = leases
        self.lan_cuts: set[frozenset[str]] = set()
        self.addresses = group_addresses(config.groups)
        self.group_of = {a: g for g, addrs in self.addresses.items() for a in addrs}
        self.macs = {n: f"02:00:00:00:00:{i + 1:02x}" for i, n in enumerate(config.cluster.nodes)}
        self.delivered = 0
        # fencing: a Fence powers its target off (crash) after fence_time ms and reports ok,
        # unless the target is in fence_fails (the device fails: nothing happens, reported failed)
        self.fence_time = 200
        self.fence_fails: set[str] = set()
        self.fenced: list[tuple[int, str, str]] = []  # (time, fencer, target) of successful fences
        if start:
            for i, n in enumerate(config.cluster.nodes):
                self.boot(n, generation=1, at=i * stagger)

    # ------------------------------------------------------------------ topology and faults

    def _link_names(self) -> list[str]:
        from .node import link_names
        return link_names(self.config.cluster.links)

    def cut(self, link: str | None, a: str, b: str, both: bool = True) -> None:
        """Stop datagrams from a to b on `link` (None: every link)."""
        for name in ([link] if link else list(self.links)):
            self.cuts.add((name, a, b))
            if both:
                self.cuts.add((name, b, a))

    def heal(self, link: str | None = None, a: str | None = None, b: str | None = None) -> None:
        self.cuts = {c for c in self.cuts if not ((link is None or c[0] == link)
                                                  and (a is None or a in c[1:])
                                                  and (b is None or b in c[1:]))}

    def partition(self, *sides: tuple[str, ...], lan: bool = True) -> None:
        """Nobody on one side hears anybody on another: every heartbeat link, and (`lan`) the
        public LAN too, so address probes do not cross either."""
        for x, y in itertools.combinations(sides, 2):
            for a in x:
                for b in y:
                    self.cut(None, a, b)
                    if lan:
                        self.cut_lan(a, b)

    def cut_lan(self, a: str, b: str) -> None:
        """a and b no longer see each other's ARP on the public LAN (clients still see both)."""
        self.lan_cuts.add(frozenset((a, b)))

    def heal_lan(self) -> None:
        self.lan_cuts.clear()

    def boot(self, name: str, generation: int, at: int | None = None) -> None:
        def go():
            old = self.nodes.get(name)
            # the maintenance map outlives a restart (the daemon keeps it in its state directory)
            kept = None if old is None else MaintenanceMap(old.core.maintenance.marks.values(),
                                                           old.core.maintenance.counter)
            core = NodeCore(self.config, name, generation, self.now, maintenance=kept)
            node = SimNode(name, core, generation, running=set(old.running) if old else set(),
                           mac=self.macs[name], lease=dict(old.lease) if old else {})
            self.nodes[name] = node
            self._handle(node, core.start(self.now))
        if at is None or at <= self.now:
            go()
        else:
            self._at(at, go)

    def crash(self, name: str) -> None:
        """Power loss: the daemon stops and every resource with it."""
        node = self.nodes[name]
        node.up = False
        node.running.clear()
        node.starting.clear()
        node.lease.clear()

    def kill(self, name: str) -> None:
        """kill -9 of the daemon: resources stay up, nobody manages them."""
        node = self.nodes[name]
        node.up = False
        node.starting.clear()

    def freeze(self, name: str) -> None:
        """SIGSTOP (or a machine too busy to run the daemon): resources stay up, its timers do
        not run, resource results wait, packets to it queue (up to 64, a socket buffer). `thaw`
        resumes it."""
        self.nodes[name].frozen = True

    def thaw(self, name: str, packets_first: bool = False, arp_first: bool = False) -> None:
        """Resume a frozen node. By default its overdue timer fires first, then the queued
        packets arrive; `packets_first` delivers the queued packets before any timer runs (what
        asyncio does: ready socket callbacks run before due timers); `arp_first` also puts the
        queued ARP frames (address_seen) before the datagrams (the packet socket came first)."""
        node = self.nodes[name]
        node.frozen = False
        inbox, node.inbox = node.inbox, []
        if arp_first:
            inbox = [i for i in inbox if i[0] == "seen"] + [i for i in inbox if i[0] != "seen"]
            packets_first = True
        if packets_first:
            for item in inbox:
                self._redeliver(name, item)
            self.check()
            return
        for item in inbox:
            self._at(self.now + 1, lambda i=item: self._redeliver(name, i))

    def _redeliver(self, name: str, item: tuple) -> None:
        if item[0] == "seen":  # an ARP frame that waited in the address watch's socket
            self._seen(name, *item[1:])
        elif item[0] == "fence":
            node = self.nodes[name]
            self._handle(node, node.core.on_fence_result(item[1], item[2], self.now, "", "fence_sim"))
        else:
            self._deliver(name, *item)

    def restart(self, name: str) -> None:
        node = self.nodes[name]
        self.boot(name, node.generation + 1)

    def set_reachable(self, name: str, addresses) -> None:
        """The ping addresses that answer `name` from now on (default: none)."""
        self.reachable[name] = set(addresses)

    # ------------------------------------------------------------------ operator and inputs

    def call(self, name: str, method: str, *args, **kw) -> list:
        """Call a NodeCore input method with the current time, e.g. call("a", "standby", "all")
        or call("a", "group_failed", "web", detail="why")."""
        node = self.nodes[name]
        actions = getattr(node.core, method)(*args, now=self.now, **kw)
        self._handle(node, actions)
        return actions

    def inject(self, to: str, link: str, data: bytes, at: int | None = None) -> None:
        """Deliver arbitrary bytes to a node (a forged or replayed packet)."""
        self._at(self.now if at is None else at, lambda: self._deliver(to, link, data))

    # ------------------------------------------------------------------ running

    def run(self, duration: int) -> None:
        self.run_until(self.now + duration)

    def run_until(self, until: int, max_steps: int = 2_000_000) -> None:
        for _ in range(max_steps):
            t = self._next_time()
            if t is None or t > until:
                self.now = until
                return
            self.now = max(self.now, t)
            while self._queue and self._queue[0][0] <= self.now:
                _, _, fn = heapq.heappop(self._queue)
                fn()
                self.check()
            for node in list(self.nodes.values()):
                if node.up and not node.frozen and node.core.next_deadline() <= self.now:
                    self._handle(node, node.core.on_timer(self.now))
                    if node.up and not node.frozen and node.core.next_deadline() <= self.now:
                        raise RuntimeError(f"{node.name}: core wants a timer at "
                                           f"{node.core.next_deadline()} <= now {self.now} "
                                           f"after on_timer")
                    self.check()
        raise RuntimeError("simulation did not reach its end time (too many steps)")

    def _next_time(self) -> int | None:
        times = [n.core.next_deadline() for n in self.nodes.values() if n.up and not n.frozen]
        if self._queue:
            times.append(self._queue[0][0])
        return min(times) if times else None

    def _at(self, t: int, fn) -> None:
        heapq.heappush(self._queue, (t, next(self._tie), fn))

    def _handle(self, node: SimNode, actions: list) -> None:
        for a in actions:
            node.actions.append((self.now, a))
            if isinstance(a, Transmit):
                self._transmit(node.name, a)
            elif isinstance(a, AcquireGroup):
                self._start_group(node, a.group)
            elif isinstance(a, (ReleaseGroup, StopStale)):
                self._stop_group(node, a.group)
            elif isinstance(a, Probe):
                if a.address in self.reachable.get(node.name, ()):
                    gen = node.generation
                    self._at(self.now + 1, lambda n=node, ad=a.address, g=gen:
                             self._reply(n.name, g, ad))
            elif isinstance(a, LeaveComplete):
                node.up = False
            elif isinstance(a, Lease):
                node.lease[a.group] = a.until
            elif isinstance(a, ProbeAddress):
                self._probe(node, a.address)
            elif isinstance(a, Reannounce):
                self._announce(node, a.group)
            elif isinstance(a, Fence):
                self._fence(node, a.node)

    def _fence(self, node: SimNode, target: str) -> None:
        gen = node.generation

        def done():
            ok = target not in self.fence_fails
            if ok:
                self.crash(target)
                self.fenced.append((self.now, node.name, target))
            me = self.nodes[node.name]
            if me.up and me.generation == gen:  # the fencer itself may have died meanwhile
                if me.frozen:
                    me.inbox.append(("fence", target, ok))
                else:
                    self._handle(me, me.core.on_fence_result(target, ok, self.now, "" if ok else "sim: device failed",
                                                             "fence_sim", self.fence_time))
        self._at(self.now + self.fence_time, done)

    # ------------------------------------------------------------------ the public LAN

    def answers(self, name: str, group: str) -> bool:
        """Does `name`'s kernel answer for `group`'s addresses now?"""
        node = self.nodes[name]
        if not self.addresses.get(group) or group not in node.running:
            return False
        return not self.leases or node.lease.get(group, -1) > self.now

    def _lan(self, a: str, b: str) -> bool:
        return frozenset((a, b)) not in self.lan_cuts

    def _seen(self, name: str, address: str, kind: str, mac: str) -> None:
        node = self.nodes.get(name)
        if node is None or not node.up:
            return
        if node.frozen:  # it waits in the packet socket, like a datagram
            if len(node.inbox) < 64:
                node.inbox.append(("seen", address, kind, mac))
            return
        self._handle(node, node.core.address_seen(address, kind, mac, node.mac, "eth0", self.now))

    def _probe(self, prober: SimNode, address: str) -> None:
        group = self.group_of.get(address)
        for other in self.nodes.values():
            if other.name == prober.name or not self._lan(prober.name, other.name):
                continue
            if group is not None and self.answers(other.name, group):
                self._at(self.now + 1, lambda p=prober.name, m=other.mac:
                         self._seen(p, address, "claim", m))
            self._at(self.now + 1, lambda o=other.name, m=prober.mac: self._seen(o, address, "probe", m))

    def _announce(self, node: SimNode, group: str) -> None:
        if not self.answers(node.name, group):
            return  # a gratuitous ARP the lease guard drops, or nothing up
        for a in self.addresses.get(group, ()):
            for other in self.nodes.values():
                if other.name != node.name and self._lan(node.name, other.name):
                    self._at(self.now + 1, lambda o=other.name, m=node.mac, ad=a:
                             self._seen(o, ad, "claim", m))

    def _reply(self, name: str, generation: int, address: str) -> None:
        node = self.nodes[name]
        if node.up and not node.frozen and node.generation == generation:
            self._handle(node, node.core.probe_reply(address, self.now))

    def _transmit(self, sender: str, tx: Transmit) -> None:
        model = self.links[tx.link]
        for peer in self.config.cluster.nodes:
            if peer == sender or (tx.link, sender, peer) in self.cuts:
                continue
            if self.rng.random() < model.loss:
                continue
            copies = 2 if self.rng.random() < model.dup else 1
            for _ in range(copies):
                t = self.now + self.rng.randint(*model.delay)
                self._at(t, lambda p=peer, d=tx.data, l=tx.link, s=sender: self._arrive(s, p, l, d))

    def _arrive(self, sender: str, peer: str, link: str, data: bytes) -> None:
        if (link, sender, peer) in self.cuts:  # cut while in flight
            return
        self._deliver(peer, link, data)
        if self.rng.random() < self.links[link].replay:
            t = self.now + self.rng.randint(50, 3000)
            self._at(t, lambda: self._deliver(peer, link, data))

    def _deliver(self, peer: str, link: str, data: bytes) -> None:
        node = self.nodes.get(peer)
        if node is None or not node.up:
            return
        if node.frozen:
            if len(node.inbox) < 64:
                node.inbox.append((link, data))
            return
        self.delivered += 1
        self._handle(node, node.core.on_datagram(link, data, self.now))

    def _start_group(self, node: SimNode, group: str) -> None:
        token = next(self._token)
        node.starting[group] = token
        node.running.add(group)
        gen = node.generation
        fail = (node.name, group) in self.fail_start
        self.fail_start.discard((node.name, group))

        def done():
            if node.frozen:
                return self._at(self.now + 10, done)
            if not node.up or node.generation != gen or node.starting.get(group) != token:
                return
            del node.starting[group]
            if fail:
                self._handle(node, node.core.group_failed(group, self.now, "simulated failure"))
            else:
                self._announce(node, group)
                self._handle(node, node.core.group_started(group, self.now))
        self._at(self.now + self.rng.randint(*self.start_delay), done)

    def _stop_group(self, node: SimNode, group: str) -> None:
        gen = node.generation
        # a start in progress finishes first (the driver contract), then the stop runs
        node.starting.pop(group, None)
        delay = self.rng.randint(*self.stop_delay)

        def done():
            if node.frozen:
                return self._at(self.now + 10, done)
            if node.generation != gen or not node.up:
                return
            node.running.discard(group)
            self._handle(node, node.core.group_stopped(group, self.now))
        self._at(self.now + delay, done)

    # ------------------------------------------------------------------ observation

    def check(self) -> None:
        for g in self.config.groups:
            where = tuple(sorted(n.name for n in self.nodes.values() if g.name in n.running))
            if len(where) > 1:
                if not self.violations or self.violations[-1][1:] != (g.name, where) \
                        or self.violations[-1][0] != self.now:
                    self.violations.append((self.now, g.name, where))
            if self.addresses.get(g.name):
                who = tuple(sorted(n for n in self.nodes if self.answers(n, g.name)))
                if len(who) > 1 and (not self.answer_violations
                                     or self.answer_violations[-1] != (self.now, g.name, who)):
                    self.answer_violations.append((self.now, g.name, who))

    def overlaps_outside(self, *windows: tuple[int, int]) -> list:
        return [v for v in self.violations if not any(a <= v[0] <= b for a, b in windows)]

    def running(self, group: str) -> list[str]:
        return sorted(n.name for n in self.nodes.values() if group in n.running)

    def owner(self, group: str) -> str | None:
        """The single node whose core holds the group, None if none; error if several."""
        held = [n.name for n in self.nodes.values()
                if n.up and n.core.arbiter.local_groups[group].state.name == "HELD"]
        if len(held) > 1:
            raise AssertionError(f"group {group} held by {held} at {self.now} ms")
        return held[0] if held else None

    def events(self, name: str, cls) -> list:
        return [(t, a) for t, a in self.nodes[name].actions if isinstance(a, cls)]
