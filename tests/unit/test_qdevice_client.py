"""The qdevice-net client core with a hand-advanced clock and a scripted qnetd (the server side of
the codec), step by step as qdevice-net-msg-received.c walks it."""

import pytest

from hadirector.cluster import qdevice as q
from hadirector.cluster import qdevice_wire as w

HB = 1000


def client(node=1, nodes=(1, 2), **kw) -> q.QdeviceClient:
    return q.QdeviceClient(q.Settings("lab", node, nodes, heartbeat_interval=HB, **kw))


def sent(actions) -> list[w.Message]:
    return [w.decode(a.data) for a in actions if isinstance(a, q.Send)]


def votes(actions) -> list:
    return [a.vote for a in actions if isinstance(a, q.WitnessChanged)]


def init_reply(seq, **kw):
    return w.encode_init_reply(seq, w.ReplyError.NO_ERROR, 1 << 15, 1 << 15, **kw)


def connect(c: q.QdeviceClient, now=0, tls=w.Tls.UNSUPPORTED):
    """Walk the handshake to CONNECTED; returns what went out after the init reply."""
    assert c.start(now) == [q.Connect()]
    pre = sent(c.on_connected(now))
    assert pre[0].type == w.MsgType.PREINIT and pre[0].cluster_name == "lab" and pre[0].seq == 1
    init = sent(c.on_data(w.encode_preinit_reply(1, tls, True), now))
    assert [m.type for m in init] == [w.MsgType.INIT] and init[0].seq == 2
    out = c.on_data(init_reply(2), now)
    assert c.state == q.State.CONNECTED
    return sent(out)


def test_handshake_sends_what_the_c_client_sends():
    c = client()
    msgs = connect(c)
    assert [m.type for m in msgs] == [w.MsgType.SET_OPTION, w.MsgType.NODE_LIST, w.MsgType.NODE_LIST]
    so, cfg, mem = msgs
    assert so.keep_active_partition == w.KeepActivePartition.ENABLED and so.seq == 3
    assert cfg.node_list_type == w.NodeListType.INITIAL_CONFIG and [n.node_id for n in cfg.nodes] == [1, 2]
    assert mem.node_list_type == w.NodeListType.MEMBERSHIP and [n.node_id for n in mem.nodes] == [1]
    assert mem.ring_id == w.RingId(1, 1) and mem.seq == 5
    assert c.vote is None


def test_init_carries_algorithm_node_id_heartbeat_and_ring():
    c = client(node=2, algorithm=w.Algorithm.LMS)
    c.start(0)
    c.on_connected(0)
    (init,) = sent(c.on_data(w.encode_preinit_reply(1, w.Tls.SUPPORTED, True), 0))
    assert (init.node_id, init.algorithm, init.heartbeat_interval) == (2, w.Algorithm.LMS, HB)
    assert init.tie_breaker == w.TieBreaker(w.TieBreakerMode.LOWEST) and init.ring_id == w.RingId(2, 2)
    assert init.supported_messages == tuple(w.MsgType) and init.supported_options == tuple(w.Opt)


def test_no_set_option_when_qnetd_does_not_know_keep_active_partition():
    c = client()
    c.start(0)
    c.on_connected(0)
    c.on_data(w.encode_preinit_reply(1, w.Tls.UNSUPPORTED, False), 0)
    out = sent(c.on_data(init_reply(2, supported_options=tuple(o for o in w.Opt if o != 23)), 0))
    assert [m.type for m in out] == [w.MsgType.NODE_LIST, w.MsgType.NODE_LIST]


def test_votes_map_to_true_false_none():
    c = client()
    connect(c)
    ring = w.RingId(1, 1)
    out = c.on_data(w.encode_node_list_reply(4, w.NodeListType.INITIAL_CONFIG, ring, w.Vote.ASK_LATER), 10)
    assert votes(out) == [] and c.vote is None
    out = c.on_data(w.encode_vote_info(1, ring, w.Vote.ACK), 11)
    assert votes(out) == [True] and sent(out)[0].type == w.MsgType.VOTE_INFO_REPLY and sent(out)[0].seq == 1
    assert votes(c.on_data(w.encode_node_list_reply(5, w.NodeListType.MEMBERSHIP, ring, w.Vote.NO_CHANGE), 12)) == []
    assert c.vote is True
    assert votes(c.on_data(w.encode_vote_info(2, ring, w.Vote.NACK), 13)) == [False]
    assert votes(c.on_data(w.encode_vote_info(3, ring, w.Vote.WAIT_FOR_REPLY), 14)) == [None]
    assert votes(c.on_data(w.encode_vote_info(4, ring, w.Vote.ACK), 15)) == [True]
    assert c.status(20)["vote"] == "ack" and c.status(20)["vote_changed_ms_ago"] == 5


def test_a_vote_for_another_ring_changes_nothing():
    c = client()
    connect(c)
    out = c.on_data(w.encode_vote_info(1, w.RingId(1, 3), w.Vote.ACK), 10)
    assert votes(out) == [] and c.vote is None and c.counters["old-ring"] == 1
    assert sent(out)[0].type == w.MsgType.VOTE_INFO_REPLY  # still answered


def test_membership_change_reports_the_answer_for_the_new_ring_even_when_it_repeats():
    c = client()
    connect(c)
    c.on_data(w.encode_vote_info(1, w.RingId(1, 1), w.Vote.ACK), 10)
    out = c.set_membership({1, 2}, 20)
    assert votes(out) == []  # quiet until qnetd answers for the new ring
    (mem,) = sent(out)
    assert mem.ring_id == w.RingId(1, 3) and [n.node_id for n in mem.nodes] == [1, 2]
    assert c.status(20)["answer_pending"] is True
    assert c.set_membership({2, 1}, 21) == []  # same view: nothing
    # a late vote for the old ring: ignored; WAIT_FOR_REPLY for the new one: still quiet
    assert votes(c.on_data(w.encode_vote_info(2, w.RingId(1, 1), w.Vote.NACK), 22)) == []
    assert votes(c.on_data(w.encode_vote_info(3, w.RingId(1, 3), w.Vote.WAIT_FOR_REPLY), 23)) == []
    out = c.on_data(w.encode_vote_info(4, w.RingId(1, 3), w.Vote.ACK), 24)
    assert votes(out) == [True] and "ring 1.3" in out[0].detail  # same value, reported again
    assert c.status(25)["answer_pending"] is False
    assert votes(c.on_data(w.encode_vote_info(5, w.RingId(1, 3), w.Vote.ACK), 26)) == []  # a repeat now is not


def test_no_answer_for_the_new_ring_in_time_reports_none():
    c = client()
    connect(c)
    c.on_data(w.encode_vote_info(1, w.RingId(1, 1), w.Vote.ACK), 10)
    c.set_membership({1, 2}, 100)
    c.on_data(w.encode_vote_info(2, w.RingId(1, 3), w.Vote.WAIT_FOR_REPLY), 101)
    assert c.next_deadline() == HB  # the echo first
    c.on_timer(HB)
    c.on_data(w.encode_echo_reply(w.encode_echo_request(1)), HB + 1)
    out = c.on_timer(100 + 2 * HB)
    (changed,) = [a for a in out if isinstance(a, q.WitnessChanged)]
    assert changed.vote is None and "no ACK/NACK for ring 1.3" in changed.detail
    assert c.state == q.State.CONNECTED and c.counters["answer-timeout"] == 1


def test_membership_change_while_disconnected_reports_none_at_once():
    c = client()
    c.start(0)
    out = c.set_membership({1, 2}, 5)
    assert votes(out) == [None] and "not connected" in out[0].detail


def test_membership_before_connecting_goes_into_init():
    c = client(node=2)
    c.set_membership({1}, 0)
    c.start(0)
    c.on_connected(0)
    (init,) = sent(c.on_data(w.encode_preinit_reply(1, w.Tls.UNSUPPORTED, True), 0))
    assert init.ring_id == w.RingId(1, 3)


def test_echo_every_heartbeat_and_lost_when_a_reply_is_missing():
    c = client()
    connect(c, now=0)
    c.on_data(w.encode_vote_info(1, w.RingId(1, 1), w.Vote.ACK), 5)
    assert c.next_deadline() == HB
    assert c.on_timer(HB - 1) == []
    (echo,) = sent(c.on_timer(HB))
    assert echo.type == w.MsgType.ECHO_REQUEST and echo.seq == 1
    assert c.on_data(w.encode_echo_reply(w.encode_echo_request(1)), HB + 3) == []
    (echo,) = sent(c.on_timer(2 * HB))
    assert echo.seq == 2
    out = c.on_timer(3 * HB)  # no reply to echo 2
    assert isinstance(out[0], q.Close) and "no echo reply" in out[0].reason and votes(out) == [None]
    assert c.state == q.State.IDLE and c.next_deadline() == 3 * HB + 1000
    assert c.on_timer(3 * HB + 1000) == [q.Connect()]


def test_wrong_echo_seq_disconnects():
    c = client()
    connect(c)
    c.on_timer(HB)
    out = c.on_data(w.encode_echo_reply(w.encode_echo_request(7)), HB + 1)
    assert isinstance(out[0], q.Close) and c.counters["bad-echo-seq"] == 1


def test_back_off_doubles_to_the_cap_and_resets_after_a_session():
    c = client(retry_min=100, retry_max=350)
    c.start(0)
    at = 0
    for delay in (100, 200, 350, 350):
        c.on_closed(at, "refused")
        assert c.next_deadline() == at + delay
        at += delay
        assert c.on_timer(at) == [q.Connect()]
    c.on_connected(at)
    c.on_data(w.encode_preinit_reply(1, w.Tls.UNSUPPORTED, True), at)
    c.on_data(init_reply(2), at)
    c.on_closed(at + 5, "qnetd closed the connection")
    assert c.next_deadline() == at + 5 + 100 and c.last_error == "qnetd closed the connection"


def test_connect_timeout():
    c = client(connect_timeout=500)
    c.start(0)
    c.on_connected(10)
    assert c.next_deadline() == 500
    out = c.on_timer(500)
    assert isinstance(out[0], q.Close) and "within 500 ms" in out[0].reason


def test_init_refused_names_the_error():
    c = client()
    c.start(0)
    c.on_connected(0)
    c.on_data(w.encode_preinit_reply(1, w.Tls.UNSUPPORTED, True), 0)
    out = c.on_data(w.encode_init_reply(2, w.ReplyError.DUPLICATE_NODE_ID, 1 << 15, 1 << 15), 1)
    assert out[0] == q.Close("qnetd refused init: duplicate-node-id") and c.state == q.State.IDLE


def test_init_reply_without_our_algorithm_is_refused():
    c = client(algorithm=w.Algorithm.LMS)
    c.start(0)
    c.on_connected(0)
    c.on_data(w.encode_preinit_reply(1, w.Tls.UNSUPPORTED, True), 0)
    out = c.on_data(init_reply(2, algorithms=(w.Algorithm.FFSPLIT,)), 1)
    assert "does not support algorithm lms" in out[0].reason


def test_reply_with_wrong_seq_is_refused():
    c = client()
    c.start(0)
    c.on_connected(0)
    out = c.on_data(w.encode_preinit_reply(9, w.Tls.UNSUPPORTED, True), 0)
    assert isinstance(out[0], q.Close) and c.counters["bad-seq"] == 1


def test_server_error_in_any_state():
    c = client()
    connect(c)
    out = c.on_data(w.encode_server_error(6, w.ReplyError.INVALID_MEMBERSHIP_NODE_LIST), 3)
    assert out[0] == q.Close("qnetd sent error invalid-membership-node-list")


def test_unexpected_message_is_counted_and_closes():
    c = client()
    c.start(0)
    c.on_connected(0)
    c.on_data(w.encode_preinit_reply(1, w.Tls.UNSUPPORTED, True), 0)
    out = c.on_data(w.encode_vote_info(1, w.RingId(1, 1), w.Vote.ACK), 1)  # before the init reply
    assert isinstance(out[0], q.Close) and c.counters["unexpected"] == 1 and c.vote is None


def test_garbage_is_counted_and_closes():
    c = client()
    connect(c)
    out = c.on_data(b"\x00\xff\x00\x00\x00\x00", 1)
    assert isinstance(out[0], q.Close) and c.counters["unknown-type"] == 1


def test_tls_on_needs_a_tls_server():
    c = client(tls=True)
    c.start(0)
    c.on_connected(0)
    out = c.on_data(w.encode_preinit_reply(1, w.Tls.UNSUPPORTED, False), 0)
    assert isinstance(out[0], q.Close) and "clear-text" in out[0].reason
    c = client(tls=False)
    c.start(0)
    c.on_connected(0)
    out = c.on_data(w.encode_preinit_reply(1, w.Tls.REQUIRED, True), 0)
    assert isinstance(out[0], q.Close) and "requires TLS" in out[0].reason


def test_tls_on_sends_starttls_then_init_after_the_handshake():
    c = client(tls=True)
    c.start(0)
    c.on_connected(0)
    out = c.on_data(w.encode_preinit_reply(1, w.Tls.SUPPORTED, True), 0)
    assert [m.type for m in sent(out)] == [w.MsgType.STARTTLS] and sent(out)[0].seq == 2
    assert out[-1] == q.StartTls() and c.state == q.State.WAIT_TLS
    (init,) = sent(c.on_tls_ready(5))
    assert init.type == w.MsgType.INIT and init.seq == 3
    assert c.on_data(init_reply(3), 6) and c.state == q.State.CONNECTED


def test_ask_later_asks_again_with_lms_only():
    c = client(algorithm=w.Algorithm.LMS)
    connect(c)
    c.on_data(w.encode_node_list_reply(5, w.NodeListType.MEMBERSHIP, w.RingId(1, 1), w.Vote.ASK_LATER), 10)
    out = sent(c.on_timer(10 + HB))
    assert [m.type for m in out] == [w.MsgType.ECHO_REQUEST, w.MsgType.ASK_FOR_VOTE]
    assert votes(c.on_data(w.encode_ask_for_vote_reply(out[1].seq, w.RingId(1, 1), w.Vote.ACK), 20 + HB)) == [True]
    f = client()
    connect(f)
    f.on_data(w.encode_node_list_reply(5, w.NodeListType.MEMBERSHIP, w.RingId(1, 1), w.Vote.ASK_LATER), 10)
    assert [m.type for m in sent(f.on_timer(10 + HB))] == [w.MsgType.ECHO_REQUEST]


def test_set_heartbeat_interval():
    c = client()
    connect(c)
    (so,) = sent(c.set_heartbeat_interval(3000, 100))
    assert so.type == w.MsgType.SET_OPTION and so.heartbeat_interval == 3000
    c.on_data(w.encode_set_option_reply(so.seq, heartbeat_interval=3000), 110)
    assert c.next_deadline() == 3110


def test_ring_ids():
    assert q.ring_id_for([2]) == w.RingId(2, 2)
    assert q.ring_id_for([1, 2]) == q.ring_id_for({2, 1}) == w.RingId(1, 3)
    big = q.ring_id_for([3, 100])
    assert big.node_id == 3 and big.seq != 0 and big == q.ring_id_for([100, 3]) != q.ring_id_for([3, 101])
    with pytest.raises(ValueError):
        q.ring_id_for([])


def test_inputs_that_do_not_fit_raise_transition_error():
    c = client()
    with pytest.raises(q.TransitionError, match="'idle' on event 'connected'"):
        c.on_connected(0)
    c.start(0)
    with pytest.raises(q.TransitionError):
        c.start(1)
    with pytest.raises(q.TransitionError):
        c.on_tls_ready(1)
    with pytest.raises(ValueError):
        client(node=3)
