"""The daemon's control commands: what it answers on its control socket (daemon/control.py).

    status                 the cluster, its nodes, links and groups, the balancer and its checks
                           (plain data; render/cluster.py prints it for `hadirector status`)
    standby / takeover     heartbeat's hb_standby / hb_takeover: the core decides, this waits
                           (bounded) until the groups have moved and says where they went
    lvs                    the balancer's table and checks (render/lvs.py prints it)
    reload                 re-read the configuration (daemon/reload.py)
    real                   put a real server in maintenance (drain, disable) or back (enable):
                           a mark in the cluster's maintenance map (cluster/maintenance.py)

A request that cannot be served raises ControlError, whose text the client prints.
"""

from __future__ import annotations

import asyncio
import pwd
import time

from ..cluster import actions as A
from ..cluster.eventlog import mark_text
from ..config.names import BadName, find_real, find_virtual, real_text
from .clock import now_ms
from .control import ControlError


class ControlHandlers:
    """The handlers of one `Daemon` (daemon/node.py), whose state they read and whose core they
    feed through the daemon (so its timer is re-armed and the actions carried out)."""

    def __init__(self, daemon) -> None:
        self.d = daemon

    def table(self) -> dict:
        """{command: async handler(request) -> reply} for ControlServer."""
        return {"status": self.status, "standby": self.standby, "takeover": self.takeover,
                "lvs": self.lvs, "reload": self.reload, "real": self.real}

    async def status(self, req: dict) -> dict:
        return status_reply(self.d)

    async def lvs(self, req: dict) -> dict:
        if self.d.balancer is None:
            raise ControlError("this configuration has no [balancer]")
        reply = self.d.balancer.lvs(would=bool(req.get("would")))
        if req.get("connections"):
            reply["connections"] = await self.d.balancer.connections()
        reply["held_by"] = balancer_holders(self.d)
        return reply

    async def reload(self, req: dict) -> dict:
        if not self.d.running:
            raise ControlError("reload: the daemon is starting")
        return await self.d.reloader.reload("control")

    async def real(self, req: dict) -> dict:
        """{"action": drain|disable|enable, "virtual": name, "real": name}: HAProxy's `set server
        state drain|maint|ready`, as a mark every node gets."""
        d = self.d
        if not d.running:
            raise ControlError("real: the daemon is starting")
        if d.balancer is None:
            raise ControlError("real: this configuration has no [balancer]")
        action = req.get("action")
        state = {"drain": "drain", "disable": "disabled", "enable": "enabled"}.get(action)
        if state is None:
            raise ControlError(f"real: expected drain, disable or enable, got {action!r}")
        try:
            vs = find_virtual(d.config.balancer, str(req.get("virtual", "")))
            key = find_real(vs, str(req.get("real", "")))
        except BadName as exc:
            raise ControlError(f"real: {exc}") from None
        by = req.get("_by") or _who(req.get("_peer"), d.core.node)  # _by: the HTTP API's client
        try:
            actions = d.core.set_maintenance(vs.name, real_text(key), state, now_ms(), by=by,
                                             since=int(time.time()))
        except ValueError as exc:
            raise ControlError(f"real: {exc}") from None
        d.handle(actions)
        mark = d.core.maintenance.marks[(vs.name, real_text(key))]
        peers = sorted(d.core.membership.alive() - {d.core.node})
        told = f"; sent to {', '.join(peers)}" if peers else "; no peer is up: they get it when they are heard"
        return {"message": mark_text(mark) + told, "state": state}

    async def standby(self, req: dict) -> dict:
        return await self._operator("standby", req)

    async def takeover(self, req: dict) -> dict:
        return await self._operator("takeover", req)

    async def _operator(self, kind: str, req: dict) -> dict:
        d = self.d
        if not d.running or d.stopping:
            raise ControlError(f"{kind}: the daemon is {'stopping' if d.stopping else 'starting'}")
        which = req.get("which", "all")
        if which not in ("all", "foreign", "local", "failback"):
            raise ControlError(f"{kind}: expected all, foreign, local or failback, got {which!r}")
        wait = min(3600.0, max(0.0, float(req.get("wait", 0))))  # bounded: a client waits, not the daemon
        name = f"{kind} {which}"
        results: list[A.RequestResult] = [a for a in self._collect(getattr(d.core, kind), which)
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
        self.d.handle(out)
        return out

    async def _wait_moved(self, kind: str, groups: list[str], wait: float) -> list[str]:
        """Wait until each group is held elsewhere (standby) or here (takeover)."""
        deadline = time.monotonic() + wait
        me = self.d.core.node
        pending = set(groups)
        msgs = []
        while pending and time.monotonic() < deadline:
            st = self.d.core.status(now_ms())["groups"]
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


def _who(peer: dict | None, node: str) -> str:
    """user@node of the control client (SO_PEERCRED), for the maintenance mark's `by`."""
    if not peer:
        return f"?@{node}"
    try:
        user = pwd.getpwuid(peer["uid"]).pw_name
    except (KeyError, TypeError):
        user = f"uid {peer.get('uid')}"
    return f"{user}@{node}"


def balancer_holders(d) -> list[str]:
    """The nodes running a group that holds the balancer (haresources' ldirectord)."""
    if d.core is None:
        return []
    st = d.core.arbiter
    out: list[str] = []
    for g in d.config.groups:
        if any(r.kind == "balancer" for r in g.resources):
            out += [n for n in st.holders(g.name) if n not in out]
    return out


def _wall(age_ms: int | None, now_wall: float) -> float | None:
    return None if age_ms is None else round(now_wall - age_ms / 1000, 3)


def _quorum(q: dict, device, wall: float) -> dict:
    """The core's quorum snapshot (cluster/quorum.py) with wall-clock `since` and the device."""
    out = {k: v for k, v in q.items() if k != "since_age_ms"}
    out["since"] = _wall(q["since_age_ms"], wall)
    out["device"] = None if device is None else {
        "host": device.host, "port": device.port, "algorithm": device.algorithm, "tls": device.tls}
    return out


def status_reply(d) -> dict:
    """The `status` reply of daemon `d`: plain, JSON-able data. Times (`since`, failed actions'
    `time`) are wall-clock seconds."""
    now = now_ms()
    wall = time.time()
    st = d.core.status(now)
    res = d.manager.snapshot()
    nodes = [{"name": d.core.node, "local": True, "status": st["status"], "score": st["score"],
              "score_max": st["score_max"], "generation": d.core.generation,
              "since": _wall(st["changed_age_ms"], wall), "links": [
                  {"name": n, "status": "up" if getattr(l, "up", True) else "down"}
                  for n, l in d.links.items()]}]
    for name, p in st["peers"].items():
        status = f"heartbeat lost, alive on {p['alive_on']}" if p.get("alive_on") else p["state"]
        nodes.append({"name": name, "status": status, "generation": p["generation"],
                      "score": p["score"], "score_max": p["score_max"],
                      "silent_ms": p["silent_ms"], "since": _wall(p["changed_age_ms"], wall),
                      "failed_groups": p["failed_groups"],
                      "links": [{"name": ln, "status": s,
                                 "since": _wall(p["links_changed_age_ms"].get(ln), wall)}
                                for ln, s in p["links"].items()]})
    groups = []
    for name, g in st["groups"].items():
        holders = g["holders"]
        groups.append({"name": name, "preferred": g["preferred"],
                       "owner": ", ".join(holders) if holders else None,
                       "state": g["state"], "holders": holders, "since": _wall(g["owner_age_ms"], wall),
                       "failed_here": g["failed_here"],
                       "resources": [r["name"] for r in res.get(name, {}).get("resources", [])]
                       or [r.kind for r in d.groups[name].resources],
                       "local": res.get(name)})
    failed = [{**f, "node": d.core.node} for f in d.manager.failed_actions]
    dropped = {k: v for k, v in st["packets"].items() if k != "ok"}
    witness = d.qdevice.status() if getattr(d, "qdevice", None) is not None else None
    return {"cluster": d.config.cluster.name, "node": d.core.node, "witness": witness,
            "generation": d.core.generation, "phase": "leaving" if d.stopping else
            ("running" if st["settled"] else "starting (initdead)"),
            "now": wall, "nodes": nodes, "groups": groups, "failed_actions": failed,
            "maintenance": [{"virtual": m.virtual, "real": m.real, "state": m.state, "by": m.by,
                             "since": m.since, "origin": m.origin}
                            for m in sorted(d.core.maintenance.active().values(), key=lambda m: m.key)],
            "dropped": dropped,
            "packets_ok": st["packets"].get("ok", 0), "connectivity": st["connectivity"],
            "quorum": _quorum(st["quorum"], d.config.cluster.quorum.device, wall),
            "links": {n: {**l.stats.as_dict(), **st["links"].get(n, {})} for n, l in d.links.items()},
            "vip_guard": d.vipguard.status(), "lease_ms": st["lease_ms"],
            "balancer": None if d.balancer is None else d.balancer.summary(),
            "checks": {} if d.balancer is None else d.balancer.checks(),
            "flow_sync": None if getattr(d, "flowsync", None) is None else d.flowsync.status(),
            "respawn": [] if getattr(d, "respawner", None) is None else d.respawner.snapshot(),
            "watchdog": None if getattr(d, "hw_watchdog", None) is None else d.hw_watchdog.snapshot(),
            "realtime": None if getattr(d, "realtime", None) is None else d.realtime.snapshot(),
            **_fencing(st, wall),
            "uptime_s": round(time.time() - d.started_at, 1)}


def _fencing(st: dict, wall: float) -> dict:
    """Fencing state and history (cluster/fencing.py), with wall-clock times."""
    f = st.get("fencing")
    if f is None:
        return {}
    hist = [{**h, "time": _wall(h["age_ms"], wall)} for h in f["history"]]
    return {"fencing": {**f, "history": hist}}
