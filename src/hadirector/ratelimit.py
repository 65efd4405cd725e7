"""A log rate limiter: a flood of the same message (bad packets, a failing probe) is logged a few
times per window and counted, never lost silently (DESIGN convention 7: protocol errors are
counted and logged rate-limited). Pure but for the logger it writes to: the caller passes `now`
(seconds, any monotonic clock)."""

from __future__ import annotations

import logging


class RateLimited:
    """Log at most `burst` messages per key per `window` seconds; count the rest."""

    def __init__(self, log: logging.Logger, window: float = 10.0, burst: int = 5):
        self.log, self.window, self.burst = log, window, burst
        self._seen: dict[str, tuple[float, int]] = {}
        self.suppressed = 0

    def allow(self, key: str, now: float) -> bool:
        """Count one message under `key`; whether to log it. When a new window starts, the
        number suppressed in the last one is logged first."""
        start, n = self._seen.get(key, (now, 0))
        if now - start > self.window:
            if n > self.burst:
                self.log.warning("%s: %d more like this suppressed", key, n - self.burst)
            start, n = now, 0
        n += 1
        self._seen[key] = (start, n)
        if n <= self.burst:
            return True
        self.suppressed += 1
        return False

    def warning(self, key: str, now: float, msg: str) -> None:
        if self.allow(key, now):
            self.log.warning(msg)
