"""The column table `hadirector status` and `hadirector lvs --checks` print, and how they show a
time (wall-clock seconds; `now` is the reply's own time, so the text depends on its input only)."""

from __future__ import annotations

import time


def table(rows: list[list[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, trailing spaces stripped; one string per row."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def ago(t: float | None, now: float) -> str:
    """How long ago: "12s ago", "5m ago", "3h ago", "2d ago"; "-" for no time."""
    if not t:
        return "-"
    d = max(0, int(now - t))
    if d < 120:
        return f"{d}s ago"
    if d < 7200:
        return f"{d // 60}m ago"
    return f"{d // 3600}h ago" if d < 172800 else f"{d // 86400}d ago"


def when(t: float | None, now: float) -> str:
    """A local time and how long ago: "12:03:04 (2m ago)"; the date too when not today."""
    if not t:
        return "-"
    lt, ln = time.localtime(t), time.localtime(now)
    fmt = "%H:%M:%S" if lt[:3] == ln[:3] else "%Y-%m-%d %H:%M:%S"
    return f"{time.strftime(fmt, lt)} ({ago(t, now)})"
