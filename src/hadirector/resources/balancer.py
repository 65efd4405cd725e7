"""The `balancer` agent: the built-in load balancer as a resource (what haresources' `ldirectord`
entry starts).

start opens the data plane and installs the desired state of the config's [balancer]; stop closes
it (the data plane removes everything it installed: the proxy stops listening, the nft table is
deleted); monitor says whether it is running and its last apply succeeded. The work is done by
the `BalancerDriver` (daemon/balancer.py) the daemon hands over as `ctx.services["balancer"]`, so
health checks, reloads and `hadirector lvs` see the same balancer this agent starts and stops.
"""

from __future__ import annotations

from typing import Any

from ..dataplane.base import DataPlaneError
from ..errors import HadirectorError, is_transient
from .base import Agent, AgentError, register


@register
class BalancerAgent(Agent):
    kind = "balancer"

    @property
    def name(self) -> str:
        src = getattr(self.model, "source", None)
        return f"balancer ({src})" if src else "balancer"

    def _driver(self):
        driver = self.ctx.services.get("balancer")
        if driver is None:
            raise AgentError("no balancer to start: the daemon passes its BalancerDriver as "
                             "services['balancer'] (is there a [balancer] section?)", transient=False)
        return driver

    async def start(self) -> None:
        driver = self._driver()
        try:
            await driver.start()
        except (HadirectorError, ValueError, OSError) as exc:
            # the error says whether a retry may help (errors.is_transient): the VIP's port still
            # taken may clear up, a configuration the data plane cannot install will not
            text = exc.strerror or exc if isinstance(exc, OSError) else exc
            raise AgentError(f"{self.name}: {text}", transient=is_transient(exc),
                             code=getattr(exc, "errno", None), errno=getattr(exc, "errno", None)) from None

    async def prepare(self) -> None:
        # with conntrackd: load the data plane and commit the synced connections before the
        # group's VIPs are announced (BalancerDriver.prepare)
        driver = self.ctx.services.get("balancer")
        if driver is not None and hasattr(driver, "prepare"):
            await driver.prepare()

    async def stop(self) -> None:
        driver = self._driver()
        try:
            await driver.stop()
        except (DataPlaneError, OSError) as exc:
            raise AgentError(f"{self.name}: stop failed: {exc}", transient=True) from None

    async def monitor(self) -> bool:
        return self._driver().healthy()

    def status(self) -> dict[str, Any]:
        driver = self.ctx.services.get("balancer")
        if driver is None:
            return {}
        out: dict[str, Any] = {"dataplane": driver.kind, "running": driver.running,
                               "services": len(driver.desired.services)}
        if driver.last_error:
            out["error"] = driver.last_error
        if driver.dataplane is not None and driver.dataplane.unserved:
            out["unserved"] = {k: u.to_dict() for k, u in driver.dataplane.unserved.items()}
        return out
