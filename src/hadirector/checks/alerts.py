"""Alerts: email on real-server state changes, and the notify/callback commands.

How it works:
- `AlertTracker` is the pure core of ldirectord's emailalert (`ld_emailalert_send`,
  `ld_emailalert_resend`): a real going down or up (or a fallback going on or off) makes a `Mail`
  for the virtual service's `emailalert` addresses; while a real stays down a reminder is due every
  `emailalertfreq` seconds (0 = no reminders); a mail is only sent while the daemon's state
  (starting, running, stopping, reloading) is in `emailalertstatus`, but reminders keep their
  schedule either way, as in ldirectord. It is fed `now` (int ms) and exposes `next_deadline()`.
- `Notifier` is the thin driver: it sends mails with smtplib (in a thread) through the
  configured `smtp` server (`host[:port]`, default localhost:25) and runs commands with a
  timeout: keepalived's real-server `notify_up`/`notify_down` (run as written, as keepalived does;
  we also set HADIRECTOR_* variables), ldirectord's `fallbackcommand` and keepalived's
  `quorum_up`/`quorum_down` (see service.py), the node notify script
  (`cmd GROUP <group> <MASTER|BACKUP|FAULT> <priority>`, keepalived's vrrp notify arguments with
  GROUP for a resource group), and ldirectord's `callback` (`cmd <config file>`, run when the
  configuration file changed on disk).
Subjects name the real and its state: `[hadirector] real 198.18.1.11:80 of TCP 198.18.0.100:80 is
down`, prefixed with `[servicename]` when one is set (ldirectord does the same).
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import shlex
import smtplib
import socket
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from ..config.model import Alerts, RealKey, VirtualService

log = logging.getLogger(__name__)

DAEMON_STATES = ("starting", "running", "stopping", "reloading")
HOLD_MS = 60_000  # held alerts kept this long beyond their virtual's detection time


def detection_ms(vs: VirtualService) -> int:
    """How long a check may take to see a change: its failure (or rise) count of intervals, plus
    the longest timeout of one check."""
    return (max(vs.failurecount, vs.rise) * vs.checkinterval
            + max(vs.effective_checktimeout(), vs.effective_negotiatetimeout()))


@dataclass(frozen=True, slots=True)
class Mail:
    to: tuple[str, ...]
    sender: str | None
    smtp: str | None
    subject: str
    body: str


def status_allows(alerts: Alerts, daemon_status: str) -> bool:
    """ldirectord parse_emailalertstatus: `all`, `none`, or a list of daemon states."""
    if "none" in alerts.status:
        return False
    return "all" in alerts.status or daemon_status in alerts.status


def subject_for(vs: VirtualService, what: str, state: str, detail: str = "") -> str:
    subject = f"[hadirector] {what} of {vs.name} is {state}" + (f" ({detail})" if detail else "")
    return f"[{vs.servicename}] {subject}" if vs.servicename else subject


def body_for(vs: VirtualService, subject: str, reason: str, daemon_status: str, host: str) -> str:
    lines = [f"hadirector host: {host}", f"Log-Message: {subject}", f"Daemon-Status: {daemon_status}"]
    if reason:
        lines.append(f"Reason: {reason}")
    if vs.servicename:
        lines.append(f"Service name: {vs.servicename}")
    if vs.comment:
        lines.append(f"Comment: {vs.comment}")
    return "\n".join(lines) + "\n"


def real_name(key: RealKey) -> str:
    host = f"[{key.address}]" if ":" in key.address else key.address
    return f"real {host}:{key.port}"


@dataclass(frozen=True, slots=True)
class RealNotify:
    """Run the virtual's notify_up / notify_down for a real (keepalived real_server notify)."""

    vs: VirtualService
    key: RealKey
    up: bool
    reason: str


@dataclass
class _Reminder:
    vs: VirtualService
    key: RealKey
    detail: str
    due: int  # ms


@dataclass
class AlertTracker:
    """Pure: fed transitions and `now` (int ms), returns the mails (and RealNotify) to send."""

    host: str = field(default_factory=socket.gethostname)
    daemon_status: str = "starting"
    active: bool = True
    _reminders: dict[RealKey, _Reminder] = field(default_factory=dict)
    _held: list[tuple[int, int, object]] = field(default_factory=list)  # (at, detection ms, item)
    _maintenance: set[RealKey] = field(default_factory=set)
    _alerted: dict[RealKey, bool] = field(default_factory=dict)  # the state last alerted (absent: up)
    _state: dict[RealKey, tuple[VirtualService, bool, str, str]] = field(default_factory=dict)

    def set_daemon_status(self, status: str) -> None:
        if status not in DAEMON_STATES:
            raise ValueError(f"unknown daemon status {status!r}; expected one of {', '.join(DAEMON_STATES)}")
        self.daemon_status = status

    def _mail(self, vs: VirtualService, subject: str, reason: str) -> list[Mail]:
        a = vs.alerts
        if not a.to or not status_allows(a, self.daemon_status):
            return []
        return [Mail(tuple(a.to), a.sender, a.smtp, subject, body_for(vs, subject, reason, self.daemon_status, self.host))]

    def _out(self, vs: VirtualService, items: list, now: int) -> list:
        """Hand the items out when active, else hold them (see the module text)."""
        if self.active or not items:
            return items
        self._held = [h for h in self._held if h[0] + h[1] + HOLD_MS > now]
        self._held += [(now, detection_ms(vs), item) for item in items]
        return []

    def on_real(self, vs: VirtualService, key: RealKey, up: bool, detail: str, reason: str, now: int) -> list:
        """A real went up or down. `detail`: e.g. "quiescent, weight 0" or "removed"."""
        self._state[key] = (vs, up, detail, reason)
        if key in self._maintenance:
            return []  # not a failure: said when it leaves maintenance, if it differs then
        return self._alert(vs, key, up, detail, reason, now)

    def _alert(self, vs: VirtualService, key: RealKey, up: bool, detail: str, reason: str, now: int) -> list:
        self._alerted[key] = up
        if up:
            self._reminders.pop(key, None)
        elif vs.alerts.freq > 0:
            self._reminders[key] = _Reminder(vs, key, detail, now + vs.alerts.freq * 1000)
        else:
            self._reminders.pop(key, None)
        items: list = self._mail(vs, subject_for(vs, real_name(key), "up" if up else "down", detail), reason)
        if vs.notify_up if up else vs.notify_down:
            items.append(RealNotify(vs, key, up, reason))
        return self._out(vs, items, now)

    def on_fallback(self, vs: VirtualService, on: bool, where: str, now: int = 0) -> list[Mail]:
        return self._out(vs, self._mail(vs, subject_for(vs, f"fallback {where}", "on" if on else "off"),
                                        "no real server is up" if on else "a real server is up again"), now)

    def set_maintenance(self, keys, now: int) -> list:
        """The reals in maintenance now (all of them). A real leaving it whose state differs from
        the one last alerted is alerted now."""
        keys = set(keys)
        left = self._maintenance - keys
        for key in keys - self._maintenance:
            self._reminders.pop(key, None)
        self._maintenance = keys
        out: list = []
        for key in sorted(left):
            st = self._state.get(key)
            if st is not None and st[1] != self._alerted.get(key, True):
                vs, up, detail, reason = st
                out += self._alert(vs, key, up, detail, reason, now)
        return out

    def set_active(self, active: bool, now: int, previous_seen: int | None = None) -> list:
        """This node holds the balancer (True) or not. On becoming active: the held items newer
        than `previous_seen` (ms: when the previous holder was last known to hold it alive; None:
        there was none) less their detection time."""
        was, self.active = self.active, active
        if not active or was:
            return []
        held, self._held = self._held, []
        return [item for at, slack, item in held if previous_seen is None or at > previous_seen - slack]

    def forget(self, key: RealKey) -> None:
        self._reminders.pop(key, None)
        self._alerted.pop(key, None)
        self._state.pop(key, None)
        self._maintenance.discard(key)

    def on_timer(self, now: int) -> list[Mail]:
        """ld_emailalert_resend: a reminder for every real still down for emailalertfreq seconds
        (only the active node mails them; every node keeps the schedule)."""
        out: list[Mail] = []
        for r in self._reminders.values():
            if r.due <= now:
                r.due = now + r.vs.alerts.freq * 1000
                if self.active:
                    out += self._mail(r.vs, subject_for(r.vs, real_name(r.key), "still down", r.detail),
                                      f"inaccessible since the last alert {r.vs.alerts.freq} s ago")
        return out

    def next_deadline(self) -> int | None:
        return min((r.due for r in self._reminders.values()), default=None)


# --------------------------------------------------------------------------- driver

def _smtp_target(smtp: str | None) -> tuple[str, int]:
    if not smtp:
        return "localhost", 25
    host, sep, port = smtp.rpartition(":")
    if sep and port.isdigit() and (not host.count(":") or host.endswith("]")):
        return host.strip("[]"), int(port)
    return smtp.strip("[]"), 25


def send_mail_sync(mail: Mail, timeout: float = 30.0) -> None:
    host, port = _smtp_target(mail.smtp)
    me = f"{getpass.getuser()}@{socket.gethostname()}"
    msg = EmailMessage()
    msg["From"] = mail.sender or me
    msg["To"] = ", ".join(mail.to)
    msg["Subject"] = mail.subject
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=socket.gethostname())
    msg.set_content(mail.body)
    with smtplib.SMTP(host, port, timeout=timeout) as s:
        s.send_message(msg, from_addr=me, to_addrs=list(mail.to))


class Notifier:
    """Sends mails and runs commands; failures are logged, never raised to the caller."""

    def __init__(self, command_timeout: float = 30.0, mail_timeout: float = 30.0) -> None:
        self.command_timeout = command_timeout
        self.mail_timeout = mail_timeout
        self.sent = 0
        self.failed = 0
        self._tasks: set[asyncio.Task] = set()

    def _spawn(self, coro) -> asyncio.Task:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    def mail(self, mail: Mail) -> asyncio.Task:
        return self._spawn(self.send(mail))

    async def send(self, mail: Mail) -> bool:
        try:
            await asyncio.to_thread(send_mail_sync, mail, self.mail_timeout)
            self.sent += 1
            log.info("emailalert to %s: %s", ", ".join(mail.to), mail.subject)
            return True
        except (OSError, smtplib.SMTPException) as e:
            self.failed += 1
            log.warning("emailalert to %s failed (%s): %s", ", ".join(mail.to), e, mail.subject)
            return False

    def command(self, command: str, args: tuple[str, ...] = (), env: dict[str, str] | None = None,
                why: str = "") -> asyncio.Task:
        return self._spawn(self.run(command, args, env, why))

    async def run(self, command: str, args: tuple[str, ...] = (), env: dict[str, str] | None = None,
                  why: str = "") -> int | None:
        """Run `command args...`; returns the exit code, None when it could not run or timed out."""
        try:
            argv = shlex.split(command) + list(args)
        except ValueError as e:
            log.warning("command %r: %s", command, e)
            return None
        if not argv:
            return None
        full_env = dict(os.environ, **(env or {}))
        try:
            proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL, env=full_env,
                                                        start_new_session=True)
        except OSError as e:
            log.warning("cannot run %s (%s): %s", argv[0], why, e.strerror or e)
            return None
        try:
            code = await asyncio.wait_for(proc.wait(), self.command_timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            log.warning("%s (%s) did not finish within %g s: killed", shlex.join(argv), why, self.command_timeout)
            return None
        (log.info if code == 0 else log.warning)("ran %s (%s): exit %d", shlex.join(argv), why, code)
        return code

    def real_notify(self, vs: VirtualService, key: RealKey, up: bool, reason: str) -> asyncio.Task | None:
        """keepalived real_server notify_up/notify_down: the command as written, plus HADIRECTOR_*."""
        cmd = vs.notify_up if up else vs.notify_down
        if not cmd:
            return None
        env = {"HADIRECTOR_VIRTUAL": vs.name, "HADIRECTOR_REAL": f"{key.address}:{key.port}",
               "HADIRECTOR_STATE": "UP" if up else "DOWN", "HADIRECTOR_REASON": reason}
        return self.command(cmd, (), env, f"{real_name(key)} of {vs.name} {'up' if up else 'down'}")

    def node_notify(self, command: str, group: str, state: str, priority: int = 0) -> asyncio.Task:
        """keepalived vrrp notify: `script GROUP|INSTANCE name MASTER|BACKUP|FAULT priority`."""
        if state not in ("MASTER", "BACKUP", "FAULT", "STOP"):
            raise ValueError(f"node state must be MASTER, BACKUP, FAULT or STOP, got {state!r}")
        return self.command(command, ("GROUP", group, state, str(priority)), None, f"group {group} {state}")

    def callback(self, command: str, config_path: str) -> asyncio.Task:
        """ldirectord callback: `cmd <configuration file>` after the file changed on disk."""
        return self.command(command, (config_path,), None, "configuration changed")

    async def drain(self, timeout: float = 10.0) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
