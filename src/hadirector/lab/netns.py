"""Run Python code inside a named network namespace without leaving the current process.

`setns(2)` changes the namespace of the calling *thread* only, so a dedicated worker thread enters
the namespace once and everything submitted to it runs there: sockets it creates belong to that
namespace for their whole life (they can then be used from any thread, e.g. by asyncio), and
processes it forks start in that namespace. Python 3.11 has no `os.setns`, hence ctypes.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import ctypes.util
import os
import socket
from typing import Any, Callable, TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000  # <linux/sched.h>
NETNS_RUN_DIR = "/run/netns"  # where `ip netns add` bind-mounts named namespaces

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def netns_path(name: str) -> str:
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"bad network namespace name {name!r}")
    return os.path.join(NETNS_RUN_DIR, name)


def setns(name_or_path: str) -> None:
    """Move the calling thread into a network namespace (a name under /run/netns or a path such
    as /proc/PID/ns/net)."""
    path = name_or_path if name_or_path.startswith("/") else netns_path(name_or_path)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


class NetnsWorker:
    """One thread living in a network namespace; `call(fn, ...)` runs fn there and returns its
    result. `netns=None` means the namespace the process started in (no setns at all)."""

    def __init__(self, netns: str | None):
        self.netns = netns
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"netns-{netns or 'self'}",
            initializer=self._enter)
        self._entered: BaseException | None = None
        # surface a setns failure now (with its own message), not at the first call
        try:
            self.call(lambda: None)
        except concurrent.futures.BrokenExecutor:
            self._pool.shutdown(wait=False)
            raise self._entered or RuntimeError(f"cannot enter network namespace {netns}") from None

    def _enter(self) -> None:
        if self.netns is not None:
            try:
                setns(self.netns)
            except BaseException as exc:
                self._entered = exc
                raise

    def submit(self, fn: Callable[..., T], *args: Any, **kw: Any) -> "concurrent.futures.Future[T]":
        return self._pool.submit(fn, *args, **kw)

    def call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        return self.submit(fn, *args, **kw).result()

    async def acall(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        import asyncio
        return await asyncio.wrap_future(self.submit(fn, *args, **kw))

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM,
               proto: int = 0) -> socket.socket:
        """A socket that belongs to this worker's namespace."""
        return self.call(socket.socket, family, type, proto)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "NetnsWorker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
