"""ping: an ICMP echo request answered by an echo reply within checktimeout.

ldirectord `check_ping` (Net::Ping "icmp"): one echo per attempt; also used as the connect check of
UDP services. The ICMP exchange itself is net/icmp.py (shared with ha.cf ping nodes): an
unprivileged ICMP datagram socket when net.ipv4.ping_group_range allows it, else a raw socket
(root / CAP_NET_RAW). RFC 792 (echo, type 8/0), RFC 4443 4.1/4.2 (ICMPv6 echo, type 128/129).
The scheduler bounds the wait with checktimeout.
"""

from __future__ import annotations

from ...net.icmp import checksum, echo_request, exchange  # noqa: F401 (re-exported for tests)
from ..base import CheckTarget, ProbeContext, ProbeResult, register


@register("ping")
async def check_ping(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    why = await exchange(target.address, target.family_v6)
    if why is None:
        return ProbeResult(True, f"echo reply from {target.address}")
    return ProbeResult(False, f"ping: {why}")
