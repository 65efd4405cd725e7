"""HealthMonitor: the health -> desired state path as the daemon runs it (a thin driver).

How it works: a `CheckScheduler` runs the checks; each `HealthEvent` (a real's fact changed) goes
to the `DesiredStateCore` (balancer/state.py: the one owner of the service rules), and the
core's actions are carried out here: `Apply` -> `on_desired(desired)` (the daemon installs it),
`RunCommand` -> the `Notifier` (fallbackcommand, quorum_up/down), `FallbackChanged` -> the
`AlertTracker`'s mails; a real going up or down also mails and runs notify_up/notify_down. One
timer handles emailalertfreq reminders. Nothing here touches the data plane or decides a rule:
who sends (`set_active`: only the node holding the balancer) and what maintenance silences
(`set_maintenance`) are the core's and the tracker's rules.

    mon = HealthMonitor(cfg.balancer, on_desired=lambda desired: ..., on_event=lambda ev: ...)
    await mon.start()             # first checks within 1 s; on_desired once at start
    mon.desired()                 # the DesiredState now
    mon.health()                  # {RealKey: CheckStatus} (state, last result, reason, times)
    mon.update(new_cfg.balancer)  # reload: only the difference
    mon.set_maintenance({key: "drain"})       # every real in maintenance now
    mon.set_active(True, previous_seen=ms)    # this node holds the balancer now
    mon.set_daemon_status("running")
    await mon.stop()
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from ..balancer.state import Apply, DesiredState, DesiredStateCore, FallbackChanged, QuorumChanged, RunCommand
from ..config.model import Balancer, RealKey, VirtualService
from ..loglevel import NOTICE
from .alerts import AlertTracker, Mail, Notifier, RealNotify
from .scheduler import CheckScheduler, CheckStatus, HealthEvent, SchedulerStats, UpdateSummary

log = logging.getLogger(__name__)


class HealthMonitor:
    def __init__(self, balancer: Balancer, *,
                 on_desired: Callable[[DesiredState], None] | None = None,
                 on_event: Callable[[HealthEvent], None] | None = None,
                 concurrency: int = 1024, startup_window: float = 1.0,
                 notifier: Notifier | None = None, active: bool = True) -> None:
        self.balancer = balancer
        self.on_desired = on_desired
        self.on_event = on_event
        self.core = DesiredStateCore(balancer, active=active)
        self.alerts = AlertTracker(active=active)
        self.notifier = notifier or Notifier()
        self.scheduler = CheckScheduler(balancer.virtual, on_event=self._event, concurrency=concurrency,
                                        startup_window=startup_window, maintenancedir=balancer.maintenancedir)
        self._by_name: dict[str, VirtualService] = {vs.name: vs for vs in balancer.virtual}
        self._timer: asyncio.TimerHandle | None = None
        self._start_timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start checking. The daemon state is "starting" until the first check of every real had
        time to finish (ldirectord: its initial pass runs in the starting state), then "running"."""
        self._loop = asyncio.get_running_loop()
        await self.scheduler.start()
        self._carry_out(self.core.start(self.scheduler.now()))
        longest = max((max(vs.effective_checktimeout(), vs.effective_negotiatetimeout()) / 1000
                       for vs in self.balancer.virtual), default=0.0)
        self._start_timer = self._loop.call_later(self.scheduler.startup_window + longest, self._started)

    def _started(self) -> None:
        if self.alerts.daemon_status == "starting":
            self.alerts.set_daemon_status("running")

    async def stop(self) -> None:
        self.alerts.set_daemon_status("stopping")
        for t in (self._timer, self._start_timer):
            if t is not None:
                t.cancel()
        await self.scheduler.stop()
        await self.notifier.drain()

    def set_daemon_status(self, status: str) -> None:
        self.alerts.set_daemon_status(status)

    def set_maintenance(self, marks: dict[RealKey, str]) -> None:
        """Every real in maintenance now ("drain" or "disabled"); the rest are enabled."""
        now = self.scheduler.now()
        self._carry_out(self.core.set_maintenance(marks, now))
        self._send(self.alerts.set_maintenance(set(marks), now))

    def set_active(self, active: bool, previous_seen: int | None = None) -> None:
        """This node holds the balancer now (True) or no longer. `previous_seen`: when the
        previous holder was last known alive and holding it (this clock, ms), None if none."""
        now = self.scheduler.now()
        self._carry_out(self.core.set_active(active, now))
        self._send(self.alerts.set_active(active, now, previous_seen))

    def _send(self, items: list) -> None:
        for item in items:
            if isinstance(item, Mail):
                self.notifier.mail(item)
            elif isinstance(item, RealNotify):
                self.notifier.real_notify(item.vs, item.key, item.up, item.reason)
        self._arm_timer()

    def update(self, balancer: Balancer) -> UpdateSummary:
        """Reload: apply the new balancer config; unchanged reals keep their check state."""
        previous = self.alerts.daemon_status
        self.alerts.set_daemon_status("reloading")
        self.balancer = balancer
        self.scheduler.maintenancedir = balancer.maintenancedir
        summary = self.scheduler.update(balancer.virtual)
        for key in summary.removed:
            self.alerts.forget(key)
        self._by_name = {vs.name: vs for vs in balancer.virtual}
        self._carry_out(self.core.reload(balancer, self.scheduler.now()))
        self.alerts.set_daemon_status(previous if previous != "reloading" else "running")
        return summary

    # ------------------------------------------------------------------ reading

    def desired(self) -> DesiredState:
        return self.core.desired

    def health(self) -> dict[RealKey, CheckStatus]:
        return self.scheduler.health()

    def stats(self) -> SchedulerStats:
        return self.scheduler.stats()

    # ------------------------------------------------------------------ events

    def _event(self, ev: HealthEvent) -> None:
        vs = self._by_name.get(ev.key.virtual)
        if vs is None:
            return
        if self.on_event is not None:
            try:
                self.on_event(ev)
            except Exception:
                log.exception("on_event handler failed for %s", ev.key)
        if ev.kind in ("up", "down"):
            mode = self.core.maintenance.get(ev.key)
            fields = {"EVENT": f"real-{ev.kind}", "VIRTUAL": ev.key.virtual,
                      "REAL": f"{ev.key.address}:{ev.key.port}"}
            if mode is None:
                log.log(NOTICE if ev.up else logging.WARNING, "real %s: %s (%s)", ev.key, ev.kind,
                        ev.reason, extra={"fields": fields})
            else:  # not a failure: the operator took it out
                log.info("real %s: %s (%s), in maintenance (%s)", ev.key, ev.kind, ev.reason, mode,
                         extra={"fields": fields})
            detail = "" if ev.up else ("quiescent, weight 0" if vs.quiescent else "removed")
            self._send(self.alerts.on_real(vs, ev.key, ev.up, detail, ev.reason, self.scheduler.now()))
        self._carry_out(self.core.on_health(ev.key, ev.health, self.scheduler.now()))

    def _carry_out(self, actions: list) -> None:
        for a in actions:
            if isinstance(a, Apply):
                if self.on_desired is not None:
                    try:
                        self.on_desired(a.desired)
                    except Exception:
                        log.exception("on_desired handler failed")
            elif isinstance(a, RunCommand):
                self.notifier.command(a.command, a.args, None, a.why)
            elif isinstance(a, FallbackChanged):
                vs = self._by_name.get(a.virtual)
                if vs is not None:
                    self._send(self.alerts.on_fallback(vs, a.on, a.where, self.scheduler.now()))
            elif isinstance(a, QuorumChanged):
                (log.info if a.up else log.warning)(
                    "virtual %s: %s quorum (weight %d, quorum %d, hysteresis %d)", a.virtual,
                    ("starting with" if a.starting else "gained") if a.up else
                    ("starting without" if a.starting else "lost"), a.weight, a.quorum, a.hysteresis,
                    extra={"fields": {"EVENT": "quorum-changed", "VIRTUAL": a.virtual}})

    def _arm_timer(self) -> None:
        if self._loop is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = self.alerts.next_deadline()
        if due is not None:
            self._timer = self._loop.call_later(max(0, due - self.scheduler.now()) / 1000, self._reminders)

    def _reminders(self) -> None:
        self._timer = None
        for mail in self.alerts.on_timer(self.scheduler.now()):
            self.notifier.mail(mail)
        self._arm_timer()
