"""Reload: re-read the configuration and apply the difference (DESIGN convention 5).

SIGHUP, the control command `reload` and ldirectord's `autoreload` (the files are looked at every
checkinterval) come here. A configuration with errors is refused with each error logged, and the
running one stays. What changed is said in words (config/diff.py), one line each in the log and
in the reply; the balancer's services and checks take the difference (daemon/balancer.py:
unchanged ones keep running), the logging settings are set up again, and each change that needs
a restart (the rest of the cluster settings, the groups) is named with its setting.
"""

from __future__ import annotations

import asyncio
import os

from ..config.diff import applied, changes
from ..loglevel import NOTICE


def file_stamp(files) -> tuple:
    """(path, mtime, size) of each configuration file, to notice edits (autoreload)."""
    out = []
    for f in files:
        try:
            st = os.stat(f)
            out.append((f, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((f, None, None))
    return tuple(out)


class Reloader:
    """Reloads of one `Daemon` (daemon/node.py): it replaces the daemon's `loaded` and `config`."""

    def __init__(self, daemon) -> None:
        self.d = daemon
        self._file_stamp = file_stamp(daemon.loaded.files)

    async def reload(self, why: str) -> dict:
        """The reply of the control command `reload`: {"applied": bool, "changes": [...] (applied,
        in words), "restart": [...] (not applied: needs a restart, naming the setting),
        "errors": [...] (why it was refused)}."""
        from ..config import ConfigError, load_config
        d = self.d
        log = d.log
        src = d.loaded
        try:
            new = load_config(path=None if src.legacy else src.source,
                              ha_dir=src.source if src.legacy else None, node=d.core.node)
        except ConfigError as exc:
            for p in exc.problems:
                log.error("reload (%s): refused: %s", why, p)
            log.error("reload (%s): refused, the running configuration stays", why)
            return {"applied": False, "errors": [str(p) for p in exc.problems], "changes": [], "restart": []}
        self._file_stamp = file_stamp(new.files)
        found = changes(d.config, new.config)
        live = [c for c in found if c.live]
        restart = [c for c in found if not c.live]
        new_b = new.config.balancer
        if d.balancer is not None and new_b is not None and any(
                c.where == "balancer" or c.where.startswith("virtual ") for c in live):
            try:
                await d.balancer.reload(applied(d.config, new.config).balancer, why)
            except Exception as exc:  # noqa: BLE001 - logged there; the running one stays
                log.error("reload (%s): refused, the running configuration stays", why)
                return {"applied": False, "errors": [f"the balancer refused it: {exc}"], "changes": [],
                        "restart": []}
        if new.config.cluster.logging != d.config.cluster.logging and d.logs is not None:
            d.logs.configure(new.config.cluster.logging)
            for problem in d.logs.problems:
                log.error("reload (%s): %s", why, problem)
        for c in live:
            log.log(NOTICE, "reload (%s): %s", why, c, extra={"fields": {"EVENT": "reload"}})
        for c in restart:
            log.warning("reload (%s): not applied, needs a restart: %s", why, c,
                        extra={"fields": {"EVENT": "reload"}})
        if not found:
            log.info("reload (%s): no changes", why)
        d.loaded = new
        d.config = applied(d.config, new.config)
        return {"applied": True, "changes": [str(c) for c in live], "restart": [str(c) for c in restart],
                "errors": []}

    async def autoreload(self) -> None:
        """ldirectord autoreload: look at the configuration files every checkinterval."""
        d = self.d
        while not d.stopping:
            await asyncio.sleep(max(1.0, d.config.balancer.checkinterval / 1000))
            stamp = file_stamp(d.loaded.files)
            if stamp != self._file_stamp:
                self._file_stamp = stamp
                try:
                    result = await self.reload("autoreload")
                except Exception:  # noqa: BLE001 - autoreload must keep running
                    d.log.exception("autoreload failed")
                    continue
                # only the node that holds the balancer runs it (alerts once: checks/alerts.py)
                if result.get("applied") and d.config.balancer.callback and d.balancer is not None \
                        and d.balancer.driver.running:
                    # ldirectord callback: `cmd <configuration file>` after the file changed
                    d.notifier.callback(d.config.balancer.callback, d.loaded.source)
