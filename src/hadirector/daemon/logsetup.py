"""Daemon logging: stderr always, plus ha.cf's logfile/debugfile and syslog facility when set.
(The rate limiter that keeps a flood of bad packets out of the log is ratelimit.py.)"""

from __future__ import annotations

import logging
import logging.handlers
import os

from ..config.model import Logging

FORMAT = "%(asctime)s %(name)s[%(process)d]: %(levelname)s: %(message)s"
ROOT = __name__.partition(".")[0]  # "hadirector": each module logs as getLogger(__name__), below it


def setup(cfg: Logging, verbose: bool = False) -> logging.Logger:
    log = logging.getLogger(ROOT)
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
