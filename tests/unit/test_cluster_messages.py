"""The wire codec: golden bytes, every drop reason, replay window, and properties (hypothesis)."""

import hashlib
import hmac
import os
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hadirector.cluster.auth import Authenticator
from hadirector.cluster.messages import (REASONS, Announcement, BadMessage, Codec, Grant, GroupEntry,
                                         GroupState, Kind, Message, ReplayWindow, Status, decode,
                                         encode)

from cluster_wire_samples import SAMPLES

WIRE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "wire")


def read_hex(name: str) -> bytes:
    with open(os.path.join(WIRE, f"{name}.hex"), encoding="ascii") as f:
        return bytes.fromhex("".join(line for line in f if not line.startswith("#")))


# --------------------------------------------------------------------------- golden files

@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_golden_encode(name):
    msg, auth, _ = SAMPLES[name]
    assert encode(msg, auth) == read_hex(name)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_golden_decode(name):
    msg, auth, _ = SAMPLES[name]
    assert decode(read_hex(name), auth) == msg


def test_layout_built_by_hand_matches_leave_sample():
    """The documented layout, written out with struct and hmac, not with the encoder."""
    body = (b"\x04prod" + b"\x05gamma" + struct.pack(">QQ", 1, 1000) + b"\x03"
            + struct.pack(">HHII", 1, 1, 1000, 30000) + b"\x00\x00" * 4)
    head = b"HD" + bytes([1, Kind.LEAVE, 2, 2]) + struct.pack(">H", len(body))
    mac = hmac.new(b"s3cret", head + body, hashlib.sha1).digest()
    assert head + body + mac == read_hex("leave_sha1")


def test_crc_is_plain_crc32_of_the_bytes():
    data = read_hex("heartbeat_crc")
    assert data[4] == 0  # method crc
    assert struct.unpack(">I", data[-4:])[0] == zlib.crc32(data[:-4])


def test_md5_sample_is_hmac_md5():
    data = read_hex("update_md5")
    assert data[4:6] == bytes([1, 3])  # md5, authkeys index 3
    assert hmac.new(b"Hello!", data[:-16], hashlib.md5).digest() == data[-16:]


# --------------------------------------------------------------------------- drop reasons

AUTH = Authenticator("sha256", b"k1", 1)
NODES = ("alpha", "beta", "gamma")


def codec(node="beta", **kw):
    return Codec("prod", node, 1, NODES, AUTH, **kw)


def from_alpha(gen=5, seq=1, cluster="prod", node="alpha", auth=AUTH, kind=Kind.HEARTBEAT):
    return encode(Message(kind, cluster, node, gen, seq, 1000, 30000, Announcement(Status.ACTIVE)),
                  auth)


def reason_of(c: Codec, data: bytes) -> str:
    with pytest.raises(BadMessage) as exc:
        c.decode(data)
    return exc.value.reason


def test_every_reason_is_counted():
    c = codec(max_size=200)
    good = from_alpha(seq=10)
    assert c.decode(good).seq == 10
    assert reason_of(c, good[:5]) == "truncated"
    assert reason_of(c, good[:-1]) == "truncated"
    # bytes appended to a genuine message: the MAC (the last bytes) no longer matches, a forgery
    assert reason_of(c, good + b"\x00") == "bad_auth"
    signed = good[:-AUTH.mac_length] + b"\x00"  # a sender that signs more than it announces
    assert reason_of(c, signed + AUTH.sign(signed)) == "malformed"
    assert reason_of(c, b"\x00" * 201) == "oversized"
    assert reason_of(c, b"XX" + good[2:]) == "bad_version"
    assert reason_of(c, good[:2] + b"\x02" + good[3:]) == "bad_version"
    assert reason_of(c, from_alpha(auth=Authenticator("sha256", b"other", 1))) == "bad_auth"
    assert reason_of(c, from_alpha(auth=Authenticator("sha256", b"k1", 2))) == "bad_auth"
    assert reason_of(c, from_alpha(auth=Authenticator("sha1", b"k1", 1))) == "bad_auth"
    assert reason_of(c, from_alpha(auth=Authenticator("crc", b"", 1))) == "bad_auth"
    assert reason_of(c, from_alpha(seq=11, cluster="other")) == "wrong_cluster"
    assert reason_of(c, from_alpha(seq=12, node="mallory")) == "unknown_node"
    assert reason_of(c, from_alpha(seq=13, node="beta")) == "looped"
    assert reason_of(c, good) == "replayed"
    assert reason_of(c, from_alpha(gen=4, seq=99)) == "stale_generation"
    assert set(c.counters) == set(REASONS) | {"ok"}
    assert c.counters["ok"] == 1 and c.counters["truncated"] == 2


def test_authenticated_garbage_is_malformed():
    """A peer with the key but a bad encoder (or crc and line noise) gets 'malformed'."""
    body = b"\x04prod\x05alpha" + b"\x00" * 5  # ends inside the generation field
    head = b"HD\x01\x01\x03\x01" + struct.pack(">H", len(body))
    assert reason_of(codec(), head + body + AUTH.sign(head + body)) == "malformed"
    body = b"\x04prod\x05alpha" + struct.pack(">QQBHHII", 1, 1, 9, 0, 0, 0, 0) + b"\x00" * 8
    head = b"HD\x01\x01\x03\x01" + struct.pack(">H", len(body))
    assert reason_of(codec(), head + body + AUTH.sign(head + body)) == "malformed"  # status 9


def test_new_generation_resets_the_window_and_old_one_is_stale():
    c = codec()
    for seq in (1, 2, 3):
        c.decode(from_alpha(gen=5, seq=seq))
    c.decode(from_alpha(gen=6, seq=1))  # restart: seq starts again
    assert c.peer_generation("alpha") == 6
    assert reason_of(c, from_alpha(gen=5, seq=4)) == "stale_generation"
    assert reason_of(c, from_alpha(gen=6, seq=1)) == "replayed"
    assert c.decode(from_alpha(gen=6, seq=2)).seq == 2


def test_forged_packet_does_not_move_the_generation():
    c = codec()
    c.decode(from_alpha(gen=5, seq=1))
    forged = from_alpha(gen=9, seq=1, auth=Authenticator("sha256", b"guess", 1))
    assert reason_of(c, forged) == "bad_auth"
    assert c.peer_generation("alpha") == 5


def test_replay_window_accepts_reordering_within_the_window():
    w = ReplayWindow(8)
    for seq in (5, 3, 4, 9, 2):
        assert not w.seen(seq)
        w.mark(seq)
    assert all(w.seen(s) for s in (2, 3, 4, 5, 9))
    assert not w.seen(6) and not w.seen(8)
    assert w.seen(1)  # older than the window: refused as a possible replay
    w.mark(100)
    assert w.seen(9) and not w.seen(99) and not w.seen(101)


def test_codec_encode_numbers_every_packet():
    a = Codec("prod", "alpha", 3, NODES, AUTH)
    b = codec()
    m1 = b.decode(a.encode(Kind.HEARTBEAT, Announcement()))
    m2 = b.decode(a.encode(Kind.UPDATE, Announcement()))
    assert (m1.generation, m1.seq, m2.seq, m2.kind) == (3, 1, 2, Kind.UPDATE)


def test_encode_refuses_what_does_not_fit():
    with pytest.raises(ValueError, match="255 bytes"):
        encode(Message(Kind.HEARTBEAT, "x" * 300, "a", 1, 1), AUTH)
    big = Announcement(groups=tuple(GroupEntry(f"group-{i:04d}") for i in range(200)))
    with pytest.raises(ValueError, match="limit"):
        encode(Message(Kind.HEARTBEAT, "c", "a", 1, 1, announcement=big), AUTH, max_size=1000)


def test_crc_authenticator_says_it_authenticates_nothing():
    assert not Authenticator("crc").authenticates
    assert Authenticator("md5", "k").authenticates
    with pytest.raises(ValueError, match="needs a key"):
        Authenticator("sha1", b"")
    with pytest.raises(ValueError, match="unknown auth method"):
        Authenticator("rot13", b"k")


# --------------------------------------------------------------------------- properties

names = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
u32 = st.integers(0, 2**32 - 1)
entries = st.builds(GroupEntry, names, st.sampled_from(GroupState), u32, names, st.booleans())
announcements = st.builds(
    Announcement, st.sampled_from(Status), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
    st.lists(entries, max_size=5).map(tuple),
    st.lists(st.builds(Grant, names, names, u32), max_size=5).map(tuple),
    st.lists(names, max_size=5).map(tuple), st.lists(names, max_size=3).map(tuple))
messages = st.builds(Message, st.sampled_from(Kind), names, names, st.integers(0, 2**64 - 1),
                     st.integers(0, 2**64 - 1), u32, u32, announcements)
auths = st.sampled_from([Authenticator("sha256", b"k", 1), Authenticator("sha1", b"k", 15),
                         Authenticator("md5", b"k", 2), Authenticator("crc", b"", 1)])


@given(messages, auths)
@settings(max_examples=300, deadline=None)
def test_round_trip(msg, auth):
    assert decode(encode(msg, auth), auth) == msg


@given(messages, auths, st.data())
@settings(max_examples=300, deadline=None)
def test_any_bit_flip_is_rejected(msg, auth, data):
    raw = bytearray(encode(msg, auth))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(BadMessage):
        decode(bytes(raw), auth)


@given(messages, auths, st.data())
@settings(max_examples=200, deadline=None)
def test_any_truncation_is_rejected(msg, auth, data):
    raw = encode(msg, auth)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(BadMessage):
        decode(raw[:cut], auth)


@given(st.binary(max_size=300))
@settings(max_examples=500, deadline=None)
def test_random_bytes_raise_only_bad_message(blob):
    for auth in (AUTH, Authenticator("crc", b"", 1)):
        try:
            decode(blob, auth)
        except BadMessage:
            pass


@given(st.binary(min_size=8, max_size=120))
@settings(max_examples=300, deadline=None)
def test_crc_garbage_with_a_valid_checksum_raises_only_bad_message(body):
    """With crc anybody can make the checksum right: the parser must still hold."""
    crc = Authenticator("crc", b"", 1)
    head = b"HD\x01\x01\x00\x01" + struct.pack(">H", len(body))
    try:
        decode(head + body + crc.sign(head + body), crc)
    except BadMessage:
        pass


def test_group_flags_carry_failed_and_yields():
    a = Codec("prod", "alpha", 3, NODES, AUTH)
    groups = (GroupEntry("web", GroupState.HELD, 0, "", False, True),
              GroupEntry("db", GroupState.STARTING, 0, "", True, True),
              GroupEntry("mx", GroupState.HELD, 0, "", True, False))
    data = a.encode(Kind.HEARTBEAT, Announcement(groups=groups))
    assert codec().decode(data).announcement.groups == groups
    # name, state, then the flags byte: bit 0 failed, bit 1 yields
    assert b"\x03web\x03\x02" in data and b"\x02db\x02\x03" in data and b"\x02mx\x03\x01" in data
