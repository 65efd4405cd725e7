"""Reload: re-read the configuration and apply the difference (DESIGN convention 5).

SIGHUP, the control command `reload` and ldirectord's `autoreload` (the files are looked at every
checkinterval) come here. A configuration with errors is refused with each error logged, and the
running one stays. The balancer's services and checks are diffed (daemon/balancer.py); unchanged
ones keep running. Cluster and group changes are reported as needing a restart: a running
cluster's membership and ownership are not changed under it.
"""

from __future__ import annotations

import asyncio
import os


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


def with_balancer_of(old, new):
    """After a reload only the balancer part takes effect at once; cluster and groups stay."""
    return old.model_copy(update={"balancer": new.balancer})


class Reloader:
    """Reloads of one `Daemon` (daemon/node.py): it replaces the daemon's `loaded` and `config`."""

    def __init__(self, daemon) -> None:
        self.d = daemon
        self._file_stamp = file_stamp(daemon.loaded.files)

    async def reload(self, why: str) -> dict:
        """The reply of the control command `reload`: {"applied": bool, "notes"|"errors": [...]}"""
        from ..config import ConfigError, load_config
        d = self.d
        log = d.log
        src = d.loaded
        try:
            new = load_config(path=None if src.legacy else src.source,
                              ha_dir=src.source if src.legacy else None, node=d.core.node)
        except ConfigError as exc:
            for p in exc.problems:
                log.error("reload (%s): %s", why, p)
            return {"applied": False, "errors": [str(p) for p in exc.problems]}
        self._file_stamp = file_stamp(new.files)
        notes = []
        if new.config.cluster != d.config.cluster or new.config.groups != d.config.groups:
            notes.append("cluster or resource group settings changed: restart the daemon to apply them")
            log.warning("reload (%s): %s", why, notes[-1])
        if new.config.balancer != d.config.balancer:
            if d.balancer is None or new.config.balancer is None:
                notes.append("adding or removing the whole [balancer] needs a restart")
                log.warning("reload (%s): %s", why, notes[-1])
            else:
                try:
                    summary = await d.balancer.reload(new.config.balancer, why)
                except Exception as exc:  # noqa: BLE001 - logged there; the running one stays
                    return {"applied": False, "errors": [str(exc)]}
                notes.append(f"balancer: {summary}")
                log.info("reload (%s): balancer updated: %s", why, summary)
        else:
            notes.append("balancer: unchanged")
        d.loaded = new
        d.config = with_balancer_of(d.config, new.config)
        return {"applied": True, "notes": notes}

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
                if result.get("applied") and d.config.balancer.callback:
                    # ldirectord callback: `cmd <configuration file>` after the file changed
                    d.notifier.callback(d.config.balancer.callback, d.loaded.source)
