"""The running balancer: the desired state -> the data plane, and the supervisor that wires the
health checks to it.

How it works: the daemon makes one `BalancerSupervisor` for the config's [balancer]. Its
`BalancerDriver` goes to the `balancer` resource agent (resources/balancer.py) as
`ctx.services["balancer"]`. Starting the resource opens the data plane and installs the wanted
desired state; stopping it closes the data plane (removing what it installed). The desired state
is computed elsewhere, by the one owner of the rules (balancer/state.py `DesiredStateCore`,
driven by checks/monitor.py): `want(desired)` records the latest one and `sync()` installs it
(data planes apply deltas, so unchanged services and reals keep their connections); the latest
wanted state wins, so a late sync never installs an older one. Until the checks have said
anything the driver wants `build_desired(balancer)` (every real up, unless alpha). The control
socket's `lvs` command answers with `snapshot()`.

Which data plane (`[balancer] dataplane`) is dataplane/factory.py's choice.

The supervisor runs the health checks (checks.monitor.HealthMonitor, which owns the desired
state's core) on every node, also where the balancer resource is not running, so that a backup
has a fresh desired state when it takes over; it hands each new desired state to the driver,
removes nftables tables left by a crash at start, and answers the `checks` part of `status` and
`lvs`. It tells the health monitor whether this node holds the balancer (the driver runs): only
then are alerts sent and commands run (checks/alerts.py, balancer/state.py), and on taking over
it says when the previous holder was last seen (`previous_seen`, from the daemon). The reals in
maintenance come from the cluster's map (`set_maintenance`), the same on every node.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from ..balancer.state import DesiredState, build_desired
from ..config.model import Balancer
from ..dataplane.base import BalancerStats, DataPlane, UnservedKind
from ..dataplane.factory import choose_dataplane, make_dataplane


class BalancerDriver:
    """See the module text. `factory(kind)` builds the data plane (tests pass options through it)."""

    def __init__(self, balancer: Balancer | None, *, dataplane: str | None = None,
                 factory: Callable[[str], DataPlane] | None = None,
                 on_running: Callable[[bool], None] | None = None) -> None:
        self.balancer = balancer
        self.on_running = on_running  # told when the data plane starts (True) and stops
        self.kind = choose_dataplane(dataplane or (balancer.dataplane if balancer else "auto"))
        self._factory = factory or make_dataplane
        self.wanted = build_desired(balancer)  # the state to install (the checks' owner updates it)
        self.dataplane: DataPlane | None = None
        self.desired = DesiredState()  # what the data plane has installed
        self.last_error: str | None = None
        self.conntrackd = None  # dataplane.conntrackd.Conntrackd: NAT connections synced (the supervisor's)
        self._lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        return self.dataplane is not None

    def want(self, desired: DesiredState) -> None:
        """The desired state to install now (the latest call wins); `sync()` installs it."""
        self.wanted = desired

    async def start(self) -> None:
        async with self._lock:
            started = self.dataplane is None
            if started:
                self.dataplane = self._factory(self.kind)
            await self._apply()
        if started and self.on_running is not None:
            self.on_running(True)

    async def prepare(self) -> None:
        """Before the group holding the balancer announces its VIPs (resources/balancer.py
        `prepare`): with conntrackd, load the data plane (without a nat chain no nat hook runs,
        and a packet of a synced connection reaches our own stack, which resets it), then commit
        the connections the other directors synced to us (conntrack-tools primary-backup.sh
        `primary`). Both before any VIP, whatever the haresources order."""
        if self.conntrackd is None:
            return
        await self.start()
        await self.conntrackd.primary()

    async def stop(self) -> None:
        async with self._lock:
            dp, self.dataplane = self.dataplane, None
            self.desired = DesiredState()
            if dp is not None:
                await dp.close()
        if dp is not None and self.conntrackd is not None:
            await self.conntrackd.backup()  # primary-backup.sh `backup`
        if dp is not None and self.on_running is not None:
            self.on_running(False)

    async def _apply(self) -> None:
        desired = self.wanted
        try:
            await self.dataplane.apply(desired)
        except Exception as exc:
            self.last_error = str(exc)
            raise
        self.last_error = None
        self.desired = desired

    async def sync(self) -> bool:
        """Install the wanted state when running and it differs. Returns whether it did."""
        async with self._lock:
            if self.dataplane is None or self.wanted == self.desired:
                return False
            await self._apply()
            return True

    async def reload(self, balancer: Balancer | None, desired: DesiredState | None = None) -> None:
        """A new configuration and its desired state (computed by the checks' owner)."""
        self.balancer = balancer
        self.want(desired if desired is not None else build_desired(balancer))
        await self.sync()

    def stats(self) -> BalancerStats:
        return self.dataplane.stats() if self.dataplane is not None else BalancerStats()

    def healthy(self) -> bool:
        """Running, the last apply succeeded, and (proxy) every service it can serve is served."""
        if self.dataplane is None or self.last_error is not None:
            return False
        return not any(u.kind is UnservedKind.CANNOT_LISTEN for u in self.dataplane.unserved.values())

    def snapshot(self) -> dict:
        """The control socket's answer to `{"cmd": "lvs"}` (without "ok")."""
        from ..render.lvs import lvs_snapshot
        return lvs_snapshot(self.desired, self.stats(), self.kind if self.running else None)


class BalancerSupervisor:
    """The daemon's balancer: one `BalancerDriver` (started and stopped by the `balancer` resource
    of a group, as `services["balancer"]`) and the health checks that feed it. `spawn(coro)` runs
    a task on the daemon's loop (the daemon waits for its tasks at shutdown)."""

    def __init__(self, balancer: Balancer, *, netns: str | None, log: logging.Logger,
                 spawn: Callable, previous_seen: Callable[[], int | None] = lambda: None,
                 held: bool = True, conntrackd=None) -> None:
        self.driver = BalancerDriver(balancer, on_running=self._running)
        self.conntrackd = conntrackd  # dataplane.conntrackd.Conntrackd, run on every node
        self.health = None  # checks.monitor.HealthMonitor, from start()
        self.netns = netns
        self.log = log
        self._spawn = spawn
        self._previous_seen = previous_seen
        # no group holds the balancer (a [balancer] for its checks and alerts only): every node
        # alerts, as before there were holders
        self.always_active = not held
        self.marks: dict = {}  # RealKey -> messages.Mark: the reals in maintenance
        self.flowsync = None  # daemon/flowsync.py FlowSyncService, set by the daemon

    async def start(self) -> None:
        """Start-up: clean the kernel of an earlier run, then start the health checks."""
        if self.driver.kind == "nft":
            await self._purge_nft()
        await self._start_conntrackd()
        from ..checks.monitor import HealthMonitor
        # inactive until the balancer resource starts here: checks run, alerts wait (alerts.py)
        self.health = HealthMonitor(self.driver.balancer, on_desired=self._on_desired,
                                    active=self.driver.running or self.always_active)
        await self.health.start()
        self.health.set_daemon_status("running")
        if self.marks:
            self.health.set_maintenance({k: m.state for k, m in self.marks.items()})

    async def _start_conntrackd(self) -> None:
        """conntrackd runs on every director (a backup receives). It is refused at start when the
        configuration asks for it by name (`hadirector check` says so too); otherwise the balancer
        runs without it, and says that NAT connections will not survive a failover."""
        if self.conntrackd is None:
            return
        from ..dataplane.conntrackd import ConntrackdError
        try:
            await self.conntrackd.start()
        except (ConntrackdError, OSError) as exc:
            if self.conntrackd.plan.explicit:
                raise ConntrackdError(f"balancer.conntrackd: {exc}") from None
            self.log.warning("balancer: %s; running without it: open NAT connections will not "
                             "survive a failover", exc)
            self.conntrackd = None
            return
        self.driver.conntrackd = self.conntrackd

    def _running(self, running: bool) -> None:
        """The data plane started (this node holds the balancer now) or stopped."""
        if self.health is None or self.always_active:
            return
        seen = self._previous_seen() if running else None
        self.health.set_active(running, seen)
        self.log.info("balancer: %s", "active here: alerts and commands from this node" if running
                      else "no longer active here",
                      extra={"fields": {"EVENT": "balancer-active" if running else "balancer-inactive"}})

    def set_maintenance(self, marks: dict) -> None:
        """The reals in maintenance now: {(virtual, "addr:port"): Mark} from the cluster's map.
        Marks of reals this configuration does not have are kept by the map, ignored here."""
        from ..config.model import RealKey
        out = {}
        for (virtual, real), m in marks.items():
            host, _, port = real.rpartition(":")
            if host and port.isdigit():
                out[RealKey(virtual, host.strip("[]"), int(port))] = m
        self.marks = out
        if self.health is not None:
            self.health.set_maintenance({k: m.state for k, m in out.items()})

    async def _purge_nft(self) -> None:
        # start-up clean-up of the kernel data plane: nothing of this run is installed yet,
        # so any table of ours is left from a crash (its rules must not outlive their owner)
        from ..dataplane.nft import NftDataPlane
        try:
            left = await asyncio.to_thread(NftDataPlane.purge, self.netns)
        except Exception as exc:  # noqa: BLE001 - no libnftables: the driver will say so later
            left = []
            self.log.warning("balancer: could not look for nftables tables left from a crash: %s", exc)
        for family, table in left:
            self.log.warning("balancer: removed nftables table %s %s left from an earlier run",
                             family, table)

    def set_daemon_status(self, status: str) -> None:
        if self.health is not None:
            self.health.set_daemon_status(status)

    async def stop(self) -> None:
        if self.health is not None:
            await self.health.stop()
        if self.driver.running:
            await self.driver.stop()  # normally stopped with its group already
        if self.conntrackd is not None:
            self.driver.conntrackd = None
            await self.conntrackd.stop()

    async def reload(self, balancer: Balancer, why: str) -> str:
        """A new [balancer]: the checks and the desired state take the difference, the driver
        installs it. If the driver refuses it, the running configuration is put back and the
        error raised. Returns the checks' summary of what changed."""
        old = self.driver.balancer
        summary = self.health.update(balancer)
        try:
            await self.driver.reload(balancer, self.health.desired())
        except Exception as exc:
            self.log.error("reload (%s): the balancer refused the new configuration: %s", why, exc)
            try:
                self.health.update(old)
                await self.driver.reload(old, self.health.desired())
            except Exception:  # noqa: BLE001
                self.log.exception("reload (%s): restoring the previous balancer failed", why)
            raise
        return str(summary)

    # ------------------------------------------------------------------ desired state -> driver

    def _on_desired(self, desired: DesiredState) -> None:
        """The desired state's owner has a new state: the driver installs the latest one when
        it runs (the group holding the balancer is here)."""
        self.driver.want(desired)
        self._spawn(self._sync())

    async def _sync(self) -> None:
        try:
            await self.driver.sync()
        except Exception as exc:  # noqa: BLE001 - the data plane refused: keep running, say so
            self.log.error("balancer: applying the desired state failed: %s", exc)

    # ------------------------------------------------------------------ what status and lvs show

    def checks(self) -> dict:
        if self.health is None:
            return {}
        out = {}
        wall = self.health.scheduler.wall  # the checks' clock is int ms; status shows wall time
        for key, h in self.health.health().items():
            m = self.marks.get(key)
            out[str(key)] = {"virtual": key.virtual, "address": key.address, "port": key.port,
                             "state": "up" if h.up else "down", "weight": h.weight,
                             "last_result": None if h.last_ok is None else ("ok" if h.last_ok else "failed"),
                             "reason": h.reason, "last_check": wall(h.last_check), "latency_ms": h.latency_ms,
                             "last_change": wall(h.last_change), "checktype": h.checktype,
                             "maintenance": None if m is None else {"state": m.state, "by": m.by,
                                                                    "since": m.since, "origin": m.origin}}
        return out

    def lvs(self, would: bool = False) -> dict:
        """The control socket's answer to `lvs`: the table installed here (empty where the balancer
        does not run) and the checks; `would`: the table this node would install now, from its
        own checks (what a backup installs when it takes over)."""
        if would and self.health is not None:
            from ..render.lvs import lvs_snapshot
            snap = lvs_snapshot(self.health.desired(), BalancerStats(), self.driver.kind)
        else:
            snap = self.driver.snapshot()
        snap["active"] = self.driver.running
        snap["checks"] = self.checks()
        return snap

    async def connections(self) -> dict:
        """`lvs -c`: the flow table. Where the balancer runs, the kernel's flow, closing and
        persistence sets; on a backup, what flow sync holds for a takeover (rows marked synced)."""
        from ..dataplane.nft_render import set_owners
        dp = self.driver.dataplane
        if dp is not None and hasattr(dp, "set_elements"):
            elems, synced, desired = await dp.set_elements(), False, self.driver.desired
        elif self.flowsync is not None:
            elems, synced = self.flowsync.store_entries(), True
            desired = self.health.desired() if self.health is not None else self.driver.wanted
        else:
            return {"rows": [], "synced": False, "source": None}
        owners = set_owners(desired)
        rows = []
        for e, left in elems:
            own = owners.get(e.set.rsplit(" ", 1)[-1])
            if own is None:
                continue
            svc, real, kind = own
            state = {"flow": "ESTABLISHED" if svc.protocol == "tcp" else "UDP", "fin": "FIN_WAIT",
                     "persist": "NONE"}[kind]
            rows.append({"protocol": svc.protocol.upper(), "expire_ms": max(0, left), "state": state,
                         "source": e.addr, "sport": max(0, e.port), "virtual": svc.address,
                         "vport": svc.port, "destination": real.address, "dport": real.port,
                         "template": kind == "persist", "synced": synced})
        return {"rows": rows, "synced": synced,
                "source": self.flowsync.store.sender if synced and self.flowsync is not None else None}

    def summary(self) -> dict:
        d = self.driver
        out = {"running": d.running, "dataplane": d.kind, "last_error": d.last_error}
        if self.conntrackd is not None:
            out["conntrackd"] = self.conntrackd.status()
        return out
