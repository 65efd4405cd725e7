"""The running balancer: configuration + health -> desired state -> data plane, and the supervisor
that wires the health checks to it.

How it works: the daemon makes one `BalancerSupervisor` for the config's [balancer]. Its
`BalancerDriver` goes to the `balancer` resource agent (resources/balancer.py) as
`ctx.services["balancer"]`. Starting the resource opens the data plane and installs the desired state; stopping it closes the data plane
(removing what it installed). Health checks report with `update_health()`; each change that
alters the desired state is applied at once (data planes apply deltas, so unchanged services and
reals keep their connections). A configuration reload calls `reload()`. The control socket's
`lvs` command answers with `snapshot()`.

Which data plane (`[balancer] dataplane`) is dataplane/factory.py's choice.

The supervisor runs the health checks (checks.monitor.HealthMonitor) on every node, also where the
balancer resource is not running, so that a backup has fresh health when it takes over; it feeds
their results and quorum changes to the driver, removes nftables tables left by a crash at start,
and answers the `checks` part of `status` and `lvs`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable, Mapping

from ..balancer.state import (UNCHECKED, DesiredState, HealthKey, RealHealth, build_desired,
                              health_key, initial_health)
from ..config.model import Balancer
from ..dataplane.base import BalancerStats, DataPlane, UnservedKind
from ..dataplane.factory import choose_dataplane, make_dataplane


class BalancerDriver:
    """See the module text. `factory(kind)` builds the data plane (tests pass options through it)."""

    def __init__(self, balancer: Balancer | None, *, dataplane: str | None = None,
                 factory: Callable[[str], DataPlane] | None = None) -> None:
        self.balancer = balancer
        self.kind = choose_dataplane(dataplane or (balancer.dataplane if balancer else "auto"))
        self._factory = factory or make_dataplane
        self.health: dict[HealthKey, RealHealth] = initial_health(balancer)
        self.quorum_lost: set[str] = set()  # service keys whose quorum the checks say is lost
        self.dataplane: DataPlane | None = None
        self.desired = DesiredState()
        self.last_error: str | None = None
        self._lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        return self.dataplane is not None

    def compute(self) -> DesiredState:
        return build_desired(self.balancer, self.health, self.quorum_lost)

    async def start(self) -> None:
        async with self._lock:
            if self.dataplane is None:
                self.dataplane = self._factory(self.kind)
            await self._apply()

    async def stop(self) -> None:
        async with self._lock:
            dp, self.dataplane = self.dataplane, None
            self.desired = DesiredState()
            if dp is not None:
                await dp.close()

    async def _apply(self) -> None:
        desired = self.compute()
        try:
            await self.dataplane.apply(desired)
        except Exception as exc:
            self.last_error = str(exc)
            raise
        self.last_error = None
        self.desired = desired

    async def update_health(self, changes: Mapping[HealthKey, RealHealth | bool]) -> bool:
        """Record check results; apply when the desired state changed. Returns whether it did."""
        async with self._lock:
            for key, value in changes.items():
                self.health[key] = RealHealth(up=value) if isinstance(value, bool) else value
            if self.dataplane is None:
                return False
            if self.compute() == self.desired:
                return False
            await self._apply()
            return True

    async def set_quorum(self, service_key: str, up: bool) -> bool:
        """The checks say a service's quorum is gained/lost; apply when that changes anything."""
        async with self._lock:
            (self.quorum_lost.discard if up else self.quorum_lost.add)(service_key)
            if self.dataplane is None or self.compute() == self.desired:
                return False
            await self._apply()
            return True

    async def reload(self, balancer: Balancer | None) -> None:
        """A new configuration: keep the health of reals that are still configured."""
        async with self._lock:
            fresh = initial_health(balancer)
            fixed = {health_key(vs, r) for vs in (balancer.virtual if balancer else ())
                     if vs.checktype in UNCHECKED for r in vs.reals}
            for key in fresh:
                if key in self.health and key not in fixed:
                    fresh[key] = self.health[key]
            self.balancer = balancer
            self.health = fresh
            if self.dataplane is not None:
                await self._apply()

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
                 spawn: Callable) -> None:
        self.driver = BalancerDriver(balancer)
        self.health = None  # checks.monitor.HealthMonitor, from start()
        self.netns = netns
        self.log = log
        self._spawn = spawn

    async def start(self) -> None:
        """Start-up: clean the kernel of an earlier run, then start the health checks."""
        if self.driver.kind == "nft":
            await self._purge_nft()
        from ..checks.monitor import HealthMonitor
        self.health = HealthMonitor(self.driver.balancer, on_event=self._on_health_event,
                                    on_change=self._on_service_health)
        await self.health.start()
        self.health.set_daemon_status("running")

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

    async def reload(self, balancer: Balancer, why: str) -> str:
        """A new [balancer]: the driver and the checks take the difference. If the driver refuses
        it, the running configuration is put back and the error raised. Returns the checks'
        summary of what changed."""
        old = self.driver.balancer
        try:
            await self.driver.reload(balancer)
        except Exception as exc:
            self.log.error("reload (%s): the balancer refused the new configuration: %s", why, exc)
            try:
                await self.driver.reload(old)
            except Exception:  # noqa: BLE001
                self.log.exception("reload (%s): restoring the previous balancer failed", why)
            raise
        return self.health.update(balancer)

    # ------------------------------------------------------------------ health -> driver

    def _on_health_event(self, ev) -> None:
        k = ev.key  # the checks module logs the change itself
        change = {(k.virtual, k.address, k.port): RealHealth(up=ev.up, weight=ev.weight)}
        self._spawn(self._apply_health(change))

    def _on_service_health(self, view) -> None:
        """keepalived quorum: while a service's up weight is below its quorum the fallback serves."""
        self._spawn(self._apply_quorum(view.virtual, view.quorum_up))

    async def _apply_quorum(self, service: str, up: bool) -> None:
        try:
            await self.driver.set_quorum(service, up)
        except Exception as exc:  # noqa: BLE001
            self.log.error("balancer: applying quorum of %s failed: %s", service, exc)

    async def _apply_health(self, change) -> None:
        try:
            await self.driver.update_health(change)
        except Exception as exc:  # noqa: BLE001 - the data plane refused: keep running, say so
            self.log.error("balancer: applying a health change failed: %s", exc)

    # ------------------------------------------------------------------ what status and lvs show

    def checks(self) -> dict:
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

    def lvs(self) -> dict:
        """The control socket's answer to `lvs`: the table and the checks."""
        snap = self.driver.snapshot()
        snap["checks"] = self.checks()
        return snap

    def summary(self) -> dict:
        d = self.driver
        return {"running": d.running, "dataplane": d.kind, "last_error": d.last_error}
