"""The qdevice-net client: how a director asks corosync-qnetd for its witness vote (pure, fed `now`).

How it works. corosync-qdevice (qdevices/qdevice-net-*.c, 3.0.3) connects to qnetd over TCP and
walks a fixed handshake; this core walks the same one and returns what to do as actions:

    Connect -> (driver: connected) -> PREINIT (cluster name)
            <- PREINIT_REPLY (tls supported?, client cert required?)
      [tls] -> STARTTLS, StartTls -> (driver: tls ready)
            -> INIT (node id, algorithm, heartbeat interval, tie-breaker, ring id)
            <- INIT_REPLY (error code, sizes, algorithms the server knows)
            -> SET_OPTION (keep-active-partition tie-breaker, if the server knows the option)
            -> NODE_LIST initial config (every configured node id)
            -> NODE_LIST membership (the nodes this director sees, with a ring id)
            <- NODE_LIST_REPLY / VOTE_INFO (-> VOTE_INFO_REPLY) carry the vote
            -> ECHO_REQUEST every heartbeat interval, <- ECHO_REPLY

Functions this follows, by file: qdevice-net-send.c (`qdevice_net_send_preinit`, `_init`,
`_config_node_list`, `_membership_node_list`, `_set_option`, `_echo_request`, `_ask_for_vote`),
qdevice-net-msg-received.c (`qdevice_net_msg_received_preinit_reply` with its TLS compatibility
table, `_init_reply` and its checks, `_set_option_reply`, `_echo_reply`, `_node_list_reply`,
`_ask_for_vote_reply`, `_vote_info`, `_server_error`), qdevice-net-heuristics.c
(`qdevice_net_connect_heuristics_exec_result_callback`: what is sent after the init reply),
qdevice-net-echo-request-timer.c (`qdevice_net_echo_request_timer_callback`: a reply missing at
the next tick means the server is gone) and qdevice-net-cast-vote-timer.c
(`qdevice_net_cast_vote_timer_update`: ACK/NACK are votes, WAIT_FOR_REPLY/ASK_LATER stop voting,
NO_CHANGE keeps the last one).

The vote handed to the cluster (`WitnessChanged.vote`): True for ACK, False for NACK, None for
everything else - not connected, lost (no echo reply in time), waiting (WAIT_FOR_REPLY,
ASK_LATER). A reply whose ring id is not the last one sent changes nothing (`ring_id_is_valid`
in the ffsplit/lms client algorithms). After a membership change the client says nothing until
qnetd answers ACK or NACK for the new ring (votequorum takes a qdevice vote only for the ring it
was cast for); that answer is always reported, even when it repeats the old vote, with the members it is for,
because the quorum core waits for it ("syncing", cluster/quorum.py) and ignores a report for
other members. qnetd may
answer WAIT_FOR_REPLY for a while (ffsplit waits until every connected member sends the same
ring, i.e. until the peer noticed the change too); if no ACK/NACK comes within `answer_timeout`
the client reports None.

Differences from the C client, on purpose: there is no votequorum, so the ring id is built from
this director's membership view (`ring_id_for`: node id = the lowest member, seq = the members'
bitmask), the same on every director that sees the same members; qnetd's ffsplit and lms only
compare ring ids for equality and need seq != 0. No quorum node list and no heuristics are sent
(qnetd's ffsplit ignores the quorum list; heuristics are optional). TLS `on` means required: a
server without TLS is refused, never used in clear. Reconnecting backs off from `retry_min` to
`retry_max` instead of the C client's random pause.

Transitions are a table (`_HANDLERS`: state x message type); a message that does not fit the state
is a protocol error: counted, and the connection is closed (the C client disconnects too).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Iterable

from . import qdevice_wire as w
from .membership import TransitionError as MembershipTransitionError
from .qdevice_wire import Algorithm, KeepActivePartition, MsgType, NodeListType, RingId, TieBreaker, Tls, Vote

# qnet-config.h QDEVICE_NET_DEFAULT_MIN_MSG_SEND_SIZE: a server that accepts less is refused
MIN_SEND_SIZE = 1 << 15
ALGORITHMS = {"ffsplit": Algorithm.FFSPLIT, "lms": Algorithm.LMS}


class State(str, Enum):
    IDLE = "idle"  # not connected; reconnects at `_retry_at`
    CONNECTING = "connecting"  # Connect returned, waiting for the driver's on_connected
    WAIT_PREINIT_REPLY = "wait-preinit-reply"
    WAIT_TLS = "wait-tls"  # STARTTLS sent, the driver runs the TLS handshake
    WAIT_INIT_REPLY = "wait-init-reply"
    CONNECTED = "connected"  # the C client's WAITING_VOTEQUORUM_CMAP_EVENTS


class TransitionError(MembershipTransitionError):
    """An input that does not fit the state (a bug in the driver, not a bad packet)."""

    def __init__(self, state: State, event: str) -> None:
        super().__init__("qdevice client", state.value, event)


# --------------------------------------------------------------------------- actions

@dataclass(frozen=True)
class Connect:
    """Open the TCP connection to qnetd; answer with on_connected or on_closed."""


@dataclass(frozen=True)
class Send:
    data: bytes
    what: str  # the message type, for the debug log


@dataclass(frozen=True)
class StartTls:
    """Start the TLS handshake on the open connection (after STARTTLS went out); answer with
    on_tls_ready or on_closed."""


@dataclass(frozen=True)
class Close:
    reason: str  # why the client gives up this connection (logged once, shown by status)


@dataclass(frozen=True)
class WitnessChanged:
    vote: bool | None  # what the quorum core is told (NodeCore.on_witness)
    detail: str  # e.g. "ACK for ring 1.3", "lost: no echo reply", "disconnected: refused"
    members: tuple[int, ...] = ()  # the node ids of the membership the vote is for (on_witness members=)


Action = Connect | Send | StartTls | Close | WitnessChanged


@dataclass(frozen=True)
class Settings:
    cluster_name: str
    node_id: int
    config_nodes: tuple[int, ...]  # every configured director's node id (this one included)
    algorithm: Algorithm = Algorithm.FFSPLIT
    heartbeat_interval: int = 8000  # ms; qnetd accepts 1000..120000 by default
    tls: bool = False  # True: TLS required
    tie_breaker: TieBreaker = TieBreaker()
    keep_active_partition: bool = True  # QDEVICE_NET_DEFAULT_KEEP_ACTIVE_PARTITION_TB
    connect_timeout: int | None = None  # ms until the init reply; None: the heartbeat interval
    retry_min: int = 1000  # ms before the first reconnect
    retry_max: int = 30_000
    answer_timeout: int | None = None  # ms for an ACK/NACK after a membership change; None: 2 x heartbeat


def ring_id_for(members: Iterable[int]) -> RingId:
    """The ring id of a membership view: the lowest member's id and, as seq, the bitmask of the
    members (node ids 1..64), else a 64-bit FNV-1a hash of the sorted ids; never 0 (qnetd's lms
    skips a client whose ring seq is 0, qnetd-algo-utils.c qnetd_algo_create_partitions)."""
    ids = sorted(set(members))
    if not ids:
        raise ValueError("a membership view has at least this node")
    if ids[-1] <= 64:
        seq = sum(1 << (i - 1) for i in ids)
    else:
        seq = 0xCBF29CE484222325
        for i in ids:
            for b in i.to_bytes(4, "big"):
                seq = ((seq ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        seq = seq or 1
    return RingId(ids[0], seq)


_VOTE_WORD = {Vote.ACK: "ACK", Vote.NACK: "NACK", Vote.ASK_LATER: "ask later",
              Vote.WAIT_FOR_REPLY: "wait for reply"}


def reply_error_name(code: int | None) -> str:
    if code is None:
        return "unknown"
    try:
        return w.ReplyError(code).name.lower().replace("_", "-")
    except ValueError:
        return f"error {code}"


class QdeviceClient:
    """One qdevice-net connection. Inputs: start, on_connected, on_tls_ready, on_data, on_closed,
    on_timer, set_membership, set_heartbeat_interval; each returns a list of actions. The driver
    re-arms one timer at next_deadline() after every input."""

    def __init__(self, settings: Settings) -> None:
        if settings.node_id not in settings.config_nodes:
            raise ValueError(f"node id {settings.node_id} is not among the configured {settings.config_nodes}")
        self.s = settings
        self.state = State.IDLE
        self.counters: Counter[str] = Counter()
        self._members: frozenset[int] = frozenset({settings.node_id})
        self._hb = settings.heartbeat_interval
        self._framer = w.Framer()
        self._seq = 1  # last_msg_seq_num (qdevice_net_instance_init: 1; preinit uses it as is)
        self._echo_expected = 0  # echo_request_expected_msg_seq_num
        self._echo_received = 0  # echo_reply_received_msg_seq_num
        self._last_sent_ring: RingId | None = None
        self._raw_vote: Vote | None = None  # cast_vote_timer_vote; None: not connected
        self._reported: bool | None = None
        self._deadline_connect: int | None = None
        self._echo_at: int | None = None
        self._ask_at: int | None = None
        self._retry_at: int | None = None
        self._retry_delay = settings.retry_min
        self._answer_at: int | None = None  # a membership change waits for ACK/NACK until then
        self._started = False
        self.server_tls: Tls | None = None
        self.connected_since: int | None = None
        self.last_error: str | None = None
        self.last_vote_change: int | None = None

    # ------------------------------------------------------------------ inputs

    def start(self, now: int) -> list[Action]:
        if self._started:
            raise TransitionError(self.state, "start")
        self._started = True
        return self._connect(now)

    def on_connected(self, now: int) -> list[Action]:
        """TCP is up: send the preinit (qdevice_net_send_preinit)."""
        if self.state != State.CONNECTING:
            raise TransitionError(self.state, "connected")
        self.state = State.WAIT_PREINIT_REPLY
        return [Send(w.encode_preinit(self.s.cluster_name, self._seq), "preinit")]

    def on_tls_ready(self, now: int) -> list[Action]:
        if self.state != State.WAIT_TLS:
            raise TransitionError(self.state, "tls ready")
        return self._send_init()

    def on_closed(self, now: int, reason: str) -> list[Action]:
        """The connection failed or ended (refused, reset, EOF, TLS handshake failed)."""
        if self.state == State.IDLE:
            return []
        return self._down(now, reason, close=False)

    def on_data(self, data: bytes, now: int) -> list[Action]:
        if self.state in (State.IDLE, State.CONNECTING):
            return []  # bytes of a connection already given up
        out: list[Action] = []
        try:
            frames = self._framer.feed(data)
        except w.WireError as e:
            self.counters[e.reason] += 1
            return self._down(now, f"bad message from qnetd: {e}")
        for frame in frames:
            if self.state in (State.IDLE, State.CONNECTING):
                break
            try:
                msg = w.decode(frame)
            except w.WireError as e:  # qdevice_net_msg_received: decode error -> disconnect
                self.counters[e.reason] += 1
                out += self._down(now, f"bad message from qnetd: {e}")
                break
            self.counters[f"rx-{msg.type.name.lower()}"] += 1
            handler = _HANDLERS.get((self.state, msg.type))
            if handler is None:
                if msg.type == MsgType.SERVER_ERROR:
                    handler = QdeviceClient._server_error
                else:
                    self.counters["unexpected"] += 1
                    out += self._down(now, f"unexpected {msg.type.name} in state {self.state.value}")
                    break
            out += handler(self, msg, now)
        return out

    def on_timer(self, now: int) -> list[Action]:
        out: list[Action] = []
        if self._deadline_connect is not None and now >= self._deadline_connect:
            return self._down(now, f"no answer from qnetd within {self._connect_timeout()} ms")
        if self.state == State.IDLE and self._retry_at is not None and now >= self._retry_at:
            return self._connect(now)
        if self.state == State.CONNECTED and self._echo_at is not None and now >= self._echo_at:
            # qdevice_net_echo_request_timer_callback
            if self._echo_received != self._echo_expected:
                self.counters["echo-timeout"] += 1
                return self._down(now, f"lost: no echo reply within {self._hb} ms")
            self._echo_expected += 1
            self._echo_at = now + self._hb
            out.append(Send(w.encode_echo_request(self._echo_expected), "echo request"))
        if self.state == State.CONNECTED and self._answer_at is not None and now >= self._answer_at:
            self._answer_at = None
            self.counters["answer-timeout"] += 1
            out += self._report(now, f"no ACK/NACK for ring {self.ring_id} within {self._answer_timeout()} ms",
                                force=True)
        if self.state == State.CONNECTED and self._ask_at is not None and now >= self._ask_at:
            self._ask_at = None
            if self._raw_vote == Vote.ASK_LATER:
                out += self._send_ask_for_vote()
        return out

    def set_membership(self, members: Iterable[int], now: int) -> list[Action]:
        """The directors this one sees (itself included). A changed view, when connected, sends
        the new membership node list (qdevice_model_net_votequorum_node_list_notify ->
        qdevice_net_send_membership_node_list); the next ACK/NACK for it is reported (see the
        module docstring). Not connected: None is reported at once (there is no answer to wait for)."""
        view = frozenset(members) | {self.s.node_id}
        if view == self._members:
            return []
        self._members = view
        if self.state != State.CONNECTED:
            return self._report(now, f"membership changed to ring {ring_id_for(view)}, not connected", force=True)
        self._raw_vote = Vote.WAIT_FOR_REPLY
        self._answer_at = now + self._answer_timeout()
        return self._send_membership()

    def set_heartbeat_interval(self, interval: int, now: int) -> list[Action]:
        """Ask the server for another heartbeat interval (qdevice_net_send_set_option; the C client
        does this around corosync sync); the echo timer follows on the reply."""
        self._hb = interval
        if self.state != State.CONNECTED:
            return []
        self._seq += 1
        return [Send(w.encode_set_option(self._seq, heartbeat_interval=interval), "set option")]

    def next_deadline(self) -> int | None:
        times = [t for t in (self._deadline_connect, self._echo_at if self.state == State.CONNECTED else None,
                             self._answer_at if self.state == State.CONNECTED else None,
                             self._ask_at if self.state == State.CONNECTED else None,
                             self._retry_at if self.state == State.IDLE else None) if t is not None]
        return min(times) if times else None

    # ------------------------------------------------------------------ what status shows

    @property
    def vote(self) -> bool | None:
        return self._reported

    @property
    def ring_id(self) -> RingId:
        return ring_id_for(self._members)

    def status(self, now: int) -> dict:
        return {
            "state": self.state.value,
            "vote": {True: "ack", False: "nack", None: None}[self._reported],
            "server_vote": _VOTE_WORD.get(self._raw_vote) if self._raw_vote is not None else None,
            "ring_id": str(self.ring_id),
            "answer_pending": self._answer_at is not None,
            "members": sorted(self._members),
            "node_id": self.s.node_id,
            "algorithm": self.s.algorithm.name.lower(),
            "tls": self.s.tls,
            "heartbeat_interval_ms": self._hb,
            "connected_for_ms": None if self.connected_since is None else now - self.connected_since,
            "last_error": self.last_error,
            "vote_changed_ms_ago": None if self.last_vote_change is None else now - self.last_vote_change,
            "counters": dict(self.counters),
        }

    # ------------------------------------------------------------------ internals

    def _answer_timeout(self) -> int:
        return self.s.answer_timeout or 2 * self.s.heartbeat_interval

    def _connect_timeout(self) -> int:
        return self.s.connect_timeout or self.s.heartbeat_interval

    def _connect(self, now: int) -> list[Action]:
        self.state = State.CONNECTING
        self._framer = w.Framer()
        self._seq = 1
        self._retry_at = None
        self._deadline_connect = now + self._connect_timeout()
        self.counters["connects"] += 1
        return [Connect()]

    def _down(self, now: int, reason: str, close: bool = True) -> list[Action]:
        """Give up this connection: vote None (the C ffsplit client sets NACK here; hadirector's
        quorum core tells "no witness" from "the witness said no"), reconnect after a back-off."""
        was_connected = self.state == State.CONNECTED
        out: list[Action] = [Close(reason)] if close else []
        self.state = State.IDLE
        self.last_error = reason
        self._deadline_connect = self._echo_at = self._ask_at = self._answer_at = None
        self._last_sent_ring = None
        self.connected_since = None
        if was_connected:
            self._retry_delay = self.s.retry_min
        self._retry_at = now + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, self.s.retry_max)
        self._raw_vote = None
        out += self._report(now, reason, force=True)
        return out

    def _report(self, now: int, detail: str, force: bool = False) -> list[Action]:
        vote = {Vote.ACK: True, Vote.NACK: False}.get(self._raw_vote) if self._raw_vote is not None else None
        if vote == self._reported and not force:
            return []
        self._reported = vote
        self.last_vote_change = now
        return [WitnessChanged(vote, detail, tuple(sorted(self._members)))]

    def _send_init(self) -> list[Action]:  # qdevice_net_send_init
        self._seq += 1
        ring = ring_id_for(self._members)
        self._last_sent_ring = ring
        self.state = State.WAIT_INIT_REPLY
        return [Send(w.encode_init(self._seq, self.s.algorithm, self.s.node_id, self._hb,
                                   self.s.tie_breaker, ring), "init")]

    def _send_membership(self) -> list[Action]:  # qdevice_net_send_membership_node_list
        self._seq += 1
        ring = ring_id_for(self._members)
        self._last_sent_ring = ring
        return [Send(w.encode_node_list(self._seq, NodeListType.MEMBERSHIP, sorted(self._members), ring_id=ring),
                     f"membership node list {sorted(self._members)} ring {ring}")]

    def _send_ask_for_vote(self) -> list[Action]:  # qdevice_net_send_ask_for_vote
        self._seq += 1
        return [Send(w.encode_ask_for_vote(self._seq), "ask for vote")]

    def _cast(self, vote: Vote | None, msg: w.Message, now: int, what: str) -> list[Action]:
        """qdevice_net_cast_vote_timer_update, after the algorithm's ring id check."""
        if msg.ring_id != self._last_sent_ring:
            self.counters["old-ring"] += 1
            return []
        if vote is None or vote == Vote.NO_CHANGE:
            return []
        self._raw_vote = vote
        if vote == Vote.ASK_LATER and self.s.algorithm == Algorithm.LMS:
            # qnetd's lms answers ask-for-vote; its ffsplit refuses it
            # (qnetd_algo_ffsplit_ask_for_vote_received: UNSUPPORTED_DECISION_ALGORITHM_MESSAGE)
            self._ask_at = now + self._hb
        answered = vote in (Vote.ACK, Vote.NACK) and self._answer_at is not None
        if self._answer_at is not None and not answered:
            return []  # still waiting for qnetd's answer to the new membership: keep quiet
        self._answer_at = None
        return self._report(now, f"{_VOTE_WORD.get(vote, vote.name)} for ring {msg.ring_id} ({what})",
                            force=answered)

    # ------------------------------------------------------------------ message handlers

    def _check_seq(self, msg: w.Message, now: int, what: str) -> list[Action] | None:
        # qdevice_net_msg_check_seq_number
        if msg.seq != self._seq:
            self.counters["bad-seq"] += 1
            return self._down(now, f"{what} without the expected seq number {self._seq} (got {msg.seq})")
        return None

    def _preinit_reply(self, msg: w.Message, now: int) -> list[Action]:
        bad = self._check_seq(msg, now, "preinit reply")
        if bad is not None:
            return bad
        if msg.tls_supported is None or msg.tls_client_cert_required is None:
            return self._down(now, "preinit reply without tls_supported / tls_client_cert_required")
        self.server_tls = msg.tls_supported
        # qdevice_net_msg_received_check_tls_compatibility with the client at REQUIRED (tls on)
        # or UNSUPPORTED (tls off)
        if self.s.tls:
            if msg.tls_supported == Tls.UNSUPPORTED:
                return self._down(now, "tls on here but qnetd runs without TLS (-s off): refusing a clear-text witness")
            self._seq += 1
            self.state = State.WAIT_TLS
            return [Send(w.encode_starttls(self._seq), "starttls"), StartTls()]
        if msg.tls_supported == Tls.REQUIRED:
            return self._down(now, "tls off here but qnetd requires TLS (-s required)")
        return self._send_init()

    def _init_reply(self, msg: w.Message, now: int) -> list[Action]:
        bad = self._check_seq(msg, now, "init reply")
        if bad is not None:
            return bad
        if msg.reply_error_code is None:
            return self._down(now, "init reply without an error code")
        if msg.reply_error_code != w.ReplyError.NO_ERROR:
            return self._down(now, f"qnetd refused init: {reply_error_name(msg.reply_error_code)}")
        if msg.server_maximum_request_size is None or msg.server_maximum_reply_size is None:
            return self._down(now, "init reply without maximum request / reply size")
        if msg.supported_messages is None or msg.supported_options is None:
            return self._down(now, "init reply without supported messages / options")
        if msg.supported_algorithms is None:
            return self._down(now, "init reply without supported decision algorithms")
        if msg.server_maximum_request_size < MIN_SEND_SIZE:
            return self._down(now, f"qnetd accepts at most {msg.server_maximum_request_size} bytes")
        if msg.server_maximum_reply_size > w.MAX_RECEIVE_SIZE:
            return self._down(now, f"qnetd may send {msg.server_maximum_reply_size} bytes, more than {w.MAX_RECEIVE_SIZE}")
        if self.s.algorithm not in msg.supported_algorithms:
            return self._down(now, f"qnetd does not support algorithm {self.s.algorithm.name.lower()}")
        self._framer.max_size = msg.server_maximum_reply_size
        self._deadline_connect = None
        self.state = State.CONNECTED
        self.connected_since = now
        self.last_error = None
        self._retry_delay = self.s.retry_min
        # qdevice_net_echo_request_timer_schedule
        self._echo_expected = self._echo_received = 0
        self._echo_at = now + self._hb
        out: list[Action] = []
        # qdevice_net_connect_heuristics_exec_result_callback: set option, config, membership
        if w.Opt.KEEP_ACTIVE_PARTITION_TIE_BREAKER in msg.supported_options:
            self._seq += 1
            kap = KeepActivePartition.ENABLED if self.s.keep_active_partition else KeepActivePartition.DISABLED
            out.append(Send(w.encode_set_option(self._seq, keep_active_partition=kap), "set option"))
        self._seq += 1
        out.append(Send(w.encode_node_list(self._seq, NodeListType.INITIAL_CONFIG, sorted(self.s.config_nodes)),
                        f"config node list {sorted(self.s.config_nodes)}"))
        out += self._send_membership()
        self._raw_vote = Vote.WAIT_FOR_REPLY
        return out

    def _set_option_reply(self, msg: w.Message, now: int) -> list[Action]:
        if msg.heartbeat_interval is not None:  # qdevice_net_msg_received_set_option_reply
            self._hb = msg.heartbeat_interval
            self._echo_expected = self._echo_received = 0
            self._echo_at = now + self._hb
        return []

    def _echo_reply(self, msg: w.Message, now: int) -> list[Action]:
        if msg.seq is None:
            return self._down(now, "echo reply without a seq number")
        if msg.seq != self._echo_expected:
            # the ffsplit and lms client algorithms disconnect on an unexpected echo seq
            self.counters["bad-echo-seq"] += 1
            return self._down(now, f"echo reply {msg.seq}, expected {self._echo_expected}")
        self._echo_received = msg.seq
        return []

    def _node_list_reply(self, msg: w.Message, now: int) -> list[Action]:
        if msg.vote is None or msg.seq is None or msg.node_list_type is None or msg.ring_id is None:
            return self._down(now, "node list reply without vote, seq, list type or ring id")
        return self._cast(msg.vote, msg, now, f"{msg.node_list_type.name.lower().replace('_', ' ')} reply")

    def _ask_for_vote_reply(self, msg: w.Message, now: int) -> list[Action]:
        if msg.vote is None or msg.seq is None or msg.ring_id is None:
            return self._down(now, "ask for vote reply without vote, seq or ring id")
        return self._cast(msg.vote, msg, now, "ask for vote reply")

    def _vote_info(self, msg: w.Message, now: int) -> list[Action]:
        if msg.vote is None or msg.seq is None or msg.ring_id is None:
            return self._down(now, "vote info without vote, seq or ring id")
        out = self._cast(msg.vote, msg, now, "vote info")
        return out + [Send(w.encode_vote_info_reply(msg.seq), "vote info reply")]

    def _server_error(self, msg: w.Message, now: int) -> list[Action]:
        return self._down(now, f"qnetd sent error {reply_error_name(msg.reply_error_code)}")


_C = State.CONNECTED
_HANDLERS: dict[tuple[State, MsgType], Callable[[QdeviceClient, w.Message, int], list[Action]]] = {
    (State.WAIT_PREINIT_REPLY, MsgType.PREINIT_REPLY): QdeviceClient._preinit_reply,
    (State.WAIT_INIT_REPLY, MsgType.INIT_REPLY): QdeviceClient._init_reply,
    (_C, MsgType.SET_OPTION_REPLY): QdeviceClient._set_option_reply,
    (_C, MsgType.ECHO_REPLY): QdeviceClient._echo_reply,
    (_C, MsgType.NODE_LIST_REPLY): QdeviceClient._node_list_reply,
    (_C, MsgType.ASK_FOR_VOTE_REPLY): QdeviceClient._ask_for_vote_reply,
    (_C, MsgType.VOTE_INFO): QdeviceClient._vote_info,
}
