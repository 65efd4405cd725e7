"""Render the daemon's status reply (a JSON-able dict) as the text `hadirector status` prints.
Pure: the daemon builds the dict (daemon/handlers.py), this only lays it out, as crm_mon does:
each node, link and group with when it last changed, every node's connectivity score, then the
failed actions with their reason and time, and the reals in maintenance."""

from __future__ import annotations

import time

from .checks import maintenance_text
from .safety import safety_lines
from .table import ago, table, when


def _score(n: dict) -> str:
    score, top = n.get("score"), n.get("score_max")
    if score is None:
        return "-"
    return f"{score}/{top}" if top else str(score)


def _link(l: dict, now: float) -> str:
    since = l.get("since")
    return f"{l['name']} {l['status']}" + (f" ({ago(since, now)})" if since else "")


def render_status(st: dict) -> str:
    now = st.get("now") or time.time()
    out = [f"cluster {st['cluster']}: node {st['node']} (generation {st['generation']}), "
           f"{st.get('phase', 'running')}"]
    rows = [["NODE", "STATUS", "SCORE", "SINCE", "LINKS"]]
    for n in st["nodes"]:
        links = ", ".join(_link(l, now) for l in n.get("links", [])) or "-"
        name = n["name"] + (" (this node)" if n.get("local") else "")
        rows.append([name, n["status"], _score(n), when(n.get("since"), now), links])
    out += table(rows)
    if st.get("quorum"):
        out += quorum_lines(st["quorum"], now)
    if st.get("witness"):  # the connection behind quorum's "witness:" line (daemon/qdevice.py)
        out.append(witness_line(st["witness"]))
    if st.get("groups"):
        out.append("")
        rows = [["GROUP", "PREFERRED", "OWNER", "STATE", "SINCE", "RESOURCES"]]
        for g in st["groups"]:
            rows.append([g["name"], g["preferred"], g.get("owner") or "-", g.get("state", "-"),
                         when(g.get("since"), now), ", ".join(g.get("resources", []))])
        out += table(rows)
    failed = _failed(st, now)
    if failed:
        out.append("")
        out.append("Failed actions:")
        out += failed
    marks = st.get("maintenance") or []
    if marks:
        out.append("")
        out.append("Maintenance:")
        out += [f"* real {m['real']} of {m['virtual']}: {maintenance_text(m, now)}" for m in marks]
    dropped = {k: v for k, v in st.get("dropped", {}).items() if v}
    if dropped:
        out.append("")
        out.append("dropped packets: " + ", ".join(f"{k} {v}" for k, v in sorted(dropped.items())))
    fsync = st.get("flow_sync")
    if fsync:
        out.append("")
        out.append(flow_sync_line(fsync, now))
    notes = link_notes(st.get("links", {}))
    if notes:
        out.append("")
        out += notes
    out += safety_lines(st, now)  # fencing, watchdog, respawn (render/safety.py)
    return "\n".join(out) + "\n"


def flow_sync_line(fs: dict, now: float) -> str:
    """One line on flow sync (daemon/flowsync.py): the role, what it holds or sent, the lag and
    the last full snapshot."""
    sent, recv, drop = fs.get("sent", {}), fs.get("received", {}), fs.get("dropped", {})
    if fs.get("role") == "active":
        text = (f"flow sync: active, sending to {', '.join(fs.get('peers') or []) or 'no peer'}: "
                f"{sent.get('entries', 0)} entries in {sent.get('messages', 0)} messages "
                f"({sent.get('bytes', 0)} bytes), {sent.get('snapshots', 0)} snapshots, "
                f"{sent.get('dropped', 0)} dropped")
        if (fs.get("nflog") or {}).get("error"):
            text += f"; NFLOG: {fs['nflog']['error']}"
        return text
    lag = fs.get("lag_ms") or {}
    last = fs.get("last_snapshot")
    snap = when(last / 1000, now) if last else "never"
    lagt = f"lag p50 {lag.get('p50')} ms p99 {lag.get('p99')} ms" if lag.get("p50") is not None else "lag -"
    return (f"flow sync: backup, {fs.get('entries', 0)} entries from {fs.get('sender') or 'no active yet'}"
            f"{'' if fs.get('synced') else ' (waiting for a full snapshot)'}, {lagt}, last full "
            f"snapshot {snap}; received {recv.get('entries', 0)} entries ({recv.get('bytes', 0)} bytes), "
            f"dropped {sum(drop.values()) if drop else 0}, gaps {fs.get('gaps', 0)}")


def quorum_lines(q: dict, now: float) -> list[str]:
    """`quorum: ...` and, with a device, `witness: ...` (cluster/quorum.py's snapshot)."""
    votes = f"{q['votes']} of {q['expected']} votes, {q['needed']} needed"
    since = f", {ago(q['since'], now)}" if q.get("since") else ""
    if q.get("two_node"):
        state = "two nodes, one vote is quorum (leases and probing decide)"
        if q.get("waiting_for_all"):
            state = "NO QUORUM: waiting for both nodes (wait_for_all)"
    elif q["quorate"]:
        state = f"quorate ({votes}{since})"
    elif q.get("waiting_for_all"):
        state = f"NO QUORUM: waiting for all nodes (wait_for_all; {votes})"
    else:
        state = f"NO QUORUM ({votes}{since})"
    act = {"stop": "groups stopped here", "freeze": "frozen: keeping what runs, starting nothing",
           "ok": "ignored"}
    policy = f"no_quorum_policy {q['policy']}"
    if q.get("witness") == "waiting":
        policy += "; waiting for the witness's vote, nothing starts or stops"
    elif not q["quorate"]:
        policy += f": {act[q.get('mode', 'stop')]}"
    out = [f"quorum: {state}; {policy}"]
    dev = q.get("device")
    if dev:
        out.append(f"witness: qnetd {dev['host']}:{dev['port']} ({dev['algorithm']}"
                   f"{'' if dev.get('tls', True) else ', no TLS'}): {q.get('witness', 'unknown')}")
    return out


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


def _failed(st: dict, now: float) -> list[str]:
    """crm_mon's "Failed Resource Actions": this node's failed starts, stops and monitors, newest
    first, and the groups marked failed on a node (not a candidate until a takeover)."""
    out = []
    for f in reversed(st.get("failed_actions") or []):
        out.append(f"* group {f['group']}: {f['resource']} {f['action']} on {f['node']} failed "
                   f"{when(f.get('time'), now)}: {f['reason']}")
    for g in st.get("groups", []):
        if g.get("failed_here"):
            out.append(f"* group {g['name']}: failed on {st['node']} (not a candidate for it until "
                       f"`takeover`)")
    for n in st.get("nodes", []):
        for g in n.get("failed_groups") or []:
            out.append(f"* group {g}: failed on {n['name']} (not a candidate for it until `takeover`)")
    return out


def witness_line(w: dict) -> str:
    """The qdevice-net connection to corosync-qnetd (daemon/qdevice.py status), under quorum's
    `witness:` line: e.g. `witness connection 198.18.0.20:5403: connected 12 s, qnetd says ACK;
    ring 1.3, node id 1, heartbeat 2000 ms`."""
    answer = {"ack": "qnetd says ACK", "nack": "qnetd says NACK", None: "no vote"}.get(w.get("vote"), w.get("vote"))
    state = {"idle": "not connected"}.get(w["state"], w["state"])
    if state == "connected":
        state = f"connected {(w.get('connected_for_ms') or 0) // 1000} s"
    parts = [f"witness connection {w['server']}: {state}, {answer}"]
    if w.get("answer_pending"):
        parts.append("waiting for qnetd's answer to the new membership")
    parts.append(f"ring {w['ring_id']}, node id {w['node_id']}, heartbeat {w['heartbeat_interval_ms']} ms")
    if w.get("last_error") and w["state"] != "connected":
        parts.append(f"last error: {w['last_error']}")
    return "; ".join(parts)
