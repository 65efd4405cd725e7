"""Render the daemon's status reply (a JSON-able dict) as the text `hadirector status` prints.
Pure: the daemon builds the dict (daemon/handlers.py), this only lays it out."""

from __future__ import annotations

from .table import table


def render_status(st: dict) -> str:
    out = [f"cluster {st['cluster']}: node {st['node']} (generation {st['generation']}), "
           f"{st.get('phase', 'running')}"]
    rows = [["NODE", "STATUS", "SCORE", "LINKS"]]
    for n in st["nodes"]:
        links = ", ".join(f"{l['name']} {l['status']}" for l in n.get("links", [])) or "-"
        name = n["name"] + (" (this node)" if n.get("local") else "")
        rows.append([name, n["status"], str(n.get("score", "-")), links])
    out += table(rows)
    if st.get("groups"):
        out.append("")
        rows = [["GROUP", "PREFERRED", "OWNER", "STATE", "RESOURCES"]]
        for g in st["groups"]:
            rows.append([g["name"], g["preferred"], g.get("owner") or "-", g.get("state", "-"),
                         ", ".join(g.get("resources", []))])
        out += table(rows)
    dropped = {k: v for k, v in st.get("dropped", {}).items() if v}
    if dropped:
        out.append("")
        out.append("dropped packets: " + ", ".join(f"{k} {v}" for k, v in sorted(dropped.items())))
    notes = link_notes(st.get("links", {}))
    if notes:
        out.append("")
        out += notes
    return "\n".join(out) + "\n"


def service_status(node: str, snap: dict, stopping: bool = False) -> str:
    """One line for systemd's STATUS= (`systemctl status hadirector`), from the arbiter's snapshot
    (cluster/arbiter.py `snapshot()`): what this node is and does, e.g.
    "active, holding lb, web", "backup (lb held by alpha)", "starting (waiting for peers)"."""
    groups = snap.get("groups", {})
    by_state: dict[str, list[str]] = {}
    for g, st in sorted(groups.items()):
        by_state.setdefault(st.get("state", "none"), []).append(g)
    doing = []
    for state, word in (("held", "holding"), ("starting", "starting"), ("claim", "claiming"),
                        ("stopping", "stopping")):
        if by_state.get(state):
            doing.append(f"{word} {', '.join(by_state[state])}")
    status = snap.get("status", "starting")
    if stopping or status == "leaving":
        return "leaving" + (f": {'; '.join(doing)}" if doing else "")
    if status == "starting":
        return "starting (waiting for peers)" + (f": {'; '.join(doing)}" if doing else "")
    if doing:
        return f"{status}, " + "; ".join(doing)
    elsewhere = []
    for g, st in sorted(groups.items()):
        holders = [h for h in st.get("holders", []) if h != node]
        elsewhere.append(f"{g} held by {', '.join(holders)}" if holders else f"{g} not held")
    return "backup" + (f" ({'; '.join(elsewhere)})" if elsewhere else "")


def link_notes(links: dict) -> list[str]:
    """Per heartbeat link: what it dropped, the last bad MAC's source, and where nothing listens."""
    out = []
    for name, ln in sorted(links.items()):
        parts = []
        drops = {k: v for k, v in (ln.get("dropped") or {}).items() if v}
        if drops:
            parts.append("dropped " + ", ".join(f"{k} {v}" for k, v in sorted(drops.items())))
        bad = ln.get("last_bad_auth")
        if bad:
            parts.append(f"last bad MAC from {bad.get('source') or '?'}: {bad.get('detail', '')}")
        for u in ln.get("unreachable") or []:
            parts.append(f"nothing listens on {u['address']}:{u['port']} (udpport or ucast differs?), "
                         f"{u['count']} ICMP port unreachable")
        if parts:
            out.append(f"link {name}: " + "; ".join(parts))
    return out
