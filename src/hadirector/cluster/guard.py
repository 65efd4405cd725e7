"""Address guard: the bookkeeping behind "never two directors answering for a VIP". Pure.

One `AddressGuard` per resource group with addresses (its VIPs). The arbiter decides *when* to
probe, to defend and to renew (arbiter.py); this module keeps the mechanics: the probe schedule,
what answered, whether the wire is clear, and the lease.

Probing (RFC 5227 section 2.1, IPv4 Address Conflict Detection; for IPv6 the same with duplicate
address detection's neighbour solicitation, RFC 4862 5.4). Before a node takes a group that a
silent peer may still run, it asks the wire: `ProbeAddress` every `probe` ms for each address (an
ARP request with sender address 0.0.0.0; the driver sends it), and the driver reports what it
sees (`seen`). Any packet from another MAC that uses the address (a reply, an announcement, a
request with the address as sender) means somebody still answers for it (RFC 5227 2.1.1: "MUST
treat this address as being in use"); an RFC 5227 probe from another MAC for the same address is
a rival that may win (2.1.1, the simultaneous-probe rule). The wire is *clear* once `quiet`
(PROBE_NUM, 3) probes in a row went unanswered and one more probe interval passed after the last
(RFC 5227's ANNOUNCE_WAIT after the last probe). RFC 5227 section 2.2 allows shorter timeouts
than its 1-2 s on suitable networks; ours follow keepalive, and probing starts at warntime, so
the wire is known to be clear by deadtime. Red Hat's initscripts do the same check before they add
an address (ifup-eth: `arping -q -c 2 -w 3 -D`, "Error, some other host already uses address");
heartbeat's IPaddr/IPaddr2 and keepalived do not, which is how their split brains end up with two
hosts answering for one VIP.

The lease (the VIP's answers are allowed by an nftables set element with a timeout, resources/
lease.py): `lease` ms from each renewal, renewed every `renew` ms while the arbiter finds this
node fit to hold the group. Derivation (k = keepalive, d = deadtime):

    lease = max(d - 2k, d // 3)      renew = min(k, lease // 3)      probe = max(10, k // 4)

A peer waits d after our last heartbeat before it may take over, and then needs the wire clear
(about 4 x probe = k after our kernel's last answer). A daemon that stops running (SIGSTOP,
crash, a hung loop) renewed last at or before its last heartbeat, so its kernel falls silent at
most d - 2k after that heartbeat and the wire is clear by d - k: a margin of one keepalive before
the peer's deadtime. With d < 3k the lease is d/3 and a takeover may wait up to k beyond d.
"""

from __future__ import annotations

from dataclasses import dataclass

from .actions import ProbeAddress

PROBE_NUM = 3  # RFC 5227 PROBE_NUM: unanswered probes before an address counts as free
DEFEND_INTERVAL = 10_000  # RFC 5227 DEFEND_INTERVAL (10 s): at most one defence per interval

CLAIM, PROBE = "claim", "probe"  # what the driver saw: somebody uses the address / probes for it


@dataclass(frozen=True)
class GuardTiming:
    lease: int
    renew: int
    probe: int
    slow_probe: int  # once a takeover is known to be blocked: one probe per keepalive

    @classmethod
    def derive(cls, keepalive: int, deadtime: int) -> "GuardTiming":
        lease = max(deadtime - 2 * keepalive, deadtime // 3)
        return cls(lease=lease, renew=max(1, min(keepalive, lease // 3)),
                   probe=max(10, keepalive // 4), slow_probe=max(10, keepalive))


@dataclass(frozen=True)
class Seen:
    at: int
    address: str
    mac: str
    where: str  # the interface the driver saw it on (for messages)


class AddressGuard:
    """Probing, conflicts and the lease of one group's addresses (all times int ms)."""

    def __init__(self, addresses, timing: GuardTiming):
        self.addresses = tuple(addresses)
        self.timing = timing
        self.lease_until: int | None = None
        self.next_renew: int | None = None
        self.last_defence: int | None = None
        self._reset()

    def _reset(self) -> None:
        self.probing_since: int | None = None
        self.next_probe: int | None = None
        self.last_probe: int | None = None
        self.quiet = 0  # probes sent since the last answer
        self.quiet_at: int | None = None  # when the PROBE_NUM-th of them went out
        self.answer: Seen | None = None  # the last use of an address by another MAC
        self.reported = False  # HeldElsewhere told for this episode

    # ------------------------------------------------------------------ probing
    @property
    def probing(self) -> bool:
        return self.probing_since is not None

    def want(self, now: int) -> None:
        """Probe from now on (a no-op while an episode runs)."""
        if self.probing_since is None:
            self.probing_since = now
            self.next_probe = now

    def stop(self) -> None:
        """The episode is over (acquired, or no longer needed)."""
        self._reset()

    def tick(self, now: int) -> list:
        """The probes due now."""
        if self.next_probe is None or now < self.next_probe:
            return []
        self.quiet += 1
        if self.quiet == PROBE_NUM:
            self.quiet_at = now
        self.last_probe = now
        # slow once a takeover is known to be blocked, but the probe after the PROBE_NUM-th quiet
        # one comes on time: that is the moment the wire turns clear
        step = self.timing.slow_probe if self.reported and self.quiet != PROBE_NUM else self.timing.probe
        self.next_probe = now + step
        return [ProbeAddress(a) for a in self.addresses]

    def seen_use(self, seen: Seen) -> None:
        """Another MAC uses one of the addresses (while probing: it still answers)."""
        self.answer = seen
        self.quiet = 0
        self.quiet_at = None

    def seen_rival(self) -> None:
        """A rival's probe that wins the tie-break: start counting quiet probes again."""
        self.quiet = 0
        self.quiet_at = None

    def clear(self, now: int) -> bool:
        """PROBE_NUM probes in a row unanswered, and a probe interval after the last of them."""
        return self.quiet_at is not None and now >= self.quiet_at + self.timing.probe

    def blocked(self) -> bool:
        """Somebody answered during this episode and has not been quiet since."""
        return self.probing and self.answer is not None and self.quiet < PROBE_NUM

    # ------------------------------------------------------------------ lease
    def renew(self, now: int) -> int:
        """Renew now; returns the new lease end."""
        self.lease_until = now + self.timing.lease
        self.next_renew = now + self.timing.renew
        return self.lease_until

    def drop_lease(self) -> None:
        self.lease_until = self.next_renew = None

    def lease_valid(self, now: int, margin: int = 0) -> bool:
        return self.lease_until is not None and now < self.lease_until - margin

    # ------------------------------------------------------------------ defence
    def may_defend(self, now: int) -> bool:
        """RFC 5227 2.4 (b): one announcement per DEFEND_INTERVAL."""
        if self.last_defence is not None and now - self.last_defence < DEFEND_INTERVAL:
            return False
        self.last_defence = now
        return True

    def next_deadline(self) -> int | None:
        times = [t for t in (self.next_probe, self.next_renew) if t is not None]
        return min(times) if times else None
