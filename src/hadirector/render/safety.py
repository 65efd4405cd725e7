"""The safety part of `hadirector status`: fencing (its state per peer and the last attempts),
the hardware watchdog, the respawned processes and whether the daemon runs as a realtime process
(daemon/handlers.py status_reply keys `fencing`, `watchdog`, `respawn`, `realtime`). Pure: it
only lays the dict out."""

from __future__ import annotations

from .table import table, when


def safety_lines(st: dict, now: float) -> list[str]:
    out: list[str] = []
    fen = st.get("fencing")
    if fen:
        out.append("")
        peers = fen.get("peers") or {}
        blocked = [f"{n} ({p['state']}{', next try in %d s' % (p['next_attempt_in_ms'] // 1000) if p.get('next_attempt_in_ms') is not None else ''})"
                   for n, p in sorted(peers.items()) if p.get("state") not in ("ok", "fenced")]
        out.append("Fencing: " + (f"takeover waits for fencing of {', '.join(blocked)}" if blocked
                                  else "no fence pending") + f" (delay for fencing {', '.join(fen.get('delayed') or []) or '-'}: "
                   f"{fen.get('delay_ms', 0)} ms)")
        hist = fen.get("history") or []
        if hist:
            rows = [["TARGET", "RESULT", "WHEN", "TOOK", "DEVICE", "DETAIL"]]
            for h in reversed(hist[-5:]):
                rows.append([h["target"], "ok" if h["ok"] else "FAILED", when(h.get("time"), now),
                             f"{h.get('took_ms', 0)} ms", h.get("device") or "-", (h.get("detail") or "")[:60]])
            out += table(rows)
    wd = st.get("watchdog")
    if wd:
        out.append("")
        last = wd.get("last_feed_age_ms")
        out.append(f"watchdog {wd['device']}: {wd['state']}, timeout {wd['timeout_s']} s"
                   + ("" if wd.get("timeout_set") else " (not set: the device's own)")
                   + f", fed {wd['feeds']} times" + (f", last {last} ms ago" if last is not None else "")
                   + (f", {wd['skipped']} feeds skipped (late loop)" if wd.get("skipped") else "")
                   + (f"; {wd['error']}" if wd.get("error") else ""))
    rt = st.get("realtime")
    if rt:
        out.append("")
        out.append(realtime_line(rt))
    rs = st.get("respawn") or []
    if rs:
        out.append("")
        out.append("Respawned processes:")
        for r in rs:
            pid = f"pid {r['pid']}" if r.get("pid") else "no pid"
            last = f", last {r['last_exit']} {when(r.get('last_exit_at'), now)}" if r.get("last_exit") else ""
            wait = f", next start in {r['next_start_in_ms'] // 1000} s" if r.get("state") == "waiting" \
                and r.get("next_start_in_ms") is not None else ""
            out.append(f"* {r['command']} (as {r['user']}): {r['state']}, {pid}, {r['restarts']} restarts{last}{wait}")
    return out


def realtime_line(rt: dict) -> str:
    """One line on [cluster.realtime] (daemon/realtime.py RealtimeState.snapshot())."""
    if not rt.get("enabled"):
        return "realtime: off (normal scheduling, memory not locked)"
    sched = (f"{rt['policy']} priority {rt['priority']}" if rt.get("policy")
             else "NOT in effect (normal scheduling)")
    if rt.get("locked"):
        mem = f"memory locked ({rt.get('locked_kib') or 0} KiB at start)"
    elif rt.get("lock_memory"):
        mem = "memory NOT locked"
    else:
        mem = "memory not locked (lock_memory = false)"
    problems = rt.get("problems") or []
    return f"realtime: {sched}, {mem}" + (f"; {'; '.join(problems)}" if problems else "")
