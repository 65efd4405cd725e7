"""The daemon: wires the pure cluster core (cluster.node.NodeCore) to sockets, the clock, the
resource manager and the control socket, all on one asyncio loop.

The core decides; this module only carries out its actions and feeds it inputs:

    datagram on a link   -> core.on_datagram          Transmit     -> link.send
    the one timer fires  -> core.on_timer             Probe        -> ICMP echo -> core.probe_reply
    group start/stop     -> core.group_started/...    AcquireGroup -> manager.start_group
    monitor failure      -> core.group_failed         ReleaseGroup -> manager.stop_group
    control: standby ... -> core.standby/takeover     StopStale    -> manager.stop_stale
    SIGTERM              -> core.shutdown             Reannounce   -> gratuitous ARP again
                                                      LeaveComplete-> exit

After every input the single timer is re-armed at `core.next_deadline()` (DESIGN convention 3).
Events (node up/dead, link down, late heartbeat, split brain) are logged naming the node/group.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import dataclass, field

from ..cluster import actions as A
from ..cluster.node import NodeCore
from ..config.load import Loaded
from ..net import icmp
from ..net.transports import LinkTransport, open_link
from ..resources.base import AgentContext
from ..resources.manager import GroupFailure, ResourceManager
from . import statedir
from .control import ControlError, ControlServer
from .logsetup import RateLimited


def now_ms() -> int:
    return int(time.monotonic() * 1000)


def _stamp(files) -> tuple:
    """(path, mtime, size) of each configuration file, to notice edits (autoreload)."""
    import os
    out = []
    for f in files:
        try:
            st = os.stat(f)
            out.append((f, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((f, None, None))
    return tuple(out)


def with_balancer_of(old, new):
    """After a reload only the balancer part takes effect at once; cluster and groups stay."""
    return old.model_copy(update={"balancer": new.balancer})


@dataclass
class Options:
    state_dir: str
    netns: str | None = None  # run links and agents inside this network namespace (tests, lab)
    resource_dirs: tuple[str, ...] | None = None
    services: dict = field(default_factory=dict)  # extra agent services (the balancer driver)


class Daemon:
    def __init__(self, loaded: Loaded, opts: Options, log: logging.Logger | None = None):
        if loaded.node is None:
            raise ValueError("this node is not one of the cluster's nodes (pass --node)")
        self.loaded = loaded
        self.config = loaded.config
        self.opts = opts
        self.log = log or logging.getLogger("hadirector")
        self.limited = RateLimited(self.log)
        self.groups = {g.name: g for g in self.config.groups}
        # the balancer: one driver, started/stopped by the `balancer` resource of a group; its
        # health checks run on every node (a backup has fresh health when it takes over)
        self.balancer = None
        self.health = None
        if self.config.balancer is not None:
            from ..balancer.driver import BalancerDriver
            self.balancer = BalancerDriver(self.config.balancer)
            opts.services.setdefault("balancer", self.balancer)
        self._file_stamp = _stamp(loaded.files)
        from ..checks.alerts import Notifier
        self.notifier = Notifier()  # group notify commands (keepalived notify), callback
        self.core: NodeCore | None = None
        self.links: dict[str, LinkTransport] = {}
        ctx_kw = {"netns": opts.netns, "services": opts.services}
        if opts.resource_dirs:
            ctx_kw["resource_dirs"] = opts.resource_dirs
        self.manager = ResourceManager(AgentContext(**ctx_kw), on_failure=self._on_monitor_failure)
        self.control: ControlServer | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task] = set()
        self._done = asyncio.Event()
        self._stopping = False
        self._running = False  # core.start() has run
        self.started_at = time.time()

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> int:
        statedir.prepare(self.opts.state_dir)
        generation = statedir.next_generation(self.opts.state_dir)
        t0 = now_ms()
        self.core = NodeCore(self.config, self.loaded.node, generation, t0)
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
        control = ControlServer(self.opts.state_dir, {
            "status": self._ctl_status, "standby": self._ctl_standby, "takeover": self._ctl_takeover,
            "lvs": self._ctl_lvs, "reload": self._ctl_reload,
        }, log=self.log.warning)
        await control.start()
        self.control = control  # only now: a failed start must not remove another daemon's socket
        try:
            loop = asyncio.get_running_loop()
            if self.balancer is not None and self.balancer.kind == "nft":
                # start-up clean-up of the kernel data plane: nothing of this run is installed yet,
                # so any table of ours is left from a crash (its rules must not outlive their owner)
                from ..dataplane.nft import NftDataPlane
                try:
                    left = await asyncio.to_thread(NftDataPlane.purge, self.opts.netns)
                except Exception as exc:  # noqa: BLE001 - no libnftables: the driver will say so later
                    left = []
                    self.log.warning("balancer: could not look for nftables tables left from a crash: %s", exc)
                for family, table in left:
                    self.log.warning("balancer: removed nftables table %s %s left from an earlier run",
                                     family, table)
            if self.config.balancer is not None:
                from ..checks.monitor import HealthMonitor
                self.health = HealthMonitor(self.config.balancer, on_event=self._on_health_event,
                                            on_change=self._on_service_health)
                await self.health.start()
                self.health.set_daemon_status("running")
                if self.config.balancer.autoreload:
                    self._spawn(self._autoreload())
            for name, link in self.core.links.items():
                self.links[name] = await open_link(link, self._datagram_for(name), netns=self.opts.netns)
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
            self._running = True
            self._handle(self.core.start(now_ms()))
            loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload("SIGHUP")))
            await self._done.wait()
        finally:
            await self._close()
        self.log.info("node %s stopped", self.core.node)
        return 0

    def request_stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self.log.info("node %s leaving: releasing its groups", self.core.node)
        if self.health is not None:
            self.health.set_daemon_status("stopping")
        self._handle(self.core.shutdown(now_ms()))
        # bound the leave: a stuck stop must not keep the daemon forever
        # the longest a complete stop of every group may take: each resource is tried
        # 1 + retries times, each try bounded by stop_timeout, with a pause in between
        grace = 10.0 + sum(len(g.resources) * (1 + g.retries) * (g.stop_timeout / 1000 + 1.0)
                           for g in self.config.groups)
        asyncio.get_running_loop().call_later(grace, self._done.set)

    async def _close(self) -> None:
        if self._timer:
            self._timer.cancel()
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=5)
            for t in late:
                t.cancel()
        await self.manager.close()
        await self.notifier.drain(5)
        if self.health is not None:
            await self.health.stop()
        if self.balancer is not None and self.balancer.running:
            await self.balancer.stop()  # normally stopped with its group already
        for link in self.links.values():
            link.close()
        if self.control:
            await self.control.close()

    # ------------------------------------------------------------------ inputs

    def _datagram_for(self, name: str):
        def on_datagram(_link_name: str, data: bytes, addr) -> None:
            # nothing is fed to the core before start() ran with every link open: a peer's
            # packet in between would start the arbiter early (its next one comes a keepalive later)
            if self._running:
                self._handle(self.core.on_datagram(name, data, now_ms()))
        return on_datagram

    def _on_timer(self) -> None:
        self._timer = None
        self._handle(self.core.on_timer(now_ms()))

    def _on_monitor_failure(self, f: GroupFailure) -> None:
        self.log.error("group %s: %s failed %s: %s", f.group, f.resource, f.phase, f.reason)
        self._feed("group_failed", f.group, now_ms(), f"{f.resource}: {f.reason}")

    def _on_health_event(self, ev) -> None:
        k = ev.key  # the checks module logs the change itself
        from ..balancer.state import RealHealth
        change = {(k.virtual, k.address, k.port): RealHealth(up=ev.up, weight=ev.weight)}
        self._spawn(self._apply_health(change))

    def _on_service_health(self, view) -> None:
        """keepalived quorum: while a service's up weight is below its quorum the fallback serves."""
        self._spawn(self._apply_quorum(view.virtual, view.quorum_up))

    async def _apply_quorum(self, service: str, up: bool) -> None:
        try:
            await self.balancer.set_quorum(service, up)
        except Exception as exc:  # noqa: BLE001
            self.log.error("balancer: applying quorum of %s failed: %s", service, exc)

    async def _apply_health(self, change) -> None:
        try:
            await self.balancer.update_health(change)
        except Exception as exc:  # noqa: BLE001 - the data plane refused: keep running, say so
            self.log.error("balancer: applying a health change failed: %s", exc)

    # ------------------------------------------------------------------ reload

    async def reload(self, why: str) -> dict:
        """Re-read the configuration and apply the difference (DESIGN convention 5): the balancer's
        services and checks are diffed; unchanged ones keep running. Cluster and group changes
        are reported and need a restart."""
        from ..config import ConfigError, load_config
        src = self.loaded
        try:
            new = load_config(path=None if src.legacy else src.source,
                              ha_dir=src.source if src.legacy else None, node=self.core.node)
        except ConfigError as exc:
            for p in exc.problems:
                self.log.error("reload (%s): %s", why, p)
            return {"applied": False, "errors": [str(p) for p in exc.problems]}
        self._file_stamp = _stamp(new.files)
        notes = []
        if new.config.cluster != self.config.cluster or new.config.groups != self.config.groups:
            notes.append("cluster or resource group settings changed: restart the daemon to apply them")
            self.log.warning("reload (%s): %s", why, notes[-1])
        if new.config.balancer != self.config.balancer:
            if self.balancer is None or new.config.balancer is None:
                notes.append("adding or removing the whole [balancer] needs a restart")
                self.log.warning("reload (%s): %s", why, notes[-1])
            else:
                try:
                    await self.balancer.reload(new.config.balancer)
                except Exception as exc:  # noqa: BLE001 - keep the running configuration
                    self.log.error("reload (%s): the balancer refused the new configuration: %s", why, exc)
                    try:
                        await self.balancer.reload(self.config.balancer)
                    except Exception:  # noqa: BLE001
                        self.log.exception("reload (%s): restoring the previous balancer failed", why)
                    return {"applied": False, "errors": [str(exc)]}
                summary = self.health.update(new.config.balancer)
                notes.append(f"balancer: {summary}")
                self.log.info("reload (%s): balancer updated: %s", why, summary)
        else:
            notes.append("balancer: unchanged")
        self.loaded = new
        self.config = with_balancer_of(self.config, new.config)
        return {"applied": True, "notes": notes}

    async def _autoreload(self) -> None:
        """ldirectord autoreload: look at the configuration files every checkinterval."""
        while not self._stopping:
            await asyncio.sleep(max(1.0, self.config.balancer.checkinterval / 1000))
            stamp = _stamp(self.loaded.files)
            if stamp != self._file_stamp:
                self._file_stamp = stamp
                try:
                    result = await self.reload("autoreload")
                except Exception:  # noqa: BLE001 - autoreload must keep running
                    self.log.exception("autoreload failed")
                    continue
                if result.get("applied") and self.config.balancer.callback:
                    # ldirectord callback: `cmd <configuration file>` after the file changed
                    self.notifier.callback(self.config.balancer.callback, self.loaded.source)

    # ------------------------------------------------------------------ actions

    def _feed(self, method: str, *args) -> None:
        """Give the core an input from a task; a report that does not fit the core's state is
        logged, never fatal."""
        try:
            actions = getattr(self.core, method)(*args)
        except Exception as exc:  # noqa: BLE001 - e.g. TransitionError
            self.log.error("node %s: %s%r refused by the cluster core: %s", self.core.node, method, args, exc)
            return
        self._handle(actions)

    def _handle(self, actions: list) -> None:
        for a in actions:
            try:
                self._do(a)
            except Exception:  # one bad action must not take the node down
                self.log.exception("node %s: failed to carry out %r", self.core.node, a)
        self._rearm()

    def _rearm(self) -> None:
        if self.core.left or self._done.is_set():
            return
        when = self.core.next_deadline()
        loop = asyncio.get_running_loop()
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0.0, (when - now_ms()) / 1000)
        self._timer = loop.call_later(delay, self._on_timer)

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
        me = self.core.node
        if isinstance(a, A.Transmit):
            self.links[a.link].send(a.data)
        elif isinstance(a, A.Probe):
            self._spawn(self._probe(a.address))
        elif isinstance(a, A.AcquireGroup):
            self.log.info("group %s: acquiring on %s", a.group, me)
            self._spawn(self._acquire(a.group))
        elif isinstance(a, A.ReleaseGroup):
            self.log.info("group %s: releasing from %s (%s)", a.group, me, a.reason)
            self._spawn(self._release(a.group))
        elif isinstance(a, A.StopStale):
            self._spawn(self._stop_stale(a.group))
        elif isinstance(a, A.Reannounce):
            self.log.warning("group %s: kept after split brain; announcing its addresses again", a.group)
            self._spawn(self._reannounce(a.group))
        elif isinstance(a, A.LeaveComplete):
            self.log.info("node %s: every group released, peers told", me)
            self._done.set()
        elif isinstance(a, A.PacketDropped):
            self.limited.warning(f"dropped:{a.link}:{a.reason}", time.monotonic(),
                                 f"link {a.link}: dropped packet ({a.reason}): {a.detail}")
        elif isinstance(a, A.NodeChanged):
            lvl = logging.WARNING if a.new == "dead" else logging.INFO
            self.log.log(lvl, "node %s: %s -> %s (%s)", a.node, a.old, a.new, a.reason)
        elif isinstance(a, A.LinkDown):
            self.log.warning("link %s to %s: dead (%s)", a.link, a.node, a.reason)
        elif isinstance(a, A.LinkUp):
            self.log.info("link %s to %s: up", a.link, a.node)
        elif isinstance(a, A.LateHeartbeat):
            self.log.warning("node %s: late heartbeat, silent for %d ms (warntime)", a.node, a.silent_ms)
        elif isinstance(a, A.PeerRestarted):
            self.log.warning("node %s: restarted (generation %d -> %d)", a.node, a.old_generation,
                             a.new_generation)
        elif isinstance(a, A.TimingMismatch):
            self.log.warning("node %s runs with keepalive %d ms / deadtime %d ms, not ours", a.node,
                             a.keepalive_ms, a.deadtime_ms)
        elif isinstance(a, A.SplitBrain):
            self.log.warning("group %s: held by %s after a partition; %s keeps it", a.group,
                             ", ".join(a.holders), a.keeper)
        elif isinstance(a, A.RequestResult):
            self.log.info("%s%s: %s", a.request, f" group {a.group}" if a.group else "", a.detail)
        elif isinstance(a, A.Stalled):
            self.log.warning("node %s: this node's loop did not run for %d ms (overloaded or "
                             "suspended); peers get a grace period before being declared dead", me, a.gap_ms)
        elif isinstance(a, A.NotHeardBy):
            self.log.warning("node %s hears nothing from us for %d ms although we hear it: a one-way "
                             "link (check firewalls and the ucast addresses on both nodes)", a.node, a.for_ms)
        elif isinstance(a, (A.Settled,)):
            self.log.info("node %s: start-up settled (%s)", me, a.reason)
        elif isinstance(a, A.PingChanged):
            self.log.warning("ping node %s: %s", a.name, "up" if a.up else "down")
        elif isinstance(a, A.ScoreChanged):
            self.log.info("connectivity score %d -> %d", a.old, a.new)
        else:
            self.log.debug("node %s: %r", me, a)

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
        from ..cluster.messages import GroupState
        st = self.core.arbiter.local_groups.get(name)
        if not ok and st is not None and st.state == GroupState.STOPPING:
            # released while starting (failback, split brain, shutdown): the stop cancelled the
            # start; not a failure of this node, which must stay a candidate for the group
            self.log.info("group %s: start on %s cancelled by its release", name, self.core.node)
            return
        if ok:
            self.log.info("group %s: running on %s", name, self.core.node)
            self._notify(name, "MASTER")
            self._feed("group_started", name, now_ms())
        else:
            if why is None:
                try:
                    why = self.manager.snapshot().get(name, {}).get("last_error")
                except Exception:  # noqa: BLE001
                    why = None
                why = why or "a resource did not start"
            self.log.error("group %s: could not start on %s: %s", name, self.core.node, why)
            self._notify(name, "FAULT")
            self._feed("group_failed", name, now_ms(), why)

    async def _release(self, name: str) -> None:
        # Only a complete stop is reported: until then no peer may start the group (the safe
        # side; heartbeat would reboot the node here). Retry with a growing pause.
        for attempt in range(1_000_000):
            try:
                if await self.manager.stop_group(self.groups[name]):
                    break
            except Exception:  # noqa: BLE001 - treated like a failed stop: retried
                self.log.exception("group %s: stop raised", name)
            pause = 0.5 * 2 ** min(attempt, 6)
            self.log.error("group %s: a resource may still run after stop; peers cannot take the "
                           "group until it stops; retrying in %.1fs", name, pause)
            await asyncio.sleep(pause)
        self.log.info("group %s: stopped on %s", name, self.core.node)
        self._notify(name, "STOP" if self._stopping else "BACKUP")
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

    # ------------------------------------------------------------------ control

    async def _ctl_status(self, req: dict) -> dict:
        return self.status()

    async def _ctl_lvs(self, req: dict) -> dict:
        if self.balancer is None:
            raise ControlError("this configuration has no [balancer]")
        snap = self.balancer.snapshot()
        snap["checks"] = self._checks()
        return snap

    async def _ctl_reload(self, req: dict) -> dict:
        if not self._running:
            raise ControlError("reload: the daemon is starting")
        return await self.reload("control")

    def _checks(self) -> dict:
        if self.health is None:
            return {}
        out = {}
        for key, h in self.health.health().items():
            out[str(key)] = {"virtual": key.virtual, "address": key.address, "port": key.port,
                             "state": "up" if h.up else "down", "weight": h.weight,
                             "last_result": None if h.last_ok is None else ("ok" if h.last_ok else "failed"),
                             "reason": h.reason, "last_check": h.last_check, "last_change": h.last_change,
                             "checktype": h.checktype}
        return out

    def status(self) -> dict:
        now = now_ms()
        st = self.core.status(now)
        res = self.manager.snapshot()
        nodes = [{"name": self.core.node, "local": True, "status": st["status"], "score": st["score"],
                  "generation": self.core.generation, "links": [
                      {"name": n, "status": "up" if getattr(l, "up", True) else "down"}
                      for n, l in self.links.items()]}]
        for name, p in st["peers"].items():
            nodes.append({"name": name, "status": p["state"], "generation": p["generation"],
                          "silent_ms": p["silent_ms"],
                          "links": [{"name": ln, "status": s} for ln, s in p["links"].items()]})
        groups = []
        for name, g in st["groups"].items():
            holders = g["holders"]
            groups.append({"name": name, "preferred": g["preferred"],
                           "owner": ", ".join(holders) if holders else None,
                           "state": g["state"], "holders": holders,
                           "resources": [r["name"] for r in res.get(name, {}).get("resources", [])]
                           or [r.kind for r in self.groups[name].resources],
                           "local": res.get(name)})
        dropped = {k: v for k, v in st["packets"].items() if k != "ok"}
        return {"cluster": self.config.cluster.name, "node": self.core.node,
                "generation": self.core.generation, "phase": "leaving" if self._stopping else
                ("running" if st["settled"] else "starting (initdead)"),
                "nodes": nodes, "groups": groups, "dropped": dropped,
                "packets_ok": st["packets"].get("ok", 0), "connectivity": st["connectivity"],
                "links": {n: l.stats.as_dict() for n, l in self.links.items()},
                "balancer": None if self.balancer is None else {
                    "running": self.balancer.running, "dataplane": self.balancer.kind,
                    "last_error": self.balancer.last_error},
                "checks": self._checks(),
                "uptime_s": round(time.time() - self.started_at, 1)}

    async def _operator(self, kind: str, req: dict) -> dict:
        if not self._running or self._stopping:
            raise ControlError(f"{kind}: the daemon is {'stopping' if self._stopping else 'starting'}")
        which = req.get("which", "all")
        if which not in ("all", "foreign", "local", "failback"):
            raise ControlError(f"{kind}: expected all, foreign, local or failback, got {which!r}")
        wait = min(3600.0, max(0.0, float(req.get("wait", 0))))  # bounded: a client waits, not the daemon
        name = f"{kind} {which}"
        results: list[A.RequestResult] = [a for a in self._collect(getattr(self.core, kind), which)
                                          if isinstance(a, A.RequestResult)]
        messages = [f"{r.request}{' group ' + r.group if r.group else ''}: {r.detail}" for r in results]
        ok = any(r.ok for r in results)
        if ok and wait > 0:
            targets = [r.group for r in results if r.ok and r.group]
            moved = await self._wait_moved(kind, targets, wait)
            messages += moved
        return {"messages": messages, "done": ok, "request": name}

    def _collect(self, fn, which: str) -> list:
        out = fn(which, now_ms())
        self._handle(out)
        return out

    async def _wait_moved(self, kind: str, groups: list[str], wait: float) -> list[str]:
        """Wait until each group is held elsewhere (standby) or here (takeover)."""
        deadline = time.monotonic() + wait
        me = self.core.node
        pending = set(groups)
        msgs = []
        while pending and time.monotonic() < deadline:
            st = self.core.status(now_ms())["groups"]
            for g in list(pending):
                holders = st[g]["holders"]
                if kind == "takeover" and holders == [me] and st[g]["state"] == "held":
                    msgs.append(f"group {g}: now running here")
                    pending.discard(g)
                elif kind == "standby" and holders and me not in holders:
                    msgs.append(f"group {g}: now held by {', '.join(holders)}")
                    pending.discard(g)
            await asyncio.sleep(0.05)
        for g in sorted(pending):
            msgs.append(f"group {g}: not moved within {wait:g}s")
        return msgs

    async def _ctl_standby(self, req: dict) -> dict:
        return await self._operator("standby", req)

    async def _ctl_takeover(self, req: dict) -> dict:
        return await self._operator("takeover", req)
