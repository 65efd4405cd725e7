"""The daemon: wires the pure cluster core (cluster.node.NodeCore) to sockets, the clock, the
resource manager and the control socket, all on one asyncio loop.

The core decides; this module only carries out its actions and feeds it inputs:

    datagram on a link   -> core.on_datagram          Transmit     -> link.send
    the one timer fires  -> core.on_timer             Probe        -> ICMP echo -> core.probe_reply
    group start/stop     -> core.group_started/...    AcquireGroup -> manager.start_group
    monitor failure      -> core.group_failed         ReleaseGroup -> manager.stop_group (drain)
    control: standby ... -> core.standby/takeover     StopStale    -> manager.stop_stale
    SIGTERM              -> core.shutdown             Reannounce   -> gratuitous ARP again
    ARP/ND about a VIP   -> core.address_seen         Lease        -> VIP lease renewal (vipguard.py)
    ICMP port unreachable-> core.link_unreachable     ProbeAddress -> RFC 5227 probe (vipguard.py)
                                                      LeaveComplete-> exit

After every input the single timer is re-armed at `core.next_deadline()` (DESIGN convention 3).
Events (node up/dead, link down, late heartbeat, split brain) are logged as cluster/eventlog.py
words them, naming the node/group.

The rest of the daemon lives beside this module, one concern each: balancer.py (the balancer
driver and its health checks), vipguard.py (VIP leases, address conflict probes and watches),
handlers.py (the control socket's commands and the status reply),
reload.py (SIGHUP, `reload`, ldirectord's autoreload), control.py (the socket itself),
realtime.py (ha.cf `realtime`/`rtprio`: the scheduling policy and locked memory, set at start).

Under systemd (Type=notify) the daemon reports through $NOTIFY_SOCKET (sdnotify.py): READY=1 once
the core has started with every link open, STATUS= whenever what this node holds changes
(render/cluster.py service_status), STOPPING=1 when it leaves, and, when the unit sets
WatchdogSec, WATCHDOG=1 from a timer on this loop every half of it, only while the loop and the
cluster timer are on time (`watchdog_ok`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from dataclasses import dataclass, field

from ..cluster import actions as A
from ..cluster.eventlog import describe
from ..cluster.node import NodeCore
from ..config.load import Loaded
from ..net import icmp
from ..net.transports import LinkTransport, SharedPorts, open_link
from ..ratelimit import RateLimited
from ..render.cluster import service_status
from ..resources.base import AgentContext
from ..resources.manager import GroupFailure, ResourceManager
from . import signals, statedir
from .balancer import BalancerSupervisor
from .clock import now_ms
from .control import ControlServer
from .handlers import ControlHandlers
from ..loglevel import NOTICE
from .reload import Reloader
from .sdnotify import SystemdNotify
from .vipguard import VipGuard
from .realtime import make_realtime
from .respawn import Respawner
from .fencing import FenceRunner
from .watchdog import Watchdog


@dataclass
class Options:
    state_dir: str
    netns: str | None = None  # run links and agents inside this network namespace (tests, lab)
    resource_dirs: tuple[str, ...] | None = None
    services: dict = field(default_factory=dict)  # extra agent services (the balancer driver)
    lib_dir: str | None = None  # kept across reboots: the boot generation (default: state_dir)
    notify: SystemdNotify | None = None  # systemd's socket (default: from the environment)
    logs: object | None = None  # logsetup.DaemonLog: reopened on SIGHUP, debug level on SIGUSR1/2


def watchdog_ok(late: float, core_overdue: float, interval: float) -> bool:
    """Whether to tell systemd we are alive: the watchdog timer ran less than one interval late
    and the cluster core's timer is not overdue by more than one interval (a core whose timer was
    not re-armed sends no heartbeats, however alive the loop is). Seconds."""
    return late <= interval and core_overdue <= interval


def _conntrackd(config, opts: Options, log):
    """conntrackd for the NAT services' connections, when the configuration wants it
    (config/sync.py); it runs with the balancer on every node."""
    from ..config.sync import conntrackd_plan, nat_without_sync
    plan = conntrackd_plan(config)
    if plan is None:
        if nat_without_sync(config):
            log.warning("balancer: NAT services on several directors without conntrackd "
                        "([balancer.conntrackd] enabled = false): open connections will not survive a failover")
        return None
    from ..dataplane.conntrackd import Conntrackd
    return Conntrackd(plan, opts.state_dir, netns=opts.netns, log=log)


class Daemon:
    def __init__(self, loaded: Loaded, opts: Options, log: logging.Logger | None = None):
        if loaded.node is None:
            raise ValueError("this node is not one of the cluster's nodes (pass --node)")
        self.loaded = loaded
        self.config = loaded.config
        self.opts = opts
        self.logs = opts.logs
        self.log = log or (self.logs.log if self.logs is not None else logging.getLogger(__name__))
        self.limited = RateLimited(self.log)
        self.groups = {g.name: g for g in self.config.groups}
        # the balancer: one driver, started/stopped by the `balancer` resource of a group; its
        # health checks run on every node (a backup has fresh health when it takes over)
        self.balancer = None
        if self.config.balancer is not None:
            self.balancer = BalancerSupervisor(self.config.balancer, netns=opts.netns, log=self.log,
                                               spawn=self._spawn, previous_seen=self._balancer_previous_seen,
                                               held=any(r.kind == "balancer" for g in self.config.groups
                                                        for r in g.resources),
                                               conntrackd=_conntrackd(self.config, opts, self.log))
            opts.services.setdefault("balancer", self.balancer.driver)
        self.flowsync = None  # daemon/flowsync.py, made at start (it needs the local addresses)
        self.reloader = Reloader(self)
        from ..checks.alerts import Notifier
        self.notifier = Notifier()  # group notify commands (keepalived notify), callback
        self.core: NodeCore | None = None
        self.links: dict[str, LinkTransport] = {}
        ctx_kw = {"netns": opts.netns, "services": opts.services}
        if opts.resource_dirs:
            ctx_kw["resource_dirs"] = opts.resource_dirs
        self.manager = ResourceManager(AgentContext(**ctx_kw), on_failure=self._on_monitor_failure)
        self.control: ControlServer | None = None
        self.api = None  # daemon/api.py ApiServer, with [api] (or run --api)
        self.vipguard = VipGuard(self.config, opts.netns, self._on_address_seen)
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task] = set()
        self._done = asyncio.Event()
        self.stopping = False
        self.running = False  # core.start() has run
        self.started_at = time.time()
        self.sd = opts.notify or SystemdNotify.from_environ()
        self._sd_status: str | None = None  # the last STATUS sent; None: READY not sent yet
        self._watchdog: asyncio.TimerHandle | None = None
        c = self.config.cluster
        # ha.cf respawn (respawn.py) and watchdog (watchdog.py)
        self.respawner = Respawner(c.respawn, self.log, opts.netns) if c.respawn else None
        self.hw_watchdog = Watchdog(c.watchdog, c.timing.deadtime, c.timing.keepalive / 1000, self.log,
                                    self._hw_watchdog_healthy) if c.watchdog else None
        # fencing.py: runs the fence devices for the core's Fence actions
        self.fence_runner = FenceRunner(self.config, loaded.node, self.log, opts.netns) if c.fencing else None
        self.qdevice = None  # daemon/qdevice.py: the witness client, when cluster.quorum.device is set
        self.realtime = None  # daemon/realtime.py RealtimeState, once applied at start
        self._qdevice_members: frozenset[str] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> int:
        statedir.prepare(self.opts.state_dir)
        # one daemon per node: before anything of this run touches the generation, the control
        # socket, the kernel or a heartbeat port (AlreadyRunning names the holder's pid)
        self.lock = statedir.lock(self.opts.state_dir)
        loop = asyncio.get_running_loop()
        if self.logs is not None:
            self.logs.set_node(self.loaded.node)
            for problem in self.logs.problems:
                self.log.error("node %s: %s", self.loaded.node, problem)
        # every signal's meaning from the first moment (a default action would kill the node)
        signals.install(loop, {signals.LEAVE: lambda sig: self.request_stop(signals.name(sig)),
                               signals.RELOAD: lambda sig: self._spawn(self._sighup()),
                               signals.DEBUG_UP: lambda sig: self._debug(+1, sig),
                               signals.DEBUG_DOWN: lambda sig: self._debug(-1, sig),
                               signals.LOGGED: self._other_signal})
        try:
            return await self._run()
        finally:
            signals.uninstall(loop)
            self.lock.release()

    async def _run(self) -> int:
        lib_dir = self.opts.lib_dir or self.opts.state_dir
        if lib_dir != self.opts.state_dir:
            statedir.prepare(lib_dir)
        # the maintenance map is kept with the generation (a restart of the service empties /run)
        maintenance = statedir.load_maintenance(lib_dir)
        generation = statedir.next_generation(lib_dir)
        api_start = None
        if self.config.api is not None:  # aiohttp's import takes a while: before the core's clock runs
            from .api import start_api as api_start
        t0 = now_ms()
        self.core = NodeCore(self.config, self.loaded.node, generation, t0, maintenance=maintenance)
        c = self.config.cluster
        self.log.info("node %s starting: cluster %s, generation %d, keepalive %d ms, deadtime %d ms, "
                      "initdead %d ms", self.core.node, c.name, generation, c.timing.keepalive,
                      c.timing.deadtime, c.timing.initdead)
        if self.core.arbiter.legacy_warning:
            self.log.warning("auto_failback legacy: behaving as `on` (groups return to their "
                             "preferred node); say on or off in ha.cf to silence this")
        if not self.core.authenticated:
            self.log.warning("authkeys method crc: heartbeat messages are NOT authenticated; anybody "
                             "on a heartbeat link can forge them (use sha1, or sha256 natively)")
        # ha.cf realtime / rtprio: once, before any link opens or anything is started (heartbeat's
        # master_control_process calls cl_make_realtime before its main loop)
        self.realtime = make_realtime(c.realtime, self.log, self.core.node)
        if self.realtime.policy and self.balancer is not None and self.balancer.driver.kind == "proxy":
            self.log.warning("node %s: realtime: the userspace proxy relays connections on the daemon's loop, "
                             "so under load it takes CPU before every normal process (clients and reals on "
                             "this machine too); set [cluster.realtime] enabled = false if that matters",
                             self.core.node)
        control = ControlServer(self.opts.state_dir, ControlHandlers(self).table(), log=self.log.warning,
                                debug=self.log.debug)
        await control.start()
        self.control = control  # only now: a failed start must not remove another daemon's socket
        try:
            loop = asyncio.get_running_loop()
            if self.balancer is not None:
                self.balancer.set_maintenance(self.core.maintenance.active())
                await self.balancer.start()
                from .flowsync import make_flowsync
                self.flowsync = await make_flowsync(self.config, self.loaded.node, self.balancer.driver,
                                                    self.opts.netns)
                if self.flowsync is not None:
                    await self.flowsync.start()
                    self.balancer.flowsync = self.flowsync
                if self.config.balancer.autoreload:
                    self._spawn(self.reloader.autoreload())
            if api_start is not None:
                self.api = await api_start(self)
            await self.vipguard.start()
            if self.vipguard.leases is not None:
                self.opts.services["leases"] = self.vipguard.leases  # the vip agents' guard
            shared = SharedPorts()
            for name, link in self.core.links.items():
                self.links[name] = await open_link(link, self._datagram_for(name), netns=self.opts.netns,
                                                   on_unreachable=self._on_unreachable, shared=shared)
            if self.stopping:  # SIGTERM during start-up: nothing was acquired, leave now
                return 0
            self.running = True
            if c.quorum.device is not None:
                self._start_qdevice()
            self.handle(self.core.start(now_ms()))
            if self.hw_watchdog is not None and self.hw_watchdog.open():
                self.hw_watchdog.start()
            if self.respawner is not None:
                self.respawner.start()
            self._sd_send(READY=1, STATUS=self._service_status())
            if self.sd.watchdog_interval:
                self._arm_watchdog(loop.time() + self.sd.watchdog_interval)
            await self._done.wait()
        finally:
            await self._close()
        self.log.info("node %s stopped", self.core.node)
        return 0

    def request_stop(self, why: str = "SIGTERM") -> None:
        if self.stopping:
            return
        self.stopping = True
        if not self.running:  # start-up not done: nothing acquired yet; run() returns after it
            self.log.info("node %s: %s during start-up: leaving", self.loaded.node, why)
            return
        self.log.info("node %s leaving: releasing its groups", self.core.node)
        if self.balancer is not None:
            self.balancer.set_daemon_status("stopping")
        # bound the leave: a stuck stop must not keep the daemon forever
        # the longest a complete stop of every group may take: each resource is tried
        # 1 + retries times, each try bounded by stop_timeout, with a pause in between
        grace = 10.0 + sum(len(g.resources) * (1 + g.retries) * (g.stop_timeout / 1000 + 1.0)
                           for g in self.config.groups)
        # systemd waits TimeoutStopSec, then kills: tell it how long the ordered release may take
        self._sd_send(STOPPING=1, EXTEND_TIMEOUT_USEC=int((grace + 5) * 1_000_000))
        self.handle(self.core.shutdown(now_ms()))
        asyncio.get_running_loop().call_later(grace, self._done.set)

    # ------------------------------------------------------------------ signals

    async def _sighup(self) -> None:
        """SIGHUP: reopen the log files (logrotate moved them), then reload."""
        if self.logs is not None:
            for problem in self.logs.reopen():
                self.log.error("node %s: SIGHUP: %s", self.loaded.node, problem)
            self.log.log(NOTICE, "node %s: SIGHUP: log files reopened", self.loaded.node)
        if self.running and not self.stopping:
            await self.reloader.reload("SIGHUP")

    def _debug(self, step: int, sig: int) -> None:
        if self.logs is None:
            return
        old, new = self.logs.change_debug(step)
        # heartbeat logs "debug now set to N" at debug level; NOTICE, so that lowering it to 0 shows
        self.log.log(NOTICE, "node %s: debug level %d -> %d (%s)", self.loaded.node, old, new,
                     signals.name(sig))

    def _other_signal(self, sig: int) -> None:
        name = signals.name(sig)
        self.limited.warning(f"signal {name}", time.monotonic(),
                             f"node {self.loaded.node}: {name} received: {signals.TABLE[sig][1]}")

    async def _close(self) -> None:
        if self._timer:
            self._timer.cancel()
        if self.qdevice is not None:
            await self.qdevice.stop()
        if self._watchdog:
            self._watchdog.cancel()
            self._watchdog = None
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=5)
            for t in late:
                t.cancel()
        await self.manager.close()
        for address in await self.vipguard.close():
            self.log.error("VIP %s: still guarded at exit (its stop did not finish): its kernel "
                           "stays silent for it until the next start removes it", address)
        await self.notifier.drain(5)
        if self.flowsync is not None:
            await self.flowsync.stop()
        if self.respawner is not None:
            await self.respawner.stop()
        if self.balancer is not None:
            await self.balancer.stop()
        for link in self.links.values():
            link.close()
        if self.control:
            await self.control.close()
        if self.api is not None:
            await self.api.close()
        if self.hw_watchdog is not None:
            self.hw_watchdog.disarm()  # last: a clean stop (heartbeat.c hb_close_watchdog at the end)
        self.sd.close()

    # ------------------------------------------------------------------ inputs

    def _datagram_for(self, name: str):
        def on_datagram(_link_name: str, data: bytes, addr) -> None:
            # nothing is fed to the core before start() ran with every link open: a peer's
            # packet in between would start the arbiter early (its next one comes a keepalive later)
            if self.running:
                source = addr[0] if isinstance(addr, tuple) else str(addr or "")
                self.handle(self.core.on_datagram(name, data, now_ms(), source))
        return on_datagram

    def _on_unreachable(self, link_name: str, dest: tuple, err: int) -> None:
        if self.running and err == errno.ECONNREFUSED:  # ICMP port unreachable: nothing listens
            name = next((n for n, lk in self.links.items() if lk.name == link_name), link_name)
            self._feed("link_unreachable", name, dest[0], dest[1], now_ms())

    def _on_address_seen(self, address: str, kind: str, mac: str, own_mac: str, ifname: str) -> None:
        if self.running:
            self._feed("address_seen", address, kind, mac, own_mac, ifname, now_ms())

    def _on_timer(self) -> None:
        self._timer = None
        self.handle(self.core.on_timer(now_ms()))

    def _on_monitor_failure(self, f: GroupFailure) -> None:
        self.log.error("group %s: %s failed %s: %s", f.group, f.resource, f.phase, f.reason)
        self._feed("group_failed", f.group, now_ms(), f"{f.resource}: {f.reason}")

    # ------------------------------------------------------------------ actions

    def _feed(self, method: str, *args) -> None:
        """Give the core an input from a task and carry out its answer."""
        actions = self._ask(method, *args)
        if actions is not None:
            self.handle(actions)

    def _ask(self, method: str, *args) -> list | None:
        """The core's answer to an input, not carried out yet; None when the core refused it (a
        report that does not fit its state is logged, never fatal)."""
        try:
            return getattr(self.core, method)(*args)
        except Exception as exc:  # noqa: BLE001 - e.g. TransitionError
            self.log.error("node %s: %s%r refused by the cluster core: %s", self.core.node, method, args, exc)
            return None

    def handle(self, actions: list) -> None:
        """Carry out a core's output, then re-arm the one timer."""
        for a in actions:
            try:
                self._do(a)
            except Exception:  # one bad action must not take the node down
                self.log.exception("node %s: failed to carry out %r", self.core.node, a)
        self._rearm()
        if self.qdevice is not None:
            self._qdevice_membership()
        if self._sd_status is not None:
            self._sd_update()

    def _rearm(self) -> None:
        if self.core.left or self._done.is_set():
            return
        when = self.core.next_deadline()
        loop = asyncio.get_running_loop()
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0.0, (when - now_ms()) / 1000)
        self._timer = loop.call_later(delay, self._on_timer)

    # ------------------------------------------------------------------ systemd

    def _service_status(self) -> str:
        return service_status(self.core.node, self.core.arbiter.snapshot(), self.stopping)

    def _sd_update(self) -> None:
        """STATUS= when the one-line summary changed (checked after every input: cheap)."""
        if not self.sd.enabled:
            return
        text = self._service_status()
        if text != self._sd_status:
            self._sd_send(STATUS=text)

    def _sd_send(self, **fields) -> None:
        if "STATUS" in fields:
            self._sd_status = fields["STATUS"]
        err = self.sd.notify(**fields)
        if err is not None:
            self.limited.warning("sd_notify", time.monotonic(), f"systemd notification failed: {err}")

    def _arm_watchdog(self, due: float) -> None:
        self._watchdog = asyncio.get_running_loop().call_at(due, self._watchdog_tick, due)

    def _watchdog_tick(self, due: float) -> None:
        interval = self.sd.watchdog_interval
        now = asyncio.get_running_loop().time()
        late = max(0.0, now - due)
        overdue = 0.0
        if self.running and not self.stopping and not self.core.left:
            overdue = max(0.0, (now_ms() - self.core.next_deadline()) / 1000)
        if watchdog_ok(late, overdue, interval):
            self._sd_send(WATCHDOG=1)
        else:
            self.log.warning("node %s: watchdog: not telling systemd we are alive: the loop ran %.0f ms "
                             "late, the cluster timer is %.0f ms overdue (allowed %.0f ms)",
                             self.core.node, late * 1000, overdue * 1000, interval * 1000)
        nxt = due + interval
        self._arm_watchdog(nxt if nxt > now else now + interval)

    def _hw_watchdog_healthy(self, late: float) -> tuple[bool, str]:
        """Feed the device only while the loop and the cluster timer are on time (watchdog_ok)."""
        interval = self.hw_watchdog.interval
        overdue = 0.0
        if self.running and not self.stopping and not self.core.left:
            overdue = max(0.0, (now_ms() - self.core.next_deadline()) / 1000)
        if watchdog_ok(late, overdue, interval):
            return True, ""
        return False, (f"the loop ran {late * 1000:.0f} ms late, the cluster timer is {overdue * 1000:.0f} ms "
                       f"overdue (allowed {interval * 1000:.0f} ms)")

    def _spawn(self, coro) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._task_done)

    def _task_done(self, t: asyncio.Task) -> None:
        self._tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            self.log.error("node %s: internal task failed: %r", self.core.node if self.core else "?",
                           t.exception(), exc_info=t.exception())

    def _do(self, a) -> None:
        line = describe(a, self.core.node)
        if line is not None:
            if line.limit_key is not None:
                if self.limited.allow(line.limit_key, time.monotonic()):
                    self.log.warning("%s", line.text, extra={"fields": line.fields})
            else:
                self.log.log(line.level, "%s", line.text, extra={"fields": line.fields})
        if isinstance(a, A.Transmit):
            self.links[a.link].send(a.data)
        elif isinstance(a, A.Probe):
            self._spawn(self._probe(a.address))
        elif isinstance(a, A.AcquireGroup):
            self._spawn(self._acquire(a.group))
        elif isinstance(a, A.ReleaseGroup):
            self._spawn(self._release(a.group, a.drain))
        elif isinstance(a, A.StopStale):
            self._spawn(self._stop_stale(a.group))
        elif isinstance(a, A.Reannounce):
            self._spawn(self._reannounce(a.group))
        elif isinstance(a, A.Lease):
            self.vipguard.lease(a.group, a.addresses, a.until)
        elif isinstance(a, A.ProbeAddress):
            self.vipguard.probe(a.address)
        elif isinstance(a, A.Fence):
            self._spawn(self._fence(a.node))
        elif isinstance(a, A.FenceResult) and not a.ok:
            self._fence_failed(a)
        elif isinstance(a, A.MaintenanceChanged):
            self._maintenance_changed()
        elif isinstance(a, A.LeaveComplete):
            self._done.set()

    # ------------------------------------------------------------------ the witness (qnetd)

    def _start_qdevice(self) -> None:
        from .qdevice import from_config, node_ids
        self._qdevice_ids = node_ids(self.config.cluster.nodes)
        self.qdevice = from_config(self.config.cluster, self.core.node, self._on_witness, log=self.log,
                                   netns=self.opts.netns)
        self.qdevice.start()

    def _on_witness(self, vote: bool | None, detail: str, members: tuple[int, ...]) -> None:
        # called from the qdevice driver's own action loop: feed the core on the next turn, with
        # the membership (names) the vote is for (quorum.py ignores a report for other members)
        names = {i: n for n, i in self._qdevice_ids.items()}
        who = tuple(sorted(names[i] for i in members if i in names))
        asyncio.get_running_loop().call_soon(self._feed, "on_witness", vote, now_ms(), who)

    def _qdevice_membership(self) -> None:
        """Tell the witness client the directors this node sees, whenever that changes."""
        alive = frozenset(self.core.membership.alive()) | {self.core.node}
        if alive != self._qdevice_members:
            self._qdevice_members = alive
            self.qdevice.set_membership(self._qdevice_ids[n] for n in alive if n in self._qdevice_ids)

    def _maintenance_changed(self) -> None:
        """Keep the map on disk (a restart keeps it) and give the balancer its marks."""
        try:
            statedir.save_maintenance(self.opts.state_dir, self.core.maintenance)
        except OSError as exc:
            self.log.error("node %s: cannot save the maintenance map in %s: %s (the peers keep a copy)",
                           self.core.node, self.opts.state_dir, exc.strerror or exc)
        if self.balancer is not None:
            self.balancer.set_maintenance(self.core.maintenance.active())

    def _balancer_previous_seen(self) -> int | None:
        """When the node that held the balancer before us was last known to hold it alive (ms, the
        monotonic clock): now if it handed over alive, its last heartbeat if it died, None when
        nobody held it before (alerts.py: what a new holder sends)."""
        if self.core is None:
            return None
        now = now_ms()
        peers = self.core.membership.snapshot(now)
        alive = self.core.membership.alive()
        seen = []
        for g in self.config.groups:
            if not any(r.kind == "balancer" for r in g.resources):
                continue
            prev = self.core.ownership.previous.get(g.name)
            for n in (prev.split("+") if prev else []):
                if n == self.core.node or n in alive:
                    seen.append(now)
                elif n in peers and peers[n]["silent_ms"] is not None:
                    seen.append(now - peers[n]["silent_ms"])
        return max(seen) if seen else None

    async def _fence(self, peer: str) -> None:
        """Run the fence devices for `peer` (daemon/fencing.py) and tell the core."""
        try:
            ok, detail, device, took = await self.fence_runner.fence(peer)
        except Exception as exc:  # noqa: BLE001 - a fence that raised failed; the core retries
            self.log.exception("node %s: fencing raised", peer)
            ok, detail, device, took = False, f"{type(exc).__name__}: {exc}", "", 0
        if ok:
            self.log.info("node %s: fence by %s succeeded in %d ms: %s", peer, device, took, detail)
        self._feed("on_fence_result", peer, ok, now_ms(), detail, device, took)

    def _fence_failed(self, a) -> None:
        """Loud: the log line (eventlog) and an alert mail at the first failure and every 10th."""
        if self.fence_runner is None or (a.failures != 1 and a.failures % 10):
            return
        mail = self.fence_runner.failure_mail(a.node, a.detail, a.failures, a.retry_ms)
        if mail is not None:
            self.notifier.mail(mail)

    async def _probe(self, address: str) -> None:
        timeout = max(0.2, self.config.cluster.timing.keepalive / 1000)
        err = await icmp.echo(address, timeout)
        if err is None:
            self._feed("probe_reply", address, now_ms())

    async def _acquire(self, name: str) -> None:
        try:
            ok = await self.manager.start_group(self.groups[name])
        except Exception as exc:  # noqa: BLE001 - the group must not stay "starting" forever
            self.log.exception("group %s: start raised", name)
            ok, why = False, f"{type(exc).__name__}: {exc}"
        else:
            why = None
        if ok:
            self.log.info("group %s: running on %s", name, self.core.node)
            self._notify(name, "MASTER")
            self._feed("group_started", name, now_ms())
            return
        if why is None:
            try:
                why = self.manager.snapshot().get(name, {}).get("last_error")
            except Exception:  # noqa: BLE001
                why = None
            why = why or "a resource did not start"
        actions = self._ask("group_failed", name, now_ms(), why)
        if actions is None:
            return
        # the core says whether this was a failure of this node or a start its release cancelled
        if not any(isinstance(a, A.StartCancelled) for a in actions):
            self.log.error("group %s: could not start on %s: %s", name, self.core.node, why)
            self._notify(name, "FAULT")
        self.handle(actions)

    async def _release(self, name: str, drain: bool = False) -> None:
        # Only a complete stop is reported: until then no peer may start the group (the safe
        # side; heartbeat would reboot the node here). Retry with a growing pause. A planned
        # release (drain) first lets the VIPs' connections in flight finish (manager.py); the
        # core keeps renewing the lease meanwhile. Retries do not drain again.
        for attempt in range(1_000_000):
            try:
                if await self.manager.stop_group(self.groups[name], drain=drain and not attempt):
                    break
            except Exception:  # noqa: BLE001 - treated like a failed stop: retried
                self.log.exception("group %s: stop raised", name)
            pause = 0.5 * 2 ** min(attempt, 6)
            self.log.error("group %s: a resource may still run after stop; peers cannot take the "
                           "group until it stops; retrying in %.1fs", name, pause)
            await asyncio.sleep(pause)
        self.log.info("group %s: stopped on %s", name, self.core.node)
        self._notify(name, "STOP" if self.stopping else "BACKUP")
        self._feed("group_stopped", name, now_ms())

    def _notify(self, group: str, state: str) -> None:
        """keepalived's notify: `cmd GROUP <group> MASTER|BACKUP|FAULT|STOP <priority>`."""
        cmd = self.groups[group].notify
        if cmd:
            self.notifier.node_notify(cmd, group, state, self.core.arbiter.score)

    async def _stop_stale(self, name: str) -> None:
        """Start-up clean-up; retried until it works, because the group may not be started
        anywhere until this node has reported it stopped."""
        for attempt in range(1_000_000):
            try:
                stopped = await self.manager.stop_stale([self.groups[name]])
                break
            except Exception as exc:  # noqa: BLE001
                pause = 0.5 * 2 ** min(attempt, 6)
                self.log.error("group %s: start-up clean-up failed (%s); retrying in %.1fs", name, exc, pause)
                await asyncio.sleep(pause)
        for what in stopped:
            self.log.warning("start-up clean-up stopped %s (left from an earlier run)", what)
        self._feed("group_stopped", name, now_ms())

    async def _reannounce(self, name: str) -> None:
        try:
            await self.manager.reannounce(name)
        except Exception as exc:  # noqa: BLE001
            self.log.error("group %s: re-announcing failed: %s", name, exc)

