"""NFLOG (nfnetlink_log) reader: the packets an nft `log group N prefix "..."` rule copies to
userspace. Flow sync (daemon/flowsync.py) puts such a rule in each DR real's new-flow chain, so
the active director hears of every new flow and of every flow that starts closing.

The protocol is the kernel's (include/uapi/linux/netfilter/nfnetlink_log.h, as libnetfilter_log's
nflog_bind_group / nflog_set_mode / nflog_set_qthresh / nflog_set_timeout send it):
NFULNL_MSG_CONFIG (subsystem NFNL_SUBSYS_ULOG) with NFULA_CFG_CMD BIND for the group,
NFULA_CFG_MODE (copy the first `copy_range` bytes of the packet), NFULA_CFG_QTHRESH and
NFULA_CFG_TIMEOUT (the kernel batches up to qthresh packets or timeout/100 s into one
datagram, fewer wake-ups at high rates) and NFULA_CFG_NLBUFSIZ (the batch buffer: the default,
NLMSG_GOODSIZE, fills after ~20 packets and flushes early); then NFULNL_MSG_PACKET messages with NFULA_PREFIX and
NFULA_PAYLOAD (at netdev ingress the payload starts at the IP header).

`parse(data)` is pure (one datagram -> [(prefix, payload)]); `flow_of(payload)` reads the client
address and source port; `parse_flows(data)` does both in one walk (flow sync's hot path); `NflogSocket` is the socket (non-blocking, for an event loop's reader).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct

from ..net.netns import netns_socket

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET, NFULNL_MSG_CONFIG = 0, 1
NFULA_CFG_CMD, NFULA_CFG_MODE, NFULA_CFG_NLBUFSIZ, NFULA_CFG_TIMEOUT, NFULA_CFG_QTHRESH = 1, 2, 3, 4, 5
NFULNL_CFG_CMD_BIND, NFULNL_CFG_CMD_UNBIND = 1, 2
NFULNL_COPY_PACKET = 2
NFULA_PAYLOAD, NFULA_PREFIX = 9, 10
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
SO_RCVBUFFORCE = 33  # asm-generic/socket.h
_NLH = struct.Struct("=IHHII")


def _attr(kind: int, data: bytes) -> bytes:
    n = 4 + len(data)
    return struct.pack("=HH", n, kind) + data + b"\0" * (-n % 4)


def config_message(group: int, attrs: list[bytes], seq: int) -> bytes:
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(group)) + b"".join(attrs)
    return _NLH.pack(_NLH.size + len(body), (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG,
                     NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


_ATTR = struct.Struct("=HH")
_PACKET = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET


def parse(data: bytes) -> list[tuple[str, bytes]]:
    """The (prefix, payload) of each NFULNL_MSG_PACKET in one netlink datagram; others skipped.
    (The hot path of flow sync on the active: one call per datagram of up to qthresh packets.)"""
    out = []
    off = 0
    end = len(data)
    nlh = _NLH.unpack_from
    attr = _ATTR.unpack_from
    while off + 16 <= end:
        length, kind, _flags, _seq, _pid = nlh(data, off)
        if length < 16 or off + length > end:
            break
        if kind == _PACKET:
            prefix, payload = "", b""
            a = off + 20  # after struct nfgenmsg
            stop = off + length
            while a + 4 <= stop:
                alen, atype = attr(data, a)
                if alen < 4:
                    break
                atype &= 0x7FFF
                if atype == NFULA_PREFIX:
                    prefix = data[a + 4:a + alen - 1].decode(errors="replace").rstrip("\0")
                elif atype == NFULA_PAYLOAD:
                    payload = data[a + 4:a + alen]
                    break  # the last attribute the kernel writes (nfnetlink_log.c __build_packet_message)
                a += (alen + 3) & ~3
            out.append((prefix, payload))
        off += (length + 3) & ~3
    return out


_INET_NTOA = socket.inet_ntoa


_LAYOUTS: dict[int, int] = {}  # message length << 16 | prefix attribute length -> payload offset
_LEN_KIND = struct.Struct("=IH")  # nlmsg_len, nlmsg_type
_HDR_PREFIX = struct.Struct("=HH4xHH")  # NFULA_PACKET_HDR (4 bytes of data), NFULA_PREFIX headers


def parse_flows(data: bytes, end: int | None = None) -> list[tuple[bytes, str | None, int]]:
    """The hot path of flow sync: (prefix bytes, client address, source port) of each
    NFULNL_MSG_PACKET in `data[:end]`, the address None when the payload is not an IPv4/IPv6
    TCP or UDP packet. `parse` + `flow_of` in one pass, without a string per prefix (the caller
    keys a dict on the prefix bytes).

    The kernel writes NFULA_PACKET_HDR (8 bytes) first, NFULA_PREFIX second and NFULA_PAYLOAD
    last (nfnetlink_log.c __build_packet_message); the attributes between (interface, hardware
    header, timestamp) are the same for every packet of one rule, so a message of the same
    length and prefix length has its payload at the same offset: that offset is remembered and
    checked (an NFULA_PAYLOAD attribute that ends the message exactly), else the attributes are
    walked."""
    out: list[tuple[bytes, str | None, int]] = []
    off = 0
    if end is None:
        end = len(data)
    nlh = _LEN_KIND.unpack_from
    attr = _ATTR.unpack_from
    hp = _HDR_PREFIX.unpack_from
    append = out.append
    layouts = _LAYOUTS
    ntoa = _INET_NTOA
    while off + 16 <= end:
        length, kind = nlh(data, off)
        if length < 16 or off + length > end:
            break
        if kind == _PACKET:
            if length >= 36:  # the fast path: a remembered layout, IPv4 without options
                hlen, _ht, plen, ptype = hp(data, off + 20)
                if hlen == 8 and ptype & 0x7FFF == NFULA_PREFIX and plen >= 5:
                    rel = layouts.get(length << 16 | plen)
                    if rel is not None:
                        alen, atype = attr(data, off + rel)
                        p = off + rel + 4
                        if atype & 0x7FFF == NFULA_PAYLOAD and rel + ((alen + 3) & ~3) == length \
                                and alen >= 26 and data[p] == 0x45 and data[p + 9] in (6, 17):
                            append((data[off + 32:off + 27 + plen], ntoa(data[p + 12:p + 16]),
                                    (data[p + 20] << 8) | data[p + 21]))
                            off += (length + 3) & ~3
                            continue
            prefix = b""
            flow = None
            a = off + 20
            stop = off + length
            while a + 4 <= stop:
                alen, atype = attr(data, a)
                if alen < 4:
                    break
                atype &= 0x7FFF
                if atype == NFULA_PREFIX:
                    prefix = data[a + 4:a + alen - 1]
                elif atype == NFULA_PAYLOAD:
                    if a + ((alen + 3) & ~3) == stop:
                        layouts[length << 16 | (len(prefix) + 5)] = a - off
                    flow = flow_of(data[a + 4:a + alen])
                    break
                a += (alen + 3) & ~3
            append((prefix, None, 0) if flow is None else (prefix, flow[0], flow[1]))
        off += (length + 3) & ~3
    return out


def flow_of(payload: bytes) -> tuple[str, int] | None:
    """(client address, source port) of an IPv4/IPv6 TCP or UDP packet; None if not one."""
    if len(payload) < 1:
        return None
    v = payload[0] >> 4
    if v == 4 and len(payload) >= 20:
        ihl = (payload[0] & 0x0F) * 4
        if payload[9] not in (6, 17) or len(payload) < ihl + 2:
            return None
        return socket.inet_ntoa(payload[12:16]), (payload[ihl] << 8) | payload[ihl + 1]
    if v == 6 and len(payload) >= 42:
        if payload[6] not in (6, 17):  # no extension headers expected on a flow's packets
            return None
        return str(ipaddress.IPv6Address(payload[8:24])), (payload[40] << 8) | payload[41]
    return None


class NflogSocket:
    """Bound to one NFLOG group in `netns`; `read()` returns the (prefix, payload) pairs that
    are waiting (non-blocking), `fileno()` for loop.add_reader."""

    def __init__(self, group: int, netns: str | None = None, *, copy_range: int = 48,
                 qthresh: int = 256, timeout_cs: int = 1, nlbufsiz: int = 128 << 10,
                 rcvbuf: int = 8 << 20):
        self.group = group
        self.sock = netns_socket(netns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            try:  # past net.core.rmem_max (root): a burst must not overflow it
                self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
            except OSError:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.bind((0, 0))
            self.sock.settimeout(2.0)
            seq = 1
            for attrs in ([_attr(NFULA_CFG_CMD, struct.pack("=B", NFULNL_CFG_CMD_BIND))],
                          [_attr(NFULA_CFG_MODE, struct.pack("!IBB", copy_range, NFULNL_COPY_PACKET, 0))],
                          # the kernel's batch buffer: its default (NLMSG_GOODSIZE, about 4 KiB)
                          # holds ~20 of our packet messages, so a datagram was flushed well
                          # before qthresh; nfulnl_set_nlbufsiz accepts up to 128 KiB
                          [_attr(NFULA_CFG_NLBUFSIZ, struct.pack("!I", nlbufsiz))],
                          [_attr(NFULA_CFG_QTHRESH, struct.pack("!I", qthresh))],
                          [_attr(NFULA_CFG_TIMEOUT, struct.pack("!I", timeout_cs))]):
                self.sock.send(config_message(group, attrs, seq))
                ack = self.sock.recv(4096)
                length, kind, *_ = _NLH.unpack_from(ack)
                if kind == NLMSG_ERROR:
                    (err,) = struct.unpack_from("=i", ack, _NLH.size)
                    if err != 0:
                        raise OSError(-err, f"NFLOG group {group}: the kernel refused the "
                                      f"configuration: {os.strerror(-err)}")
                seq += 1
            self.sock.setblocking(False)
        except BaseException:
            self.sock.close()
            raise
        self.overruns = 0  # ENOBUFS: the kernel dropped messages (socket buffer full)
        self._buf = bytearray(1 << 18)  # one datagram (nlbufsiz at most, and one oversized packet)
        self._view = memoryview(self._buf)

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self, limit: int = 8) -> list[tuple[str, bytes]]:
        """At most `limit` datagrams (up to qthresh packets each): the event loop's other work
        (heartbeats) runs between two reads; the reader is called again while data waits."""
        out: list[tuple[str, bytes]] = []
        for _ in range(limit):
            try:
                data = self.sock.recv(1 << 18)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == 105:  # ENOBUFS
                    self.overruns += 1
                    continue
                raise
            out += parse(data)
        return out

    def read_flows(self, limit: int = 16) -> list[tuple[bytes, str | None, int]]:
        """`read` for flow sync: `parse_flows` of at most `limit` datagrams, received into one
        preallocated buffer until the socket has no more (EAGAIN)."""
        out: list[tuple[bytes, str | None, int]] = []
        recv_into = self.sock.recv_into
        view = self._view
        for _ in range(limit):
            try:
                n = recv_into(view)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == 105:  # ENOBUFS
                    self.overruns += 1
                    continue
                raise
            out += parse_flows(bytes(view[:n]))
        return out

    def close(self) -> None:
        try:
            self.sock.setblocking(True)
            self.sock.settimeout(0.5)
            self.sock.send(config_message(self.group, [_attr(NFULA_CFG_CMD, struct.pack("=B", NFULNL_CFG_CMD_UNBIND))], 99))
        except OSError:
            pass
        self.sock.close()
