"""Flow sync, the driver (issue 12): the active director's DR flow memory and persistence
templates to every backup, so that after a takeover the first packet of an old flow goes to the
same real. The pure part (queue, store, expiry, wire format) is balancer/flowsync.py.

How it works, on every director (`[balancer.flow_sync]`, config/model.py FlowSync):
- One UDP socket on `port` (8848) receives authenticated flow-sync datagrams (cluster key).
- The balancer driver's data plane is made with `NftOptions(sync_group=nflog_group)`: each DR
  real's new-flow chain logs the flow's first packet to that NFLOG group, and the rule that moves
  a flow to the closing set logs too (dataplane/nft_render.py `_sync_log`).
- Where the balancer runs (the active): an NFLOG socket (dataplane/nflog.py) hears each new flow
  -> ADD flow_<S>_<R> (client address, port) with the set's timeout, ADD persist_<S>_<R> (masked
  client) with the persistence timeout; each closing flow -> DEL from flow_, ADD to fin_. Entries
  are batched (`interval` ms or `max_batch`) and sent to every peer. A HELLO from a peer (a
  backup that started, or lost messages) gets a full snapshot: the sets as the kernel lists them,
  with each element's time left; every `snapshot_interval` all peers get one (this refreshes the
  timeouts of long-lived flows, which the kernel extends with every packet unseen by NFLOG).
- Where it does not run (a backup): the store keeps what arrives, expiring entries as the active
  would; it says HELLO until it holds a complete snapshot. When this node takes over, the data
  plane's first transaction creates the sets with these elements in them (`NftDataPlane.preload`),
  before the first packet can be scheduled; then the store is emptied (the kernel is the truth
  now) and this node starts sending.

Schedulers both directors compute alike (sh, dh, mh, lblc, lblcr, fo) get no flow entries: a
backup with the same reals sends the same flow to the same real (persistence templates still go).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import time
from typing import Any

from ..balancer import flowsync as fs
from ..cluster.auth import Authenticator
from ..net.netns import netns_socket

log = logging.getLogger(__name__)


def _now() -> int:
    return int(time.monotonic() * 1000)


def _wall() -> int:
    return int(time.time() * 1000)


def _masked(addr: str, prefix: int | None) -> str:
    if prefix is None or prefix == (128 if ":" in addr else 32):
        return addr
    if ":" not in addr:
        n = int.from_bytes(socket.inet_aton(addr), "big") & ((0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF)
        return socket.inet_ntoa(n.to_bytes(4, "big"))
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False).network_address)


class FlowSyncService:
    """See the module text. `driver` is the daemon's daemon.balancer.BalancerDriver."""

    def __init__(self, settings: Any, *, node: str, auth: Authenticator, peers: list[str],
                 driver: Any, netns: str | None = None, log_: logging.Logger | None = None):
        self.s = settings
        self.node = node
        self.auth = auth
        self.peers = list(peers)
        self.driver = driver
        self.netns = netns
        self.log = log_ or log
        self.sender = fs.SyncSender(interval=settings.interval, max_batch=settings.max_batch)
        self.store = fs.SyncStore(max_entries=settings.max_entries)
        self.epoch = int.from_bytes(os.urandom(4), "big") or 1
        self.seq: dict[str, int] = {}  # per peer: each sees a gap-free sequence
        self.sock: socket.socket | None = None
        self.nflog: Any = None
        self.nflog_error: str | None = None
        self._task: asyncio.Task | None = None
        self._snap_id = 0
        self._last_snapshot_sent: int | None = None
        self._snapshot_tasks: set[asyncio.Task] = set()
        self.snapshots_sent = 0
        self.nflog_events = 0
        self.nflog_unknown = 0
        self.send_errors = 0
        self.active = False
        self.loaded_at_takeover = 0
        self.cpu_s = 0.0  # this thread's CPU in the sync's own callbacks (NFLOG, batches, receiving)
        self._sync_sets: dict = {}
        self._actions: dict[bytes, tuple | None] = {}  # NFLOG prefix -> what to learn (_action)
        self._actions_for: dict | None = None  # the sync_sets() the actions were made from
        self._sets_applies = -1
        self._overhead = fs.overhead(node, auth)
        self._hold: list | None = None  # the hold table's commands as last installed
        self._hold_worker: Any = None
        self.hold_error: str | None = None
        self.error: str | None = None
        self._last_expire = 0
        self._install_factory()

    # ------------------------------------------------------------------ wiring
    def _install_factory(self) -> None:
        """The driver's data plane gets the NFLOG rules and the preload hook."""
        orig = self.driver._factory

        def factory(kind: str):
            if kind == "proxy":
                dp = orig(kind)
                dp.preload = self._preload
                dp.persist_listener = self._on_template
                return dp
            if kind != "nft":
                return orig(kind)
            from ..dataplane.factory import make_dataplane
            from ..dataplane.nft_render import NftOptions
            dp = make_dataplane("nft", options=NftOptions(sync_group=self.s.nflog_group))
            dp.preload = self._preload
            return dp
        self.driver._factory = factory

    def _preload(self) -> list:
        # runs in the data plane's worker thread: copy the dict (atomic under the GIL) first
        now = _now()
        entries = [(k, exp - now) for k, (exp, _) in self.store.entries_.copy().items() if exp > now]
        self.loaded_at_takeover = len(entries)
        return entries

    async def start(self) -> None:
        fam = socket.AF_INET6 if self.s.source and ":" in str(self.s.source) else socket.AF_INET
        sock = netns_socket(self.netns, fam, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            for force, plain in ((33, socket.SO_RCVBUF), (32, socket.SO_SNDBUF)):  # SO_*BUFFORCE
                try:
                    sock.setsockopt(socket.SOL_SOCKET, force, 4 << 20)
                except OSError:
                    sock.setsockopt(socket.SOL_SOCKET, plain, 4 << 20)
            sock.bind((str(self.s.source) if self.s.source else "", self.s.port))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            # the balancer runs without it: failovers then cost the open connections, as before
            self.error = f"cannot listen on UDP {self.s.source or '*'}:{self.s.port}: {exc.strerror or exc}"
            self.log.error("flow sync: %s; open connections will not survive a failover", self.error)
            return
        self.sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_datagram)
        self._open_nflog()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="flow-sync")
        if self.peers:
            self.log.info("flow sync: UDP %s, peers %s", self.s.port, ", ".join(self.peers))
        else:
            self.log.warning("flow sync: no peer to send to (no ucast heartbeat link): set "
                             "[balancer.flow_sync] peers, or open connections will not survive a failover")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        for t in list(self._snapshot_tasks):
            t.cancel()
        self._close_nflog()
        if self._hold_worker is not None:
            if self._hold and self.driver.dataplane is None:
                try:
                    await self._hold_worker.acall(self._hold_nft.run, [
                        {"delete": {"table": {"family": "inet", "name": "hadirector_hold"}}}])
                except Exception:  # noqa: BLE001 - gone already
                    pass
            await self._hold_worker.acall(self._hold_nft.close)
            self._hold_worker.close()
        if self.sock is not None:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None

    # ------------------------------------------------------------------ the loop
    def _dataplane(self):
        dp = self.driver.dataplane
        # active once its first transaction (which loads the synced entries) is in the kernel
        return dp if dp is not None and hasattr(dp, "sync_sets") and dp.applies > 0 else None

    async def _loop(self) -> None:
        failing: str | None = None
        while True:
            try:
                await self._tick()
                failing = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - say it once, keep syncing
                if str(exc) != failing:
                    self.log.exception("flow sync: %s", exc)
                failing = str(exc)
                await asyncio.sleep(1)
                continue
            due = self.sender.next_due(_now())
            # a partial batch is sent when due (full ones go from the NFLOG reader at once); a
            # backup looks every 20 ms whether its balancer started (then NFLOG must be read)
            idle = 100 if self.active else 20
            await asyncio.sleep(min(idle, due if due is not None else idle) / 1000)

    async def _tick(self) -> None:
        now = _now()
        dp = self._dataplane()
        if dp is not None and not self.active:
            self._become_active(dp)
        elif dp is None and self.active:
            self._become_backup()
        if self.active:
            t0 = time.thread_time()
            self._flush(now)
            self.cpu_s += time.thread_time() - t0
            if self._last_snapshot_sent is None:
                self._last_snapshot_sent = now
            elif now - self._last_snapshot_sent >= self.s.snapshot_interval:
                self._last_snapshot_sent = now
                for p in self.peers:
                    self._spawn_snapshot(p)
        else:
            if now - self._last_expire >= 1000:
                self._last_expire = now
                self.store.expire(now)
                await self._hold_update()
            if self.store.wants_snapshot(now):
                self._send(fs.Message(fs.HELLO, self.node, self.epoch, 0, _wall()), self.peers)

    def _become_active(self, dp) -> None:
        self.active = True
        self.store = fs.SyncStore(max_entries=self.s.max_entries)  # the kernel is the truth now
        self.store.need_snapshot = False
        self._open_nflog()
        self.log.info("flow sync: active here (%d synced entries loaded into the sets)",
                      self.loaded_at_takeover)
        for p in self.peers:
            self._spawn_snapshot(p)  # a backup that had another active learns this one's state

    async def _hold_update(self) -> None:
        """A backup holds mid-flow packets of DR services in `inet hadirector_hold` (see
        nft_render.hold_commands): the balancer's first transaction deletes it at a takeover."""
        if self.driver.dataplane is not None or self.driver.kind != "nft":
            return
        from ..dataplane.nft_render import hold_commands
        cmds = hold_commands(self.driver.wanted)
        if cmds == self._hold:
            return
        if self._hold_worker is None:
            from ..dataplane.libnft import Nft
            from ..net.netns import NetnsWorker
            self._hold_worker = NetnsWorker(self.netns)
            self._hold_nft = await self._hold_worker.acall(Nft)
        try:
            if cmds:
                await self._hold_worker.acall(self._hold_nft.run, cmds)
            self._hold, self.hold_error = cmds, None
        except Exception as exc:  # noqa: BLE001 - say so, keep syncing
            if str(exc) != self.hold_error:
                self.log.warning("flow sync: cannot install the hold table: %s", exc)
            self.hold_error = str(exc)

    def _open_nflog(self) -> None:
        """Bound from the start on every node (a backup has no logging rules: nothing comes), so
        no new flow of the first moments after a takeover is missed."""
        if self.nflog is not None or self.driver.kind != "nft":
            return  # the proxy tells its templates itself
        try:
            from ..dataplane.nflog import NflogSocket
            self.nflog = NflogSocket(self.s.nflog_group, self.netns)
            asyncio.get_running_loop().add_reader(self.nflog.fileno(), self._on_nflog)
            self.nflog_error = None
        except OSError as exc:
            self.nflog = None
            if str(exc) != self.nflog_error:
                self.log.error("flow sync: cannot read NFLOG group %s: %s (new flows are synced by "
                               "the periodic snapshot only)", self.s.nflog_group, exc)
            self.nflog_error = str(exc)

    def _become_backup(self) -> None:
        self._hold = None  # the data plane's close removed it: put it back
        self.active = False
        self.sender.pending.clear()
        self.store = fs.SyncStore(max_entries=self.s.max_entries)
        self.log.info("flow sync: backup here (receiving)")

    def _close_nflog(self) -> None:
        if self.nflog is not None:
            try:
                asyncio.get_running_loop().remove_reader(self.nflog.fileno())
            except (RuntimeError, ValueError):
                pass
            self.nflog.close()
            self.nflog = None

    # ------------------------------------------------------------------ the active: learning
    def _sets(self, dp) -> dict:
        if dp.applies != self._sets_applies:
            self._sync_sets, self._sets_applies = dp.sync_sets(), dp.applies
        return self._sync_sets

    def _on_template(self, set_name: str, addr: str, remaining_ms: int) -> None:
        """The proxy made or refreshed a persistence template (dataplane/proxy/plane.py)."""
        if self.active and remaining_ms > 0:
            self.sender.learn(fs.Elem(set_name, addr, -1), fs.ADD, remaining_ms, _now())

    def _on_nflog(self) -> None:
        t0 = time.thread_time()
        try:
            self._read_nflog()
        finally:
            self.cpu_s += time.thread_time() - t0

    def _read_nflog(self) -> None:
        if self.nflog is None:
            return
        dp = self._dataplane()
        events = self.nflog.read_flows()
        if dp is None:
            return
        sets = self._sets(dp)
        if sets is not self._actions_for:
            self._actions, self._actions_for = {}, sets
        actions = self._actions
        now = _now()
        items: list = []
        add = items.append
        new_elem, Elem, ADD, DEL = tuple.__new__, fs.Elem, fs.ADD, fs.DEL  # Elem(...) minus a frame
        self.nflog_events += len(events)
        for prefix, addr, port in events:
            act = actions.get(prefix)
            if act is None:
                act = actions[prefix] = _action(prefix, sets)
            if not act or addr is None:
                self.nflog_unknown += 1
                continue
            new, flow, flow_timeout, second, second_timeout, mask = act
            if new:
                if flow is not None:
                    add((new_elem(Elem, (flow, addr, port)), ADD, flow_timeout))
                if second is not None:
                    add((new_elem(Elem, (second, _masked(addr, mask), -1)), ADD, second_timeout))
            elif flow is not None:
                add((new_elem(Elem, (flow, addr, port)), DEL, 0))
                if second is not None:
                    add((new_elem(Elem, (second, addr, port)), ADD, second_timeout))
        self.sender.learn_many(items, now)
        self._flush(now)

    def _flush(self, now: int) -> None:
        entries = self.sender.take(now)
        if not entries or not self.peers:
            return
        for group in fs.plan_messages(entries, self._overhead):
            self._send(fs.Message(fs.BATCH, self.node, self.epoch, 0, _wall(), group), self.peers)

    def _spawn_snapshot(self, peer: str) -> None:
        t = asyncio.get_running_loop().create_task(self._snapshot(peer))
        self._snapshot_tasks.add(t)
        t.add_done_callback(self._snapshot_tasks.discard)

    async def _snapshot(self, peer: str) -> None:
        dp = self._dataplane()
        if dp is None:
            return
        try:
            elems = await dp.sync_elements()
        except Exception as exc:  # noqa: BLE001 - the data plane went away meanwhile
            self.log.warning("flow sync: snapshot for %s: %s", peer, exc)
            return
        now = _now()
        # queued entries are newer than the listing: they go in the next batch anyway
        entries = [fs.Entry(e, fs.ADD, left, 0) for e, left in elems]
        groups = fs.plan_messages(entries, self._overhead) or [[]]
        self._snap_id += 1
        for i, g in enumerate(groups):
            self._send(fs.Message(fs.SNAPSHOT, self.node, self.epoch, 0, _wall(), g,
                                  snap=self._snap_id, part=i, parts=len(groups)), [peer])
            if i % 64 == 63:
                await asyncio.sleep(0.001)  # pace: the receiver's buffer is not unbounded
        self.snapshots_sent += 1
        self.sender.counters.snapshots += 1
        del now

    # ------------------------------------------------------------------ the wire
    def _send(self, msg: fs.Message, peers: list[str]) -> None:
        if self.sock is None:
            return
        for p in peers:
            seq = self.seq.get(p, 0) + 1
            self.seq[p] = seq
            msg.seq = seq
            data = fs.encode(msg, self.auth)
            try:
                self.sock.sendto(data, (p, self.s.port))
            except OSError:
                self.send_errors += 1
                continue
            if msg.kind != fs.HELLO:
                self.sender.sent(len(msg.entries), len(data))

    def _on_datagram(self) -> None:
        t0 = time.thread_time()
        try:
            self._read_datagrams()
        finally:
            self.cpu_s += time.thread_time() - t0

    def _read_datagrams(self) -> None:
        for _ in range(64):
            try:
                data, addr = self.sock.recvfrom(65536)  # type: ignore[union-attr]
            except (BlockingIOError, AttributeError):
                return
            except OSError:
                return
            try:
                msg = fs.decode(data, self.auth)
            except fs.CodecError as exc:
                self.store.counters.dropped_bad += 1
                self.log.debug("flow sync: dropped a datagram from %s: %s", addr[0], exc)
                continue
            if msg.node == self.node:
                continue
            if msg.kind == fs.HELLO:
                if self.active:
                    self._spawn_snapshot(addr[0])
                continue
            if self.active:
                continue  # two actives (a partition): each keeps its own kernel's truth
            self.store.receive(msg, _now(), _wall())

    # ------------------------------------------------------------------ what status and lvs show
    def status(self) -> dict:
        now, wall = _now(), _wall()
        c = self.sender.counters
        out = {"role": "active" if self.active else "backup", "port": self.s.port, "peers": self.peers,
               "sent": {"messages": c.sent_messages, "entries": c.sent_entries, "bytes": c.sent_bytes,
                        "learned": c.learned, "deduped": c.deduped, "dropped": c.dropped,
                        "snapshots": self.snapshots_sent, "errors": self.send_errors},
               "pending": len(self.sender.pending), "nflog": {"events": self.nflog_events,
                                                             "unknown": self.nflog_unknown,
                                                             "overruns": getattr(self.nflog, "overruns", 0),
                                                             "error": self.nflog_error},
               "loaded_at_takeover": self.loaded_at_takeover,
               "load_ms": getattr(self.driver.dataplane, "preload_ms", None),
               "cpu_s": round(self.cpu_s, 3),
               "error": self.error, "hold_error": self.hold_error}
        out.update(self.store.status(now, wall))
        if self.active:
            out["lag_ms"] = {"p50": None, "p99": None}
        return out

    def store_entries(self) -> list:
        """A backup's store: [(Elem, ms left)] (`lvs -c` on a backup)."""
        return self.store.entries(_now())


def _action(prefix: bytes, sets: dict) -> tuple | None:
    """What an NFLOG prefix "<head> <dev> <S>_<R>" means (worked out once per prefix and data
    plane transaction): (new?, flow set, its timeout, second set, its timeout, persistence mask),
    the second set being the persistence set for a new flow, the closing set for a closing one;
    None for a prefix that is not ours."""
    head, _, key = prefix.decode(errors="replace").partition(" ")
    ss = sets.get(key)
    if ss is None:
        return None
    if head == "N":
        return (True, ss.flow, ss.flow_timeout, ss.persist, ss.persist_timeout, ss.persist_prefix)
    if head == "F":
        return (False, ss.flow, 0, ss.fin, ss.fin_timeout, None)
    return None


async def make_flowsync(config: Any, node: str, driver: Any, netns: str | None) -> FlowSyncService | None:
    """The service for this configuration, or None (no balancer, sync off, one node, proxy)."""
    b = config.balancer
    if b is None or not b.flow_sync.enabled or len(config.cluster.nodes) < 2 or \
            driver.kind not in ("nft", "proxy"):
        return None
    peers = [str(p) for p in b.flow_sync.peers]
    if not peers:
        from ..net import netlink
        local = await netlink.local_addresses(netns)
        # the first ucast link's peers: one path per peer (each path has its own sequence)
        for link in config.cluster.links:
            if link.kind == "ucast":
                peers = [str(p) for p in link.peers if str(p) not in local]
                break
    return FlowSyncService(b.flow_sync, node=node, auth=Authenticator.from_config(config.cluster.auth),
                           peers=peers, driver=driver, netns=netns)
