"""The health check of every real server, one line each: what `hadirector lvs --checks` prints
after the ipvsadm table (which stays ipvsadm's own, for scripts that parse it). Pure but for
reading the wall clock when `now` is not given."""

from __future__ import annotations

import time

from .table import ago as _ago, table, when


def render_checks(checks: dict, now: float | None = None) -> str:
    """The health check of every real, one line each (pure; `now` = wall clock)."""
    now = time.time() if now is None else now
    maint = any(c.get("maintenance") for c in checks.values())
    rows = [["Virtual", "RemoteAddress:Port", "Check", "State", "Last", "Changed", "Reason"]
            + (["Maintenance"] if maint else [])]
    for c in sorted(checks.values(), key=lambda c: (c["virtual"], c["address"], c["port"])):
        host = f"[{c['address']}]" if ":" in c["address"] else c["address"]
        row = [c["virtual"], f"{host}:{c['port']}", c.get("checktype") or "-", c["state"],
               c.get("last_result") or "-", _ago(c.get("last_change"), now),
               (c.get("reason") or "").replace("\n", " ")[:60]]
        if maint:
            row.append(maintenance_text(c.get("maintenance"), now))
        rows.append(row)
    return "\nHealth checks\n" + "\n".join(table(rows)) + "\n"


def maintenance_text(m: dict | None, now: float) -> str:
    """A real's maintenance as the tables show it: "drain, by root@d1, since 12:00:01 (5m ago)"."""
    if not m:
        return "-"
    return f"{m['state']}, by {m.get('by') or '?'}, since {when(m.get('since'), now)}"
