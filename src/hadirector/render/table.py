"""The column table `hadirector status` and `hadirector lvs --checks` print."""

from __future__ import annotations


def table(rows: list[list[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, trailing spaces stripped; one string per row."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
