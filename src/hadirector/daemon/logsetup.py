"""Daemon logging: stderr always, plus ha.cf's logfile/debugfile and syslog facility when set.
A rate limiter keeps a flood of bad packets from flooding the log (DESIGN convention 7)."""

from __future__ import annotations

import logging
import logging.handlers
import os

from ..config.model import Logging

FORMAT = "%(asctime)s %(name)s[%(process)d]: %(levelname)s: %(message)s"


def setup(cfg: Logging, verbose: bool = False) -> logging.Logger:
    log = logging.getLogger("hadirector")
    log.handlers.clear()
    log.propagate = False
    level = logging.DEBUG if (verbose or cfg.debug) else logging.INFO
    log.setLevel(logging.DEBUG)
    fmt = logging.Formatter(FORMAT)
    err = logging.StreamHandler()
    err.setLevel(level)
    err.setFormatter(fmt)
    log.addHandler(err)
    if cfg.logfile:
        h = logging.FileHandler(cfg.logfile)
        h.setLevel(logging.INFO)
        h.setFormatter(fmt)
        log.addHandler(h)
    if cfg.debugfile:
        h = logging.FileHandler(cfg.debugfile)
        h.setLevel(logging.DEBUG)
        h.setFormatter(fmt)
        log.addHandler(h)
    if cfg.facility and os.path.exists("/dev/log"):
        h = logging.handlers.SysLogHandler(address="/dev/log", facility=cfg.facility)
        h.setLevel(logging.INFO)
        h.setFormatter(logging.Formatter("hadirector[%(process)d]: %(message)s"))
        log.addHandler(h)
    return log


class RateLimited:
    """Log at most `burst` messages per key per `window` seconds; count the rest."""

    def __init__(self, log: logging.Logger, window: float = 10.0, burst: int = 5):
        self.log, self.window, self.burst = log, window, burst
        self._seen: dict[str, tuple[float, int]] = {}
        self.suppressed = 0

    def warning(self, key: str, now: float, msg: str) -> None:
        start, n = self._seen.get(key, (now, 0))
        if now - start > self.window:
            if n > self.burst:
                self.log.warning("%s: %d more like this suppressed", key, n - self.burst)
            start, n = now, 0
        n += 1
        self._seen[key] = (start, n)
        if n <= self.burst:
            self.log.warning(msg)
        else:
            self.suppressed += 1
