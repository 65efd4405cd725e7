"""The VIP guard's driver: the kernel leases and the address conflict probes and watches, for the
cluster core's `Lease` and `ProbeAddress` actions (cluster/guard.py decides, this carries out).

    guard = VipGuard(config, netns, on_seen=lambda addr, kind, mac, own, ifname: ...)
    await guard.start()            # lease table (resources/lease.py) and one AddressWatch per interface
    opts.services["leases"] = guard.leases    # the vip agents guard their addresses with it
    guard.lease(action)            # Lease(group, addresses, until)   -> LeaseTable.renew
    guard.probe(action.address)    # ProbeAddress(address)            -> one RFC 5227 / DAD probe
    await guard.close()

Without nftables (or without root) there are no leases: start() says so once, loudly, and the
rest works (probing still keeps a node from taking an address someone answers for). A VIP whose
interface cannot be found yet is located again at its next probe.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from ..config.model import VipResource
from ..net.acd import AddressWatch
from ..net.garp import GarpError
from ..resources.base import AgentContext
from ..resources.vip import locate

log = logging.getLogger(__name__)

OnSeen = Callable[[str, str, str, str, str], None]


class VipGuard:
    def __init__(self, config, netns: str | None, on_seen: OnSeen, *, use_leases: bool = True):
        self.netns = netns
        self.on_seen = on_seen
        self.use_leases = use_leases
        self.vips: dict[str, VipResource] = {str(r.address): r for g in config.groups
                                             for r in g.resources if getattr(r, "kind", "") == "vip"}
        self.leases = None
        self.watches: dict[str, AddressWatch] = {}  # interface -> watch
        self.where: dict[str, str] = {}  # address -> interface
        self.lease_error: str | None = None
        self._locating: set[str] = set()
        self._unplaced: set[str] = set()  # told once that its interface is unknown
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        if self.vips and self.use_leases:
            from ..resources.lease import LeaseTable
            try:
                self.leases = await asyncio.to_thread(LeaseTable, self.netns)
            except Exception as exc:  # noqa: BLE001 - LeaseError, no libnftables, not root
                self.lease_error = str(exc)
                log.warning("VIP leases unavailable (%s): a frozen or killed daemon's kernel will "
                            "keep answering for its VIPs until a peer's probe finds it", exc)
        for address in self.vips:
            await self._locate(address)

    async def _locate(self, address: str) -> str | None:
        ctx = AgentContext(netns=self.netns)
        try:
            p = await locate(self.vips[address], ctx)
        except Exception as exc:  # noqa: BLE001 - AgentError: no interface (yet)
            if address not in self._unplaced:
                self._unplaced.add(address)
                log.warning("VIP %s: cannot tell its interface (%s); probing and watching it later",
                            address, exc)
            return None
        self._unplaced.discard(address)
        self.where[address] = p.ifname
        watch = self.watches.get(p.ifname)
        if watch is None:
            watch = AddressWatch(p.ifname, [address], self.on_seen, netns=self.netns)
            try:
                watch.open()
            except GarpError as exc:
                if address not in self._unplaced:
                    self._unplaced.add(address)
                    log.warning("VIP %s: cannot watch %s for address conflicts: %s", address, p.ifname, exc)
                return None
            self.watches[p.ifname] = watch
        else:
            watch.addresses.add(address)
        return p.ifname

    def lease(self, group: str, addresses, until: int) -> None:
        if self.leases is not None:
            self.leases.renew(addresses, until)

    def probe(self, address: str) -> None:
        ifname = self.where.get(address)
        watch = self.watches.get(ifname) if ifname else None
        if watch is not None:
            watch.probe(address)
        elif address in self.vips and address not in self._locating:
            self._locating.add(address)
            t = asyncio.get_running_loop().create_task(self._locate_and_probe(address))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    async def _locate_and_probe(self, address: str) -> None:
        try:
            if await self._locate(address):
                self.probe(address)
        finally:
            self._locating.discard(address)

    def status(self) -> dict:
        return {"leases": None if self.leases is None else self.leases.status(),
                "lease_error": self.lease_error,
                "watches": [w.status() for w in self.watches.values()]}

    async def close(self) -> list[str]:
        """Stop watching; close the lease table (deleted unless a VIP is still guarded: those are
        returned and stay silent)."""
        for t in list(self._tasks):
            t.cancel()
        for w in self.watches.values():
            w.close()
        self.watches.clear()
        if self.leases is not None:
            left = await self.leases.close()
            self.leases = None
            return left
        return []
