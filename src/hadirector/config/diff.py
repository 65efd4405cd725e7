"""What changed between two configurations, in words, and whether a running daemon can apply it.
Pure: two frozen `Config`s in, a list of `Change` out. Reload (daemon/reload.py) logs and answers
these; `hadirector reload` prints them:

    virtual TCP 198.18.0.1:80: real 198.18.1.4:80 weight 3 -> 2
    virtual TCP 198.18.0.1:80: scheduler wrr -> rr
    virtual UDP 198.18.0.1:53: added (2 reals)
    balancer: checkinterval 10s -> 5s
    cluster.timing.deadtime: 500ms -> 1s                          (needs a restart)
    group web: resources[0].address 198.18.0.100 -> 198.18.0.101  (needs a restart)

Live (applied at once): the `[balancer]` (virtual services, reals, checks and their globals,
diffed by the health checks and the desired state's core, DESIGN convention 5) and
`cluster.logging` (the log files, facility and debug level are set up again). Needing a restart:
the rest of `[cluster]` and the resource groups (a running cluster's membership and ownership are
not changed under it), adding or removing the whole `[balancer]`, its `dataplane` and
`autoreload` and `conntrackd`. A virtual's key that only changed because the global it inherits changed is not
repeated for every virtual: the global's line says it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .model import INHERITED_KEYS, Balancer, Config, VirtualService

BALANCER_RESTART = ("dataplane", "autoreload", "conntrackd")  # conntrackd: its child starts with the daemon


@dataclass(frozen=True)
class Change:
    where: str  # "virtual TCP 198.18.0.1:80", "balancer", "cluster.timing.deadtime", "group web"
    what: str  # "real 198.18.1.4:80 weight 3 -> 2"; "" when `where` says it all
    live: bool  # applied by a reload; False: needs a restart

    def __str__(self) -> str:
        return f"{self.where}: {self.what}" if self.what else self.where


def show(value: Any) -> str:
    """A value as the configuration writes it (the JSON dump: durations as "2s")."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {show(v)}" for k, v in value.items()) + "}"
    return str(value)


def _walk(old: Any, new: Any, path: str) -> list[tuple[str, Any, Any]]:
    """(path, old, new) for every leaf that differs; lists compared item by item."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in list(old) + [k for k in new if k not in old]:
            out += _walk(old.get(k), new.get(k), f"{path}.{k}" if path else k)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) \
            and all(isinstance(x, dict) for x in old + new):
        out = []
        for i, (a, b) in enumerate(zip(old, new)):
            out += _walk(a, b, f"{path}[{i}]")
        return out
    return [] if old == new else [(path, old, new)]


def _leaf(path: str, old: Any, new: Any) -> str:
    return f"{path} {show(old)} -> {show(new)}" if path else f"{show(old)} -> {show(new)}"


def changes(old: Config, new: Config) -> list[Change]:
    out: list[Change] = []
    out += _cluster(old, new)
    out += _groups(old, new)
    out += _balancer(old.balancer, new.balancer)
    return out


def _cluster(old: Config, new: Config) -> list[Change]:
    a, b = old.cluster.model_dump(mode="json"), new.cluster.model_dump(mode="json")
    for d in (a, b):
        if d.get("auth", {}).get("key"):
            d["auth"]["key"] = "(secret)"
    if old.cluster.auth.key != new.cluster.auth.key:
        a["auth"]["key"], b["auth"]["key"] = "(old secret)", "(new secret)"
    _hide_fence_params(a, b)
    out = []
    for path, x, y in _walk(a, b, "cluster"):
        out.append(Change(path, f"{show(x)} -> {show(y)}", live=path.startswith("cluster.logging.")))
    return out


def _hide_fence_params(a: dict, b: dict) -> None:
    """Fence device parameters hold passwords: show that they changed, never their values."""
    devs = [(d.get("fencing") or {}).get("devices") or [] for d in (a, b)]
    for i in range(max(len(devs[0]), len(devs[1]))):
        pair = [ds[i] if i < len(ds) else None for ds in devs]
        for key in ("params", "param_text"):
            vals = [None if d is None else d.get(key) for d in pair]
            for j, d in enumerate(pair):
                if d is None or not d.get(key):
                    continue
                if key == "param_text":
                    d[key] = "(secret)" if vals[0] == vals[1] else ("(old secret)", "(new secret)")[j]
                else:
                    other = vals[1 - j] or {}
                    d[key] = {k: "(secret)" if other.get(k) == v else ("(old secret)", "(new secret)")[j]
                              for k, v in d[key].items()}


def _groups(old: Config, new: Config) -> list[Change]:
    a = {g.name: g.model_dump(mode="json") for g in old.groups}
    b = {g.name: g.model_dump(mode="json") for g in new.groups}
    out = []
    for name in a:
        if name not in b:
            out.append(Change(f"group {name}", "removed", live=False))
    for name, g in b.items():
        if name not in a:
            out.append(Change(f"group {name}", "added", live=False))
            continue
        for path, x, y in _walk(a[name], g, ""):
            out.append(Change(f"group {name}", _leaf(path, x, y), live=False))
    return out


def _balancer(old: Balancer | None, new: Balancer | None) -> list[Change]:
    if old is None and new is None:
        return []
    if old is None or new is None:
        return [Change("balancer", "added" if old is None else "removed", live=False)]
    out = []
    ga = old.model_dump(mode="json", exclude={"virtual"})
    gb = new.model_dump(mode="json", exclude={"virtual"})
    for path, x, y in _walk(ga, gb, ""):
        out.append(Change("balancer", _leaf(path, x, y), live=path.split(".")[0] not in BALANCER_RESTART))
    va = {vs.name: vs for vs in old.virtual}
    vb = {vs.name: vs for vs in new.virtual}
    for name in va:
        if name not in vb:
            out.append(Change(f"virtual {name}", "removed", live=True))
    for name, vs in vb.items():
        if name not in va:
            out.append(Change(f"virtual {name}", f"added ({len(vs.reals)} real{'s' * (len(vs.reals) != 1)})",
                              live=True))
            continue
        out += _virtual(va[name], vs, ga, gb)
    return out


def _virtual(old: VirtualService, new: VirtualService, ga: dict, gb: dict) -> list[Change]:
    where = f"virtual {new.name}"
    a = old.model_dump(mode="json", exclude={"reals"})
    b = new.model_dump(mode="json", exclude={"reals"})
    out = []
    for path, x, y in _walk(a, b, ""):
        key = path.split(".")[0]
        # inherited from a global that changed the same way: the global's line says it
        if key in INHERITED_KEYS and ga.get(key) != gb.get(key) and a.get(key) == ga.get(key) \
                and b.get(key) == gb.get(key):
            continue
        out.append(Change(where, _leaf(path, x, y), live=True))
    ra = {old.real_key(r): r for r in old.reals}
    rb = {new.real_key(r): r for r in new.reals}

    def name(key) -> str:
        host = f"[{key.address}]" if ":" in key.address else key.address
        return f"real {host}:{key.port}"
    for key in ra:
        if key not in rb:
            out.append(Change(where, f"{name(key)} removed", live=True))
    for key, r in rb.items():
        if key not in ra:
            out.append(Change(where, f"{name(key)} added ({r.method}, weight {r.weight})", live=True))
            continue
        for path, x, y in _walk(ra[key].model_dump(mode="json"), r.model_dump(mode="json"), ""):
            out.append(Change(where, f"{name(key)} {_leaf(path, x, y)}", live=True))
    return out


def applied(old: Config, new: Config) -> Config:
    """The configuration a reload leaves running: the new live parts (the [balancer], unless it
    was added or removed, and cluster.logging), the rest of the old one."""
    cluster = old.cluster.model_copy(update={"logging": new.cluster.logging})
    update: dict = {"cluster": cluster}
    if old.balancer is not None and new.balancer is not None:
        update["balancer"] = new.balancer.model_copy(
            update={k: getattr(old.balancer, k) for k in BALANCER_RESTART})
    return old.model_copy(update=update)
