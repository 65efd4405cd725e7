"""Pure wire formats of net/: the serial link framing (SLIP + CRC-32) and the gratuitous ARP /
neighbour advertisement frames."""

from __future__ import annotations

import ipaddress
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from hadirector.net.garp import ARPOP_REPLY, ARPOP_REQUEST, _checksum, arp_frame, na_frame
from hadirector.net.transports import FrameDecoder, frame_encode

MAC = "02:00:5e:10:00:01"


def test_frame_golden_bytes():
    # CRC-32 (IEEE 802.3, as zlib): the standard check value of "123456789" is CBF43926
    assert frame_encode(b"123456789") == b"\xc0123456789\xcb\xf4\x39\x26\xc0"
    # END (C0) and ESC (DB) in the payload are escaped as DB DC and DB DD (RFC 1055)
    assert frame_encode(b"\xc0\xdb\x41") == b"\xc0\xdb\xdc\xdb\xdd\x41\x0d\xf9\x22\x80\xc0"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=8), st.integers(1, 50))
def test_frames_survive_any_chunking(payloads, chunk):
    stream = b"".join(frame_encode(p) for p in payloads)
    dec = FrameDecoder()
    got = []
    for i in range(0, len(stream), chunk):
        got += dec.feed(stream[i:i + chunk])
    assert got == payloads and dec.bad_frames == 0


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=200), st.data())
def test_a_damaged_frame_is_dropped_and_the_next_one_arrives(payload, data):
    frame = bytearray(frame_encode(payload))
    pos = data.draw(st.integers(1, len(frame) - 2))  # never the END bytes themselves
    flip = data.draw(st.integers(1, 255))
    orig = frame[pos]
    frame[pos] ^= flip
    if frame[pos] == 0xC0:  # that damage would make an END and cut the frame in two; damage it otherwise
        frame[pos] = orig ^ 0xFF if orig ^ 0xFF != 0xC0 else orig ^ 0x0F
    assert frame[pos] != orig
    dec = FrameDecoder()
    got = dec.feed(bytes(frame) + frame_encode(b"next"))
    assert got == [b"next"]
    assert dec.bad_frames == 1


def test_noise_and_oversize_frames_are_counted_not_fatal():
    dec = FrameDecoder(max_frame=16)
    got = dec.feed(b"line noise\xc0" + frame_encode(b"x" * 40) + frame_encode(b"ok"))
    assert got == [b"ok"]
    assert dec.bad_frames == 2  # the noise (bad CRC) and the oversize frame
    assert dec.feed(b"\xdb\x00\xc0") == [] and dec.bad_frames == 3  # invalid escape
    assert dec.feed(b"\xc0\xc0\xc0") == [] and dec.bad_frames == 3  # empty frames are just padding


def test_arp_request_and_reply_layout():
    mac = bytes.fromhex("02005e100001")
    ip = ipaddress.IPv4Address("198.18.0.100").packed
    req = arp_frame(ARPOP_REQUEST, MAC, "198.18.0.100")
    rep = arp_frame(ARPOP_REPLY, MAC, "198.18.0.100")
    hdr = b"\xff" * 6 + mac + b"\x08\x06" + bytes.fromhex("0001 0800 06 04".replace(" ", ""))
    # send_arp.libnet: request target MAC 00:00:00:00:00:00, reply target MAC = ours; spa = tpa = VIP
    assert req == hdr + b"\x00\x01" + mac + ip + b"\x00" * 6 + ip
    assert rep == hdr + b"\x00\x02" + mac + ip + mac + ip
    assert len(req) == 42


def test_neighbour_advertisement_layout_and_checksum():
    target = ipaddress.IPv6Address("2001:2::100")
    frame = na_frame(MAC, str(target))
    eth, ip6, icmp = frame[:14], frame[14:54], frame[54:]
    assert eth == bytes.fromhex("333300000001") + bytes.fromhex("02005e100001") + b"\x86\xdd"
    ver, plen, nxt, hops = struct.unpack("!IHBB", ip6[:8])
    assert ver >> 28 == 6 and plen == len(icmp) == 32 and nxt == 58 and hops == 255
    assert ip6[8:24] == target.packed and ip6[24:40] == ipaddress.IPv6Address("ff02::1").packed
    typ, code, _csum, flags = struct.unpack("!BBHI", icmp[:8])
    assert (typ, code) == (136, 0)
    assert flags == 0x20000000  # Override only: not a router, not solicited
    assert icmp[8:24] == target.packed
    assert icmp[24:] == b"\x02\x01" + bytes.fromhex("02005e100001")  # target link-layer address
    pseudo = ip6[8:40] + struct.pack("!I3xB", len(icmp), 58)
    assert _checksum(pseudo + icmp) == 0  # a correct checksum sums to zero


def test_rfc5227_probe_and_dad_frames_and_what_classify_makes_of_them():
    from hadirector.net.acd import CLAIM, PROBE, classify
    from hadirector.net.garp import (arp_packet, dad_frame, na_frame, parse_arp, parse_nd,
                                     probe_frame, solicited_node)
    me, other = bytes.fromhex("02000000000a"), bytes.fromhex("02000000000b")
    watched = {"198.18.0.100", "2001:2::100"}
    p = parse_arp(probe_frame(other, "198.18.0.100"))
    # RFC 5227 2.1.1: sender IP all zero, target hardware address zero, broadcast
    assert (p.op, p.spa, p.tpa, p.tha) == (ARPOP_REQUEST, "0.0.0.0", "198.18.0.100", b"\0" * 6)
    assert classify(probe_frame(other, "198.18.0.100"), me, watched) == ("198.18.0.100", PROBE, other.hex(":"))
    assert classify(probe_frame(me, "198.18.0.100"), me, watched) is None  # our own
    reply = arp_packet(ARPOP_REPLY, other, "198.18.0.100", me, "0.0.0.0", dst=me)
    assert classify(reply, me, watched) == ("198.18.0.100", CLAIM, other.hex(":"))
    assert classify(arp_frame(ARPOP_REQUEST, other, "198.18.0.100"), me, watched)[1] == CLAIM  # an announcement
    assert classify(arp_frame(ARPOP_REQUEST, other, "198.18.0.7"), me, watched) is None
    ns = dad_frame(other, "2001:2::100")
    nd = parse_nd(ns)
    assert (nd.type, nd.src, nd.target) == (135, "::", "2001:2::100")
    assert ns[:6] == b"\x33\x33" + solicited_node("2001:2::100").packed[-4:]
    assert str(solicited_node("2001:2::100")) == "ff02::1:ff00:100"
    # RFC 4861 checksum over the pseudo-header: summing it all again gives 0
    assert _checksum(nd_pseudo(ns) + ns[54:]) == 0
    assert classify(ns, me, watched) == ("2001:2::100", PROBE, other.hex(":"))
    assert classify(na_frame(other, "2001:2::100"), me, watched) == ("2001:2::100", CLAIM, other.hex(":"))


def nd_pseudo(frame: bytes) -> bytes:
    import struct
    return frame[22:38] + frame[38:54] + struct.pack("!I3xB", len(frame) - 54, 58)
