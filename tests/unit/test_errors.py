"""One error base (errors.py): every project exception derives from it, and whether a retry may
help is read from the exception, never from its type or message."""

import errno
import importlib
import inspect
import pkgutil

import pytest

import hadirector
from hadirector.dataplane.base import DataPlaneError
from hadirector.dataplane.nft_render import RenderError
from hadirector.errors import HadirectorError, is_transient
from hadirector.net.netlink import NetlinkFailure
from hadirector.net.transports import TransportError
from hadirector.resources.base import AgentError


def _project_modules():
    for info in pkgutil.walk_packages(hadirector.__path__, "hadirector."):
        if info.name != "hadirector.__main__":
            yield importlib.import_module(info.name)


def test_every_project_exception_derives_from_the_one_base():
    found = {}
    for mod in _project_modules():
        for name, cls in inspect.getmembers(mod, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == mod.__name__:
                found[f"{mod.__name__}.{name}"] = cls
    assert len(found) >= 16  # today's classes, and the messages' subclasses
    outside = sorted(n for n, c in found.items() if not issubclass(c, HadirectorError))
    assert outside == [], outside


@pytest.mark.parametrize("exc, transient", [
    (NetlinkFailure("add address", errno.EBUSY), True),
    (NetlinkFailure("add address", errno.EPERM), False),
    (NetlinkFailure("add address", 0), False),
    (TransportError("link ucast:eth9: interface eth9 does not exist", errno.ENODEV), False),
    (TransportError("link: no buffer space", errno.ENOBUFS), True),
    (DataPlaneError("TCP 198.18.0.1:80: cannot listen on 198.18.0.1:80: Address in use"), True),
    (DataPlaneError("fwmark 1: gate reals", transient=False), False),
    (RenderError("fwmark 1: direct routing of a fwmark service"), False),
    (AgentError("script x: not found", transient=False), False),
    (AgentError("x start timed out", timeout=True), True),
    (OSError(errno.EAGAIN, "try again"), True),
    (OSError(errno.ENOENT, "no such file"), False),
    (TimeoutError(), True),
    (ValueError("bad"), False),
    (RuntimeError("a bug"), False),
])
def test_is_transient_reads_the_exception(exc, transient):
    assert is_transient(exc) is transient


def test_names_messages_and_errno_kept():
    e = NetlinkFailure("add address", errno.EBUSY, "198.18.0.1/24")
    assert str(e) == "add address: EBUSY (Device or resource busy): 198.18.0.1/24"
    assert (e.code, e.errno, e.transient) == (errno.EBUSY, errno.EBUSY, True)
    t = TransportError("link ucast:eth9: interface eth9 does not exist", errno.ENODEV)
    assert str(t) == "link ucast:eth9: interface eth9 does not exist" and t.code == t.errno == errno.ENODEV
    a = AgentError("balancer: port taken", code=98, errno=98)
    assert (a.transient, a.code, a.errno) == (True, 98, 98)
    assert isinstance(RenderError("x"), ValueError)  # callers catching ValueError still do
