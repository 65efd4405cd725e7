"""VIP leases in the kernel: while this node holds a VIP, the kernel answers for it only while an
nftables set element with a timeout says it may. A daemon that freezes, hangs or dies renews
nothing, so its kernel falls silent by itself before a peer takes the address over (the timing is
derived in cluster/guard.py). Owned by the vip agent (resources/vip.py): it guards its address
before adding it and unguards it after removing it; the daemon renews on the cluster core's
`Lease` actions.

Our table, and only ours: `netdev hdlease` in the namespace (the balancer's tables are `ip|ip6
hadirector` and `netdev hadirector_<dev>`, dataplane/nft.py; neither touches the other's). For
each device that carries a guarded VIP, two base chains at priority -500 (before the balancer's
direct-routing ingress chains at -100, so its rules for the VIP are starved too):

    in_<dev>   ingress: drop ARP asking for a guarded, unleased address, and IPv4/IPv6 packets to it;
               drop (and count) TCP SYNs without ACK, new connections, to a draining address
    out_<dev>  egress:  drop ARP and IPv4/IPv6 packets (neighbour advertisements included: the
               kernel sends them from the target address) from a guarded, unleased address

Sets: vip4/vip6 (guarded addresses), lease4/lease6 (flags timeout: the leases), drain4/drain6
(addresses being drained before a planned release, resources/vip.py `drain`: the connections in
flight finish, new ones are refused silently; the client sends its SYN again about a second later
and reaches the new owner). Packet sockets
(our own ARP listener, tcpdump) see frames before the ingress hook, so a silent node can still
watch the wire. Renewing an element's timeout is one transaction (add, delete, add), in nft's own
syntax because libnftables' JSON gives element timeouts in whole seconds only.

All nftables work happens in one worker thread living in the namespace (the netlink socket
belongs to the namespace of the thread that opens it). `renew` does not wait; `guard`, `unguard`
and `close` do. Times are the cluster core's clock: int milliseconds of time.monotonic().
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from typing import Callable, Iterable

from ..dataplane.libnft import Nft, NftError
from ..errors import HadirectorError
from ..net.netns import NetnsWorker

log = logging.getLogger(__name__)

TABLE = "hdlease"
FAMILY = "netdev"
PRIORITY = -500


class LeaseError(HadirectorError):
    """nftables refused a lease change (or is missing); the message says which."""


def now_ms() -> int:
    return int(time.monotonic() * 1000)


def _tag(dev: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", dev)


def _fam(address: str) -> str:
    return "4" if ipaddress.ip_address(address).version == 4 else "6"


def table_commands() -> list[dict]:
    """The table and its sets (JSON; no chains yet). Pure."""
    t = {"family": FAMILY, "table": TABLE}
    out: list[dict] = [{"add": {"table": {"family": FAMILY, "name": TABLE}}}]
    for v in ("4", "6"):
        kind = "ipv4_addr" if v == "4" else "ipv6_addr"
        out.append({"add": {"set": {**t, "name": f"vip{v}", "type": kind}}})
        out.append({"add": {"set": {**t, "name": f"lease{v}", "type": kind, "flags": ["timeout"]}}})
        out.append({"add": {"set": {**t, "name": f"drain{v}", "type": kind}}})
    return out


def _drop_new_tcp(proto: str, v: str) -> list[dict]:
    """A SYN without ACK (a new connection; RFC 9293 3.5) to a draining address: dropped, not
    reset, so the client retries (and by then reaches the new owner) instead of failing."""
    flags = {"payload": {"protocol": "tcp", "field": "flags"}}
    return [{"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": "daddr"}},
                       "right": f"@drain{v}"}},
            {"match": {"op": "==", "left": {"&": [flags, ["syn", "ack"]]}, "right": "syn"}},
            {"counter": None},
            {"drop": None}]


def _drop_unleased(proto: str, field: str, v: str) -> list[dict]:
    left = {"payload": {"protocol": proto, "field": field}}
    return [{"match": {"op": "==", "left": left, "right": f"@vip{v}"}},
            {"match": {"op": "!=", "left": left, "right": f"@lease{v}"}},
            {"drop": None}]


def device_commands(dev: str) -> list[dict]:
    """The two base chains of one device and their rules (JSON). Pure."""
    t = {"family": FAMILY, "table": TABLE}
    out: list[dict] = []
    for chain, hook, way in (("in", "ingress", "daddr"), ("out", "egress", "saddr")):
        name = f"{chain}_{_tag(dev)}"
        out.append({"add": {"chain": {**t, "name": name, "type": "filter", "hook": hook,
                                      "dev": dev, "prio": PRIORITY, "policy": "accept"}}})
        out.append({"flush": {"chain": {**t, "name": name}}})  # a chain a crashed run left
        for proto, field, v in (("arp", f"{way} ip", "4"), ("ip", way, "4"), ("ip6", way, "6")):
            out.append({"add": {"rule": {**t, "chain": name, "expr": _drop_unleased(proto, field, v)}}})
        if hook == "ingress":
            for proto, v in (("ip", "4"), ("ip6", "6")):
                out.append({"add": {"rule": {**t, "chain": name, "expr": _drop_new_tcp(proto, v)}}})
    return out


def drain_commands(address: str, on: bool) -> list[dict]:
    """Put `address` in its drain set (on) or take it out (JSON). Pure."""
    return [{"add" if on else "delete": {"element": {"family": FAMILY, "table": TABLE,
                                                      "name": f"drain{_fam(address)}",
                                                      "elem": [address]}}}]


def drained_syns(ruleset: list[dict]) -> int:
    """New connections refused by the drain rules so far (their counters), from a listing. Pure."""
    total = 0
    for it in ruleset:
        rule = it.get("rule")
        if not rule:
            continue
        exprs = rule.get("expr", [])
        if any(isinstance(e.get("match", {}).get("right"), str)
               and e["match"]["right"].startswith("@drain") for e in exprs):
            total += sum(e["counter"].get("packets", 0) for e in exprs
                         if isinstance(e.get("counter"), dict))
    return total


def _local_addresses() -> set[str] | None:
    """The addresses of this (the calling thread's) namespace; None when they cannot be read."""
    import json
    import subprocess
    try:
        cp = subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, timeout=10)
        links = json.loads(cp.stdout or "[]")
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return {str(ipaddress.ip_address(a["local"])) for link in links for a in link.get("addr_info", [])
            if a.get("local")}


def renew_text(address: str, ms: int) -> str:
    """The transaction that gives `address` a lease of `ms` from now, whether or not it had one."""
    s = f"{FAMILY} {TABLE} lease{_fam(address)}"
    return (f"add element {s} {{ {address} timeout 1ms }}\n"
            f"delete element {s} {{ {address} }}\n"
            f"add element {s} {{ {address} timeout {max(1, int(ms))}ms }}\n")


class LeaseTable:
    """The `netdev hdlease` table of one network namespace (None: ours)."""

    def __init__(self, netns: str | None = None, clock: Callable[[], int] = now_ms):
        self.netns = netns
        self.clock = clock
        self._worker = NetnsWorker(netns)
        self._nft: Nft | None = None
        self.guarded: dict[str, str] = {}  # address -> device
        self.draining: set[str] = set()  # addresses in drain4/drain6
        self._devices: set[str] = set()
        self._until: dict[str, int] = {}  # address -> lease end (core clock), also unguarded ones
        self.renewals = 0
        self.errors = 0
        self.last_error: str | None = None
        self._closed = False
        try:
            self._worker.call(self._open)
        except BaseException:
            self._worker.close()
            raise

    # ------------------------------------------------------------------ worker side
    def _open(self) -> None:
        try:
            self._nft = Nft()
            self._nft.tables()  # needs CAP_NET_ADMIN: fail here, not at the first VIP's start
        except NftError as exc:
            raise LeaseError(f"VIP leases: {exc}") from None
        # a table left by a crashed run stays: its elements keep stale addresses silent until
        # the start-up clean-up has removed them (vip stop unguards); we adopt what it guards.
        # Guards of addresses no interface has any more protect nothing: dropped now.
        try:
            items = self._nft.list({"table": {"family": FAMILY, "name": TABLE}}, terse=False)
        except NftError:
            return
        for it in items:
            st = it.get("set")
            if st and st.get("name") in ("vip4", "vip6"):
                for e in st.get("elem", []) or []:
                    self.guarded.setdefault(str(e), "")
            if st and st.get("name") in ("drain4", "drain6"):
                self.draining.update(str(e) for e in st.get("elem", []) or [])
            ch = it.get("chain")
            if ch and ch.get("dev"):
                self._devices.add(ch["dev"])
        present = _local_addresses()
        for a in [a for a in self.guarded if present is not None and a not in present]:
            self._unguard(a)

    def _guard(self, address: str, dev: str) -> None:
        assert self._nft is not None
        cmds: list[dict] = []
        if dev not in self._devices:
            cmds += table_commands() + device_commands(dev)
        cmds.append({"add": {"element": {"family": FAMILY, "table": TABLE, "name": f"vip{_fam(address)}",
                                         "elem": [address]}}})
        try:
            self._nft.run(cmds)
            self._devices.add(dev)
            self.guarded[address] = dev
            if address in self.draining:  # a drain a stop that failed (or a crashed run) left
                self._drain(address, False)
            until = self._until.get(address)
            if until is not None:
                self._renew_one(address, until)
        except NftError as exc:
            raise LeaseError(f"VIP lease for {address} on {dev}: nftables refused: {exc.message}") from None

    def _renew_one(self, address: str, until: int) -> None:
        assert self._nft is not None
        ms = until - self.clock()
        if ms <= 0:
            return  # late (a slow worker, a stall): let it run out rather than extend it
        self._nft.run_text(renew_text(address, ms))
        self.renewals += 1

    def _renew(self, addresses: tuple[str, ...], until: int) -> None:
        for a in addresses:
            self._until[a] = until
            if a in self.guarded:
                try:
                    self._renew_one(a, until)
                except NftError as exc:
                    self.errors += 1
                    self.last_error = exc.message
                    log.error("VIP lease for %s not renewed: %s", a, exc.message)

    def _unguard(self, address: str) -> None:
        assert self._nft is not None
        # the lease's end is kept: a monitor's restart of the VIP (stop, start) guards it again
        # at once with what the core granted, instead of leaving it silent until the next renewal
        had = address in self.guarded
        self.guarded.pop(address, None)
        if not had:
            return
        v = _fam(address)
        names = (f"lease{v}", f"vip{v}")
        if address in self.draining:
            self.draining.discard(address)
            names = (f"drain{v}",) + names
        for name in names:
            try:
                self._nft.run([{"delete": {"element": {"family": FAMILY, "table": TABLE, "name": name,
                                                       "elem": [address]}}}])
            except NftError:
                pass  # not there (a lease that ran out has no element)
        if not self.guarded:
            self._drop_table()

    def _drop_table(self) -> None:
        assert self._nft is not None
        try:
            self._nft.run([{"delete": {"table": {"family": FAMILY, "name": TABLE}}}])
        except NftError:
            pass
        self._devices.clear()

    def _drain(self, address: str, on: bool) -> None:
        assert self._nft is not None
        if on and address not in self.guarded:
            raise LeaseError(f"VIP {address} is not guarded: nothing to drain")
        try:
            self._nft.run(drain_commands(address, on))
        except NftError as exc:
            if on:
                raise LeaseError(f"draining VIP {address}: nftables refused: {exc.message}") from None
        if on:
            self.draining.add(address)
        else:
            self.draining.discard(address)

    def _close(self) -> list[str]:
        left = sorted(a for a in self.guarded)
        if not left:
            self._drop_table()
        if self._nft is not None:
            self._nft.close()
        return left

    def _listing(self) -> list[dict]:
        assert self._nft is not None
        try:
            return self._nft.list({"table": {"family": FAMILY, "name": TABLE}}, terse=False)
        except NftError:
            return []

    # ------------------------------------------------------------------ API
    async def guard(self, address: str, dev: str) -> None:
        """From now on the kernel answers for `address` (on any device) only under a lease;
        `dev` (the VIP's device) gets the chains. Applies the latest renewal, if one came."""
        await self._worker.acall(self._guard, address, dev)

    async def drain(self, address: str, on: bool = True) -> None:
        """Refuse new TCP connections to the guarded `address` (SYNs are dropped), or stop
        refusing them. unguard clears it too."""
        await self._worker.acall(self._drain, address, on)

    def drained(self) -> int:
        """SYNs the drain rules dropped so far (all devices)."""
        return drained_syns(self.ruleset())

    async def unguard(self, address: str) -> None:
        """After the address was removed: forget it; the table goes with the last one."""
        await self._worker.acall(self._unguard, address)

    def renew(self, addresses: Iterable[str], until: int) -> None:
        """Leases for `addresses` until `until` (core clock ms). Does not wait."""
        if self._closed:
            return
        fut = self._worker.submit(self._renew, tuple(addresses), until)
        fut.add_done_callback(self._done)

    def _done(self, fut) -> None:
        exc = fut.exception()
        if exc is not None:
            self.errors += 1
            self.last_error = str(exc)
            log.error("VIP lease renewal failed: %s", exc)

    def until(self, address: str) -> int | None:
        return self._until.get(address)

    def ruleset(self) -> list[dict]:
        """Our table as the kernel holds it (JSON objects), for tests and status."""
        return self._worker.call(self._listing)

    def status(self) -> dict:
        return {"table": f"{FAMILY} {TABLE}", "guarded": dict(self.guarded), "renewals": self.renewals,
                "errors": self.errors, "last_error": self.last_error}

    async def close(self) -> list[str]:
        """Stop renewing. The table is deleted when nothing is guarded any more; addresses still
        guarded (a VIP whose stop failed) keep their guard, so they stay silent. Returns them."""
        if self._closed:
            return []
        self._closed = True
        try:
            return await self._worker.acall(self._close)
        finally:
            self._worker.close()


async def purge(netns: str | None = None) -> bool:
    """Delete a `netdev hdlease` table without an instance (tests, `hadirector lab`). True when
    one was there."""
    def work() -> bool:
        nft = Nft()
        try:
            nft.run([{"delete": {"table": {"family": FAMILY, "name": TABLE}}}])
            return True
        except NftError:
            return False
        finally:
            nft.close()
    w = NetnsWorker(netns)
    try:
        return await w.acall(work)
    finally:
        w.close()
