"""The qdevice-net codec against golden bytes recorded from a real corosync-qnetd 3.0.3
(tests/fixtures/qdevice/make_fixtures.py), and every way a message can be refused."""

import struct
from pathlib import Path

import pytest

from hadirector.cluster import qdevice_wire as w

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "qdevice"
RING = w.RingId(1, 1)


def fixture(name: str) -> bytes:
    return bytes.fromhex((FIX / f"{name}.hex").read_text().strip())


# what the encoders must rebuild, byte for byte, from what qnetd sent
SERVER = {
    "preinit_reply": lambda m: w.encode_preinit_reply(m.seq, m.tls_supported, m.tls_client_cert_required),
    "init_reply": lambda m: w.encode_init_reply(m.seq, m.reply_error_code, m.server_maximum_request_size,
                                                m.server_maximum_reply_size, m.supported_algorithms,
                                                m.supported_messages, m.supported_options),
    "init_reply_error": lambda m: w.encode_init_reply(m.seq, m.reply_error_code, m.server_maximum_request_size,
                                                      m.server_maximum_reply_size, m.supported_algorithms,
                                                      m.supported_messages, m.supported_options),
    "set_option_reply": lambda m: w.encode_set_option_reply(m.seq, keep_active_partition=m.keep_active_partition),
    "set_option_reply_hb": lambda m: w.encode_set_option_reply(m.seq, heartbeat_interval=m.heartbeat_interval),
    "config_node_list_reply": lambda m: w.encode_node_list_reply(m.seq, m.node_list_type, m.ring_id, m.vote),
    "membership_node_list_reply": lambda m: w.encode_node_list_reply(m.seq, m.node_list_type, m.ring_id, m.vote),
    "vote_info": lambda m: w.encode_vote_info(m.seq, m.ring_id, m.vote),
    "echo_reply": lambda m: w.encode_echo_reply(w.encode_echo_request(m.seq)),
    "server_error": lambda m: w.encode_server_error(m.seq, m.reply_error_code),
}

CLIENT = {
    "preinit": w.encode_preinit("golden", 1),
    "init": w.encode_init(2, w.Algorithm.FFSPLIT, 1, 1000, w.TieBreaker(), RING),
    "set_option": w.encode_set_option(3, keep_active_partition=w.KeepActivePartition.ENABLED),
    "set_option_hb": w.encode_set_option(4, heartbeat_interval=2000),
    "config_node_list": w.encode_node_list(5, w.NodeListType.INITIAL_CONFIG, [1, 2]),
    "membership_node_list": w.encode_node_list(6, w.NodeListType.MEMBERSHIP, [1], ring_id=RING),
    "vote_info_reply": w.encode_vote_info_reply(1),
    "echo_request": w.encode_echo_request(1),
    "ask_for_vote": w.encode_ask_for_vote(7),
    "init_without_preinit": w.encode_init(1, w.Algorithm.LMS, 3, 1000, w.TieBreaker(), RING),
}


@pytest.mark.parametrize("name", sorted(SERVER))
def test_qnetd_bytes_decode_and_rebuild(name):
    data = fixture(f"server_{name}")
    msg = w.decode(data)
    assert SERVER[name](msg) == data


@pytest.mark.parametrize("name", sorted(CLIENT))
def test_client_bytes_are_the_golden_ones(name):
    assert CLIENT[name] == fixture(f"client_{name}")


def test_golden_files_say_what_qnetd_said():
    assert w.decode(fixture("server_preinit_reply")).tls_supported == w.Tls.UNSUPPORTED  # -s off
    ir = w.decode(fixture("server_init_reply"))
    assert ir.reply_error_code == 0 and w.Algorithm.FFSPLIT in ir.supported_algorithms
    assert w.Opt.KEEP_ACTIVE_PARTITION_TIE_BREAKER in ir.supported_options
    assert w.decode(fixture("server_init_reply_error")).reply_error_code == w.ReplyError.PREINIT_REQUIRED
    assert w.decode(fixture("server_config_node_list_reply")).vote == w.Vote.ASK_LATER
    vi = w.decode(fixture("server_vote_info"))
    assert (vi.vote, vi.ring_id) == (w.Vote.ACK, RING)
    # ffsplit refuses ask-for-vote (qnetd_algo_ffsplit_ask_for_vote_received)
    assert w.decode(fixture("server_server_error")).reply_error_code == \
        w.ReplyError.UNSUPPORTED_DECISION_ALGORITHM_MESSAGE


def test_layout_by_hand():
    # header: u16 type 8, u32 length 8; option: u16 type 0, u16 len 4, u32 seq 7
    assert w.encode_echo_request(7) == bytes.fromhex("0008" "00000008" "0000" "0004" "00000007")
    ring = w.encode_node_list(9, w.NodeListType.MEMBERSHIP, [w.NodeInfo(5, 2, w.NodeState.MEMBER)],
                              ring_id=w.RingId(5, 0x1122334455667788))
    m = w.decode(ring)
    assert m.nodes == (w.NodeInfo(5, 2, w.NodeState.MEMBER),) and m.ring_id.seq == 0x1122334455667788
    assert struct.pack(">IQ", 5, 0x1122334455667788) in ring
    assert str(w.RingId(1, 3)) == "1.3"


def test_tie_breaker_and_optional_fields():
    m = w.decode(w.encode_init(2, w.Algorithm.LMS, 4, 500, w.TieBreaker(w.TieBreakerMode.NODE_ID, 9), RING))
    assert m.tie_breaker == w.TieBreaker(w.TieBreakerMode.NODE_ID, 9) and m.algorithm == w.Algorithm.LMS
    m = w.decode(w.encode_init(2, w.Algorithm.LMS, 4, 500, w.TieBreaker(w.TieBreakerMode.HIGHEST, 9), RING))
    assert m.tie_breaker == w.TieBreaker(w.TieBreakerMode.HIGHEST, 0)  # node id only for NODE_ID
    m = w.decode(w.encode_node_list(1, w.NodeListType.QUORUM, [1], config_version=7, quorate=w.Quorate.QUORATE,
                                    heuristics=w.Heuristics.PASS))
    assert (m.config_version, m.quorate, m.heuristics) == (7, w.Quorate.QUORATE, w.Heuristics.PASS)
    hc = w.decode(w.encode_heuristics_change_reply(3, RING, w.Heuristics.FAIL, w.Vote.NACK))
    assert (hc.heuristics, hc.vote) == (w.Heuristics.FAIL, w.Vote.NACK)
    assert w.decode(w.encode_heuristics_change(3, w.Heuristics.PASS)).heuristics == w.Heuristics.PASS
    assert w.decode(w.encode_starttls(3)).type == w.MsgType.STARTTLS
    assert w.decode(w.encode_ask_for_vote_reply(3, RING, w.Vote.ACK)).vote == w.Vote.ACK


def test_unknown_options_are_skipped():
    body = struct.pack(">HHI", 0, 4, 5) + struct.pack(">HH", 999, 3) + b"abc"
    m = w.decode(struct.pack(">HI", w.MsgType.ECHO_REPLY, len(body)) + body)
    assert m.seq == 5 and m.extra == {999: b"abc"}


def _raw(mtype, *opts):
    body = b"".join(struct.pack(">HH", o, len(v)) + v for o, v in opts)
    return struct.pack(">HI", mtype, len(body)) + body


@pytest.mark.parametrize("data,reason", [
    (b"\x00\x01", "short-header"),
    (struct.pack(">HI", 99, 0), "unknown-type"),
    (struct.pack(">HI", 8, 10), "bad-length"),
    (struct.pack(">HI", 8, 2) + b"\x00\x00", "truncated-option"),
    (struct.pack(">HI", 8, 6) + struct.pack(">HH", 0, 4) + b"\x00\x00", "truncated-option"),
    (_raw(8, (0, b"\x00\x01")), "bad-option-size"),
    (_raw(14, (19, b"\x09")), "bad-option-value"),  # vote 9
    (_raw(14, (19, b"\x00")), "bad-option-value"),  # UNDEFINED is not a wire vote
    (_raw(14, (13, b"\x00" * 11)), "bad-option-size"),  # ring id is 12 bytes
    (_raw(3, (21, b"\x07\x00\x00\x00\x00")), "bad-option-value"),  # tie-breaker mode 7
    (_raw(10, (17, struct.pack(">HHI", 15, 4, 1))), "bad-option-value"),  # node info without node id
    (_raw(4, (4, b"\x00")), "bad-option-size"),  # odd u16 array
    (_raw(1, (2, b"\x05")), "bad-option-value"),  # tls supported 5
])
def test_bad_messages_name_their_fault(data, reason):
    with pytest.raises(w.WireError) as e:
        w.decode(data)
    assert e.value.reason == reason


def test_framer_cuts_a_stream_anywhere():
    stream = b"".join(fixture(f"server_{n}") for n in sorted(SERVER))
    for step in (1, 3, 7, 1000):
        f, got = w.Framer(), []
        for i in range(0, len(stream), step):
            got += f.feed(stream[i:i + step])
        assert [w.decode(g).type for g in got] == [w.decode(fixture(f"server_{n}")).type for n in sorted(SERVER)]
        assert f.pending() == 0


def test_framer_refuses_unknown_types_and_oversized_messages():
    with pytest.raises(w.WireError, match="unknown-type"):
        w.Framer().feed(struct.pack(">HI", 200, 0))
    f = w.Framer(max_size=64)
    with pytest.raises(w.WireError, match="oversized"):
        f.feed(struct.pack(">HI", 9, 59))
    assert w.Framer(max_size=64).feed(w.encode_echo_request(1)) == [w.encode_echo_request(1)]
