"""Bounded waiting: poll a predicate until it holds, or fail naming what was awaited and the
last value seen. One implementation for the blocking and the asyncio form."""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, Callable

Describe = str | Callable[[], str]


class _Poll:
    def __init__(self, predicate: Callable[[], Any], timeout: float, interval: float, what: Describe,
                 ignore: tuple[type[BaseException], ...]) -> None:
        if timeout <= 0 or interval <= 0:
            raise ValueError(f"wait_until: timeout ({timeout}) and interval ({interval}) must be > 0")
        self.predicate, self.timeout, self.interval = predicate, timeout, interval
        self.what, self.ignore = what, ignore
        self.deadline = time.monotonic() + timeout
        self.last: Any = None

    def took(self, value: Any) -> bool:
        self.last = value
        return bool(value)

    def failed(self, exc: BaseException) -> None:
        if not isinstance(exc, self.ignore):
            raise exc
        self.last = exc

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def pause(self) -> float:
        return max(0.0, min(self.interval, self.deadline - time.monotonic()))

    def error(self) -> AssertionError:
        what = self.what() if callable(self.what) else self.what
        return AssertionError(f"timed out after {self.timeout:g} s waiting for {what}; "
                              f"last value seen: {self.last!r}")


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05, what: Describe = "",
               ignore: tuple[type[BaseException], ...] = ()) -> Any:
    """Call `predicate` every `interval` s until it returns something true; return that value.
    After `timeout` s (one last call included) raise AssertionError naming `what` (a text, or a
    callable giving one, e.g. with logs) and the last value seen. Exceptions of the types in
    `ignore` count as "not yet" (the last one is reported); others propagate."""
    p = _Poll(predicate, timeout, interval, what or getattr(predicate, "__name__", "the condition"), ignore)
    while True:
        expired = p.expired()
        try:
            if p.took(predicate()):
                return p.last
        except BaseException as exc:  # noqa: BLE001 - re-raised unless listed in `ignore`
            p.failed(exc)
        if expired:
            raise p.error()
        time.sleep(p.pause())


async def async_wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05,
                           what: Describe = "", ignore: tuple[type[BaseException], ...] = ()) -> Any:
    """wait_until for a coroutine: the event loop keeps running between polls. `predicate` may be
    a plain function or return an awaitable."""
    p = _Poll(predicate, timeout, interval, what or getattr(predicate, "__name__", "the condition"), ignore)
    while True:
        expired = p.expired()
        try:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if p.took(value):
                return p.last
        except BaseException as exc:  # noqa: BLE001 - re-raised unless listed in `ignore`
            p.failed(exc)
        if expired:
            raise p.error()
        await asyncio.sleep(p.pause())
