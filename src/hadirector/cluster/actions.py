"""What the cluster cores return: actions for the driver to carry out and events for it to log.

The cores never touch the network, the resources or the log: every effect is one of these plain,
frozen dataclasses, returned in a list from each input method. Grouped by who produces them:

* membership.py   Send, NodeChanged, LinkUp, LinkDown, LateHeartbeat, PeerRestarted,
                  TimingMismatch, Stalled, Settled
* connectivity.py Probe, PingChanged, ScoreChanged
* arbiter.py      AcquireGroup, ReleaseGroup, StopStale, Reannounce, SplitBrain, NotHeardBy,
                  RequestResult, AnnounceNow, StartCancelled, Lease, HeldElsewhere, AddressConflict
* guard.py        ProbeAddress
* fencing.py      Fence, FenceResult
* ownership.py    OwnerChanged
* quorum.py       QuorumChanged (returned by node.py)
* node.py         Transmit, PacketDropped, LeaveComplete, NothingListens, MaintenanceChanged
                  (maintenance.py's map, set here or merged from a peer), and everything above

Actions (the driver must do something): Send/Transmit, Probe, ProbeAddress, AcquireGroup,
ReleaseGroup, StopStale, Reannounce, Lease, Fence. Everything else is an event to log or show in
`hadirector status`.
"""

from __future__ import annotations

from dataclasses import dataclass

# --------------------------------------------------------------------------- membership


@dataclass(frozen=True)
class Send:
    """Send our heartbeat on `link` now (membership's keepalive timer)."""

    link: str


@dataclass(frozen=True)
class NodeChanged:
    """A peer went from state `old` to `new` (init/up/active/dead, see membership.py)."""

    node: str
    old: str
    new: str
    reason: str


@dataclass(frozen=True)
class LinkUp:
    node: str
    link: str


@dataclass(frozen=True)
class LinkDown:
    node: str
    link: str
    reason: str  # "silent N ms", "never heard within initdead", "node left"


@dataclass(frozen=True)
class LateHeartbeat:
    """ha.cf warntime: `node` has been silent on every link for `silent_ms` (once per episode)."""

    node: str
    silent_ms: int


@dataclass(frozen=True)
class PeerRestarted:
    """`node` came back with a new boot generation: it lost all its state and resources."""

    node: str
    old_generation: int
    new_generation: int


@dataclass(frozen=True)
class TimingMismatch:
    """`node` runs with other keepalive/deadtime than we do (reported once per peer generation)."""

    node: str
    keepalive_ms: int
    deadtime_ms: int


@dataclass(frozen=True)
class Stalled:
    """on_timer was not called for `gap_ms` (more than two keepalives): this node's loop did not
    run. Live peers get two keepalives of grace before they can be declared dead."""

    gap_ms: int


@dataclass(frozen=True)
class Settled:
    """Start-up is over: every peer was heard, or initdead passed. Groups may be acquired now."""

    reason: str


# --------------------------------------------------------------------------- connectivity


@dataclass(frozen=True)
class ProbeAddress:
    """Ask the wire whether anybody answers for `address`: one RFC 5227 ARP probe (IPv6: a
    duplicate address detection neighbour solicitation) on the address's interface. Report what
    comes back with NodeCore.address_seen."""

    address: str


@dataclass(frozen=True)
class Probe:
    """Send one ICMP echo request (or any liveness probe) to `address` now."""

    address: str


@dataclass(frozen=True)
class PingChanged:
    """A ping node (`name` = its address) or ping group (`name` = the group) went up or down."""

    name: str
    up: bool


@dataclass(frozen=True)
class ScoreChanged:
    old: int
    new: int


# --------------------------------------------------------------------------- arbiter


@dataclass(frozen=True)
class AcquireGroup:
    """Start the group's resources in order. Report `group_started` or `group_failed`."""

    group: str


@dataclass(frozen=True)
class ReleaseGroup:
    """Stop the group's resources in reverse order, fully. Report `group_stopped` (ReleaseDone)
    when nothing of it is left, even if a stop step failed. May come while a start is running:
    then stop once the start has finished or been abandoned.

    `drain`: a planned, orderly hand-over (standby, a peer's takeover request, failback to the
    preferred node, shutdown) where no other node answers for the addresses yet: the driver may
    first drain each VIP (refuse new connections, let those in flight finish, at most the VIP's
    `drain` ms; resources/vip.py) before it stops the resources. The arbiter keeps renewing the
    group's lease meanwhile. False when another node may already answer (split brain, an address
    conflict, lost quorum) or the group failed: stop at once."""

    group: str
    reason: str
    drain: bool = False


@dataclass(frozen=True)
class StopStale:
    """At start-up: stop whatever of the group may be left from an earlier run (a VIP after a
    crash). The group is not ours; report `group_stopped` when done."""

    group: str


@dataclass(frozen=True)
class Reannounce:
    """We kept `group` after a split brain: announce its addresses again (gratuitous ARP)."""

    group: str


@dataclass(frozen=True)
class SplitBrain:
    """`group` is held by several nodes (a healed partition); `keeper` keeps it, others release."""

    group: str
    holders: tuple[str, ...]
    keeper: str


@dataclass(frozen=True)
class NotHeardBy:
    """We have heard `node` for `for_ms` but it does not hear us: a one-way link (check the
    firewalls and the ucast addresses on both sides). Reported once per episode."""

    node: str
    for_ms: int


@dataclass(frozen=True)
class Lease:
    """Let the kernel answer for these addresses until `until` (ms, the clock the core is fed):
    renew the VIP lease (resources/lease.py). Renewed every few hundred ms while this node is fit
    to hold the group; a lease that is not renewed runs out by itself in the kernel."""

    group: str
    addresses: tuple[str, ...]
    until: int


@dataclass(frozen=True)
class HeldElsewhere:
    """We would take `group` (its holder went silent on every heartbeat link) but another MAC
    still answers for `address` on `where`: the heartbeat links are down, not the holder; we do
    not take over. `nodes`: the silent peers that may be the one answering."""

    group: str
    address: str
    mac: str
    where: str
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class AddressConflict:
    """While we hold `group`, another MAC claimed `address` on `where` (RFC 5227 2.4). We defended
    it once (Reannounce); `keeper` keeps the group by the keeper rule (if not us, we release)."""

    group: str
    address: str
    mac: str
    where: str
    keeper: str


@dataclass(frozen=True)
class RequestResult:
    """The outcome of an operator standby/takeover for one group (or the whole request)."""

    request: str  # "standby local", "takeover all", ...
    group: str  # "" when about the request as a whole
    ok: bool
    detail: str


@dataclass(frozen=True)
class StartCancelled:
    """`group_failed` came while the group was being released here (failback, split brain,
    standby, shutdown): the release cancelled the start, or a resource failed as it was stopped.
    Not a failure of this node, which stays a candidate for the group (no failure mark)."""

    group: str
    detail: str


@dataclass(frozen=True)
class AnnounceNow:
    """The arbiter's announcement changed: send an update to the peers without waiting."""


# --------------------------------------------------------------------------- ownership


@dataclass(frozen=True)
class OwnerChanged:
    """The nodes running `group` changed (ownership.py): `old` -> `new` (None: nobody; several
    holders joined by "+"), and why."""

    group: str
    old: str | None
    new: str | None
    reason: str


# --------------------------------------------------------------------------- quorum


@dataclass(frozen=True)
class QuorumChanged:
    """This node's partition gained or lost quorum, or its votes or the witness changed
    (quorum.py). `mode` is what the arbiter now does: ok, freeze or stop (no_quorum_policy)."""

    quorate: bool
    votes: int
    expected: int
    needed: int
    witness: str
    mode: str
    members: tuple[str, ...]


# --------------------------------------------------------------------------- maintenance


@dataclass(frozen=True)
class MaintenanceChanged:
    """The maintenance map changed (maintenance.py): by an operator here, or merged from a peer.
    The driver persists the map and hands its active marks to the balancer."""

    marks: tuple  # messages.Mark: the marks that changed
    local: bool = False  # set on this node (else learnt from a peer)


# --------------------------------------------------------------------------- node core


@dataclass(frozen=True)
class Transmit:
    """Send these bytes on `link` (to every peer address of the link)."""

    link: str
    data: bytes


@dataclass(frozen=True)
class PacketDropped:
    """A datagram failed a check (`reason`, see messages.REASONS). Log rate-limited. `source` is
    the sender's address as the driver saw it ("" when unknown)."""

    link: str
    reason: str
    detail: str
    source: str = ""


@dataclass(frozen=True)
class NothingListens:
    """Our datagrams to `address`:`port` on `link` draw ICMP port unreachable while no peer is
    heard on that link: nothing listens there (udpport or the ucast address differs?). Once per
    episode; `count` errors so far."""

    link: str
    address: str
    port: int
    count: int


@dataclass(frozen=True)
class LeaveComplete:
    """Shutdown finished: every group is stopped and the peers were told. The driver may exit."""


# --------------------------------------------------------------------------- fencing.py


@dataclass(frozen=True)
class Fence:
    """Power `node` off with the configured fence devices, then report with
    NodeCore.on_fence_result (an action). `attempt` counts from 1; `delayed_ms` is how long the
    core waited before asking (the fencing delay), for the log."""

    node: str
    attempt: int
    delayed_ms: int = 0


@dataclass(frozen=True)
class FenceResult:
    """A fence of `node` ended: ok, or failed (`detail`); after a failure the takeover waits and
    the fence is tried again in `retry_ms`."""

    node: str
    ok: bool
    detail: str
    device: str
    failures: int
    retry_ms: int | None
