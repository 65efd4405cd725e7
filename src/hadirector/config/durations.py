"""Durations as heartbeat writes them: `2` and `1.7` are seconds, `2000ms` milliseconds, `500us`
microseconds (ha.cf man page, "Times ... are in seconds unless ms or us is appended"). Values are
kept as whole milliseconds.
"""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|us|s|m|h)?\s*$", re.IGNORECASE)
_SCALE_MS = {None: 1000.0, "s": 1000.0, "ms": 1.0, "us": 0.001, "m": 60_000.0, "h": 3_600_000.0}


def parse_duration_ms(value: object) -> int:
    """Return milliseconds for `2`, `1.7`, `"2000ms"`, `"1.5s"`; ValueError says what was expected."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 2, 1.5 or 2000ms, got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value!r}")
        return round(value * 1000)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            unit = m.group(2).lower() if m.group(2) else None
            ms = float(m.group(1)) * _SCALE_MS[unit]
            if ms and ms < 1:
                raise ValueError(f"duration {value!r} is below the 1 ms resolution")
            return round(ms)
    raise ValueError(f"expected a duration such as 2, 1.5 or 2000ms, got {value!r}")


def format_duration_ms(ms: int) -> str:
    """Inverse of parse_duration_ms, choosing the shortest exact form: "2s", "1500ms"."""
    if ms % 1000 == 0:
        return f"{ms // 1000}s"
    return f"{ms}ms"
