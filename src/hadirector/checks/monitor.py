"""HealthMonitor: the checks subsystem as the daemon uses it (scheduler + semantics + alerts).

How it works: a `CheckScheduler` runs the checks; each `HealthEvent` goes to the
`ServiceTracker` (pure ldirectord/keepalived semantics: quiescent, fallback, quorum), whose
commands and the `AlertTracker`'s mails are carried out by the `Notifier`; then `on_change` gets
the new `ServiceHealth` of that virtual service, which is what the balancer turns into desired
data-plane state. One timer handles emailalertfreq reminders. Nothing here touches the data plane.

    mon = HealthMonitor(cfg.balancer, on_change=lambda view: ..., on_event=lambda ev: ...)
    await mon.start()             # first checks within 1 s; on_change once per service at start
    mon.view()                    # {virtual name: ServiceHealth}
    mon.health()                  # {RealKey: RealHealth} (state, last result, reason, times)
    mon.update(new_cfg.balancer)  # reload: only the difference
    mon.set_daemon_status("running")
    await mon.stop()
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Callable

from ..config.model import Balancer, VirtualService
from .alerts import AlertTracker, Notifier
from .base import RealKey
from .scheduler import CheckScheduler, HealthEvent, RealHealth, SchedulerStats, UpdateSummary
from .service import ServiceHealth, ServiceTracker

log = logging.getLogger(__name__)


class HealthMonitor:
    def __init__(self, balancer: Balancer, *,
                 on_change: Callable[[ServiceHealth], None] | None = None,
                 on_event: Callable[[HealthEvent], None] | None = None,
                 concurrency: int = 1024, startup_window: float = 1.0,
                 notifier: Notifier | None = None) -> None:
        self.balancer = balancer
        self.on_change = on_change
        self.on_event = on_event
        self.tracker = ServiceTracker(readdquiescent=balancer.readdquiescent)
        self.alerts = AlertTracker()
        self.notifier = notifier or Notifier()
        self.scheduler = CheckScheduler(balancer.virtual, on_event=self._event, concurrency=concurrency,
                                        startup_window=startup_window, maintenancedir=balancer.maintenancedir)
        self._by_name: dict[str, VirtualService] = {vs.name: vs for vs in balancer.virtual}
        self._views: dict[str, ServiceHealth] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._start_timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start checking. The daemon state is "starting" until the first check of every real had
        time to finish (ldirectord: its initial pass runs in the starting state), then "running"."""
        self._loop = asyncio.get_running_loop()
        await self.scheduler.start()
        for vs in self.balancer.virtual:
            self._observe(vs)
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

    def update(self, balancer: Balancer) -> UpdateSummary:
        """Reload: apply the new balancer config; unchanged reals keep their check state."""
        previous = self.alerts.daemon_status
        self.alerts.set_daemon_status("reloading")
        self.balancer = balancer
        self.tracker.readdquiescent = balancer.readdquiescent
        self.scheduler.maintenancedir = balancer.maintenancedir
        summary = self.scheduler.update(balancer.virtual)
        for key in summary.removed:
            self.alerts.forget(key)
        old = self._by_name
        self._by_name = {vs.name: vs for vs in balancer.virtual}
        self.tracker.forget_missing(balancer.virtual)
        for name in list(self._views):
            if name not in self._by_name:
                del self._views[name]
        if self._loop is not None:
            for vs in balancer.virtual:
                if old.get(vs.name) != vs:
                    self._observe(vs)
        self.alerts.set_daemon_status(previous if previous != "reloading" else "running")
        return summary

    # ------------------------------------------------------------------ reading

    def view(self) -> dict[str, ServiceHealth]:
        return dict(self._views)

    def health(self) -> dict[RealKey, RealHealth]:
        return self.scheduler.health()

    def stats(self) -> SchedulerStats:
        return self.scheduler.stats()

    def balancer_health(self) -> dict[RealKey, RealHealth]:
        """The health map for `balancer.state.build_desired`: the checks' view, except that reals
        withdrawn because their service lost its quorum (keepalived, with a fallback) count as down."""
        health = self.scheduler.health()
        for view in self._views.values():
            for r in view.reals:
                if r.up and r.state == "removed" and r.key in health:
                    health[r.key] = replace(health[r.key], up=False, reason=r.reason)
        return health

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
            detail = "up" if ev.up else ("quiescent, weight 0" if vs.quiescent else "removed")
            if ev.up:
                detail = ""
            for mail in self.alerts.on_real(vs, ev.key, ev.up, detail, ev.reason, time.monotonic()):
                self.notifier.mail(mail)
            self.notifier.real_notify(vs, ev.key, ev.up, ev.reason)
            self._arm_timer()
        self._observe(vs)

    def _observe(self, vs: VirtualService) -> None:
        view, cmds = self.tracker.observe(vs, self.scheduler.health())
        before = self._views.get(vs.name)
        self._views[vs.name] = view
        for c in cmds:
            self.notifier.command(c.command, c.args, None, c.why)
        was_on = before.fallback is not None if before is not None else False
        if (view.fallback is not None) != was_on and vs.fallback is not None and before is not None:
            fb = vs.fallback
            where = f"{fb.address}:{fb.port if fb.port is not None else vs.port}"
            for mail in self.alerts.on_fallback(vs, view.fallback is not None, where):
                self.notifier.mail(mail)
        if before != view and self.on_change is not None:
            try:
                self.on_change(view)
            except Exception:
                log.exception("on_change handler failed for %s", vs.name)

    def _arm_timer(self) -> None:
        if self._loop is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = self.alerts.next_deadline()
        if due is not None:
            self._timer = self._loop.call_later(max(0.0, due - time.monotonic()), self._reminders)

    def _reminders(self) -> None:
        self._timer = None
        for mail in self.alerts.on_timer(time.monotonic()):
            self.notifier.mail(mail)
        self._arm_timer()
