"""Network namespaces: run code, and make sockets, inside a named network namespace from this process.

`setns(2)` with CLONE_NEWNET moves the calling *thread* only (man 2 setns), so there are two ways in:
- `in_netns(netns)`: the calling thread enters, runs a short body that must not await, and goes
  back home. Sockets made in the body belong to `netns` for their whole life and can be used from
  any thread afterwards (`netns_socket` is the common case). Used by net/netlink.py, net/garp.py and
  net/transports.py, where one process acts for several simulated hosts.
- `NetnsWorker(netns)`: one thread that enters once and stays; everything submitted to it runs
  there (blocking libraries such as libnftables, `ip -j`, conntrack; processes it forks start in
  that namespace). Used by dataplane/nft.py and lab/.

A namespace is named as `ip netns add` names it (a file under /run/netns) or given as a path such
as /proc/PID/ns/net. `None` means "where this process already is": no setns at all. Python 3.11 has
no `os.setns`, hence ctypes. A failure to open or enter a namespace raises `NetnsError` with its
errno (errors.HadirectorError: ENOENT, a namespace that does not exist, is not transient).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import os
import socket
from typing import Any, Callable, Iterator, TypeVar

from ..errors import HadirectorError

T = TypeVar("T")

CLONE_NEWNET = 0x40000000  # <linux/sched.h>
NETNS_RUN_DIR = "/run/netns"  # where `ip netns add` bind-mounts named namespaces (iproute2 ip/ipnetns.c)

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


class NetnsError(HadirectorError):
    """A network namespace could not be opened or entered; `errno` is the cause."""


def netns_path(name_or_path: str) -> str:
    """The file of a namespace: a name under /run/netns, or an absolute path kept as it is."""
    if name_or_path.startswith("/"):
        return name_or_path
    if "/" in name_or_path or name_or_path in ("", ".", ".."):
        raise ValueError(f"bad network namespace name {name_or_path!r}")
    return os.path.join(NETNS_RUN_DIR, name_or_path)


def _open(name_or_path: str) -> int:
    path = netns_path(name_or_path)
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise NetnsError(f"open network namespace {name_or_path}: {os.strerror(e.errno or 0)}",
                         errno=e.errno) from None


def _enter_fd(fd: int, what: str) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NetnsError(f"setns({what}): {os.strerror(err)}", errno=err)


def setns(name_or_path: str) -> None:
    """Move the calling thread into a network namespace, for good (see NetnsWorker)."""
    fd = _open(name_or_path)
    try:
        _enter_fd(fd, netns_path(name_or_path))
    finally:
        os.close(fd)


@contextlib.contextmanager
def in_netns(netns: str | None) -> Iterator[None]:
    """Run the body with the calling thread inside network namespace `netns` (None: no change).

    Only sockets created in the body are affected; they stay in that namespace after it ends. The
    body must not await (an event loop would run other tasks in the wrong namespace)."""
    if netns is None:
        yield
        return
    target = _open(netns)
    try:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        os.close(target)
        raise
    try:
        _enter_fd(target, netns_path(netns))
        try:
            yield
        finally:
            _enter_fd(home, "back home")
    finally:
        os.close(target)
        os.close(home)


def netns_socket(netns: str | None, family: int, type_: int, proto: int = 0) -> socket.socket:
    """A socket created inside `netns` (None: this process's namespace)."""
    with in_netns(netns):
        return socket.socket(family, type_, proto)


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
            raise self._entered or NetnsError(f"cannot enter network namespace {netns}") from None

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
