"""What the cluster cores return: actions for the driver to carry out and events for it to log.

The cores never touch the network, the resources or the log: every effect is one of these plain,
frozen dataclasses, returned in a list from each input method. Grouped by who produces them:

* membership.py   Send, NodeChanged, LinkUp, LinkDown, LateHeartbeat, PeerRestarted,
                  TimingMismatch, Stalled, Settled
* connectivity.py Probe, PingChanged, ScoreChanged
* arbiter.py      AcquireGroup, ReleaseGroup, StopStale, Reannounce, SplitBrain, NotHeardBy,
                  RequestResult, AnnounceNow, StartCancelled
* node.py         Transmit, PacketDropped, LeaveComplete (and everything above, passed through)

Actions (the driver must do something): Send/Transmit, Probe, AcquireGroup, ReleaseGroup, StopStale,
Reannounce. Everything else is an event to log or show in `hadirector status`.
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
    then stop once the start has finished or been abandoned."""

    group: str
    reason: str


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


# --------------------------------------------------------------------------- node core


@dataclass(frozen=True)
class Transmit:
    """Send these bytes on `link` (to every peer address of the link)."""

    link: str
    data: bytes


@dataclass(frozen=True)
class PacketDropped:
    """A datagram failed a check (`reason`, see messages.REASONS). Log rate-limited."""

    link: str
    reason: str
    detail: str


@dataclass(frozen=True)
class LeaveComplete:
    """Shutdown finished: every group is stopped and the peers were told. The driver may exit."""
