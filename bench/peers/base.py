"""What every system's driver in bench/peers provides, so that one harness measures them all.

A driver runs one system's two directors (dir-a, dir-b) on a `topology.PeersLab`, moving the VIP
198.18.0.100 (on eth0) with its heartbeat (or VRRP) on the heartbeat link eth1 only. Its methods
are called from the harness thread; each one returns when what it says is done, or raises
RuntimeError with the system's log tail.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    """One detection setting. heartbeat-like systems use keepalive/deadtime/warntime/initdead
    (ms); keepalived uses advert_ms (advert_int). `label` names it in tables; `defaults` True
    means "write nothing, let the system use its own defaults"."""

    label: str
    keepalive_ms: int | None = None
    deadtime_ms: int | None = None
    warntime_ms: int | None = None
    initdead_ms: int | None = None
    advert_ms: int | None = None
    defaults: bool = False

    @property
    def detection_ms(self) -> int | None:
        """The nominal time to declare the peer dead (deadtime; keepalived: 3 x advert + skew)."""
        if self.deadtime_ms is not None:
            return self.deadtime_ms
        if self.advert_ms is not None:
            return int(3 * self.advert_ms + self.advert_ms * (256 - 100) / 256)
        return None


class Pair:
    """One system's director pair. Subclasses set `system` ("hadirector", "heartbeat3",
    "keepalived") and implement every method."""

    system = "?"

    def __init__(self, lab, workdir: str, setting: Setting):
        self.lab, self.workdir, self.setting = lab, workdir, setting

    def start(self, node: str) -> None:
        """Start the system on `node` (its config written on first use)."""
        raise NotImplementedError

    def wait_one_holder(self, timeout: float) -> str:
        """Wait until exactly one director holds the VIP and the pair is settled (both members
        up and hearing each other); return the holder's name."""
        raise NotImplementedError

    def crash(self, node: str) -> None:
        """A power loss: every process of the system on `node` killed with -9, and eth0 and eth1
        down, at once (use lab.links(node, False) right after the kills)."""
        raise NotImplementedError

    def recover(self, node: str) -> None:
        """The crashed node comes back: VIP cleared (lab.clear_vip), links up, system started;
        returns once the peer hears it again (the next crash may follow)."""
        raise NotImplementedError

    def switchover(self, node: str) -> None:
        """Planned move: ask the holder `node` to hand the VIP to its peer (hb_standby, a
        keepalived priority change, `hadirector standby`); return at once (the harness times it)."""
        raise NotImplementedError

    def false_detections(self) -> int:
        """How many times either node declared its live peer dead (from its log) so far."""
        raise NotImplementedError

    def log(self, node: str) -> str:
        raise NotImplementedError

    def log_tails(self, n: int = 2500) -> str:
        """The end of both nodes' logs, for error messages."""
        return "\n".join(f"--- {node} ---\n{self.log(node)[-n:]}" for node in ("dir-a", "dir-b"))

    def stop(self) -> None:
        """End every process this driver started, by pid, and whatever they forked."""
        raise NotImplementedError
