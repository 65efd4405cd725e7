"""The systemd journal's native protocol: one datagram per entry to /run/systemd/journal/socket,
each field `NAME=value\\n`, or, for a value holding a newline, `NAME\\n` + its length as a 64-bit
little-endian number + the value + `\\n` (systemd's "Native Journal Protocol"; an entry too big
for a datagram goes in a sealed memfd passed with SCM_RIGHTS, as sd_journal_sendv does).

`journal_stream()` says whether to use it: systemd sets JOURNAL_STREAM=<device>:<inode> for a
service whose standard error (or output) is connected to the journal, and a program that finds
its standard error to be that stream should log natively (systemd.exec(5), JOURNAL_STREAM).
A line the socket refuses goes to the fallback handler (standard error, which is the journal's
stream anyway, without the fields).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import logging.handlers
import os
import re
import socket
import struct
import traceback

from ..loglevel import NOTICE

SOCKET = "/run/systemd/journal/socket"

# syslog(3) priorities: the journal's PRIORITY field
PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, NOTICE: 5, logging.WARNING: 4, logging.ERROR: 3,
            logging.CRITICAL: 2}


def journal_stream(environ, stderr) -> bool:
    """Whether standard error is the journal stream systemd named in JOURNAL_STREAM."""
    value = environ.get("JOURNAL_STREAM", "")
    dev, sep, ino = value.partition(":")
    if not sep or not dev.isdigit() or not ino.isdigit():
        return False
    try:
        st = os.fstat(stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return st.st_dev == int(dev) and st.st_ino == int(ino)


def _field(name: str, value) -> bytes:
    data = value if isinstance(value, bytes) else str(value).encode("utf-8", "replace")
    key = name.encode("ascii")
    if b"\n" in data:
        return key + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
    return key + b"=" + data + b"\n"


def valid_name(name: str) -> bool:
    """Journal field names: A-Z, 0-9 and _, not starting with _ (those are the journal's own)."""
    return re.fullmatch(r"[A-Z0-9][A-Z0-9_]{0,63}", name) is not None


def entry(record: logging.LogRecord, message: str, identifier: str, facility: int | None) -> bytes:
    """The datagram for one record."""
    fields = {"MESSAGE": message, "PRIORITY": PRIORITY.get(record.levelno, 6),
              "SYSLOG_IDENTIFIER": identifier, "SYSLOG_PID": record.process,
              "CODE_FILE": record.pathname, "CODE_LINE": record.lineno, "CODE_FUNC": record.funcName,
              "LOGGER": record.name}
    if facility is not None:
        fields["SYSLOG_FACILITY"] = facility
    for k, v in (getattr(record, "fields", None) or {}).items():
        if valid_name(k) and v is not None and k not in fields:
            fields[k] = v
    return b"".join(_field(k, v) for k, v in fields.items())


class JournalHandler(logging.Handler):
    def __init__(self, identifier: str, facility: str | None = None, fallback: logging.Handler | None = None,
                 path: str = SOCKET) -> None:
        super().__init__()
        self.identifier = identifier
        names = logging.handlers.SysLogHandler.facility_names
        self.facility = names.get(facility) if facility else None
        self.fallback = fallback or logging.StreamHandler()
        self.path = path
        self.sent = 0
        self.failed = 0
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            self._send(entry(record, message, self.identifier, self.facility))
            self.sent += 1
        except OSError:
            self.failed += 1
            self.fallback.handle(record)
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)

    def _send(self, data: bytes) -> None:
        try:
            self._sock.sendto(data, self.path)
        except OSError as exc:
            if exc.errno not in (errno.EMSGSIZE, errno.ENOBUFS):
                raise
            # too big for one datagram: the entry in a sealed memory file, its descriptor passed
            fd = os.memfd_create("journal-entry", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            try:
                os.write(fd, data)
                fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW
                            | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL)
                self._sock.sendmsg([], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))],
                                   0, self.path)
            finally:
                os.close(fd)

    def close(self) -> None:
        try:
            self._sock.close()
        finally:
            super().close()
