"""The daemon's clock: what its cores are fed as `now` (int milliseconds, monotonic)."""

from __future__ import annotations

import time


def now_ms() -> int:
    return int(time.monotonic() * 1000)
