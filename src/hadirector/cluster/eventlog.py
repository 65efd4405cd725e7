"""The log line of each action and event the cluster cores return (actions.py), beside them.

Cores return actions; drivers log them (DESIGN convention 8). `describe(item, node)` is the one
place that says what the daemon logs for an item and at which level; the daemon only writes the
line. Every line starts with the thing it is about and its name, then the event:

    node beta: active -> dead (silent on every link for 500 ms)
    group web: releasing from alpha (failback: alpha is preferred)
    link ucast:eth1 to beta: dead (silent 500 ms)

`node` is this node's name, for the lines about this node. Pure: no logging, no clock.

Each line also names its event (`event`: the item's class in kebab case, "owner-changed") and
carries the journal fields of the instance it is about (`fields`: GROUP, PEER for another node,
LINK), which the daemon passes to the log (daemon/logsetup.py: journal fields, with NODE = this
node). Levels: NOTICE (loglevel.py) for a group taking a new owner, WARNING
for a group losing its owner, a node dying, a link failing; INFO for the steps in between.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Callable

from ..loglevel import NOTICE
from . import actions as A

INFO, WARNING, DEBUG = logging.INFO, logging.WARNING, logging.DEBUG


@dataclass(frozen=True)
class LogLine:
    level: int
    text: str
    limit_key: str | None = None  # log rate-limited under this key (a flood of bad packets)
    event: str = ""  # "owner-changed", "node-changed", ...
    fields: dict = field(default_factory=dict, compare=False, hash=False)  # journal fields


def event_name(item) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", type(item).__name__).lower()


_FIELD_OF = {"group": "GROUP", "node": "PEER", "link": "LINK"}


def fields_of(item, me: str) -> dict:
    """The journal fields of an item: its group, the node it is about (unless this one), its link."""
    out = {}
    for attr, key in _FIELD_OF.items():
        value = getattr(item, attr, None)
        if isinstance(value, str) and value and not (attr == "node" and value == me):
            out[key] = value
    return out


def mark_text(m) -> str:
    """One maintenance mark in words (messages.Mark)."""
    what = "maintenance ended" if m.state == "enabled" else f"maintenance {m.state}"
    by = f"by {m.by}" if m.by else "by ?"
    return f"real {m.real} of {m.virtual}: {what} ({by}, set on {m.origin})"


def _maintenance(a: A.MaintenanceChanged, me: str) -> LogLine:
    first = a.marks[0] if a.marks else None
    fields = {} if first is None else {"VIRTUAL": first.virtual, "REAL": first.real}
    return LogLine(NOTICE, "; ".join(mark_text(m) for m in a.marks) or "maintenance: no change",
                   fields=fields)


def _owner(a: A.OwnerChanged, me: str) -> LogLine:
    return LogLine(WARNING if a.new is None else NOTICE,
                   f"group {a.group}: owner {a.old or 'none'} -> {a.new or 'none'} ({a.reason})")


def _node_changed(a: A.NodeChanged, me: str) -> LogLine:
    return LogLine(WARNING if a.new == "dead" else INFO, f"node {a.node}: {a.old} -> {a.new} ({a.reason})")


def _held_elsewhere(a: A.HeldElsewhere, me: str) -> LogLine:
    who = f"peer {a.nodes[0]} is" if len(a.nodes) == 1 else f"peers {', '.join(a.nodes)} are"
    return LogLine(WARNING, f"group {a.group}: {who} silent on every heartbeat link but answers for "
                            f"{a.address} on {a.where}: heartbeat links down, not taking over "
                            f"({a.mac} answers)")


def _fence(a: A.Fence, me: str) -> LogLine:
    return LogLine(WARNING, f"node {a.node}: fencing it (attempt {a.attempt}) before taking its groups over: "
                            f"it is silent and may still be alive"
                            + (f" (after the fencing delay of {a.delayed_ms} ms)" if a.delayed_ms else ""))


def _fence_result(a: A.FenceResult, me: str) -> LogLine:
    if a.ok:
        return LogLine(NOTICE, f"node {a.node}: fenced by {a.device or 'a fence device'}: taking over may go on")
    return LogLine(logging.ERROR, f"node {a.node}: FENCING FAILED ({a.failures} in a row): {a.detail}; its groups "
                                  f"are not taken over; next attempt in {(a.retry_ms or 0) / 1000:.0f} s")


def _request(a: A.RequestResult, me: str) -> LogLine:
    return LogLine(INFO, f"{a.request}{f' group {a.group}' if a.group else ''}: {a.detail}")


def _quorum(a: A.QuorumChanged, me: str) -> LogLine:
    state = "quorate" if a.quorate else "no quorum"
    witness = "" if a.witness == "none" else f", witness: {a.witness}"
    act = {"ok": "" if a.quorate else "; no_quorum_policy ignore: acting as if quorate",
           "freeze": "; freeze: keeping what runs here, starting nothing",
           "stop": "; stopping every group here"}[a.mode]
    return LogLine(NOTICE if a.quorate else WARNING,
                   f"node {me}: {state} ({a.votes} of {a.expected} votes, {a.needed} needed, members "
                   f"{', '.join(a.members)}{witness}){act}")


# type -> LogLine, or None for the actions whose effect the driver reports itself
_TEXT: dict[type, Callable[..., LogLine | None]] = {
    A.Transmit: lambda a, me: None,
    A.Send: lambda a, me: None,
    A.Probe: lambda a, me: None,
    A.StopStale: lambda a, me: None,
    A.AcquireGroup: lambda a, me: LogLine(INFO, f"group {a.group}: acquiring on {me}"),
    A.ReleaseGroup: lambda a, me: LogLine(INFO, f"group {a.group}: releasing from {me} ({a.reason})"
                                                f"{'; draining its VIPs first' if a.drain else ''}"),
    A.Reannounce: lambda a, me: LogLine(
        WARNING, f"group {a.group}: kept after split brain; announcing its addresses again"),
    A.LeaveComplete: lambda a, me: LogLine(INFO, f"node {me}: every group released, peers told"),
    A.PacketDropped: lambda a, me: LogLine(
        WARNING, f"link {a.link}: dropped packet{f' from {a.source}' if a.source else ''} ({a.reason}): "
                 f"{a.detail}", limit_key=f"dropped:{a.link}:{a.reason}"),
    A.Lease: lambda a, me: None,
    A.ProbeAddress: lambda a, me: None,
    A.HeldElsewhere: _held_elsewhere,
    A.Fence: _fence,
    A.FenceResult: _fence_result,
    A.AddressConflict: lambda a, me: LogLine(
        WARNING, f"group {a.group}: {a.mac} also answers for {a.address} on {a.where}: address "
                 f"conflict (RFC 5227); {a.keeper} keeps the group"),
    A.NothingListens: lambda a, me: LogLine(
        WARNING, f"link {a.link}: nothing listens on {a.address}:{a.port} (udpport or ucast differs?): "
                 f"our heartbeats there draw ICMP port unreachable"),
    A.NodeChanged: _node_changed,
    A.LinkDown: lambda a, me: LogLine(WARNING, f"link {a.link} to {a.node}: dead ({a.reason})"),
    A.LinkUp: lambda a, me: LogLine(INFO, f"link {a.link} to {a.node}: up"),
    A.LateHeartbeat: lambda a, me: LogLine(
        WARNING, f"node {a.node}: late heartbeat, silent for {a.silent_ms} ms (warntime)"),
    A.PeerRestarted: lambda a, me: LogLine(
        WARNING, f"node {a.node}: restarted (generation {a.old_generation} -> {a.new_generation})"),
    A.TimingMismatch: lambda a, me: LogLine(
        WARNING, f"node {a.node} runs with keepalive {a.keepalive_ms} ms / deadtime {a.deadtime_ms} ms, "
                 f"not ours"),
    A.SplitBrain: lambda a, me: LogLine(
        WARNING, f"group {a.group}: held by {', '.join(a.holders)} after a partition; {a.keeper} keeps it"),
    A.StartCancelled: lambda a, me: LogLine(
        INFO, f"group {a.group}: {a.detail or 'failed'} while being released from {me}: the release's "
              f"doing, not a failure of this node"),
    A.RequestResult: _request,
    A.Stalled: lambda a, me: LogLine(
        WARNING, f"node {me}: this node's loop did not run for {a.gap_ms} ms (overloaded or "
                 f"suspended); peers get a grace period before being declared dead"),
    A.NotHeardBy: lambda a, me: LogLine(
        WARNING, f"node {a.node} hears nothing from us for {a.for_ms} ms although we hear it: a one-way "
                 f"link (check firewalls and the ucast addresses on both nodes)"),
    A.Settled: lambda a, me: LogLine(INFO, f"node {me}: start-up settled ({a.reason})"),
    A.PingChanged: lambda a, me: LogLine(WARNING, f"ping node {a.name}: {'up' if a.up else 'down'}"),
    A.ScoreChanged: lambda a, me: LogLine(INFO, f"connectivity score {a.old} -> {a.new}"),
    A.OwnerChanged: _owner,
    A.MaintenanceChanged: _maintenance,
    A.QuorumChanged: _quorum,
}


def describe(item, node: str) -> LogLine | None:
    """The line to log for one item of a core's output, or None when there is nothing to log.
    An item this table does not know is logged at debug level, as its repr."""
    text = _TEXT.get(type(item))
    line = LogLine(DEBUG, f"node {node}: {item!r}") if text is None else text(item, node)
    if line is None:
        return None
    return LogLine(line.level, line.text, line.limit_key, event_name(item),
                   {"EVENT": event_name(item), **fields_of(item, node), **line.fields})
