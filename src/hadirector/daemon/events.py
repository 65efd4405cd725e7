"""The daemon's event bus: every cluster and check event the daemon logs, as plain data for the
HTTP API's event stream (daemon/api.py, `GET /api/v1/events`).

How it is fed: the daemon already logs each event once, with the words cluster/eventlog.py
gives it (`describe`) or the check monitor's (checks/monitor.py), and journal fields naming it
(`EVENT`, `GROUP`, `PEER`, `LINK`, `VIRTUAL`, `REAL`). `BusHandler` is a logging handler on the
daemon's logger that turns each record carrying an `EVENT` into an event, so nothing is worded
twice and an event reaches the stream exactly when it reaches the log (a rate-limited line that
was not logged is not streamed either).

    {"id": 7, "time": 1764636000.123, "kind": "cluster", "event": "owner-changed",
     "level": "notice", "text": "group web: owner alpha -> beta (node alpha dead)",
     "director": "beta", "group": "web"}

`kind` sorts events for a reader: cluster | check | maintenance | balancer | operator.
The bus keeps the last `keep` events (a client that connects gets them first) and gives each
subscriber a bounded queue: a subscriber that falls behind by more than `queue` events is cut
off (`dropped`), so a slow client never holds memory or the loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading

# journal field -> event key (PEER is the node an event is about; NODE the director reporting it)
_KEYS = {"GROUP": "group", "PEER": "node", "LINK": "link", "VIRTUAL": "virtual", "REAL": "real"}


def kind_of(event: str) -> str:
    """The family of an event name (eventlog.event_name, or the monitor's `real-up`...)."""
    if event.startswith("real-"):
        return "check"
    if event.startswith("maintenance"):
        return "maintenance"
    if event.startswith(("balancer", "quorum")):
        return "balancer"
    if event == "request-result":
        return "operator"
    return "cluster"


class Subscription:
    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=size)
        self.dropped = False
        self.wake = asyncio.Event()  # set when dropped (the writer stops waiting)


class EventBus:
    def __init__(self, keep: int = 200, queue: int = 256) -> None:
        self.recent: collections.deque[dict] = collections.deque(maxlen=keep)
        self.queue_size = queue
        self.subscribers: set[Subscription] = set()
        self.seq = 0
        self.dropped_subscribers = 0
        self.listeners: list = []  # callables(event), e.g. the metrics' failover counter

    def publish(self, event: dict) -> dict:
        """Number, keep and hand out one event (on the loop's thread)."""
        self.seq += 1
        event = {"id": self.seq, **event}
        self.recent.append(event)
        for fn in self.listeners:
            try:
                fn(event)
            except Exception:  # noqa: BLE001 - a listener's bug must not lose the event
                logging.getLogger(__name__).debug("event listener failed", exc_info=True)
        for sub in list(self.subscribers):
            if sub.dropped:
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.dropped = True
                sub.wake.set()
                self.subscribers.discard(sub)
                self.dropped_subscribers += 1
        return event

    def subscribe(self, since: int | None = None) -> tuple[Subscription, list[dict]]:
        """A new subscriber and the recent events to send it first (after id `since` if given)."""
        sub = Subscription(self.queue_size)
        self.subscribers.add(sub)
        backlog = [e for e in self.recent if since is None or e["id"] > since]
        return sub, backlog

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)


def event_of(record: logging.LogRecord, director: str | None) -> dict | None:
    """The event of one log record, or None when it names no event."""
    fields = getattr(record, "fields", None)
    if not isinstance(fields, dict) or not fields.get("EVENT"):
        return None
    name = str(fields["EVENT"])
    event = {"time": round(record.created, 3), "kind": kind_of(name), "event": name,
             "level": "notice" if record.levelname == "NOTICE" else record.levelname.lower(),
             "text": record.getMessage(), "director": fields.get("NODE") or director}
    for field, key in _KEYS.items():
        if fields.get(field):
            event[key] = str(fields[field])
    event.setdefault("node", event["director"])
    return event


class BusHandler(logging.Handler):
    """Publishes each logged event on `bus`, on `loop`'s thread (a record logged from a worker
    thread is handed over with call_soon_threadsafe). INFO and above: debug lines are not events."""

    def __init__(self, bus: EventBus, loop: asyncio.AbstractEventLoop, director: str | None) -> None:
        super().__init__(logging.INFO)
        self.bus = bus
        self.loop = loop
        self.director = director
        self._thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event = event_of(record, self.director)
        except Exception:  # noqa: BLE001 - logging must never raise into the daemon
            return
        if event is None:
            return
        if threading.get_ident() == self._thread:
            self.bus.publish(event)
        elif not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.bus.publish, event)
