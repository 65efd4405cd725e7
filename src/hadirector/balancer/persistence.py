"""Persistent connection templates, as IPVS keeps them (ip_vs_core.c ip_vs_sched_persist,
ip_vs_conn.c ip_vs_check_template / ip_vs_conn_expire).

How it works: a persistent service (ipvsadm -p TIMEOUT [-M NETMASK]) keeps one template per
client network (client address masked with the netmask). The first connection from that network
is scheduled normally and creates the template naming the chosen server; later connections use
the template's server while it is valid. Each new connection through a template restarts its
timer at `timeout` (ip_vs_conn_put re-arms it). A template that still controls open connections
is never freed (ip_vs_conn_expire: n_control > 0 goes to expire_later). So a template lives while
its connections exist and until `timeout` after both the last connection was made and the last
one ended. (The kernel re-arms a busy template in steps of 60 s, so it may outlive its last
connection by up to 60 s instead of `timeout`; we use `timeout`, the documented intent.)

A template is invalid, and the client rescheduled, when its server was removed from the service
(IP_VS_DEST_F_AVAILABLE cleared) or, with the sysctl expire_quiescent_template, when the server's
weight is 0. Pure: every call takes `now` (seconds); expiry is lazy plus `expire(now)` sweeps.
"""

from __future__ import annotations

from typing import Callable

from ..config.ipvs import netmask_prefix  # noqa: F401 - parsed with the config; re-exported
from .schedulers import Dest


class Template:
    __slots__ = ("key", "dest", "expires", "controlled", "table")

    def __init__(self, key: int, dest: Dest, expires: float, table: "PersistenceTable") -> None:
        self.key = key
        self.dest = dest
        self.expires = expires
        self.controlled = 0  # n_control: open connections made through this template
        self.table = table  # the table it belongs to (a connection outlives a settings change)

    def __repr__(self) -> str:
        return f"Template({self.key:#x} -> {self.dest.key!r}, expires={self.expires}, n={self.controlled})"


class PersistenceTable:
    """Templates of one persistent service."""

    def __init__(self, timeout: float, prefix: int, ipv6: bool = False,
                 expire_quiescent_template: bool = False) -> None:
        if timeout <= 0:
            raise ValueError(f"persistence timeout must be positive, got {timeout}")
        self.timeout = timeout
        bits = 128 if ipv6 else 32
        self.mask = ((1 << bits) - 1) ^ ((1 << (bits - prefix)) - 1)
        self.expire_quiescent_template = expire_quiescent_template
        self.templates: dict[int, Template] = {}
        # told (key, dest, expires) when a template's timer restarts: flow sync sends it to the
        # backups (daemon/flowsync.py); None = nobody listens
        self.on_change: Callable[[int, Dest, float], None] | None = None

    def _advance(self, t: Template, now: float) -> bool:
        """False when the template has expired at `now`."""
        return now < t.expires or t.controlled > 0

    def _valid(self, t: Template) -> bool:
        d = t.dest
        return d.available and not (self.expire_quiescent_template and d.weight == 0)

    def lookup(self, caddr: int, now: float) -> Template | None:
        """The valid template for this client, or None (an invalid one is dropped)."""
        key = caddr & self.mask
        t = self.templates.get(key)
        if t is None:
            return None
        if not self._advance(t, now):
            self._drop(t)
            return None
        if not self._valid(t):
            # ip_vs_check_template: unhash it so it can no longer be found; its connections
            # keep running and release it later
            self._drop(t)
            return None
        return t

    def _drop(self, t: Template) -> None:
        if self.templates.get(t.key) is t:
            del self.templates[t.key]
            t.dest.unbind_template()

    def schedule(self, caddr: int, now: float, pick: Callable[[], Dest | None]) -> tuple[Dest, Template] | None:
        """ip_vs_sched_persist: the template's server, or a new template for `pick()`'s choice.
        The caller then makes its connection and calls `attach(template, now)`."""
        t = self.lookup(caddr, now)
        if t is None:
            dest = pick()
            if dest is None:
                return None
            t = Template(caddr & self.mask, dest, now + self.timeout, self)
            self.templates[t.key] = t
            dest.bind_template()
        return t.dest, t

    def attach(self, t: Template, now: float) -> None:
        """A connection was made through `t` (ip_vs_control_add, then ip_vs_conn_put restarts
        the template timer)."""
        t.controlled += 1
        t.expires = now + self.timeout
        if self.on_change is not None:
            self.on_change(t.key, t.dest, t.expires)

    def release(self, t: Template, now: float) -> None:
        """A connection made through `t` ended (ip_vs_control_del)."""
        t.controlled -= 1
        if t.controlled == 0:
            t.expires = max(t.expires, now + self.timeout)
            if self.on_change is not None and t.table is self and self.templates.get(t.key) is t:
                self.on_change(t.key, t.dest, t.expires)

    def restore(self, key: int, dest: Dest, expires: float) -> Template:
        """A template synced from the active director (flow sync), put in at a takeover: it
        names `dest` until `expires`, with no connection of its own yet."""
        old = self.templates.get(key & self.mask)
        if old is not None:
            self._drop(old)
        t = Template(key & self.mask, dest, expires, self)
        self.templates[t.key] = t
        dest.bind_template()
        return t

    def expire(self, now: float) -> int:
        """Drop expired templates; returns how many."""
        dead = [t for t in self.templates.values() if not self._advance(t, now)]
        for t in dead:
            self._drop(t)
        return len(dead)

    def next_deadline(self) -> float | None:
        idle = [t.expires for t in self.templates.values() if t.controlled == 0]
        return min(idle) if idle else None

    def clear(self) -> None:
        """Drop every template (the service's persistence settings changed). Connections made
        through them keep running and release them later (`release` needs no table entry)."""
        for t in list(self.templates.values()):
            self._drop(t)

    def drop_dest(self, dest: Dest) -> None:
        """The server left the service: its templates go (they would fail the check anyway)."""
        for t in [t for t in self.templates.values() if t.dest is dest]:
            self._drop(t)

    def __len__(self) -> int:
        return len(self.templates)
