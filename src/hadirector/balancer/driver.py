"""The running balancer: configuration + health -> desired state -> data plane.

How it works: the daemon makes one `BalancerDriver` for the config's [balancer] and hands it to
the `balancer` resource agent (resources/balancer.py) as `ctx.services["balancer"]`. Starting the
resource opens the data plane and installs the desired state; stopping it closes the data plane
(removing what it installed). Health checks report with `update_health()`; each change that
alters the desired state is applied at once (data planes apply deltas, so unchanged services and
reals keep their connections). A configuration reload calls `reload()`. The control socket's
`lvs` command answers with `snapshot()`.

Which data plane (`[balancer] dataplane`): `nft` (kernel, needs root and libnftables), `proxy`
(userspace, no root), or `auto`: nft when running as root with libnftables present, else proxy.
"""

from __future__ import annotations

import asyncio
import ctypes.util
import logging
import os
from typing import Any, Callable, Mapping

from ..config.model import Balancer
from ..dataplane.base import BalancerStats, DataPlane
from .state import (UNCHECKED, DesiredState, HealthKey, RealHealth, build_desired, health_key,
                    initial_health)

log = logging.getLogger("hadirector.balancer")


def choose_dataplane(setting: str) -> str:
    """`[balancer] dataplane` -> "nft" or "proxy" ("auto": nft when root with libnftables)."""
    if setting in ("nft", "proxy"):
        return setting
    if setting != "auto":
        raise ValueError(f"balancer.dataplane: expected auto, nft or proxy, got {setting!r}")
    if os.geteuid() == 0 and ctypes.util.find_library("nftables"):
        return "nft"
    return "proxy"


def make_dataplane(kind: str, **options: Any) -> DataPlane:
    if kind == "proxy":
        from ..dataplane.proxy import ProxyDataPlane
        return ProxyDataPlane(**options)
    if kind == "nft":
        from ..dataplane.nft import NftDataPlane
        return NftDataPlane(**options)
    raise ValueError(f"unknown data plane {kind!r}; expected nft or proxy")


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
        unsupported = getattr(self.dataplane, "unsupported", {})
        return not any("cannot listen" in why for why in unsupported.values())

    def snapshot(self) -> dict:
        """The control socket's answer to `{"cmd": "lvs"}` (without "ok")."""
        from ..status import lvs_snapshot
        return lvs_snapshot(self.desired, self.stats(), self.kind if self.running else None)
