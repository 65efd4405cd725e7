"""Heartbeat links: UDP unicast, multicast and broadcast sockets, and serial lines.

`await open_link(link, on_datagram, netns=None)` opens one link of the config (`config.model.Link`)
and returns a `LinkTransport`: `send(data)` sends one datagram to every destination of the link and
never raises (errors are counted in `stats`); received datagrams are handed to
`on_datagram(link_name, data, addr)` (addr is (ip, port) for UDP, the device path for serial).
`close()` releases the socket or line.

UDP links follow ha.cf:
- ucast: one socket bound to udpport (694) on the link's interface; each datagram goes to every
  peer address except the node's own addresses, so one ha.cf that lists every node works on all
  of them (ha.cf `ucast eth0 ip`);
- mcast: bound to the group and port, joined on the interface, with the configured ttl and loop
  (ha.cf `mcast dev group port ttl loop`);
- bcast: sent to the interface's broadcast address (255.255.255.255 when it has none) with
  SO_BROADCAST (ha.cf `bcast dev`).
Every UDP socket is bound to its interface with SO_BINDTODEVICE, so a link only hears what arrives
on its own interface and sends out of it whatever the routing table says. No socket sets
SO_REUSEADDR: with it on both sides a second process (a second `hadirector run` for the node)
binds the same port and the kernel hands it the unicast heartbeats, so the first node goes deaf
and its peer declares it dead. Without it that second bind fails (EADDRINUSE) while ours lives,
and a restart needs no such option (UDP has no TIME_WAIT). heartbeat sets SO_REUSEADDR
(ucast.c ucast_make_receive_sock, bcast.c bcast_make_receive_sock, mcast.c) so that one process
can bind a reader per interface; SO_BINDTODEVICE before bind() already lets sockets on different
interfaces share a port (the kernel's UDP bind conflict test skips sockets bound to another
device). The one case left, two links of this node on the same interface and port (say ucast
and bcast on eth0), shares the port between those two sockets only: `open_link(shared=...)`
sets SO_REUSEADDR on both, and logs that another process could then bind it too. Datagrams that come from
one of the node's own addresses on the link's port (our broadcasts, multicast loop) are dropped and
counted as `own`. ICMP errors our datagrams draw (IP_RECVERR / IPV6_RECVERR, ip(7)) are read from
the socket's error queue: port unreachable ("nothing listens there") and host unreachable are
counted per destination and handed to `on_unreachable(link_name, (address, port), errno)`.

Serial links carry datagrams over a byte stream framed with SLIP (RFC 1055) around the payload and
a CRC-32 of it, so a frame cut by line noise is detected and dropped (counted in `bad_frames`) and
the next END byte resynchronises. Heartbeat's own serial protocol is not spoken: a serial link
connects two hadirector nodes. The line is opened with pyserial (8N1, the link's baud rate); a
line that fails (EOF, EIO) is reopened every few seconds.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import socket
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Callable

from ..config.model import Link
from ..errors import HadirectorError
from . import netlink
from .netns import NetnsError, netns_socket

log = logging.getLogger(__name__)

OnDatagram = Callable[[str, bytes, Any], None]
OnUnreachable = Callable[[str, tuple, int], None]
IP_RECVERR = 11  # linux/in.h
IPV6_RECVERR = 25  # linux/in6.h
SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6 = 2, 3
SOCK_EXTENDED_ERR = struct.Struct("=IBBBBII")  # ee_errno, origin, type, code, pad, info, data
MAX_DATAGRAM = 65535
RECV_BATCH = 64  # datagrams read per wake-up, so one busy link cannot starve the loop
SERIAL_MAX_PENDING = 64 * 1024  # bytes queued for a slow line before new datagrams are dropped
SERIAL_REOPEN_S = 5.0


class TransportError(HadirectorError):
    """A link could not be opened (no such interface, no permission, ...). `code` is the errno."""

    def __init__(self, message: str, code: int = 0):
        super().__init__(message, errno=code)
        self.code = code


@dataclass
class LinkStats:
    sent: int = 0
    send_errors: int = 0
    received: int = 0
    recv_errors: int = 0
    own: int = 0  # our own datagrams heard back, dropped
    bad_frames: int = 0  # serial: CRC or framing errors, dropped
    callback_errors: int = 0
    icmp_errors: int = 0  # ICMP errors our datagrams drew (port/host unreachable...)
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class LinkTransport:
    """One open link. Subclasses implement `send` and `close`."""

    def __init__(self, link: Link, on_datagram: OnDatagram, on_unreachable: OnUnreachable | None = None):
        self.link = link
        self.name = link.name
        self.on_datagram = on_datagram
        self.on_unreachable = on_unreachable
        self.unreachable: dict[tuple, int] = {}  # (address, port) -> ICMP errors drawn
        self.stats = LinkStats()
        self.closed = False

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _deliver(self, data: bytes, addr: Any) -> None:
        self.stats.received += 1
        try:
            self.on_datagram(self.name, data, addr)
        except Exception:  # noqa: BLE001 - a consumer bug must not kill the link
            self.stats.callback_errors += 1
            log.exception("link %s: datagram handler raised", self.name)

    def _send_error(self, e: OSError | str) -> None:
        self.stats.send_errors += 1
        self.stats.last_error = e if isinstance(e, str) else (e.strerror or str(e))


# --------------------------------------------------------------------------- UDP

class UdpLink(LinkTransport):
    def __init__(self, link: Link, on_datagram: OnDatagram, socks: list[socket.socket],
                 destinations: list[tuple], local: set[str], on_unreachable: OnUnreachable | None = None):
        super().__init__(link, on_datagram, on_unreachable)
        self.socks = socks
        self.destinations = destinations
        self.local = local
        self._loop = asyncio.get_running_loop()
        for s in socks:
            self._loop.add_reader(s.fileno(), self._readable, s)

    @property
    def up(self) -> bool:
        """Open (whether peers hear us is for the membership core to tell)."""
        return not self.closed

    def _sock_for(self, dest: tuple) -> socket.socket:
        family = socket.AF_INET6 if ":" in dest[0] else socket.AF_INET
        for s in self.socks:
            if s.family == family:
                return s
        return self.socks[0]

    def send(self, data: bytes) -> None:
        if self.closed:
            self._send_error("link closed")
            return
        for dest in self.destinations:
            try:
                self._sock_for(dest).sendto(data, dest)
                self.stats.sent += 1
            except OSError as e:  # EAGAIN, ENETUNREACH, ENETDOWN, EMSGSIZE...: counted, never fatal
                self._send_error(e)

    def _readable(self, sock: socket.socket) -> None:
        for _ in range(RECV_BATCH):
            try:
                data, addr = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:  # the socket's pending ICMP error (IP_RECVERR): details below
                self.stats.recv_errors += 1
                self.stats.last_error = e.strerror or str(e)
                continue
            host = addr[0].split("%", 1)[0]
            if host in self.local and addr[1] == self.link.port:
                self.stats.own += 1
                continue
            self._deliver(data, (host, addr[1]))
        self._read_errors(sock)

    def _read_errors(self, sock: socket.socket) -> None:
        """Drain the error queue (an unread one keeps the socket signalling EPOLLERR)."""
        for _ in range(RECV_BATCH):
            try:
                _, ancdata, _, addr = sock.recvmsg(512, 512, socket.MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            for level, kind, blob in ancdata:
                if (level, kind) not in ((socket.IPPROTO_IP, IP_RECVERR), (socket.IPPROTO_IPV6, IPV6_RECVERR)):
                    continue
                if len(blob) < SOCK_EXTENDED_ERR.size:
                    continue
                err, origin, _type, _code, _, _, _ = SOCK_EXTENDED_ERR.unpack_from(blob)
                if origin not in (SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6) or not addr:
                    continue
                dest = (addr[0].split("%", 1)[0], addr[1])
                self.stats.icmp_errors += 1
                self.unreachable[dest] = self.unreachable.get(dest, 0) + 1
                self.stats.last_error = f"{dest[0]}:{dest[1]}: {os.strerror(err)}"
                if self.on_unreachable is not None:
                    try:
                        self.on_unreachable(self.name, dest, err)
                    except Exception:  # noqa: BLE001
                        self.stats.callback_errors += 1
                        log.exception("link %s: unreachable handler raised", self.name)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for s in self.socks:
            try:
                self._loop.remove_reader(s.fileno())
            except (ValueError, RuntimeError):
                pass
            s.close()


class SharedPorts:
    """The UDP ports this daemon's links have bound, by (family, interface, port), so that two of
    its own links on one interface and port can share it (see the module text)."""

    def __init__(self) -> None:
        self.bound: dict[tuple[int, str, int], list[socket.socket]] = {}

    def add(self, s: socket.socket, ifname: str, port: int) -> None:
        self.bound.setdefault((s.family, ifname, port), []).append(s)

    def share(self, s: socket.socket, ifname: str, port: int) -> bool:
        """After EADDRINUSE: if our own socket holds the port, let `s` share it. True when set."""
        ours = [o for o in self.bound.get((s.family, ifname, port), []) if o.fileno() != -1]
        if not ours:
            return False
        for o in ours + [s]:
            o.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        log.warning("two heartbeat links of this node listen on port %d of %s: SO_REUSEADDR is set "
                    "on both so they can share it, which lets another process bind it too; give the "
                    "links different ports to avoid this", port, ifname)
        return True


def _udp_socket(netns: str | None, family: int, ifname: str) -> socket.socket:
    try:
        s = netns_socket(netns, family, socket.SOCK_DGRAM)
    except NetnsError as e:
        raise TransportError(str(e), e.errno or 0) from None
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
        else:
            s.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        s.setblocking(False)
    except OSError as e:
        s.close()
        raise TransportError(f"bind to device {ifname}: {e.strerror or e}", e.errno or 0) from None
    return s


def _bind(s: socket.socket, addr: tuple, what: str, ifname: str = "",
          shared: SharedPorts | None = None) -> None:
    try:
        try:
            s.bind(addr)
        except OSError as e:
            if e.errno != errno.EADDRINUSE or shared is None or not shared.share(s, ifname, addr[1]):
                raise
            s.bind(addr)
    except OSError as e:
        s.close()
        hint = (f" (another process has it: a second hadirector for this node? "
                f"`ss -ulpn 'sport = :{addr[1]}'` names it)" if e.errno == errno.EADDRINUSE else "")
        raise TransportError(f"{what}: bind {addr[0]} port {addr[1]} on {ifname or 'any interface'}: "
                             f"{e.strerror or e}{hint}", e.errno or 0) from None
    if shared is not None:
        shared.add(s, ifname, addr[1])


async def _open_udp(link: Link, on_datagram: OnDatagram, netns: str | None,
                    on_unreachable: OnUnreachable | None = None,
                    shared: SharedPorts | None = None) -> UdpLink:
    ifname = link.interface or ""
    try:
        info = await netlink.link_by_name(ifname, netns)
        addrs = await netlink.addresses(netns)
    except netlink.NetlinkFailure as e:
        raise TransportError(f"link {link.name}: {e}", e.code) from None
    if info is None:
        raise TransportError(f"link {link.name}: interface {ifname} does not exist", errno.ENODEV)
    local = {str(ipaddress.ip_address(a.address)) for a in addrs if a.address}
    if link.kind == "ucast" and link.source is not None:
        # keepalived's unicast_src_ip: this node is `source` alone (several nodes on one host);
        # binding to it below fails with EADDRNOTAVAIL when it is not an address of this host
        local = {link.source}
    socks: list[socket.socket] = []
    dests: list[tuple] = []
    try:
        if link.kind == "ucast":
            remote = link.remote_peers(local)
            skipped = [p for p in link.peers if p not in remote]
            dests = [(p, link.port) if ":" not in p else (p, link.port, 0, 0) for p in remote]
            if skipped:
                log.debug("link %s: not sending to own address(es) %s", link.name, ", ".join(skipped))
            families = {socket.AF_INET6 if ":" in d[0] else socket.AF_INET for d in dests} or {socket.AF_INET}
            for fam in sorted(families):
                s = _udp_socket(netns, fam, ifname)
                any_addr = "::" if fam == socket.AF_INET6 else "0.0.0.0"
                _bind(s, (link.source or any_addr, link.port), link.name, ifname, shared)
                socks.append(s)
        elif link.kind == "bcast":
            s = _udp_socket(netns, socket.AF_INET, ifname)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            _bind(s, ("0.0.0.0", link.port), link.name, ifname, shared)
            socks.append(s)
            brd = next((a.broadcast for a in addrs if a.index == info.index and a.broadcast
                        and a.family == socket.AF_INET), None)
            dests = [(brd or "255.255.255.255", link.port)]
        elif link.kind == "mcast":
            group = ipaddress.ip_address(link.group)
            if group.version == 4:
                s = _udp_socket(netns, socket.AF_INET, ifname)
                _bind(s, (str(group), link.port), link.name, ifname, shared)
                socks.append(s)
                mreqn = group.packed + b"\x00" * 4 + struct.pack("@i", info.index)
                s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
                # struct ip_mreqn {multiaddr, address, ifindex}: only the ifindex matters here
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                             b"\x00" * 8 + struct.pack("@i", info.index))
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, link.ttl)
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1 if link.loop else 0)
                dests = [(str(group), link.port)]
            else:
                s = _udp_socket(netns, socket.AF_INET6, ifname)
                _bind(s, ("::", link.port), link.name, ifname, shared)
                socks.append(s)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                             group.packed + struct.pack("@I", info.index))
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, info.index)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, link.ttl)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1 if link.loop else 0)
                dests = [(str(group), link.port, 0, info.index)]
        else:
            raise TransportError(f"link {link.name}: not a UDP link kind")
    except TransportError:
        for s in socks:
            s.close()
        raise
    except OSError as e:
        for s in socks:
            s.close()
        raise TransportError(f"link {link.name}: {e.strerror or e}", e.errno or 0) from None
    return UdpLink(link, on_datagram, socks, dests, local, on_unreachable)


# --------------------------------------------------------------------------- serial framing

SLIP_END, SLIP_ESC, SLIP_ESC_END, SLIP_ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD


def frame_encode(data: bytes) -> bytes:
    """SLIP-frame `data` followed by its CRC-32 (big-endian). The frame starts with END too, which
    flushes any noise the receiver has gathered (RFC 1055 suggests this)."""
    body = data + struct.pack("!I", zlib.crc32(data))
    body = body.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc")
    return b"\xc0" + body + b"\xc0"


class FrameDecoder:
    """Incremental decoder of `frame_encode` frames. `feed(chunk)` returns the payloads completed by
    the chunk; damaged frames are dropped and counted in `bad_frames`."""

    def __init__(self, max_frame: int = MAX_DATAGRAM + 4):
        self.max_frame = max_frame
        self.bad_frames = 0
        self._buf = bytearray()
        self._esc = False
        self._broken = False

    def feed(self, chunk: bytes) -> list[bytes]:
        out: list[bytes] = []
        for b in chunk:
            if b == SLIP_END:
                if self._buf or self._broken:
                    frame = bytes(self._buf)
                    if self._broken or self._esc or len(frame) < 4:
                        self.bad_frames += 1
                    elif zlib.crc32(frame[:-4]) != struct.unpack("!I", frame[-4:])[0]:
                        self.bad_frames += 1
                    else:
                        out.append(frame[:-4])
                self._buf.clear()
                self._esc = self._broken = False
                continue
            if self._broken:
                continue
            if self._esc:
                self._esc = False
                if b == SLIP_ESC_END:
                    b = SLIP_END
                elif b == SLIP_ESC_ESC:
                    b = SLIP_ESC
                else:  # RFC 1055 leaves this undefined; treat the frame as damaged
                    self._broken = True
                    continue
            elif b == SLIP_ESC:
                self._esc = True
                continue
            if len(self._buf) >= self.max_frame:
                self._broken = True
                self._buf.clear()
                continue
            self._buf.append(b)
        return out


# --------------------------------------------------------------------------- serial

class SerialLink(LinkTransport):
    """A serial line (or any byte-stream file descriptor) carrying framed datagrams."""

    def __init__(self, link: Link, on_datagram: OnDatagram, *, fd: int | None = None,
                 opener: Callable[[], tuple[Any, int]] | None = None):
        super().__init__(link, on_datagram)
        self._loop = asyncio.get_running_loop()
        self._opener = opener
        self._port: Any = None  # the pyserial object keeping the fd open
        self._fd: int | None = None
        self._out = bytearray()
        self._writing = False
        self._decoder = FrameDecoder()
        self._reopen: asyncio.TimerHandle | None = None
        self.addr = link.device
        if fd is not None:
            self._attach(None, fd)
        elif opener is not None:
            self._attach(*opener())
        else:
            raise TransportError(f"link {link.name}: nothing to open")

    @property
    def up(self) -> bool:
        return self._fd is not None

    def _attach(self, port: Any, fd: int) -> None:
        os.set_blocking(fd, False)
        self._port, self._fd = port, fd
        self._loop.add_reader(fd, self._readable)

    def _detach(self, why: str) -> None:
        if self._fd is None:
            return
        self.stats.last_error = why
        log.warning("link %s: line failed (%s)", self.name, why)
        fd, port = self._fd, self._port
        self._fd = self._port = None
        self._out.clear()
        self._stop_writing(fd)
        self._loop.remove_reader(fd)
        if port is not None:
            port.close()
        if self._opener is not None and not self.closed:
            self._reopen = self._loop.call_later(SERIAL_REOPEN_S, self._try_reopen)

    def _try_reopen(self) -> None:
        self._reopen = None
        if self.closed or self._opener is None:
            return
        try:
            self._attach(*self._opener())
            log.info("link %s: line reopened", self.name)
        except TransportError as e:
            self.stats.last_error = str(e)
            self._reopen = self._loop.call_later(SERIAL_REOPEN_S, self._try_reopen)

    def send(self, data: bytes) -> None:
        if self.closed or self._fd is None:
            self._send_error("line not open")
            return
        frame = frame_encode(data)
        if len(self._out) + len(frame) > SERIAL_MAX_PENDING:
            self._send_error("serial output queue full")  # a slow or stuck line: drop, count
            return
        self._out += frame
        self.stats.sent += 1
        self._flush()

    def _flush(self) -> None:
        fd = self._fd
        if fd is None:
            return
        while self._out:
            try:
                n = os.write(fd, self._out)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                self._send_error(e)
                self._detach(e.strerror or str(e))
                return
            del self._out[:n]
        if self._out and not self._writing:
            self._loop.add_writer(fd, self._flush)
            self._writing = True
        elif not self._out:
            self._stop_writing(fd)

    def _stop_writing(self, fd: int) -> None:
        if self._writing:
            self._loop.remove_writer(fd)
            self._writing = False

    def _readable(self) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            chunk = os.read(fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.stats.recv_errors += 1
            self._detach(e.strerror or str(e))
            return
        if not chunk:
            self._detach("end of file")
            return
        before = self._decoder.bad_frames
        for payload in self._decoder.feed(chunk):
            self._deliver(payload, self.addr)
        self.stats.bad_frames += self._decoder.bad_frames - before

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._reopen is not None:
            self._reopen.cancel()
        fd, port = self._fd, self._port
        self._fd = self._port = None
        if fd is not None:
            self._stop_writing(fd)
            self._loop.remove_reader(fd)
            if port is not None:
                port.close()


def _serial_opener(link: Link) -> Callable[[], tuple[Any, int]]:
    def opener() -> tuple[Any, int]:
        import serial  # pyserial

        try:
            port = serial.Serial(link.device, baudrate=link.baud, bytesize=serial.EIGHTBITS,
                                 parity=serial.PARITY_NONE, stopbits=serial.STOPBITS_ONE, timeout=0,
                                 xonxoff=False, rtscts=False)
        except (serial.SerialException, OSError, ValueError) as e:
            raise TransportError(f"link {link.name}: cannot open {link.device}: {e}",
                                 getattr(e, "errno", 0) or 0) from None
        return port, port.fileno()

    return opener


# --------------------------------------------------------------------------- entry point

async def open_link(link: Link, on_datagram: OnDatagram, *, netns: str | None = None,
                    on_unreachable: OnUnreachable | None = None,
                    shared: SharedPorts | None = None) -> LinkTransport:
    """Open one heartbeat link. Raises TransportError when it cannot be opened. `on_unreachable`
    hears of ICMP errors drawn by our datagrams (UDP links); `shared`: the ports this daemon's
    other links hold (one SharedPorts for all of a node's links)."""
    if link.kind == "serial":
        return SerialLink(link, on_datagram, opener=_serial_opener(link))
    return await _open_udp(link, on_datagram, netns, on_unreachable, shared)
