"""The daemon's log handlers over real sockets and files: syslog's priority with the configured
facility, the journal's native protocol (fields, a multi-line value, an entry too big for a
datagram passed as a memfd), JOURNAL_STREAM matching, reopen, and the debug level steps."""

from __future__ import annotations

import array
import logging
import os
import socket
import struct

from hadirector.config.model import Logging
from hadirector.daemon.journal import JournalHandler, journal_stream
from hadirector.daemon.logsetup import DaemonLog
from hadirector.loglevel import NOTICE


def _server(path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(5)
    return s


def _fields(data: bytes) -> dict[str, str]:
    out, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            out[k.decode()] = v.decode()
            i = nl + 1
        else:
            (n,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            out[line.decode()] = data[nl + 9:nl + 9 + n].decode()
            i = nl + 9 + n + 1
    return out


def test_syslog_priority_carries_facility_and_notice(tmp_path):
    srv = _server(tmp_path / "log")
    logs = DaemonLog(Logging(facility="local3"), stderr=open(os.devnull, "w"),
                     syslog_address=str(tmp_path / "log"), environ={})
    try:
        logs.log.log(NOTICE, "group web: owner none -> alpha (start)")
        logs.log.warning("real x: down")
        first, second = srv.recv(4096), srv.recv(4096)
    finally:
        logs.close()
        srv.close()
    # PRI = facility * 8 + severity: local3 = 19, notice = 5, warning = 4 (RFC 3164)
    assert first.startswith(b"<157>hadirector[") and b"owner none -> alpha" in first, first
    assert second.startswith(b"<156>"), second


def test_journal_fields_multiline_and_oversized(tmp_path):
    srv = _server(tmp_path / "journal")
    fallback = logging.StreamHandler(open(os.devnull, "w"))
    h = JournalHandler("hadirector", facility="local3", fallback=fallback, path=str(tmp_path / "journal"))
    log = logging.getLogger("test.journal")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.addHandler(h)
    try:
        log.warning("two\nlines", extra={"fields": {"NODE": "alpha", "GROUP": "web", "bad name": "x",
                                                    "_PID": "forged"}})
        f = _fields(srv.recv(65536))
        assert f["MESSAGE"] == "two\nlines" and f["PRIORITY"] == "4" and f["SYSLOG_FACILITY"] == "19"
        assert f["NODE"] == "alpha" and f["GROUP"] == "web" and f["SYSLOG_IDENTIFIER"] == "hadirector"
        assert "_PID" not in f and "bad name" not in f
        big = "x" * 300_000  # over the datagram limit: sent as a sealed memfd
        log.info(big)
        msg, anc, _flags, _addr = srv.recvmsg(65536, socket.CMSG_SPACE(4))
        assert msg == b"" and anc, "expected a file descriptor"
        fds = array.array("i")
        fds.frombytes(anc[0][2][:4])
        with os.fdopen(fds[0], "rb") as fd:
            f = _fields(os.pread(fd.fileno(), 1 << 20, 0))
        assert f["MESSAGE"] == big
        assert h.sent == 2 and h.failed == 0
    finally:
        log.removeHandler(h)
        h.close()
        srv.close()


def test_journal_refusing_falls_back(tmp_path, capsys):
    out = tmp_path / "fallback.log"
    fallback = logging.FileHandler(out)
    h = JournalHandler("hadirector", fallback=fallback, path=str(tmp_path / "nobody-listens"))
    log = logging.getLogger("test.journal.fallback")
    log.propagate = False
    log.addHandler(h)
    log.error("still said")
    log.removeHandler(h)
    h.close()
    fallback.close()
    assert h.failed == 1 and "still said" in out.read_text()


def test_journal_stream_is_standard_error_only(tmp_path):
    f = open(tmp_path / "stream", "w")
    st = os.fstat(f.fileno())
    assert journal_stream({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, f)
    assert not journal_stream({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}, f)
    assert not journal_stream({"JOURNAL_STREAM": "garbage"}, f)
    assert not journal_stream({}, f)
    f.close()


def test_reopen_and_debug_steps(tmp_path):
    logfile, debugfile = tmp_path / "ha.log", tmp_path / "debug.log"
    stderr = open(tmp_path / "stderr", "w")
    logs = DaemonLog(Logging(logfile=str(logfile), debugfile=str(debugfile)), stderr=stderr, environ={})
    try:
        logs.log.debug("quiet")
        logs.log.info("one")
        os.rename(logfile, tmp_path / "ha.log.1")
        assert logs.reopen() == []
        logs.log.info("two")
        assert "two" in logfile.read_text() and "two" not in (tmp_path / "ha.log.1").read_text()
        assert "quiet" in debugfile.read_text() and "quiet" not in logfile.read_text()
        assert logs.change_debug(-1) == (0, 0)
        assert logs.change_debug(+1) == (0, 1)
        logs.log.debug("loud")
        assert logs.change_debug(+1) == (1, 2)
        assert logs.change_debug(-1) == (2, 1)
        stderr.flush()
        text = (tmp_path / "stderr").read_text()
        assert "loud" in text and "quiet" not in text
    finally:
        logs.close()
        stderr.close()
