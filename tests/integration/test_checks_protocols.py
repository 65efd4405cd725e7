"""connect, smtp, ftp, dns, simpletcp (TCP and UDP payload), external, ping, on/off/none against real servers."""

import asyncio
import os
import stat
import threading

import pytest

from hadirector.checks.scheduler import check_once
from hadirector.config.model import Real, VirtualService

from checks_util import vs_for
from hdtest import Proc, listening, need, port_of, start_server


# ----------------------------------------------------------------------------- connect


async def test_connect_up_and_refused():
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        vs = vs_for(port, checktype="connect")
        r = await check_once(vs, vs.reals[0])
        assert r.ok, r.reason
    finally:
        server.close()
        await server.wait_closed()
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "refused" in r.reason.lower()


async def test_checkport_overrides_real_port(held_ports):
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        vs = vs_for(held_ports.closed_tcp(), checktype="connect", checkport=port)
        assert (await check_once(vs, vs.reals[0])).ok
    finally:
        server.close()


# ----------------------------------------------------------------------------- smtp (aiosmtpd)


async def test_smtp_against_aiosmtpd():
    from aiosmtpd.smtp import SMTP

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    sock = listening()
    port = port_of(sock)
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(Sink(), hostname="127.0.0.1"), sock=sock)
    try:
        vs = vs_for(port, service="smtp")
        r = await check_once(vs, vs.reals[0])
        assert r.ok, r.reason
        vs = vs_for(port, service="submission")
        assert (await check_once(vs, vs.reals[0])).ok
    finally:
        server.close()
        await server.wait_closed()
    assert not (await check_once(vs, vs.reals[0])).ok


async def test_smtp_down_when_greeting_is_not_220():
    async def busy(reader, writer):
        writer.write(b"554 no service here\r\n")
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(busy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        vs = vs_for(port, service="smtp")
        r = await check_once(vs, vs.reals[0])
        assert not r.ok and "554" in r.reason
    finally:
        server.close()


# ----------------------------------------------------------------------------- ftp (pyftpdlib)


@pytest.fixture
def ftp_server(tmp_path):
    pytest.importorskip("pyftpdlib")
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    root = tmp_path / "ftp"
    root.mkdir()
    (root / "health.txt").write_text("ftp server HEALTHY\n")
    auth = DummyAuthorizer()
    auth.add_user("checker", "s3cret", str(root), perm="elr")
    auth.add_anonymous(str(root))
    # passive_ports None (the default): each data connection listens on a port the kernel picks
    handler = type("H", (FTPHandler,), {"authorizer": auth, "passive_ports": None})
    server = FTPServer(("127.0.0.1", 0), handler)
    port = server.socket.getsockname()[1]
    t = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.1, "blocking": True}, daemon=True)
    t.start()
    try:
        yield port
    finally:
        server.close_all()
        t.join(5)


async def test_ftp_login_and_file(ftp_server):
    port = ftp_server
    vs = vs_for(port, service="ftp")  # anonymous login only
    r = await check_once(vs, vs.reals[0])
    assert r.ok, r.reason
    vs = vs_for(port, service="ftp", login="checker", passwd="s3cret", request="health.txt", receive="HEALTHY")
    r = await check_once(vs, vs.reals[0])
    assert r.ok, r.reason
    vs = vs_for(port, service="ftp", login="checker", passwd="s3cret", request="health.txt", receive="SICK")
    assert not (await check_once(vs, vs.reals[0])).ok
    vs = vs_for(port, service="ftp", login="checker", passwd="wrong")
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "login" in r.reason
    vs = vs_for(port, service="ftp", login="checker", passwd="s3cret", request="missing.txt")
    assert not (await check_once(vs, vs.reals[0])).ok


# ----------------------------------------------------------------------------- dns (dnsmasq)


@pytest.fixture
def dnsmasq(tmp_path):
    need("dnsmasq")
    proc, (port,) = start_server(lambda port: Proc(
        ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-daemon",
         "--listen-address=127.0.0.1", "--bind-interfaces", f"--port={port}", "--user=root",
         f"--pid-file={tmp_path}/dnsmasq.pid", "--host-record=www.example.test,198.18.5.5",
         "--ptr-record=6.5.18.198.in-addr.arpa,mail.example.test"]), ("tcp+udp",))
    try:
        yield port
    finally:
        proc.stop()


async def test_dns_a_and_ptr(dnsmasq):
    port = dnsmasq
    vs = vs_for(port, service="dns", protocol="udp", request="www.example.test", receive=r"198\.18\.5\.5")
    r = await check_once(vs, vs.reals[0])
    assert r.ok, r.reason
    vs = vs_for(port, service="dns", protocol="tcp", request="www.example.test", receive="198.18.5.5")
    assert (await check_once(vs, vs.reals[0])).ok, "over TCP too"
    vs = vs_for(port, service="dns", protocol="udp", request="198.18.5.6", receive="mail.example")
    r = await check_once(vs, vs.reals[0])
    assert r.ok, r.reason
    vs = vs_for(port, service="dns", protocol="udp", request="www.example.test", receive="10.0.0.1")
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "none matches" in r.reason
    vs = vs_for(port, service="dns", protocol="udp", request="nothing.example.test")
    assert not (await check_once(vs, vs.reals[0])).ok


async def test_dns_no_server_is_down(held_ports):
    vs = vs_for(held_ports.closed_udp(), service="dns", protocol="udp", request="www.example.test",
                negotiatetimeout="500ms")
    assert not (await check_once(vs, vs.reals[0])).ok


# ----------------------------------------------------------------------------- simpletcp and UDP payload


async def test_simpletcp_send_expect():
    got = []

    async def handle(reader, writer):
        data = await reader.read()  # the check shuts down its sending side
        got.append(data)
        writer.write(b"banner\r\n" + (b"PONG ok\r\n" if data == b"PING\r\n" else b"ERR\r\n"))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        vs = vs_for(port, service="simpletcp", request="PING\\r\\n", receive="^PONG")
        r = await check_once(vs, vs.reals[0])
        assert r.ok, r.reason
        assert got[-1] == b"PING\r\n"
        vs = vs_for(port, service="simpletcp", request="HELLO\\n", receive="^PONG")
        r = await check_once(vs, vs.reals[0])
        assert not r.ok and "no reply line" in r.reason
    finally:
        server.close()


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.t = transport

    def datagram_received(self, data, addr):
        if data.startswith(b"\x01STATUS"):
            self.t.sendto(b"STATUS GREEN " + data[7:], addr)


async def test_udp_payload_check():
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        vs = vs_for(port, protocol="udp", service="simpletcp", request="\\x01STATUS", receive="GREEN")
        r = await check_once(vs, vs.reals[0])
        assert r.ok, r.reason
        vs = vs_for(port, protocol="udp", service="simpletcp", request="hello", receive="GREEN", negotiatetimeout="300ms")
        assert not (await check_once(vs, vs.reals[0])).ok
    finally:
        transport.close()
    await asyncio.sleep(0.1)  # the transport closes its socket on the next loop turns
    vs = vs_for(port, protocol="udp", service="simpletcp", request="\\x01STATUS", receive="GREEN",
                negotiatetimeout="2s")
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "unreachable" in r.reason  # ICMP port unreachable ends the check at once


# ----------------------------------------------------------------------------- external


def script(tmp_path, body: str) -> str:
    p = tmp_path / "check.sh"
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return str(p)


async def test_external_arguments_and_exit_code(tmp_path):
    out = tmp_path / "args"
    cmd = script(tmp_path, f'echo "$@" > {out}; [ "$3" = 127.0.0.1 ]')
    vs = VirtualService(address="198.18.0.100", port=80, checktype="external", checkcommand=cmd,
                        reals=[Real(address="127.0.0.1", port=8080), Real(address="127.0.0.2", port=8081)])
    assert (await check_once(vs, vs.reals[0])).ok
    assert out.read_text().split() == ["198.18.0.100", "80", "127.0.0.1", "8080"]
    r = await check_once(vs, vs.reals[1])
    assert not r.ok and "exit 1" in r.reason


async def test_external_dynamic_weight_and_timeout(tmp_path):
    cmd = script(tmp_path, "exit 7")
    vs = VirtualService(address="198.18.0.100", port=80, checktype="external", checkcommand=cmd,
                        reals=[Real(address="127.0.0.1")])
    assert not (await check_once(vs, vs.reals[0])).ok  # plain external: non-zero is down
    vs = vs.model_copy(update={"external_weight": True})
    r = await check_once(vs, vs.reals[0])
    assert r.ok and r.weight == 5
    marker = tmp_path / "still-running"
    cmd = script(tmp_path, f"sleep 5; touch {marker}")
    vs = VirtualService(address="198.18.0.100", port=80, checktype="external", checkcommand=cmd, checktimeout="300ms",
                        reals=[Real(address="127.0.0.1")])
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "within" in r.reason
    await asyncio.sleep(0.3)
    assert not marker.exists()


async def test_fwmark_external_gets_the_mark(tmp_path):
    out = tmp_path / "args"
    cmd = script(tmp_path, f'echo "$@" > {out}')
    vs = VirtualService(fwmark=7, checktype="external", checkcommand=cmd, reals=[Real(address="127.0.0.1")])
    assert (await check_once(vs, vs.reals[0])).ok
    assert out.read_text().split() == ["7", "0", "127.0.0.1", "0"]


# ----------------------------------------------------------------------------- on / off / none


async def test_on_off_none(held_ports):
    port = held_ports.closed_tcp()  # nothing listens: these checks do not touch the network
    for kw, ok in (({"checktype": "on"}, True), ({"checktype": "off"}, False),
                   ({"checktype": "negotiate", "service": "none"}, True)):
        vs = vs_for(port, **kw)
        assert (await check_once(vs, vs.reals[0])).ok is ok, kw


# ----------------------------------------------------------------------------- ping


async def test_ping_loopback():
    if os.geteuid() != 0:
        with open("/proc/sys/net/ipv4/ping_group_range") as f:
            lo, hi = map(int, f.read().split())
        if not lo <= os.getgid() <= hi:
            pytest.skip("needs root or net.ipv4.ping_group_range including our group")
    vs = vs_for(80, checktype="ping")
    r = await check_once(vs, vs.reals[0])
    assert r.ok, r.reason
    vs = vs_for(53, checktype="connect", protocol="udp", service="dns")  # UDP connect check = ping
    assert (await check_once(vs, vs.reals[0])).ok
