"""net/sockdiag.py's codec: the inet_diag request and answer, and what counts as in flight."""

from __future__ import annotations

import ipaddress
import socket
import struct

from hadirector.net import sockdiag
from hadirector.net.sockdiag import TcpSocket


def msg(family, state, src, sport, dst, dport) -> bytes:
    def raw(a):
        return ipaddress.ip_address(a).packed.ljust(16, b"\0")
    return (struct.pack("=BBBB", family, state, 0, 0)
            + struct.pack(">HH16s16sI8s", sport, dport, raw(src), raw(dst), 0, b"\xff" * 8)
            + struct.pack("=IIIII", 0, 0, 0, 0, 1234))


def test_request_is_an_inet_diag_req_v2_for_tcp_in_the_in_flight_states():
    body = sockdiag.request(socket.AF_INET)
    assert len(body) == 56  # sizeof(struct inet_diag_req_v2)
    family, proto, ext, states = struct.unpack_from("=BBBxI", body)
    assert (family, proto, ext) == (socket.AF_INET, socket.IPPROTO_TCP, 0)
    names = {sockdiag.TCP_STATES[n] for n in sockdiag.TCP_STATES if states & (1 << n)}
    assert names == {"ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "CLOSE_WAIT",
                     "LAST_ACK", "CLOSING", "NEW_SYN_RECV"}
    assert body[8:] == b"\0" * 48


def test_parse_reads_addresses_ports_and_state_and_unmaps_ipv4_in_ipv6():
    s = sockdiag.parse(msg(socket.AF_INET, 1, "198.18.0.100", 80, "198.18.0.10", 40000))
    assert s == TcpSocket(socket.AF_INET, "ESTABLISHED", "198.18.0.100", 80, "198.18.0.10", 40000)
    s = sockdiag.parse(msg(socket.AF_INET6, 8, "::ffff:198.18.0.100", 80, "::ffff:198.18.0.10", 1))
    assert (s.family, s.state, s.local, s.remote) == (socket.AF_INET6, "CLOSE_WAIT", "198.18.0.100",
                                                      "198.18.0.10")
    s = sockdiag.parse(msg(socket.AF_INET6, 12, "2001:2::100", 443, "2001:2::10", 2))
    assert (s.state, s.local) == ("NEW_SYN_RECV", "2001:2::100")
    assert sockdiag.parse(b"\0" * 10) is None


def test_in_flight_keeps_the_address_and_drops_finished_or_listening_sockets():
    socks = [TcpSocket(2, st, local, 80, "198.18.0.10", 1) for st, local in (
        ("ESTABLISHED", "198.18.0.100"), ("LISTEN", "198.18.0.100"), ("TIME_WAIT", "198.18.0.100"),
        ("CLOSE", "198.18.0.100"), ("FIN_WAIT1", "198.18.0.100"), ("ESTABLISHED", "198.18.0.2"))]
    assert [s.state for s in sockdiag.in_flight(socks, "198.18.0.100")] == ["ESTABLISHED", "FIN_WAIT1"]
    assert sockdiag.in_flight(socks, "198.18.0.101") == []
