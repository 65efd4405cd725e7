"""The one base of every hadirector exception, with "may a retry help?" as data.

DESIGN convention 7: protocol errors from the cores (a bad packet, a transition that does not fit)
are counted and logged, never fatal; errors of the drivers' I/O are sorted into transient (the
same call may succeed later: the kernel was busy, a call was interrupted or timed out, a port was
still taken) and fatal (it will fail the same way again: no such interface, no permission, a
configuration the data plane cannot express). ExaBGP sorts its network errors the same way
(reactor/network/error.py: the class says whether to retry).

Every exception class of the project derives from `HadirectorError` and keeps its own name and
message. `transient` is a class default an instance may override, and follows `errno` when only
that is given; `errno` is the OS error number where there is one (as pyroute2's
NetlinkError.code). Code that decides whether to retry asks `is_transient(exc)`, which reads that
attribute (and, for an OSError from the standard library, its errno), never a type or a message.
"""

from __future__ import annotations

import errno as _errno

# Worth a retry: the kernel was busy or short of memory, a call was interrupted or timed out.
TRANSIENT_ERRNOS = frozenset({_errno.EBUSY, _errno.EAGAIN, _errno.ENOBUFS, _errno.EINTR,
                              _errno.ENOMEM, _errno.ETIMEDOUT})


class HadirectorError(Exception):
    """Base of every hadirector exception. `transient`: whether the same call may succeed later;
    `errno`: the OS error number, or None."""

    transient: bool = False
    errno: int | None = None

    def __init__(self, *args, transient: bool | None = None, errno: int | None = None) -> None:
        super().__init__(*args)
        if errno:
            self.errno = errno
        if transient is not None:
            self.transient = transient
        elif errno:
            self.transient = errno in TRANSIENT_ERRNOS


def is_transient(exc: BaseException) -> bool:
    """Whether retrying what raised `exc` may help: a HadirectorError says so itself; an OSError
    by its errno (a timeout always may); anything else is taken as fatal (a bug, bad input)."""
    if isinstance(exc, HadirectorError):
        return exc.transient
    if isinstance(exc, TimeoutError):
        return True
    if isinstance(exc, OSError):
        return exc.errno in TRANSIENT_ERRNOS
    return False
