"""The health check of every real server, one line each: what `hadirector lvs --checks` prints
after the ipvsadm table (which stays ipvsadm's own, for scripts that parse it). Pure but for
reading the wall clock when `now` is not given."""

from __future__ import annotations

import time

from .table import ago as _ago, table


def render_checks(checks: dict, now: float | None = None) -> str:
    """The health check of every real, one line each (pure; `now` = wall clock)."""
    now = time.time() if now is None else now
    rows = [["Virtual", "RemoteAddress:Port", "Check", "State", "Last", "Changed", "Reason"]]
    for c in sorted(checks.values(), key=lambda c: (c["virtual"], c["address"], c["port"])):
        host = f"[{c['address']}]" if ":" in c["address"] else c["address"]
        rows.append([c["virtual"], f"{host}:{c['port']}", c.get("checktype") or "-", c["state"],
                     c.get("last_result") or "-", _ago(c.get("last_change"), now),
                     (c.get("reason") or "").replace("\n", " ")[:60]])
    return "\nHealth checks\n" + "\n".join(table(rows)) + "\n"
