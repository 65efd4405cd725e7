"""Daemon logging: where the lines go, at which level, and what a signal changes.

Destinations (ha.cf's logging directives, `config.model.Logging`):

- the console (standard error), at the debug level's threshold; under systemd, when standard
  error is the journal (`JOURNAL_STREAM` names its device and inode, systemd.exec(5)), the lines
  go to the journal in its native protocol instead (journal.py: with fields NODE, EVENT, GROUP,
  PEER, LINK, VIRTUAL, REAL, SYSLOG_FACILITY), and back to standard error if the journal's
  socket cannot be written;
- `logfile` (info and up) and `debugfile` (everything), appended; heartbeat opens them for every
  line (cluster-glue cl_log.c cl_direct_log: fopen "a", fclose), so a rotated file is noticed at
  once; we notice a moved or removed file at the next line too (WatchedFileHandler) and reopen
  both on SIGHUP (`reopen()`);
- syslog with `logfacility` (through /dev/log), when the journal is not in use: the journal's
  entries carry SYSLOG_FACILITY and journald passes them on to the syslog daemon, so writing to
  both would log each line twice.

Levels: Python's, plus NOTICE (25) between info and warning, mapped to syslog's notice:
ownership changes and a real going up are NOTICE, a real going down or a node dying WARNING.
The debug level is heartbeat's `debug N` (ha.cf), `run -v` (1), and SIGUSR1 / SIGUSR2 raise and
lower it by one (heartbeat hb_signal.c __hb_signal_debug_action: ++debug_level, and --debug_level
not below 0); above 0 the console, journal and syslog get debug lines too.

Each record may carry `extra={"fields": {...}}` (journal fields; cluster/eventlog.py gives them
for the cluster's events); `NODE` (this node) is added to every record once `set_node()` ran.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys

from ..loglevel import NOTICE  # noqa: F401 - registers the level name
from ..config.model import Logging
from .journal import JournalHandler, journal_stream

FORMAT = "%(asctime)s %(name)s[%(process)d]: %(levelname)s: %(message)s"
ROOT = __name__.partition(".")[0]  # "hadirector": each module logs as getLogger(__name__), below it

SYSLOG_PRIORITY = {"DEBUG": "debug", "INFO": "info", "NOTICE": "notice", "WARNING": "warning",
                   "ERROR": "err", "CRITICAL": "crit"}


class ReopenFileHandler(logging.handlers.WatchedFileHandler):
    """An appended log file that follows its path: reopened when moved away (checked at each
    line) and on `reopen()` (SIGHUP)."""

    def reopen(self) -> None:
        self.acquire()
        try:
            if self.stream is not None:
                self.stream.flush()
                self.stream.close()
                self.stream = None
            self.stream = self._open()
            self._statstream()
        finally:
            self.release()


class _Fields(logging.Filter):
    """Gives every record a `fields` dict (journal fields), with NODE once known."""

    def __init__(self) -> None:
        super().__init__()
        self.node: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        fields = getattr(record, "fields", None)
        fields = dict(fields) if isinstance(fields, dict) else {}
        if self.node and "NODE" not in fields:
            fields["NODE"] = self.node
        record.fields = fields
        return True


class _SyslogHandler(logging.handlers.SysLogHandler):
    def mapPriority(self, levelName: str) -> str:  # noqa: N802 - logging's name
        return SYSLOG_PRIORITY.get(levelName, "warning")


class DaemonLog:
    """The daemon's log handlers (see the module text).

        logs = DaemonLog(cfg.cluster.logging, verbose=args.verbose)
        logs.log                     # the "hadirector" logger
        logs.reopen()                # SIGHUP: reopen logfile and debugfile
        logs.change_debug(+1, why)   # SIGUSR1 / SIGUSR2
        logs.configure(new_cfg)      # reload: new files, facility or debug level
    """

    def __init__(self, cfg: Logging, verbose: bool = False, environ=None, stderr=None,
                 syslog_address: str = "/dev/log") -> None:
        self.log = logging.getLogger(ROOT)
        self.syslog_address = syslog_address
        self.environ = os.environ if environ is None else environ
        self.stderr = stderr or sys.stderr
        self.fields = _Fields()
        self.cfg = cfg
        self.debug_level = max(cfg.debug, 1 if verbose else 0)
        self.console: logging.Handler | None = None
        self.journal: JournalHandler | None = None
        self.files: list[ReopenFileHandler] = []
        self.syslog: logging.Handler | None = None
        self.problems: list[str] = []  # what could not be set up (logged once the log works)
        self._build(cfg)

    # ------------------------------------------------------------------ building

    def _build(self, cfg: Logging) -> None:
        log = self.log
        for h in list(log.handlers):
            log.removeHandler(h)
            h.close()
        log.propagate = False
        log.setLevel(logging.DEBUG)
        if self.fields not in log.filters:
            log.addFilter(self.fields)
        fmt = logging.Formatter(FORMAT)
        self.console = self.journal = self.syslog = None
        self.files = []
        if journal_stream(self.environ, self.stderr):
            self.journal = JournalHandler(identifier=ROOT, facility=cfg.facility,
                                          fallback=self._console_handler(fmt))
            log.addHandler(self.journal)
        else:
            self.console = self._console_handler(fmt)
            log.addHandler(self.console)
        for path, level in ((cfg.logfile, logging.INFO), (cfg.debugfile, logging.DEBUG)):
            if not path:
                continue
            try:
                h = ReopenFileHandler(path)
            except OSError as exc:
                self.problems.append(f"cannot open log file {path}: {exc.strerror or exc}")
                continue
            h.setLevel(level)
            h.setFormatter(fmt)
            log.addHandler(h)
            self.files.append(h)
        if cfg.facility and self.journal is None:
            if os.path.exists(self.syslog_address):
                h = _SyslogHandler(address=self.syslog_address, facility=cfg.facility)
                h.setFormatter(logging.Formatter(f"{ROOT}[%(process)d]: %(message)s"))
                log.addHandler(h)
                self.syslog = h
            else:
                self.problems.append(f"logfacility {cfg.facility}: no syslog socket {self.syslog_address}")
        self._apply_level()

    def _console_handler(self, fmt: logging.Formatter) -> logging.Handler:
        h = logging.StreamHandler(self.stderr)
        h.setFormatter(fmt)
        return h

    def _apply_level(self) -> None:
        level = logging.DEBUG if self.debug_level > 0 else logging.INFO
        for h in (self.console, self.journal, self.syslog):
            if h is not None:
                h.setLevel(level)
        if self.journal is not None:
            self.journal.fallback.setLevel(level)

    # ------------------------------------------------------------------ changes

    def set_node(self, node: str) -> None:
        self.fields.node = node

    def reopen(self) -> list[str]:
        """Reopen logfile and debugfile (after logrotate moved them). Returns the failures."""
        failed = []
        for h in self.files:
            try:
                h.reopen()
            except OSError as exc:
                failed.append(f"cannot reopen log file {h.baseFilename}: {exc.strerror or exc}")
        return failed

    def change_debug(self, step: int) -> tuple[int, int]:
        """SIGUSR1 (+1) / SIGUSR2 (-1): heartbeat's debug level, never below 0. (old, new)."""
        old = self.debug_level
        self.debug_level = max(0, old + step)
        self._apply_level()
        return old, self.debug_level

    def configure(self, cfg: Logging) -> None:
        """A reload changed the logging settings: rebuild the handlers (the debug level follows
        the new `debug` unless a signal changed it since the start)."""
        if cfg.debug != self.cfg.debug:
            self.debug_level = cfg.debug
        self.cfg = cfg
        self.problems = []
        self._build(cfg)

    def close(self) -> None:
        for h in list(self.log.handlers):
            self.log.removeHandler(h)
            h.close()


def setup(cfg: Logging, verbose: bool = False) -> logging.Logger:
    """The daemon's logger with its handlers (kept for callers that only need the logger)."""
    return DaemonLog(cfg, verbose).log
