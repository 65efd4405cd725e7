"""Netlink access (pyroute2) for addresses and links, and network-namespace helpers.

Everything here is async (pyroute2's AsyncIPRoute) and takes an optional `netns`: the name of a
network namespace under /run/netns (net/netns.py). The daemon runs with `netns=None` (its own
namespace); the tests and the lab pass a namespace so one process can act for several simulated
hosts.

Errors keep their errno: a pyroute2 `NetlinkError` becomes `NetlinkFailure(op, code)`, sorted into
transient (worth retrying: EBUSY, EAGAIN, ENOBUFS, ...) and fatal (EPERM, ENODEV, EINVAL, ...) by
errors.TRANSIENT_ERRNOS, as DESIGN.md convention 7 asks. Callers that want idempotence (adding an address that exists,
deleting one that is gone) look at `code` (EEXIST, EADDRNOTAVAIL).
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
from dataclasses import dataclass
from typing import AsyncIterator

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ..errors import HadirectorError
from .netns import NetnsError, netns_path, netns_socket

IFA_F_NODAD = 0x02  # linux/if_addr.h: skip duplicate address detection (IPv6)
IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFNAMSIZ = 16  # linux/if.h: names and labels are at most 15 characters


class NetlinkFailure(HadirectorError):
    """A netlink operation failed. `code` is the errno (0 when there was none); transient by it."""

    def __init__(self, op: str, code: int, detail: str = ""):
        self.op = op
        self.code = code
        name = errno.errorcode.get(code, str(code)) if code else "error"
        msg = f"{op}: {name}"
        if code:
            msg += f" ({os.strerror(code)})"
        if detail:
            msg += f": {detail}"
        super().__init__(msg, errno=code)


@dataclass(frozen=True)
class LinkInfo:
    index: int
    name: str
    mac: str | None  # "aa:bb:cc:dd:ee:ff"; None without a link-layer address
    flags: int
    operstate: str | None

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)


@dataclass(frozen=True)
class AddrInfo:
    index: int
    address: str
    prefixlen: int
    label: str | None
    broadcast: str | None
    family: int

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_interface(f"{self.address}/{self.prefixlen}").network


# --------------------------------------------------------------------------- netlink calls

@contextlib.asynccontextmanager
async def iproute(netns: str | None = None) -> AsyncIterator[AsyncIPRoute]:
    where = f" in namespace {netns}" if netns else ""
    if netns is not None and not os.path.exists(netns_path(netns)):
        raise NetlinkFailure(f"open netlink socket{where}", errno.ENOENT, "no such namespace")
    sock = None
    try:
        if netns:
            # our own NETLINK_ROUTE socket made inside the namespace: pyroute2's netns= forks a
            # helper process for every socket (about 10 ms each; ours costs a setns)
            sock = netns_socket(netns, socket.AF_NETLINK, socket.SOCK_DGRAM, 0)  # NETLINK_ROUTE
            ipr = AsyncIPRoute(use_socket=sock)
        else:
            ipr = AsyncIPRoute()
        await ipr.setup_endpoint()
    except NetlinkError as e:
        if sock is not None:
            sock.close()
        raise NetlinkFailure(f"open netlink socket{where}", e.code) from None
    except NetnsError as e:  # e.g. the namespace went away between the check and the setns
        raise NetlinkFailure(f"open netlink socket{where}", e.errno or 0, str(e)) from None
    except OSError as e:
        if sock is not None:
            sock.close()
        raise NetlinkFailure(f"open netlink socket{where}", e.errno or 0, str(e)) from None
    try:
        yield ipr
    finally:
        with contextlib.suppress(Exception):
            ipr.close()
        if sock is not None:
            sock.close()


def _failure(op: str, exc: BaseException) -> NetlinkFailure:
    if isinstance(exc, NetlinkError):
        return NetlinkFailure(op, exc.code)
    if isinstance(exc, OSError):
        return NetlinkFailure(op, exc.errno or 0, str(exc))
    return NetlinkFailure(op, 0, f"{type(exc).__name__}: {exc}")


async def links(netns: str | None = None) -> list[LinkInfo]:
    try:
        async with iproute(netns) as ipr:
            out = []
            async for m in await ipr.link("dump"):
                mac = m.get("IFLA_ADDRESS")
                out.append(LinkInfo(index=m["index"], name=m.get("IFLA_IFNAME"),
                                    mac=mac if mac and mac != "00:00:00:00:00:00" else None,
                                    flags=m["flags"], operstate=m.get("IFLA_OPERSTATE")))
            return out
    except NetlinkFailure:
        raise
    except Exception as e:  # noqa: BLE001 - keep errno, whatever pyroute2 raised
        raise _failure("list links", e) from None


async def link_by_name(name: str, netns: str | None = None) -> LinkInfo | None:
    for link in await links(netns):
        if link.name == name:
            return link
    return None


async def addresses(netns: str | None = None, family: int = 0) -> list[AddrInfo]:
    try:
        async with iproute(netns) as ipr:
            out = []
            dump = await (ipr.addr("dump", family=family) if family else ipr.addr("dump"))
            async for m in dump:
                # IFA_LOCAL is our end of a point-to-point address; otherwise it equals IFA_ADDRESS
                local = m.get("IFA_LOCAL") or m.get("IFA_ADDRESS")
                out.append(AddrInfo(index=m["index"], address=local,
                                    prefixlen=m["prefixlen"], label=m.get("IFA_LABEL"),
                                    broadcast=m.get("IFA_BROADCAST"), family=m["family"]))
            return out
    except NetlinkFailure:
        raise
    except Exception as e:  # noqa: BLE001
        raise _failure("list addresses", e) from None


async def local_addresses(netns: str | None = None) -> set[str]:
    """Every address configured in the namespace, normalised (ipaddress's str form)."""
    return {str(ipaddress.ip_address(a.address)) for a in await addresses(netns)}


async def add_address(index: int, address: str, prefixlen: int, *, label: str | None = None,
                      broadcast: str | None = None, netns: str | None = None) -> bool:
    """Add `address/prefixlen` to interface `index`. True if added, False if it was already there
    (EEXIST). IPv6 addresses skip duplicate address detection (IPaddr2 `nodad`), so they are usable
    at once and can be announced."""
    ip = ipaddress.ip_address(address)
    kw: dict = {"index": index, "address": str(ip), "prefixlen": prefixlen}
    if ip.version == 4:
        if label:
            kw["label"] = label
        if broadcast:
            kw["broadcast"] = broadcast
    else:
        kw["IFA_FLAGS"] = IFA_F_NODAD
    op = f"add {ip}/{prefixlen} to interface {index}"
    try:
        async with iproute(netns) as ipr:
            await ipr.addr("add", **kw)
        return True
    except NetlinkError as e:
        if e.code == errno.EEXIST:
            return False
        raise NetlinkFailure(op, e.code) from None
    except NetlinkFailure:
        raise
    except Exception as e:  # noqa: BLE001
        raise _failure(op, e) from None


async def del_address(index: int, address: str, prefixlen: int, *, netns: str | None = None) -> bool:
    """Remove the address. True if removed, False if it was not there (EADDRNOTAVAIL/ENOENT)."""
    ip = ipaddress.ip_address(address)
    op = f"delete {ip}/{prefixlen} from interface {index}"
    try:
        async with iproute(netns) as ipr:
            await ipr.addr("del", index=index, address=str(ip), prefixlen=prefixlen)
        return True
    except NetlinkError as e:
        if e.code in (errno.EADDRNOTAVAIL, errno.ENOENT, errno.ESRCH, errno.ENODEV):
            return False
        raise NetlinkFailure(op, e.code) from None
    except NetlinkFailure:
        raise
    except Exception as e:  # noqa: BLE001
        raise _failure(op, e) from None
