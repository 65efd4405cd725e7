"""dataplane/netfacts.py: the rtnetlink codec on messages built here, and the reader against this
process's own namespace (reading needs no privilege). tests/integration/test_netfacts_lab.py compares
it with iproute2 in a lab."""

from __future__ import annotations

import socket
import struct

import pytest

from hadirector.dataplane import netfacts as nf
from hadirector.dataplane.base import DataPlaneError
from hadirector.net import nlraw as nl


def msg(kind: int, payload: bytes, flags: int = 0, seq: int = 1) -> bytes:
    n = nl.NLH.size + len(payload)
    return nl.NLH.pack(n, kind, flags, seq, 0) + payload + b"\0" * (-n % 4)


def test_messages_and_attributes_follow_the_alignment():
    body = nl.attr(nf.IFLA_IFNAME, b"eth0\0") + nl.attr(nf.IFLA_ADDRESS, bytes.fromhex("020000000011"))
    link = nf.IFINFO.pack(0, nf.ARPHRD_ETHER, 2, 0, 0) + body
    data = msg(nf.RTM_NEWLINK, link, nl.NLM_F_MULTI, 7) + msg(nl.NLMSG_DONE, struct.pack("=i", 0), nl.NLM_F_MULTI, 7)
    got = list(nl.messages(data))
    assert [(t, f, s) for t, f, s, _ in got] == [(nf.RTM_NEWLINK, nl.NLM_F_MULTI, 7), (nl.NLMSG_DONE, nl.NLM_F_MULTI, 7)]
    assert nf.parse_link(got[0][3]) == (2, "eth0", "02:00:00:00:00:11")
    # a loopback (not ethernet) has no MAC for the data plane; a truncated datagram ends the walk
    lo = nf.IFINFO.pack(0, 772, 1, 0, 0) + nl.attr(nf.IFLA_IFNAME, b"lo\0") + nl.attr(nf.IFLA_ADDRESS, bytes(6))
    assert nf.parse_link(lo) == (1, "lo", None)
    assert list(nl.messages(data[:-3])) == got[:1]
    # NLA_F_NESTED / NLA_F_NET_BYTEORDER bits do not hide an attribute's type
    assert nl.attrs(nl.RTA.pack(8, 0x8000 | 4) + b"\1\0\0\0", 0) == {4: b"\1\0\0\0"}


def test_addresses_routes_neighbours():
    v4 = nf.IFADDR.pack(socket.AF_INET, 24, 0, 0, 2) + nl.attr(nf.IFA_ADDRESS, socket.inet_aton("198.18.0.1")) \
        + nl.attr(nf.IFA_LOCAL, socket.inet_aton("198.18.0.2"))
    v6 = nf.IFADDR.pack(socket.AF_INET6, 64, 0, 0, 3) + nl.attr(nf.IFA_ADDRESS, socket.inet_pton(socket.AF_INET6, "fe80::1"))
    assert nf.parse_addr(v4) == (2, "198.18.0.2")  # IFA_LOCAL first (the peer is IFA_ADDRESS)
    assert nf.parse_addr(v6) == (3, "fe80::1") and nf.addr_index(v6) == 3

    rt = nf.RTMSG.pack(socket.AF_INET, 32, 0, 0, 254, 0, 0, 1, 0) + nl.attr(nf.RTA_OIF, struct.pack("=i", 2)) \
        + nl.attr(nf.RTA_GATEWAY, socket.inet_aton("198.18.0.11"))
    assert nf.parse_route(rt) == (2, "198.18.0.11")
    via = nf.RTMSG.pack(socket.AF_INET, 32, 0, 0, 254, 0, 0, 1, 0) + nl.attr(nf.RTA_OIF, struct.pack("=i", 4)) \
        + nl.attr(nf.RTA_VIA, struct.pack("=H", socket.AF_INET6) + socket.inet_pton(socket.AF_INET6, "fe80::2"))
    assert nf.parse_route(via) == (4, "fe80::2")
    direct = nf.RTMSG.pack(socket.AF_INET, 32, 0, 0, 254, 0, 0, 1, 0) + nl.attr(nf.RTA_OIF, struct.pack("=i", 2))
    assert nf.parse_route(direct) == (2, None)

    def neigh(state, flags=0, fam=socket.AF_INET, mac=True, dst="198.18.0.11"):
        raw = socket.inet_pton(fam, dst) if fam in (socket.AF_INET, socket.AF_INET6) else b"\0" * 4
        return nf.NDMSG.pack(fam, 2, state, flags, 0) + nl.attr(nf.NDA_DST, raw) \
            + (nl.attr(nf.NDA_LLADDR, bytes.fromhex("0200000000aa")) if mac else b"")
    REACHABLE, STALE, PERMANENT, NONE = 0x02, 0x04, 0x80, 0x00
    for state in (REACHABLE, STALE, PERMANENT):
        assert nf.parse_neigh(neigh(state)) == (2, "198.18.0.11", "02:00:00:00:00:aa")
    assert nf.parse_neigh(neigh(REACHABLE, fam=socket.AF_INET6, dst="fe80::11"))[1] == "fe80::11"
    # what `ip neigh show` hides or the data plane cannot use
    for bad in (neigh(nf.NUD_FAILED), neigh(nf.NUD_INCOMPLETE), neigh(nf.NUD_NOARP), neigh(NONE),
                neigh(REACHABLE, mac=False), neigh(REACHABLE, fam=socket.AF_BRIDGE)):
        assert nf.parse_neigh(bad) is None
    assert nf.parse_neigh(neigh(NONE, flags=nf.NTF_EXT_LEARNED)) is not None  # ip lists these


def test_the_reader_in_this_namespace():
    facts = nf.NetFacts()
    try:
        a = facts.addresses()
        assert "127.0.0.1" in a.local and a.dev["127.0.0.1"] == "lo" and "lo" not in a.macs
        assert facts.addresses(with_links=False).local == a.local
        rt = facts.route("127.0.0.1")
        assert rt.dev == "lo" and rt.gateway is None and rt.error is None
        assert isinstance(facts.neighbours(), dict)
        facts.fresh()
        assert facts.route("127.0.0.1").dev == "lo"  # the names are read again
    finally:
        facts.close()
    facts.close()  # twice is fine
    facts.fresh()
    with pytest.raises(DataPlaneError, match="netlink: list links: the socket is closed"):
        facts.addresses()


def test_an_error_answer_is_refused_and_a_stale_answer_skipped():
    """A fake socket: the answer to an earlier request (another seq) is skipped; NLMSG_ERROR
    becomes NetlinkRefused, which route() reports and a dump raises as DataPlaneError."""
    class Sock:
        def __init__(self, answers):
            self.answers = answers
            self.sent = []

        def send(self, data):
            self.sent.append(data)

        def recvmsg(self, size):
            seq = nl.NLH.unpack_from(self.sent[-1])[3]
            return self.answers(seq), [], 0, None

        def close(self):
            pass

    facts = nf.NetFacts()
    facts.close()
    err = struct.pack("=i", -101) + bytes(16)  # ENETUNREACH, then the request's header
    facts._nl._sock = Sock(lambda seq: msg(nf.RTM_NEWROUTE, b"\0" * 12, 0, seq - 1) + msg(nl.NLMSG_ERROR, err, 0, seq))
    facts._names = {}
    assert facts.route("198.19.5.5") == nf.Route(None, None, "Network is unreachable")
    with pytest.raises(DataPlaneError, match="netlink: list neighbours: Network is unreachable"):
        facts.neighbours()
    # a dump the kernel marks interrupted every time
    facts._nl._sock = Sock(lambda seq: msg(nl.NLMSG_DONE, struct.pack("=i", 0), nl.NLM_F_MULTI | nl.NLM_F_DUMP_INTR, seq))
    with pytest.raises(DataPlaneError, match="kept changing during the dump"):
        facts.neighbours()
    assert len(facts._nl._sock.sent) == nf.DUMP_TRIES
