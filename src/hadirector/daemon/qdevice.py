"""The asyncio driver of the qdevice-net client (cluster/qdevice.py): owns the TCP connection to
corosync-qnetd, the optional TLS session and one timer re-armed from the core's next_deadline().

It carries out the core's actions (Connect, Send, StartTls, Close) and hands every
`WitnessChanged` to `on_vote(vote, detail, members)` (members: node ids) - the node driver feeds
that to NodeCore.on_witness.
Reconnecting and its back-off are the core's (a Connect action when the time comes); I/O errors
end the connection and are reported to the core as on_closed, never raised.

TLS (`tls on`): qnetd speaks TLS through NSS after a STARTTLS message on the same connection
(qnetd-client-msg-received.c qnetd_client_msg_received_starttls), checks that the client
certificate's subject names the cluster (CERT_VerifyCertName against the cluster name) when it
runs with -c on (its default), and the C client checks that the server certificate is issued to
"Qnetd Server" (qnet-config.h QDEVICE_NET_DEFAULT_NSS_QNETD_CN). This driver does the same with
Python's ssl: the qnetd CA (`ca_file`, PEM; qnetd-cacert.crt exported from qnetd's NSS database),
the client certificate and key (`cert_file`, `key_file`, PEM) and `server_name` checked against
the server certificate. docs/cluster.md says how an operator makes these files.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from dataclasses import dataclass
from typing import Callable

from ..cluster import qdevice as q
from ..net.netns import netns_socket
from .clock import now_ms

READ_SIZE = 65536


@dataclass(frozen=True)
class TlsFiles:
    ca_file: str
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str = "Qnetd Server"


def client_ssl_context(files: TlsFiles) -> ssl.SSLContext:
    """The chain must lead to `ca_file`; the name is checked after the handshake
    (`peer_name_problem`): qnetd's certificate names "Qnetd Server" in its CN, with no
    subjectAltName, which is no host name ssl's own check could match."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=files.ca_file)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    if files.cert_file:
        ctx.load_cert_chain(files.cert_file, files.key_file)
    return ctx


def peer_name_problem(cert: dict | None, want: str) -> str | None:
    """None when the verified peer certificate's subject CN (or a DNS subjectAltName) is `want`
    (qdevice-net-nss.c / nss_sock_check_cert_name in the C client: QDEVICE_NET_DEFAULT_NSS_QNETD_CN)."""
    if not cert:
        return "qnetd sent no certificate"
    names = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
    names += [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
    if want in names:
        return None
    return f"qnetd's certificate names {', '.join(names) or 'nobody'}, expected {want!r}"


class QdeviceDriver:
    def __init__(self, core: q.QdeviceClient, host: str, port: int,
                 on_vote: Callable[[bool | None, str, tuple[int, ...]], None], log: logging.Logger | None = None,
                 tls: TlsFiles | None = None, name: str = "", netns: str | None = None) -> None:
        self.core = core
        self.host, self.port = host, port
        self.on_vote = on_vote
        self.log = log or logging.getLogger(__name__)
        self.tls = tls
        self.netns = netns
        self.name = name or f"node id {core.s.node_id}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._conn_task: asyncio.Task | None = None
        self._read_task: asyncio.Task | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = False
        self._gen = 0  # connection generation: a late callback of an old connection is ignored
        self.last_close: str | None = None

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self.handle(self.core.start(now_ms()))

    def set_membership(self, members) -> None:
        if not self._stopped:
            self.handle(self.core.set_membership(members, now_ms()))

    async def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
        for t in (self._conn_task, self._read_task):
            if t is not None and not t.done():
                t.cancel()
        self._close_transport()
        for t in (self._conn_task, self._read_task):
            if t is not None:
                try:
                    await t
                except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                    pass

    def status(self) -> dict:
        st = self.core.status(now_ms())
        st["server"] = self.server
        return st

    # ------------------------------------------------------------------ carrying out actions

    def handle(self, actions: list) -> None:
        for a in actions:
            try:
                self._do(a)
            except Exception:  # noqa: BLE001 - one bad action must not stop the witness client
                self.log.exception("witness %s: failed to carry out %r", self.server, a)
        self._rearm()

    def _do(self, a) -> None:
        if isinstance(a, q.Connect):
            self._gen += 1
            self._conn_task = asyncio.ensure_future(self._connect(self._gen))
        elif isinstance(a, q.Send):
            if self._writer is not None:
                self.log.debug("witness %s: send %s", self.server, a.what)
                self._writer.write(a.data)
        elif isinstance(a, q.StartTls):
            self._conn_task = asyncio.ensure_future(self._start_tls(self._gen))
        elif isinstance(a, q.Close):
            self.last_close = a.reason
            self.log.warning("witness %s: connection closed: %s", self.server, a.reason)
            self._end_connection()
        elif isinstance(a, q.WitnessChanged):
            self.log.log(logging.WARNING if a.vote is not True else logging.INFO,
                         "witness %s: vote %s (%s)", self.server,
                         {True: "granted", False: "refused", None: "none"}[a.vote], a.detail)
            self.on_vote(a.vote, a.detail, a.members)

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._stopped:
            return
        when = self.core.next_deadline()
        if when is None:
            return
        delay = max(0.0, (when - now_ms()) / 1000)
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self._stopped:
            self.handle(self.core.on_timer(now_ms()))

    def _feed(self, gen: int, method: str, *args) -> None:
        if self._stopped or gen != self._gen:
            return
        if method == "on_closed":
            self.last_close = args[0]
            self.log.warning("witness %s: %s", self.server, args[0])
            self._end_connection()
            self.handle(self.core.on_closed(now_ms(), *args))
        else:
            self.handle(getattr(self.core, method)(*args, now_ms()))

    # ------------------------------------------------------------------ the connection

    async def _connect(self, gen: int) -> None:
        try:
            if self.netns is None:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            else:  # the daemon's links live in a namespace (lab, tests): so does this connection
                loop = asyncio.get_running_loop()
                info = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
                family, _t, _p, _c, addr = info[0]
                sock = netns_socket(self.netns, family, socket.SOCK_STREAM)
                sock.setblocking(False)
                try:
                    await loop.sock_connect(sock, addr)
                except BaseException:
                    sock.close()
                    raise
                reader, writer = await asyncio.open_connection(sock=sock)
        except (OSError, asyncio.TimeoutError) as e:
            self._feed(gen, "on_closed", f"cannot connect: {e.strerror or e}" if isinstance(e, OSError) else "timeout")
            return
        if self._stopped or gen != self._gen:
            writer.close()
            return
        self._reader, self._writer = reader, writer
        self.log.info("witness %s: connected", self.server)
        self._read_task = asyncio.ensure_future(self._read(gen, reader))
        self._feed(gen, "on_connected")

    async def _start_tls(self, gen: int) -> None:
        writer = self._writer
        if writer is None or self.tls is None:
            self._feed(gen, "on_closed", "tls on but no CA / certificate files configured")
            return
        try:
            ctx = client_ssl_context(self.tls)
        except (OSError, ssl.SSLError) as e:
            self._feed(gen, "on_closed", f"TLS files unusable ({self.tls.ca_file}, {self.tls.cert_file}, "
                                         f"{self.tls.key_file}): {e}")
            return
        try:
            await writer.drain()
            await writer.start_tls(ctx, server_hostname=None)
        except (OSError, ssl.SSLError, ConnectionError) as e:
            self._feed(gen, "on_closed", f"TLS handshake failed: {e}")
            return
        sslobj = writer.get_extra_info("ssl_object")
        problem = peer_name_problem(sslobj.getpeercert() if sslobj is not None else None, self.tls.server_name)
        if problem:
            self._feed(gen, "on_closed", f"TLS: {problem}")
            return
        self._feed(gen, "on_tls_ready")

    async def _read(self, gen: int, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    self._feed(gen, "on_closed", "qnetd closed the connection")
                    return
                self._feed(gen, "on_data", data)
                if gen != self._gen:
                    return
        except (OSError, ssl.SSLError, ConnectionError) as e:
            self._feed(gen, "on_closed", f"connection error: {e}")

    def _end_connection(self) -> None:
        self._gen += 1  # callbacks of the old connection are ignored from here
        if self._read_task is not None and not self._read_task.done() \
                and self._read_task is not asyncio.current_task():
            self._read_task.cancel()
        self._close_transport()

    def _close_transport(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
        self._reader = self._writer = None


def node_ids(nodes) -> dict[str, int]:
    """The qdevice node id of every director: 1 + its position in the sorted names (the same on
    every director whatever the order of its `node` lines)."""
    return {n: i + 1 for i, n in enumerate(sorted(nodes))}


def from_config(cluster, local: str, on_vote, log=None, netns: str | None = None) -> "QdeviceDriver":
    """A driver for `cluster.quorum.device` (config.model.QuorumDevice) as director `local`."""
    dev = cluster.quorum.device
    ids = node_ids(cluster.nodes)
    settings = q.Settings(cluster_name=cluster.name, node_id=ids[local], config_nodes=tuple(sorted(ids.values())),
                          algorithm=q.ALGORITHMS[dev.algorithm], heartbeat_interval=dev.heartbeat_interval,
                          tls=dev.tls)
    tls = TlsFiles(dev.ca_file, dev.cert_file, dev.key_file, dev.server_name) if dev.tls else None
    return QdeviceDriver(q.QdeviceClient(settings), dev.host, dev.port, on_vote, log=log, tls=tls,
                         name=local, netns=netns)
