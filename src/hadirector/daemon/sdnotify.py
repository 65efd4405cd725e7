"""systemd's notification protocol (sd_notify(3)), spoken directly: one datagram of
newline-separated `KEY=value` lines to the AF_UNIX socket named by $NOTIFY_SOCKET.

    READY=1            the daemon has started (Type=notify: `systemctl start` returns now)
    STATUS=...         one line for `systemctl status`
    WATCHDOG=1         keep-alive; systemd restarts the service when none comes for WatchdogSec
    STOPPING=1         shutdown has begun
    EXTEND_TIMEOUT_USEC=n   the current start/stop may take n µs more (systemd >= 236)

The protocol is ten lines and stable (systemd's src/libsystemd/sd-daemon/sd-daemon.c,
sd_pid_notify_with_fds), so no dependency: the `sdnotify` package does the same without the
watchdog variables. As sd_notify does:
- a path starting with '@' is in the abstract namespace ('@' becomes a NUL byte);
- WATCHDOG_USEC is the interval systemd expects pings within; WATCHDOG_PID, when set, names the
  process meant (sd_watchdog_enabled: another pid means "not for us"); sd_watchdog_enabled(3)
  recommends a ping every half of WATCHDOG_USEC;
- the variables are removed from our environment (sd_notify's unset_environment), so the
  resource scripts and checks we start do not talk to systemd in our name (NotifyAccess=main
  would drop them anyway, with a warning in the journal).

Sending never raises: a lost datagram must not take the daemon down; the first failure is
returned as text for the caller to log.
"""

from __future__ import annotations

import os
import socket
from typing import MutableMapping

VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def socket_address(value: str) -> str | bytes | None:
    """$NOTIFY_SOCKET as an address for sendto: a path, or abstract ("@name" -> b"\\0name")."""
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # sd_notify also knows vsock:...; systemd never hands a system service one


class SystemdNotify:
    """The notification socket of this process, or a silent stand-in when there is none."""

    def __init__(self, address: str | bytes | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None
        self.failed: str | None = None

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str] | None = None, unset: bool = True,
                     pid: int | None = None) -> "SystemdNotify":
        env = os.environ if environ is None else environ
        address = socket_address(env.get("NOTIFY_SOCKET", ""))
        usec = None
        try:
            value = int(env.get("WATCHDOG_USEC", ""))
            wpid = env.get("WATCHDOG_PID")
            if value > 0 and (not wpid or int(wpid) == (pid or os.getpid())):
                usec = value
        except ValueError:
            pass
        if unset:
            for k in VARIABLES:
                env.pop(k, None)
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between pings (half of WATCHDOG_USEC), or None when systemd wants none."""
        if self.address is None or not self.watchdog_usec:
            return None
        return self.watchdog_usec / 2e6

    def notify(self, **fields: object) -> str | None:
        """Send `KEY=value` lines (keyword names as given, e.g. READY=1, STATUS="..."). Returns
        None when sent (or when there is no socket), else why not."""
        if self.address is None:
            return None
        lines = []
        for k, v in fields.items():
            text = " ".join(str(v).split()) if k == "STATUS" else str(v)  # a STATUS is one line
            lines.append(f"{k}={text}")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(lines).encode(), self.address)
        except OSError as exc:
            self.failed = f"{self.address!r}: {exc.strerror or exc}"
            return self.failed
        return None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
