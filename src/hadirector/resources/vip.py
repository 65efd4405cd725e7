"""The `vip` agent: a virtual IP address, as heartbeat's IPaddr/IPaddr2 manage it.

start: find where the address goes, add it with pyroute2, then announce it (gratuitous ARP for
IPv4, unsolicited neighbour advertisements for IPv6; net/garp.py) in the background so start does
not wait `garp_count * garp_interval`. With `garp_refresh` set, one more announcement round is sent
every `garp_refresh` ms while the address is held (IPaddr2 arp_count_refresh does the same on each
monitor).

Where the address goes:
- interface: the model's, else the interface with an existing address whose subnet holds the VIP
  (the most specific such subnet), as heartbeat's findif does from the routing table;
- prefixlen: the model's, else the prefix of that existing address, else /32 (/128 for IPv6);
- label (IPv4 only): the model's, else the first free `<interface>:<n>` (eth0:0, eth0:1, ...), the
  alias names heartbeat's IPaddr used; skipped if it would exceed the kernel's 15 characters;
- broadcast (IPv4): the model's, else the subnet's broadcast address (IPaddr2 `brd +`).

stop: delete the address from every interface that has it (stop also cleans up a VIP a crash left
behind, whatever its prefix). monitor: is the address present (on the interface it was put on)?

Leases (resources/lease.py, when the daemon hands the agent a `leases` service): start guards the
address in the kernel *before* adding it, so from its first moment the kernel answers for it only
under a lease the cluster core keeps renewing; stop removes the address first and the guard
after. A daemon that stops renewing (frozen, hung, killed) leaves an address whose kernel is
silent. `locate(model, ctx)` tells where a VIP goes without adding it (for the probes a node sends
before it takes a VIP over, net/acd.py).

drain (before the stop of a planned release, resources/manager.py; needs the leases): the address
goes into the lease table's drain set, so the kernel drops new TCP connections to it (SYN without
ACK; the client sends it again about a second later, to the new owner), while the connections in
flight (net/sockdiag.py: TCP sockets with the VIP as local address, not LISTEN, TIME_WAIT or
CLOSE) are counted every DRAIN_POLL_MS until none is left or `drain` ms have passed. The stop that
follows removes the address, then the guard with its drain element. Without it, a connection
mid-request when the address moves gets its next segment answered by the new owner's kernel with
a reset.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..config.model import VipResource
from ..errors import is_transient
from ..net import netlink
from ..net.garp import GarpError, GarpStats, announce
from ..net.sockdiag import TcpSockets
from .base import Agent, AgentContext, AgentError, register

log = logging.getLogger(__name__)

DRAIN_POLL_MS = 2  # how often a drain counts the connections in flight (one sock_diag dump each)


@dataclass(frozen=True)
class DrainResult:
    address: str
    in_flight: int  # connections in flight when the drain began
    left: int  # still in flight when it ended (0: all finished)
    waited_ms: int
    skipped: str = ""  # why nothing was drained ("" when it ran)

    def describe(self) -> str:
        if self.skipped:
            return f"not drained ({self.skipped})"
        if self.left:
            return f"{self.left} of {self.in_flight} still in flight after {self.waited_ms} ms; removing it anyway"
        return f"drained in {self.waited_ms} ms"


async def wait_drained(count: Callable[[], int], timeout_ms: int, *, poll_ms: int = DRAIN_POLL_MS,
                       clock: Callable[[], float] = time.monotonic) -> tuple[int, int, int]:
    """Poll `count()` every `poll_ms` until it is 0 or `timeout_ms` passed. Returns (first count,
    last count, ms waited)."""
    t0 = clock()
    first = last = count()
    while last > 0:
        waited = (clock() - t0) * 1000
        if waited >= timeout_ms:
            break
        await asyncio.sleep(min(poll_ms, timeout_ms - waited) / 1000)
        last = count()
    return first, last, int(round((clock() - t0) * 1000))


@dataclass(frozen=True)
class Placement:
    index: int
    ifname: str
    prefixlen: int
    label: str | None
    broadcast: str | None


def _agent_error(e: netlink.NetlinkFailure) -> AgentError:
    return AgentError(str(e), transient=is_transient(e), code=e.code, errno=e.errno)


def choose_placement(model: VipResource, links: list[netlink.LinkInfo],
                     addrs: list[netlink.AddrInfo]) -> Placement:
    """Decide interface, prefix length, label and broadcast for the VIP (pure; see module doc)."""
    vip = ipaddress.ip_address(model.address)
    maxlen = vip.max_prefixlen
    by_index = {link.index: link for link in links}
    # the other addresses of the VIP's family; a VIP already present must not choose for itself
    others = [a for a in addrs if a.address is not None
              and ipaddress.ip_address(a.address).version == vip.version
              and ipaddress.ip_address(a.address) != vip]

    def holding(a: netlink.AddrInfo) -> bool:
        link = by_index.get(a.index)
        return (a.prefixlen < maxlen and vip in a.network and link is not None
                and not (link.flags & netlink.IFF_LOOPBACK))

    if model.interface:
        link = next((lk for lk in links if lk.name == model.interface), None)
        if link is None:
            names = ", ".join(lk.name for lk in links) or "none"
            raise AgentError(f"vip {vip}: interface {model.interface} does not exist (have: {names})",
                             transient=False)
        subnet = [a for a in others if a.index == link.index and holding(a)]
    else:
        subnet = [a for a in others if holding(a)]
        if not subnet:
            raise AgentError(f"vip {vip}: no interface has an address whose subnet holds it; "
                             f"set `interface` (and `prefixlen`)", transient=False)
        link = by_index[max(subnet, key=lambda a: a.prefixlen).index]
        subnet = [a for a in subnet if a.index == link.index]
    if model.prefixlen is not None:
        if model.prefixlen > maxlen:
            raise AgentError(f"vip {vip}: prefixlen {model.prefixlen} is too long for IPv{vip.version}",
                             transient=False)
        prefixlen = model.prefixlen
    elif subnet:
        prefixlen = max(a.prefixlen for a in subnet)
    else:
        prefixlen = maxlen

    label = None
    broadcast = None
    if vip.version == 4:
        if model.label:
            if not model.label.startswith(link.name):
                raise AgentError(f"vip {vip}: label {model.label} must begin with the interface "
                                 f"name {link.name} (a kernel rule)", transient=False)
            if len(model.label) >= netlink.IFNAMSIZ:
                raise AgentError(f"vip {vip}: label {model.label} is longer than 15 characters",
                                 transient=False)
            label = model.label
        else:
            used = {a.label for a in addrs if a.index == link.index and a.label}
            n = 0
            while f"{link.name}:{n}" in used:
                n += 1
            candidate = f"{link.name}:{n}"
            label = candidate if len(candidate) < netlink.IFNAMSIZ else None
        if model.broadcast:
            broadcast = model.broadcast
        elif prefixlen <= 30:
            broadcast = str(ipaddress.ip_interface(f"{vip}/{prefixlen}").network.broadcast_address)
    return Placement(link.index, link.name, prefixlen, label, broadcast)


async def locate(model: VipResource, ctx: AgentContext) -> Placement:
    """Where the VIP goes (or is): interface, prefix, label, broadcast. Adds nothing."""
    try:
        links = await netlink.links(ctx.netns)
        addrs = await netlink.addresses(ctx.netns)
    except netlink.NetlinkFailure as e:
        raise _agent_error(e) from None
    return choose_placement(model, links, addrs)


@register
class VipAgent(Agent):
    kind = "vip"

    def __init__(self, model: VipResource, ctx: AgentContext):
        super().__init__(model, ctx)
        self.model: VipResource = model
        self.placement: Placement | None = None
        self.garp = GarpStats()
        self._tasks: set[asyncio.Task] = set()

    @property
    def name(self) -> str:
        return f"vip {self.model.address}"

    async def _resolve(self) -> Placement:
        return await locate(self.model, self.ctx)

    @property
    def leases(self):
        return self.ctx.services.get("leases")

    async def start(self) -> None:
        p = await self._resolve()
        if self.leases is not None:
            try:
                await self.leases.guard(str(self.model.address), p.ifname)
            except Exception as e:  # noqa: BLE001 - LeaseError: refuse rather than run unguarded
                raise AgentError(f"{self.name}: {e}", transient=True) from None
        try:
            added = await netlink.add_address(p.index, self.model.address, p.prefixlen, label=p.label,
                                              broadcast=p.broadcast, netns=self.ctx.netns)
        except netlink.NetlinkFailure as e:
            raise _agent_error(e) from None
        self.placement = p
        log.info("%s: %s %s/%d on %s%s", self.name, "added" if added else "already present",
                 self.model.address, p.prefixlen, p.ifname, f" label {p.label}" if p.label else "")
        self._cancel_tasks()
        self._spawn(self._announce(self.model.garp_count))
        if self.model.garp_refresh > 0:
            self._spawn(self._refresh())

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.name} garp")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def reannounce(self) -> bool:
        """Announce the VIP again (garp_count rounds, at least one), if this agent placed it. The
        rounds run as a task that stop() cancels, so a VIP given up meanwhile is not announced."""
        if self.placement is None:
            return False
        task = self._spawn(self._announce(max(1, self.model.garp_count)))
        await asyncio.gather(task, return_exceptions=True)
        return True

    def _cancel_tasks(self) -> None:
        for t in list(self._tasks):
            t.cancel()

    async def _announce(self, count: int) -> None:
        p = self.placement
        if p is None or count <= 0:
            return
        errors_before = self.garp.errors
        try:
            await announce(p.ifname, self.model.address, count=count,
                           interval_ms=self.model.garp_interval, netns=self.ctx.netns, stats=self.garp)
        except GarpError as e:
            self.garp.errors += 1
            self.garp.last_error = str(e)
            log.warning("%s: gratuitous ARP not sent: %s", self.name, e)
            return
        if self.garp.errors > errors_before:
            log.warning("%s: %d announcement(s) failed: %s", self.name,
                        self.garp.errors - errors_before, self.garp.last_error)

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.model.garp_refresh / 1000.0)
            await self._announce(1)

    async def drain(self, timeout_ms: int | None = None, group: str = "") -> DrainResult:
        """Refuse new TCP connections to the VIP and wait (at most `timeout_ms`, default the
        model's `drain`) until those in flight have finished (see the module docstring). The
        address stays; stop() removes it. Never raises: a drain that cannot run is skipped."""
        address = str(self.model.address)
        ms = self.model.drain if timeout_ms is None else timeout_ms
        who = f"group {group}: " if group else ""
        skip = ("draining is off" if ms <= 0 else "no VIP leases" if self.leases is None
                else "not placed by this agent" if self.placement is None else "")
        if skip:
            return DrainResult(address, 0, 0, 0, skip)
        try:
            sockets = TcpSockets(self.ctx.netns)
        except OSError as e:
            log.warning("%sVIP %s not drained: sock_diag: %s", who, address, e)
            return DrainResult(address, 0, 0, 0, f"sock_diag: {e}")
        try:
            try:
                await self.leases.drain(address)
            except Exception as e:  # noqa: BLE001 - LeaseError: stop without draining
                log.warning("%sVIP %s not drained: %s", who, address, e)
                return DrainResult(address, 0, 0, 0, str(e))
            counts: list[int] = []

            def count() -> int:
                n = len(sockets.in_flight(address))
                if not counts:
                    log.info("%sdraining VIP %s (%d in flight)", who, address, n)
                counts.append(n)
                return n

            first, left, waited = await wait_drained(count, ms)
            res = DrainResult(address, first, left, waited)
        except OSError as e:
            log.warning("%sVIP %s: counting its connections failed: %s", who, address, e)
            return DrainResult(address, 0, 0, 0, f"sock_diag: {e}")
        finally:
            sockets.close()
        log.info("%sVIP %s: %s", who, address, res.describe())
        return res

    async def stop(self) -> None:
        self._cancel_tasks()
        vip = ipaddress.ip_address(self.model.address)
        try:
            held = [a for a in await netlink.addresses(self.ctx.netns)
                    if a.address is not None and ipaddress.ip_address(a.address) == vip]
            for a in held:
                await netlink.del_address(a.index, self.model.address, a.prefixlen, netns=self.ctx.netns)
                log.info("%s: removed from interface %d", self.name, a.index)
        except netlink.NetlinkFailure as e:
            raise _agent_error(e) from None
        self.placement = None
        if self.leases is not None:  # only now: until the address is gone, the guard keeps it quiet
            try:
                await self.leases.unguard(str(self.model.address))
            except Exception as e:  # noqa: BLE001 - the address is gone; a stale element is harmless
                log.warning("%s: removing its lease guard failed: %s", self.name, e)

    async def monitor(self) -> bool:
        vip = ipaddress.ip_address(self.model.address)
        try:
            addrs = await netlink.addresses(self.ctx.netns)
        except netlink.NetlinkFailure as e:
            raise _agent_error(e) from None
        p = self.placement
        return any(a.address is not None and ipaddress.ip_address(a.address) == vip
                   and (p is None or a.index == p.index) for a in addrs)

    def status(self) -> dict[str, Any]:
        p = self.placement
        out: dict[str, Any] = {"garp_sent": self.garp.sent, "garp_errors": self.garp.errors}
        if p is not None:
            out.update(interface=p.ifname, prefixlen=p.prefixlen, label=p.label)
        if self.garp.last_error:
            out["garp_last_error"] = self.garp.last_error
        if self.leases is not None:
            out["leased"] = str(self.model.address) in self.leases.guarded
        return out

    async def close(self) -> None:
        tasks = list(self._tasks)
        self._cancel_tasks()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
