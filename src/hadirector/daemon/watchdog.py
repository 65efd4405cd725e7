"""ha.cf `watchdog /dev/watchdog` (native `cluster.watchdog`): the kernel's watchdog timer resets
the node unless the daemon keeps writing to the device, so a hung director is rebooted and stops
answering for its VIPs.

Heartbeat's rules (heartbeat 3, heartbeat/heartbeat.c):
- hb_init_watchdog: open(watchdogdev, O_WRONLY), close-on-exec, log "Using watchdog device", set
  the timeout, feed once; an open that fails is logged ("Cannot open watchdog device") and the
  node runs without;
- hb_init_watchdog_interval: the timeout is deadtime + 10 ms, rounded up to whole seconds, set
  with ioctl WDIOC_SETTIMEOUT; a failure is logged and the device keeps its own timeout;
- hb_tickle_watchdog: write one byte (a NUL); heartbeat calls it each time its own heartbeat
  comes back to it (HBDoMsg_T_STATUS, fromnode == curnode), i.e. every keepalive; a failed write
  closes the device;
- hb_close_watchdog: write "V" (the kernel's magic close: the timer is disarmed when the device
  is closed after it, Documentation/watchdog/watchdog-api.rst) and close, at the end of a clean
  shutdown.

Here the feeding comes from a timer on the daemon's loop every keepalive, and only while the
daemon is healthy: a tick that runs more than one keepalive late, or finds the cluster core's
timer overdue by more than that (node.watchdog_ok, as for systemd's watchdog), is skipped, so a
loop that stalls (or a SIGSTOPped daemon, where nothing runs at all) lets the kernel reset the
node once the timeout passes.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import struct
import time
from typing import Callable

WDIOC_SETTIMEOUT = 0xC0045706  # linux/watchdog.h: _IOWR('W', 6, int)
MAGIC_CLOSE = b"V"
FEED = b"\0"  # heartbeat.c hb_tickle_watchdog: write(watchdogfd, "", 1)


def timeout_seconds(deadtime_ms: int) -> int:
    """heartbeat.c hb_init_watchdog_interval: (deadtime + 10 ms), rounded up to seconds."""
    return (deadtime_ms + 10 + 999) // 1000


class Watchdog:
    """The device, fed every `interval` s from the loop while `healthy()` says so.

    healthy(late) -> (ok, why): `late` is how late (s) this tick ran."""

    def __init__(self, device: str, deadtime_ms: int, interval: float, log,
                 healthy: Callable[[float], tuple[bool, str]]):
        self.device = device
        self.interval = interval
        self.timeout = timeout_seconds(deadtime_ms)
        self.log = log
        self.healthy = healthy
        self.fd: int | None = None
        self.state = "closed"  # armed, failed (could not open / write), disarmed
        self.error: str | None = None
        self.timeout_set: bool | None = None
        self.feeds = 0
        self.skipped = 0
        self.last_feed: float | None = None  # monotonic
        self._handle: asyncio.TimerHandle | None = None

    def open(self) -> bool:
        try:
            self.fd = os.open(self.device, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            self.state, self.error = "failed", f"cannot open: {exc.strerror or exc}"
            self.log.error("watchdog %s: cannot open it: %s; a hung node will not be reset",
                           self.device, exc.strerror or exc)
            return False
        self.log.info("watchdog %s: using it (timeout %d s, fed every %.1f s)", self.device, self.timeout,
                      self.interval)
        try:
            fcntl.ioctl(self.fd, WDIOC_SETTIMEOUT, struct.pack("i", self.timeout))
            self.timeout_set = True
        except OSError as exc:
            self.timeout_set = False
            self.log.warning("watchdog %s: WDIOC_SETTIMEOUT to %d s failed: %s; the device keeps its own "
                             "timeout", self.device, self.timeout, exc.strerror or exc)
        self.state = "armed"
        self._feed()
        return True

    def start(self) -> None:
        if self.fd is None:
            return
        loop = asyncio.get_running_loop()
        self._arm(loop.time() + self.interval)

    def _arm(self, due: float) -> None:
        self._handle = asyncio.get_running_loop().call_at(due, self._tick, due)

    def _tick(self, due: float) -> None:
        self._handle = None
        if self.fd is None:
            return
        now = asyncio.get_running_loop().time()
        ok, why = self.healthy(max(0.0, now - due))
        if ok:
            self._feed()
        else:
            self.skipped += 1
            self.log.warning("watchdog %s: not fed: %s", self.device, why)
        if self.fd is not None:
            nxt = due + self.interval
            self._arm(nxt if nxt > now else now + self.interval)

    def _feed(self) -> None:
        try:
            os.write(self.fd, FEED)
        except OSError as exc:
            # heartbeat.c hb_tickle_watchdog: "Watchdog write failure: closing"
            self.log.error("watchdog %s: write failed: %s; closing it", self.device, exc.strerror or exc)
            self.state, self.error = "failed", f"write failed: {exc.strerror or exc}"
            self._close(magic=True)
            return
        self.feeds += 1
        self.last_feed = time.monotonic()

    def disarm(self) -> None:
        """A clean stop: the magic close (heartbeat.c hb_close_watchdog)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self.fd is None:
            return
        self._close(magic=True)
        if self.state == "armed":
            self.state = "disarmed"
            self.log.info("watchdog %s: disarmed (magic close)", self.device)

    def _close(self, magic: bool) -> None:
        fd, self.fd = self.fd, None
        if fd is None:
            return
        if magic:
            try:
                os.write(fd, MAGIC_CLOSE)
            except OSError as exc:
                if exc.errno != errno.EPIPE:
                    self.log.error("watchdog %s: magic close write failed: %s; the node may be reset",
                                   self.device, exc.strerror or exc)
        os.close(fd)

    def snapshot(self) -> dict:
        return {"device": self.device, "state": self.state, "timeout_s": self.timeout,
                "timeout_set": self.timeout_set, "interval_ms": int(self.interval * 1000),
                "feeds": self.feeds, "skipped": self.skipped, "error": self.error,
                "last_feed_age_ms": None if self.last_feed is None
                else int((time.monotonic() - self.last_feed) * 1000)}
