"""The qdevice-net wire format: what corosync-qdevice and corosync-qnetd say to each other over TCP.

Read from corosync-qdevice 3.0.3 (the version Debian 12 ships as `corosync-qnetd`), files
qdevices/msg.c, msg.h, tlv.c, tlv.h, msgio.c. A message is a 6-byte header and a list of TLVs,
every number big-endian (msg.c `msg_add_type`, `msg_add_len`, tlv.c `tlv_add`):

    offset size  field
    0      2     message type (`MsgType`)
    2      4     length L of what follows the header
    6      L     options: u16 type (`Opt`), u16 length N, N bytes value; repeated to the end

Option values (tlv.c `tlv_add_*` / `tlv_iter_decode_*`): u8, u16, u32 or u64 numbers; a string
without terminator (cluster name); u16 arrays (supported messages, options, algorithms); a ring
id (u32 node id + u64 seq, 12 bytes, `tlv_add_ring_id`); a tie-breaker (u8 mode + u32 node id,
5 bytes, `tlv_add_tie_breaker`); node info, itself a TLV list of node id, data center id and node
state (`tlv_add_node_info`). Unknown options are skipped (msg.c `msg_decode`: "protocol ignores
unknown options"); a known option of the wrong size, or a value outside its enum, is an error.

Each `encode_*` function builds exactly what the `msg_create_*` function of the same name in msg.c
builds, options in the same order, so the golden bytes in tests/fixtures/qdevice are what the C
code sends. `decode` raises nothing but `WireError`; `Framer` cuts a TCP byte stream into messages
and refuses a header whose type is unknown or whose length exceeds the limit (msgio.c
`msgio_read`: "Full header received. Check type, maximum size").
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from ..errors import HadirectorError

HEADER = struct.Struct(">HI")  # type, length (msg.c MSG_TYPE_LENGTH 2 + MSG_LENGTH_LENGTH 4)
TLV = struct.Struct(">HH")  # option type, option length (tlv.c TLV_TYPE_LENGTH, TLV_LENGTH_LENGTH)
# qnet-config.h QDEVICE_NET_DEFAULT_INITIAL_MSG_RECEIVE_SIZE: what a client accepts before the
# server's init reply says how large its replies may be (QDEVICE_NET_DEFAULT_MAX_MSG_RECEIVE_SIZE)
INITIAL_RECEIVE_SIZE = 1 << 15
MAX_RECEIVE_SIZE = 1 << 24


class MsgType(IntEnum):  # msg.h enum msg_type
    PREINIT = 0
    PREINIT_REPLY = 1
    STARTTLS = 2
    INIT = 3
    INIT_REPLY = 4
    SERVER_ERROR = 5
    SET_OPTION = 6
    SET_OPTION_REPLY = 7
    ECHO_REQUEST = 8
    ECHO_REPLY = 9
    NODE_LIST = 10
    NODE_LIST_REPLY = 11
    ASK_FOR_VOTE = 12
    ASK_FOR_VOTE_REPLY = 13
    VOTE_INFO = 14
    VOTE_INFO_REPLY = 15
    HEURISTICS_CHANGE = 16
    HEURISTICS_CHANGE_REPLY = 17


class Opt(IntEnum):  # tlv.h enum tlv_opt_type
    MSG_SEQ_NUMBER = 0
    CLUSTER_NAME = 1
    TLS_SUPPORTED = 2
    TLS_CLIENT_CERT_REQUIRED = 3
    SUPPORTED_MESSAGES = 4
    SUPPORTED_OPTIONS = 5
    REPLY_ERROR_CODE = 6
    SERVER_MAXIMUM_REQUEST_SIZE = 7
    SERVER_MAXIMUM_REPLY_SIZE = 8
    NODE_ID = 9
    SUPPORTED_DECISION_ALGORITHMS = 10
    DECISION_ALGORITHM = 11
    HEARTBEAT_INTERVAL = 12
    RING_ID = 13
    CONFIG_VERSION = 14
    DATA_CENTER_ID = 15
    NODE_STATE = 16
    NODE_INFO = 17
    NODE_LIST_TYPE = 18
    VOTE = 19
    QUORATE = 20
    TIE_BREAKER = 21
    HEURISTICS = 22
    KEEP_ACTIVE_PARTITION_TIE_BREAKER = 23


class Tls(IntEnum):  # enum tlv_tls_supported
    UNSUPPORTED = 0
    SUPPORTED = 1
    REQUIRED = 2


class ReplyError(IntEnum):  # enum tlv_reply_error_code
    NO_ERROR = 0
    UNSUPPORTED_NEEDED_MESSAGE = 1
    UNSUPPORTED_NEEDED_OPTION = 2
    TLS_REQUIRED = 3
    UNSUPPORTED_MESSAGE = 4
    MESSAGE_TOO_LONG = 5
    PREINIT_REQUIRED = 6
    DOESNT_CONTAIN_REQUIRED_OPTION = 7
    UNEXPECTED_MESSAGE = 8
    ERROR_DECODING_MSG = 9
    INTERNAL_ERROR = 10
    INIT_REQUIRED = 11
    UNSUPPORTED_DECISION_ALGORITHM = 12
    INVALID_HEARTBEAT_INTERVAL = 13
    UNSUPPORTED_DECISION_ALGORITHM_MESSAGE = 14
    TIE_BREAKER_DIFFERS_FROM_OTHER_NODES = 15
    ALGORITHM_DIFFERS_FROM_OTHER_NODES = 16
    DUPLICATE_NODE_ID = 17
    INVALID_CONFIG_NODE_LIST = 18
    INVALID_MEMBERSHIP_NODE_LIST = 19


class Algorithm(IntEnum):  # enum tlv_decision_algorithm_type
    TEST = 0
    FFSPLIT = 1
    TWO_NODE_LMS = 2
    LMS = 3


class NodeState(IntEnum):  # enum tlv_node_state
    NOT_SET = 0
    MEMBER = 1
    DEAD = 2
    LEAVING = 3


class NodeListType(IntEnum):  # enum tlv_node_list_type
    INITIAL_CONFIG = 0
    CHANGED_CONFIG = 1
    MEMBERSHIP = 2
    QUORUM = 3


class Vote(IntEnum):  # enum tlv_vote
    UNDEFINED = 0
    ACK = 1
    NACK = 2
    ASK_LATER = 3
    WAIT_FOR_REPLY = 4
    NO_CHANGE = 5


class Quorate(IntEnum):  # enum tlv_quorate
    INQUORATE = 0
    QUORATE = 1


class TieBreakerMode(IntEnum):  # enum tlv_tie_breaker_mode
    LOWEST = 1
    HIGHEST = 2
    NODE_ID = 3


class Heuristics(IntEnum):  # enum tlv_heuristics
    UNDEFINED = 0
    PASS = 1
    FAIL = 2


class KeepActivePartition(IntEnum):  # enum tlv_keep_active_partition_tie_breaker
    DISABLED = 0
    ENABLED = 1


# msg.c msg_static_supported_messages / tlv.c tlv_static_supported_options: what a 3.0.3 client
# announces in its init message (qdevice-net-send.c qdevice_net_send_init)
SUPPORTED_MESSAGES = tuple(MsgType)
SUPPORTED_OPTIONS = tuple(Opt)


class WireError(HadirectorError):
    """A message that cannot be decoded; `reason` names the fault (a counter key)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, order=True)
class RingId:  # struct tlv_ring_id
    node_id: int
    seq: int

    def __str__(self) -> str:  # corosync prints a ring id as node_id.seq (UTILS_PRI_RING_ID)
        return f"{self.node_id:x}.{self.seq:x}"


@dataclass(frozen=True)
class TieBreaker:  # struct tlv_tie_breaker
    mode: TieBreakerMode = TieBreakerMode.LOWEST
    node_id: int = 0  # only for NODE_ID


@dataclass(frozen=True)
class NodeInfo:  # struct tlv_node_info
    node_id: int
    data_center_id: int = 0  # 0: not set
    state: NodeState = NodeState.NOT_SET


@dataclass(frozen=True)
class Message:
    """A decoded message (msg.h struct msg_decoded); None means the option was absent."""

    type: MsgType
    seq: int | None = None
    cluster_name: str | None = None
    tls_supported: Tls | None = None
    tls_client_cert_required: bool | None = None
    supported_messages: tuple[int, ...] | None = None
    supported_options: tuple[int, ...] | None = None
    reply_error_code: int | None = None
    server_maximum_request_size: int | None = None
    server_maximum_reply_size: int | None = None
    node_id: int | None = None
    supported_algorithms: tuple[int, ...] | None = None
    algorithm: int | None = None
    heartbeat_interval: int | None = None
    ring_id: RingId | None = None
    config_version: int | None = None
    data_center_id: int | None = None
    node_state: NodeState | None = None
    nodes: tuple[NodeInfo, ...] = ()
    node_list_type: NodeListType | None = None
    vote: Vote | None = None
    quorate: Quorate | None = None
    tie_breaker: TieBreaker | None = None
    heuristics: Heuristics = Heuristics.UNDEFINED
    keep_active_partition: KeepActivePartition | None = None
    extra: dict[int, bytes] = field(default_factory=dict, compare=False)  # unknown options


# --------------------------------------------------------------------------- encoding

def _tlv(opt: int, value: bytes) -> bytes:  # tlv.c tlv_add
    if len(value) > 0xFFFF:
        raise ValueError(f"option {opt} too long ({len(value)} bytes)")
    return TLV.pack(opt, len(value)) + value


def _u8(opt: int, v: int) -> bytes:
    return _tlv(opt, struct.pack(">B", v))


def _u16(opt: int, v: int) -> bytes:
    return _tlv(opt, struct.pack(">H", v))


def _u32(opt: int, v: int) -> bytes:
    return _tlv(opt, struct.pack(">I", v))


def _u64(opt: int, v: int) -> bytes:
    return _tlv(opt, struct.pack(">Q", v))


def _u16_array(opt: int, values) -> bytes:  # tlv.c tlv_add_u16_array
    return _tlv(opt, b"".join(struct.pack(">H", int(v)) for v in values))


def _ring_id(r: RingId) -> bytes:  # tlv.c tlv_add_ring_id
    return _tlv(Opt.RING_ID, struct.pack(">IQ", r.node_id, r.seq))


def _tie_breaker(t: TieBreaker) -> bytes:  # tlv.c tlv_add_tie_breaker
    return _tlv(Opt.TIE_BREAKER, struct.pack(">BI", t.mode, t.node_id if t.mode == TieBreakerMode.NODE_ID else 0))


def _node_info(n: NodeInfo) -> bytes:  # tlv.c tlv_add_node_info: a sub-message of options
    body = _u32(Opt.NODE_ID, n.node_id)
    if n.data_center_id:
        body += _u32(Opt.DATA_CENTER_ID, n.data_center_id)
    if n.state != NodeState.NOT_SET:
        body += _u8(Opt.NODE_STATE, n.state)
    return _tlv(Opt.NODE_INFO, body)


def _msg(mtype: MsgType, *options: bytes) -> bytes:  # msg_add_type + msg_add_len + msg_set_len
    body = b"".join(options)
    return HEADER.pack(mtype, len(body)) + body


def _seq(seq: int | None) -> bytes:
    return b"" if seq is None else _u32(Opt.MSG_SEQ_NUMBER, seq)


def encode_preinit(cluster_name: str, seq: int | None) -> bytes:  # msg_create_preinit
    return _msg(MsgType.PREINIT, _seq(seq), _tlv(Opt.CLUSTER_NAME, cluster_name.encode()))


def encode_preinit_reply(seq: int | None, tls: Tls, client_cert_required: bool) -> bytes:
    # msg_create_preinit_reply
    return _msg(MsgType.PREINIT_REPLY, _seq(seq), _u8(Opt.TLS_SUPPORTED, tls),
                _u8(Opt.TLS_CLIENT_CERT_REQUIRED, int(client_cert_required)))


def encode_starttls(seq: int | None) -> bytes:  # msg_create_starttls
    return _msg(MsgType.STARTTLS, _seq(seq))


def encode_server_error(seq: int | None, code: ReplyError) -> bytes:  # msg_create_server_error
    return _msg(MsgType.SERVER_ERROR, _seq(seq), _u16(Opt.REPLY_ERROR_CODE, code))


def encode_init(seq: int | None, algorithm: Algorithm, node_id: int, heartbeat_interval: int,
                tie_breaker: TieBreaker, ring_id: RingId,
                supported_messages=SUPPORTED_MESSAGES, supported_options=SUPPORTED_OPTIONS) -> bytes:
    # msg_create_init (sent by qdevice-net-send.c qdevice_net_send_init)
    return _msg(MsgType.INIT, _seq(seq),
                _u16_array(Opt.SUPPORTED_MESSAGES, supported_messages) if supported_messages else b"",
                _u16_array(Opt.SUPPORTED_OPTIONS, supported_options) if supported_options else b"",
                _u32(Opt.NODE_ID, node_id), _u16(Opt.DECISION_ALGORITHM, algorithm),
                _u32(Opt.HEARTBEAT_INTERVAL, heartbeat_interval), _tie_breaker(tie_breaker),
                _ring_id(ring_id))


def encode_init_reply(seq: int | None, code: ReplyError, max_request: int, max_reply: int,
                      algorithms=(Algorithm.TEST, Algorithm.FFSPLIT, Algorithm.TWO_NODE_LMS, Algorithm.LMS),
                      supported_messages=SUPPORTED_MESSAGES, supported_options=SUPPORTED_OPTIONS) -> bytes:
    # msg_create_init_reply: the error code comes first and the seq number after the arrays
    return _msg(MsgType.INIT_REPLY, _u16(Opt.REPLY_ERROR_CODE, code),
                _u16_array(Opt.SUPPORTED_MESSAGES, supported_messages) if supported_messages else b"",
                _u16_array(Opt.SUPPORTED_OPTIONS, supported_options) if supported_options else b"",
                _seq(seq), _u32(Opt.SERVER_MAXIMUM_REQUEST_SIZE, max_request),
                _u32(Opt.SERVER_MAXIMUM_REPLY_SIZE, max_reply),
                _u16_array(Opt.SUPPORTED_DECISION_ALGORITHMS, algorithms) if algorithms else b"")


def _options(heartbeat_interval: int | None, kap: KeepActivePartition | None) -> tuple[bytes, bytes]:
    return (b"" if heartbeat_interval is None else _u32(Opt.HEARTBEAT_INTERVAL, heartbeat_interval),
            b"" if kap is None else _u8(Opt.KEEP_ACTIVE_PARTITION_TIE_BREAKER, kap))


def encode_set_option(seq: int | None, heartbeat_interval: int | None = None,
                      keep_active_partition: KeepActivePartition | None = None) -> bytes:
    # msg_create_set_option
    return _msg(MsgType.SET_OPTION, _seq(seq), *_options(heartbeat_interval, keep_active_partition))


def encode_set_option_reply(seq: int | None, heartbeat_interval: int | None = None,
                            keep_active_partition: KeepActivePartition | None = None) -> bytes:
    # msg_create_set_option_reply
    return _msg(MsgType.SET_OPTION_REPLY, _seq(seq), *_options(heartbeat_interval, keep_active_partition))


def encode_echo_request(seq: int | None) -> bytes:  # msg_create_echo_request
    return _msg(MsgType.ECHO_REQUEST, _seq(seq))


def encode_echo_reply(request: bytes) -> bytes:
    # msg_create_echo_reply: the request's bytes with the type changed
    return struct.pack(">H", MsgType.ECHO_REPLY) + request[2:]


def encode_node_list(seq: int, list_type: NodeListType, nodes, ring_id: RingId | None = None,
                     config_version: int | None = None, quorate: Quorate | None = None,
                     heuristics: Heuristics = Heuristics.UNDEFINED) -> bytes:
    # msg_create_node_list: seq, type, [ring id], [config version], [quorate], nodes, [heuristics]
    return _msg(MsgType.NODE_LIST, _u32(Opt.MSG_SEQ_NUMBER, seq), _u8(Opt.NODE_LIST_TYPE, list_type),
                b"" if ring_id is None else _ring_id(ring_id),
                b"" if config_version is None else _u64(Opt.CONFIG_VERSION, config_version),
                b"" if quorate is None else _u8(Opt.QUORATE, quorate),
                *(_node_info(n if isinstance(n, NodeInfo) else NodeInfo(int(n))) for n in nodes),
                b"" if heuristics == Heuristics.UNDEFINED else _u8(Opt.HEURISTICS, heuristics))


def encode_node_list_reply(seq: int, list_type: NodeListType, ring_id: RingId, vote: Vote) -> bytes:
    # msg_create_node_list_reply
    return _msg(MsgType.NODE_LIST_REPLY, _u32(Opt.MSG_SEQ_NUMBER, seq), _u8(Opt.NODE_LIST_TYPE, list_type),
                _ring_id(ring_id), _u8(Opt.VOTE, vote))


def encode_ask_for_vote(seq: int) -> bytes:  # msg_create_ask_for_vote
    return _msg(MsgType.ASK_FOR_VOTE, _u32(Opt.MSG_SEQ_NUMBER, seq))


def encode_ask_for_vote_reply(seq: int, ring_id: RingId, vote: Vote) -> bytes:  # msg_create_ask_for_vote_reply
    return _msg(MsgType.ASK_FOR_VOTE_REPLY, _u32(Opt.MSG_SEQ_NUMBER, seq), _u8(Opt.VOTE, vote), _ring_id(ring_id))


def encode_vote_info(seq: int, ring_id: RingId, vote: Vote) -> bytes:  # msg_create_vote_info
    return _msg(MsgType.VOTE_INFO, _u32(Opt.MSG_SEQ_NUMBER, seq), _u8(Opt.VOTE, vote), _ring_id(ring_id))


def encode_vote_info_reply(seq: int) -> bytes:  # msg_create_vote_info_reply
    return _msg(MsgType.VOTE_INFO_REPLY, _u32(Opt.MSG_SEQ_NUMBER, seq))


def encode_heuristics_change(seq: int, heuristics: Heuristics) -> bytes:  # msg_create_heuristics_change
    return _msg(MsgType.HEURISTICS_CHANGE, _u32(Opt.MSG_SEQ_NUMBER, seq), _u8(Opt.HEURISTICS, heuristics))


def encode_heuristics_change_reply(seq: int, ring_id: RingId, heuristics: Heuristics, vote: Vote) -> bytes:
    # msg_create_heuristics_change_reply
    return _msg(MsgType.HEURISTICS_CHANGE_REPLY, _u32(Opt.MSG_SEQ_NUMBER, seq), _u8(Opt.VOTE, vote),
                _ring_id(ring_id), _u8(Opt.HEURISTICS, heuristics))


# --------------------------------------------------------------------------- decoding

def _iter_tlvs(data: bytes, start: int):
    """Yield (type, value) of each option from `start` (tlv.c tlv_iter_next: an option that runs
    past the end of the message is an error)."""
    pos = start
    while pos < len(data):
        if pos + TLV.size > len(data):
            raise WireError("truncated-option", f"{len(data) - pos} bytes left at offset {pos}")
        opt, length = TLV.unpack_from(data, pos)
        end = pos + TLV.size + length
        if end > len(data):
            raise WireError("truncated-option", f"option {opt} of {length} bytes at offset {pos}")
        yield opt, data[pos + TLV.size:end]
        pos = end


def _num(opt: int, v: bytes, size: int) -> int:
    if len(v) != size:
        raise WireError("bad-option-size", f"option {Opt(opt).name} has {len(v)} bytes, expected {size}")
    return int.from_bytes(v, "big")


def _enum(enum, opt: int, value: int, allowed=None):
    allowed = set(enum) if allowed is None else allowed
    if value not in allowed:
        raise WireError("bad-option-value", f"option {Opt(opt).name} value {value}")
    return enum(value)


def _array(opt: int, v: bytes) -> tuple[int, ...]:  # tlv.c tlv_iter_decode_u16_array
    if len(v) % 2:
        raise WireError("bad-option-size", f"option {Opt(opt).name} has an odd length {len(v)}")
    return struct.unpack(f">{len(v) // 2}H", v)


def _decode_node_info(v: bytes) -> NodeInfo:  # tlv.c tlv_iter_decode_node_info
    node_id, dc, state = 0, 0, NodeState.NOT_SET
    for opt, val in _iter_tlvs(v, 0):
        if opt == Opt.NODE_ID:
            node_id = _num(opt, val, 4)
        elif opt == Opt.DATA_CENTER_ID:
            dc = _num(opt, val, 4)
        elif opt == Opt.NODE_STATE:
            state = _enum(NodeState, opt, _num(opt, val, 1), {1, 2, 3})
    if node_id == 0:
        raise WireError("bad-option-value", "node info without a node id")
    return NodeInfo(node_id, dc, state)


def decode(data: bytes) -> Message:
    """One whole message (header included) -> Message (msg.c msg_decode)."""
    if len(data) < HEADER.size:
        raise WireError("short-header", f"{len(data)} bytes")
    mtype, length = HEADER.unpack_from(data)
    if mtype not in MsgType._value2member_map_:
        raise WireError("unknown-type", f"message type {mtype}")
    if length != len(data) - HEADER.size:
        raise WireError("bad-length", f"header says {length}, have {len(data) - HEADER.size}")
    f: dict = {"nodes": [], "extra": {}}
    for opt, v in _iter_tlvs(data, HEADER.size):
        if opt == Opt.MSG_SEQ_NUMBER:
            f["seq"] = _num(opt, v, 4)
        elif opt == Opt.CLUSTER_NAME:
            f["cluster_name"] = v.decode("utf-8", "replace")
        elif opt == Opt.TLS_SUPPORTED:
            f["tls_supported"] = _enum(Tls, opt, _num(opt, v, 1))
        elif opt == Opt.TLS_CLIENT_CERT_REQUIRED:
            f["tls_client_cert_required"] = bool(_num(opt, v, 1))
        elif opt == Opt.SUPPORTED_MESSAGES:
            f["supported_messages"] = _array(opt, v)
        elif opt == Opt.SUPPORTED_OPTIONS:
            f["supported_options"] = _array(opt, v)
        elif opt == Opt.REPLY_ERROR_CODE:
            f["reply_error_code"] = _num(opt, v, 2)
        elif opt == Opt.SERVER_MAXIMUM_REQUEST_SIZE:
            f["server_maximum_request_size"] = _num(opt, v, 4)
        elif opt == Opt.SERVER_MAXIMUM_REPLY_SIZE:
            f["server_maximum_reply_size"] = _num(opt, v, 4)
        elif opt == Opt.NODE_ID:
            f["node_id"] = _num(opt, v, 4)
        elif opt == Opt.SUPPORTED_DECISION_ALGORITHMS:
            f["supported_algorithms"] = _array(opt, v)
        elif opt == Opt.DECISION_ALGORITHM:
            f["algorithm"] = _num(opt, v, 2)
        elif opt == Opt.HEARTBEAT_INTERVAL:
            f["heartbeat_interval"] = _num(opt, v, 4)
        elif opt == Opt.RING_ID:
            if len(v) != 12:
                raise WireError("bad-option-size", f"option RING_ID has {len(v)} bytes, expected 12")
            f["ring_id"] = RingId(*struct.unpack(">IQ", v))
        elif opt == Opt.CONFIG_VERSION:
            f["config_version"] = _num(opt, v, 8)
        elif opt == Opt.DATA_CENTER_ID:
            f["data_center_id"] = _num(opt, v, 4)
        elif opt == Opt.NODE_STATE:
            f["node_state"] = _enum(NodeState, opt, _num(opt, v, 1), {1, 2, 3})
        elif opt == Opt.NODE_INFO:
            f["nodes"].append(_decode_node_info(v))
        elif opt == Opt.NODE_LIST_TYPE:
            f["node_list_type"] = _enum(NodeListType, opt, _num(opt, v, 1))
        elif opt == Opt.VOTE:  # tlv_iter_decode_vote: UNDEFINED is not a valid value on the wire
            f["vote"] = _enum(Vote, opt, _num(opt, v, 1), {1, 2, 3, 4, 5})
        elif opt == Opt.QUORATE:
            f["quorate"] = _enum(Quorate, opt, _num(opt, v, 1))
        elif opt == Opt.TIE_BREAKER:
            if len(v) != 5:
                raise WireError("bad-option-size", f"option TIE_BREAKER has {len(v)} bytes, expected 5")
            mode, nid = struct.unpack(">BI", v)
            mode = _enum(TieBreakerMode, opt, mode)
            f["tie_breaker"] = TieBreaker(mode, nid if mode == TieBreakerMode.NODE_ID else 0)
        elif opt == Opt.HEURISTICS:
            f["heuristics"] = _enum(Heuristics, opt, _num(opt, v, 1), {1, 2})
        elif opt == Opt.KEEP_ACTIVE_PARTITION_TIE_BREAKER:
            f["keep_active_partition"] = _enum(KeepActivePartition, opt, _num(opt, v, 1))
        else:
            f["extra"][opt] = v
    f["nodes"] = tuple(f["nodes"])
    return Message(type=MsgType(mtype), **f)


class Framer:
    """Cuts a byte stream into whole messages (msgio.c msgio_read). `feed(data)` returns the
    complete messages; a header with an unknown type or a length over `max_size` (header
    included) raises WireError: the stream cannot be trusted after it, the caller disconnects."""

    def __init__(self, max_size: int = INITIAL_RECEIVE_SIZE) -> None:
        self.max_size = max_size
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out = []
        while len(self._buf) >= HEADER.size:
            mtype, length = HEADER.unpack_from(self._buf)
            if mtype not in MsgType._value2member_map_:
                raise WireError("unknown-type", f"message type {mtype}")
            if HEADER.size + length > self.max_size:
                raise WireError("oversized", f"{HEADER.size + length} bytes > {self.max_size}")
            if len(self._buf) < HEADER.size + length:
                break
            out.append(bytes(self._buf[:HEADER.size + length]))
            del self._buf[:HEADER.size + length]
        return out

    def pending(self) -> int:
        return len(self._buf)
