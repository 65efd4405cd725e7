"""TCP connections in flight to a local address, read with sock_diag (NETLINK_SOCK_DIAG, inet_diag).

What a VIP drain waits for (resources/vip.py `drain`): the TCP sockets of this network namespace
whose local address is the VIP, in any state but LISTEN, TIME_WAIT and CLOSE (a listening socket
is no connection; TIME_WAIT and CLOSE have nothing left to deliver). Request sockets of a
handshake in progress (NEW_SYN_RECV) count as in flight.

One SOCK_DIAG_BY_FAMILY dump per address family (linux/inet_diag.h `inet_diag_req_v2`, the same
request `ss -t state ...` sends), filtered by the kernel on the TCP state and here on the local
address; an IPv4 address is also looked for as an IPv4-mapped IPv6 address (the connections of a
server listening on `::`). The request builder and the answer parser are pure; `TcpSockets` owns
the netlink socket (net/nlraw.py) of the namespace it was opened in (net/netns.py).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

from .netns import in_netns
from .nlraw import NLM_F_DUMP, NetlinkSocket

NETLINK_SOCK_DIAG = 4  # linux/netlink.h
SOCK_DIAG_BY_FAMILY = 20  # linux/sock_diag.h

# linux/tcp_states.h
TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
              6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
              12: "NEW_SYN_RECV"}
NOT_IN_FLIGHT = ("LISTEN", "TIME_WAIT", "CLOSE")
IN_FLIGHT_MASK = sum(1 << n for n, name in TCP_STATES.items() if name not in NOT_IN_FLIGHT)

# struct inet_diag_req_v2: family, protocol, ext, pad, states; struct inet_diag_sockid
REQ = struct.Struct("=BBBxI")
SOCKID = struct.Struct(">HH16s16sI8s")  # sport, dport, src, dst (network order), if, cookie
# struct inet_diag_msg: family, state, timer, retrans, sockid, expires, rqueue, wqueue, uid, inode
MSG = struct.Struct("=BBBB")
MSG_SIZE = MSG.size + SOCKID.size + 20


@dataclass(frozen=True)
class TcpSocket:
    family: int
    state: str
    local: str
    local_port: int
    remote: str
    remote_port: int


def request(family: int, states: int = IN_FLIGHT_MASK) -> bytes:
    """The body of one SOCK_DIAG_BY_FAMILY dump request for TCP sockets in `states`. Pure."""
    return REQ.pack(family, socket.IPPROTO_TCP, 0, states) + SOCKID.pack(0, 0, b"", b"", 0, b"")


def _address(family: int, raw: bytes) -> str:
    if family == socket.AF_INET:
        return str(ipaddress.IPv4Address(raw[:4]))
    a = ipaddress.IPv6Address(raw[:16])
    return str(a.ipv4_mapped) if a.ipv4_mapped is not None else str(a)


def parse(payload: bytes) -> TcpSocket | None:
    """One inet_diag_msg (None when too short). IPv4-mapped IPv6 addresses come out as IPv4. Pure."""
    if len(payload) < MSG_SIZE:
        return None
    family, state, _timer, _retrans = MSG.unpack_from(payload, 0)
    sport, dport, src, dst, _if, _cookie = SOCKID.unpack_from(payload, MSG.size)
    return TcpSocket(family, TCP_STATES.get(state, str(state)), _address(family, src), sport,
                     _address(family, dst), dport)


def in_flight(sockets, address: str) -> list[TcpSocket]:
    """Those of `sockets` whose local address is `address`, in a state that still carries data."""
    want = str(ipaddress.ip_address(address))
    return [s for s in sockets if s.local == want and s.state not in NOT_IN_FLIGHT]


class TcpSockets:
    """The TCP sockets of one network namespace (None: ours). Blocking, but each dump is one
    answer from the kernel (well under a millisecond for a few hundred sockets)."""

    def __init__(self, netns: str | None = None):
        with in_netns(netns):
            self._nl = NetlinkSocket(NETLINK_SOCK_DIAG)

    def close(self) -> None:
        self._nl.close()

    def __enter__(self) -> "TcpSockets":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def dump(self, families=(socket.AF_INET, socket.AF_INET6),
             states: int = IN_FLIGHT_MASK) -> list[TcpSocket]:
        out: list[TcpSocket] = []
        for fam in families:
            ans = self._nl.request(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, request(fam, states),
                                   what="sock_diag TCP dump")
            for kind, payload in ans.messages:
                if kind == SOCK_DIAG_BY_FAMILY:
                    s = parse(payload)
                    if s is not None:
                        out.append(s)
        return out

    def in_flight(self, address: str) -> list[TcpSocket]:
        """TCP connections with local address `address` that are not over (see the module doc).
        An IPv4 address is looked for in both families (IPv4-mapped on dual-stack sockets)."""
        v = ipaddress.ip_address(address).version
        fams = (socket.AF_INET, socket.AF_INET6) if v == 4 else (socket.AF_INET6,)
        return in_flight(self.dump(fams), address)
