"""The HTTP API, metrics and dashboard of the daemon (aiohttp, on the daemon's loop; docs/api.md).

Off unless `[api] listen` (or `hadirector run --api ADDR:PORT`) says where. Every answer comes
from the owner that answers the control socket (daemon/handlers.py): `status` is its
`status_reply`, `lvs` its `lvs` reply rendered as `hadirector lvs --json` prints it
(render/lvs.py), and the changes (standby, takeover, reload, a real's maintenance) are its
handlers; the metrics are daemon/metrics.py's, the events daemon/events.py's.

    GET  /api/v1/status | /api/v1/lvs | /api/v1/events (text/event-stream) | /api/v1/auth
    POST /api/v1/standby | /api/v1/takeover | /api/v1/reload
    POST /api/v1/reals/{virtual}/{real}/{drain|disable|enable}
    GET  /metrics | / | /static/{name}

Authorization: with a token (`token_file`) every request but the page itself, its static files
and `/api/v1/auth` must carry it (`Authorization: Bearer <token>`, or `?token=` where a browser
cannot set a header: EventSource); without one, reading is open and every change is refused
(403): nobody changes the cluster anonymously.

Bounded so that it cannot stall the cluster loop: at most `max_connections` connections (more
are answered 503 and closed), request bodies up to `max_body` bytes (413), an idle connection
closed after 15 s, a body read within 10 s, standby/takeover wait at most 60 s; nothing here
blocks the loop (the page is read once at start), and each event stream has a bounded queue:
a client that does not keep up is cut off (daemon/events.py).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import mimetypes
import ssl
from importlib import resources
from typing import Any

from aiohttp import web

from ..config.listen import format_listen, parse_listen
from ..config.model import Api
from ..config.names import BadName, find_real, find_virtual, real_text
from ..errors import HadirectorError
from .control import ControlError
from .events import BusHandler, EventBus
from .handlers import ControlHandlers, status_reply
from .logsetup import ROOT
from .metrics import Metrics  # prometheus_client: imported with this module, before the core's clock runs

PREFIX = "/api/v1"
KEEPALIVE_S = 15.0  # SSE comment interval and idle connection timeout
BODY_TIMEOUT_S = 10.0
MAX_WAIT_S = 60.0  # standby/takeover "wait" over HTTP
ACTIONS = ("drain", "disable", "enable")
STATIC_MAX = 4 << 20  # bytes of one dashboard file

CSP = ("default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'none'")
log = logging.getLogger(__name__)


class ApiError(HadirectorError):
    """An HTTP error answer: its status and the reason given as {"error": reason}."""

    def __init__(self, status: int, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.extra = extra


def _json(obj: Any, status: int = 200, **kw) -> web.Response:
    return web.Response(text=json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", status=status,
                        content_type="application/json", **kw)


def error_response(status: int, reason: str, **extra: Any) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="hadirector"'} if status == 401 else None
    return _json({"error": reason, **extra}, status=status, headers=headers)


def load_dashboard(folder=None) -> dict[str, bytes]:
    """The dashboard's files from the package (hadirector/data/dashboard), read once at start."""
    out: dict[str, bytes] = {}
    try:
        folder = folder if folder is not None else resources.files("hadirector") / "data" / "dashboard"
        if not folder.is_dir():
            return out
        for entry in folder.iterdir():
            if entry.is_file() and not entry.name.startswith("."):
                data = entry.read_bytes()
                if len(data) <= STATIC_MAX:
                    out[entry.name] = data
    except OSError as exc:
        log.warning("api: cannot read the dashboard's files: %s", exc)
    return out


class _Refuse(asyncio.Protocol):
    """A connection over the limit: one 503 and closed."""

    def connection_made(self, transport) -> None:
        body = b'{"error": "too many connections"}\n'
        transport.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        transport.close()


class _Counted(asyncio.Protocol):
    """aiohttp's protocol of one connection, told to `closed()` when the connection ends."""

    def __init__(self, inner: asyncio.Protocol, closed) -> None:
        self.inner = inner
        self._closed = closed

    def connection_made(self, transport) -> None:
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self):
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc) -> None:
        closed, self._closed = self._closed, None
        if closed is not None:
            closed()
        self.inner.connection_lost(exc)


class ApiServer:
    """The API of daemon `d` (daemon/node.py), as `api` ([api] table) says; `token`: the bearer
    token read from its token_file, or None."""

    def __init__(self, d, api: Api, token: str | None, bus: EventBus, metrics) -> None:
        self.d = d
        self.api = api
        self.token = token
        self.bus = bus
        self.metrics = metrics
        self.handlers = ControlHandlers(d)
        self.host, self.port = parse_listen(api.listen)
        self.files = load_dashboard()
        self.refused = 0  # connections over the limit
        self.streams = 0  # event streams open now
        self.connections = 0  # open now
        self._runner: web.AppRunner | None = None
        self._server: asyncio.AbstractServer | None = None
        self._log_handler = None  # (BusHandler, loggers) from start_api

    # ------------------------------------------------------------------ lifecycle

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.api.max_body, middlewares=[self._errors, self._auth],
                              handler_args={"keepalive_timeout": KEEPALIVE_S, "max_line_size": 8190,
                                            "max_field_size": 8190, "max_headers": 64})
        r = app.router
        r.add_get(f"{PREFIX}/status", self.get_status)
        r.add_get(f"{PREFIX}/lvs", self.get_lvs)
        r.add_get(f"{PREFIX}/events", self.get_events)
        r.add_get(f"{PREFIX}/auth", self.get_auth)
        r.add_post(f"{PREFIX}/standby", self.post_standby)
        r.add_post(f"{PREFIX}/takeover", self.post_takeover)
        r.add_post(f"{PREFIX}/reload", self.post_reload)
        r.add_post(PREFIX + "/reals/{virtual}/{real}/{action}", self.post_real)
        r.add_get("/metrics", self.get_metrics)
        r.add_get("/", self.get_index)
        r.add_get("/static/{name}", self.get_static)
        return app

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.api.cert_file is None:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.api.cert_file, self.api.key_file)
        return ctx

    async def start(self) -> None:
        # handler_cancellation: a client that goes away ends its handler at once (an event
        # stream would otherwise hold its connection slot until its next write fails)
        runner = web.AppRunner(self.app(), handle_signals=False, access_log=None, shutdown_timeout=2.0,
                               handler_cancellation=True)
        await runner.setup()
        self._runner = runner
        server = runner.server
        limit = self.api.max_connections

        def factory():
            # counted here, when the connection is accepted: aiohttp registers a connection only
            # when its connection_made runs, after a whole batch of accepts
            if self.connections >= limit:
                self.refused += 1
                return _Refuse()
            self.connections += 1
            return _Counted(server(), self._closed)

        loop = asyncio.get_running_loop()
        backlog = min(128, limit * 2)
        # a client that never finishes its TLS handshake holds its slot this long at most
        tls = {"ssl_handshake_timeout": BODY_TIMEOUT_S} if self.api.cert_file else {}
        netns = getattr(self.d.opts, "netns", None)
        if netns is None:
            self._server = await loop.create_server(factory, self.host, self.port, ssl=self.ssl_context(),
                                                    backlog=backlog, reuse_address=True, **tls)
            return
        # the daemon's links and agents live in a network namespace: so does its API
        import socket

        from ..net.netns import netns_socket
        sock = netns_socket(netns, socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._server = await loop.create_server(factory, sock=sock, ssl=self.ssl_context(), backlog=backlog, **tls)

    def _closed(self) -> None:
        self.connections -= 1

    @property
    def address(self) -> str:
        """Where it listens (the port the kernel picked for port 0)."""
        if self._server is None or not self._server.sockets:
            return format_listen(self.host, self.port)
        host, port = self._server.sockets[0].getsockname()[:2]
        return format_listen(host, port)

    @property
    def url(self) -> str:
        return f"{'https' if self.api.cert_file else 'http'}://{self.address}/"

    async def close(self) -> None:
        if self._log_handler is not None:
            handler, loggers = self._log_handler
            for lg in loggers:
                lg.removeHandler(handler)
            self._log_handler = None
        if self._server is not None:
            self._server.close()
        if self._runner is not None:
            for conn in list(self._runner.server.connections):  # event streams end now
                conn.force_close()
            await self._runner.cleanup()
            self._runner = None
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            except TimeoutError:
                pass
            self._server = None

    # ------------------------------------------------------------------ middlewares

    @web.middleware
    async def _errors(self, request: web.Request, handler):
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(exc.status, exc.reason, **exc.extra)
        except web.HTTPException as exc:  # the router's 404/405, aiohttp's 413
            if exc.status < 400:
                raise
            reason = {404: f"no such path: {request.path}",
                      405: f"{request.method} is not allowed on {request.path}",
                      413: f"request body too large (at most {self.api.max_body} bytes)"}.get(exc.status, exc.reason)
            if exc.status == 405:
                allowed = sorted(getattr(exc, "allowed_methods", ()) or ())
                return _json({"error": reason, "allowed": allowed}, status=405,
                             headers={"Allow": ", ".join(allowed)})
            return error_response(exc.status, reason)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: one line in the log, a 500, the daemon goes on
            log.error("api: %s %s failed: %s: %s", request.method, request.path, type(exc).__name__, exc,
                      exc_info=log.isEnabledFor(logging.DEBUG))
            return error_response(500, f"internal error: {type(exc).__name__}: {exc}")

    def authorized(self, request: web.Request) -> bool | None:
        """True: the request carries the token; False: it carries a wrong one or none while one
        is required; None: no token is configured."""
        if self.token is None:
            return None
        given = None
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer":
                given = value.strip()
        if given is None:
            given = request.query.get("token")
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        unmatched = request.match_info.http_exception
        if unmatched is not None:  # no such path / method: say so, whoever asks
            raise unmatched
        path = request.path
        public = path == "/" or path.startswith("/static/") or path == f"{PREFIX}/auth"
        ok = self.authorized(request)
        if ok is False and not public:
            has = "Authorization" in request.headers or "token" in request.query
            raise ApiError(401, "bad token" if has else "this API needs a token: send Authorization: Bearer <token>")
        if request.method == "POST" and ok is None:
            raise ApiError(403, "changes need a token and none is configured: set [api] token_file "
                                "(or run --api-token-file FILE)")
        return await handler(request)

    # ------------------------------------------------------------------ reading

    async def get_status(self, request: web.Request) -> web.Response:
        if self.d.core is None:
            raise ApiError(409, "the daemon is starting")
        return _json(status_reply(self.d))

    async def get_lvs(self, request: web.Request) -> web.Response:
        from ..render.lvs import connections_json, lvs_reply_json
        would, conns = _flag(request, "would"), _flag(request, "connections")
        try:
            reply = await self.handlers.lvs({"would": would, "connections": conns})
        except ControlError as exc:
            raise ApiError(404, str(exc)) from None
        out = lvs_reply_json(reply, would=would)
        if conns:  # the flow table (`lvs -c --json`): the active's flows, a backup's synced ones
            out["connections"] = connections_json(reply)
        return _json(out)

    async def get_auth(self, request: web.Request) -> web.Response:
        ok = self.authorized(request)
        return _json({"token_required": self.token is not None, "authorized": bool(ok) if ok is not None else False})

    async def get_metrics(self, request: web.Request) -> web.Response:
        from prometheus_client.exposition import CONTENT_TYPE_LATEST
        return web.Response(body=self.metrics.text(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def get_events(self, request: web.Request) -> web.StreamResponse:
        since = request.query.get("since")
        if since is not None and not since.isdigit():
            raise ApiError(400, f"since: expected an event id (a whole number), got {since!r}")
        sub, backlog = self.bus.subscribe(int(since) if since is not None else None)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
        self.streams += 1
        async def write(data: bytes) -> None:
            # a client that cannot take a write within the keep-alive interval is cut off
            await asyncio.wait_for(resp.write(data), KEEPALIVE_S)

        try:
            await resp.prepare(request)
            await write(b": hadirector events\n\n" + b"".join(sse(e) for e in backlog))
            while not sub.dropped:
                try:
                    event = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    await write(b": keep-alive\n\n")
                    continue
                await write(sse(event))
        except (ConnectionError, TimeoutError):
            pass
        finally:
            self.streams -= 1
            self.bus.unsubscribe(sub)
        return resp

    async def get_index(self, request: web.Request) -> web.Response:
        return self._file("index.html")

    async def get_static(self, request: web.Request) -> web.Response:
        return self._file(request.match_info["name"])

    def _file(self, name: str) -> web.Response:
        data = self.files.get(name)
        if data is None:
            raise ApiError(404, f"no dashboard file {name!r} in this installation")
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
            ctype += "; charset=utf-8"
        # the page has no inline script or style and loads nothing from elsewhere: a policy that
        # says so keeps an injected string from running even if one got past the page's escaping
        return web.Response(body=data, headers={"Content-Type": ctype, "Cache-Control": "no-cache",
                                                "X-Content-Type-Options": "nosniff",
                                                "Content-Security-Policy": CSP})

    # ------------------------------------------------------------------ changes

    async def _body(self, request: web.Request) -> dict:
        if request.content_length is not None and request.content_length > self.api.max_body:
            raise ApiError(413, f"request body too large ({request.content_length} bytes, at most "
                                f"{self.api.max_body})")
        try:
            raw = await asyncio.wait_for(request.read(), BODY_TIMEOUT_S)
        except TimeoutError:
            raise ApiError(408, f"the request body did not arrive within {BODY_TIMEOUT_S:g}s") from None
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        return body

    async def post_standby(self, request: web.Request) -> web.Response:
        return await self._operator("standby", request)

    async def post_takeover(self, request: web.Request) -> web.Response:
        return await self._operator("takeover", request)

    async def _operator(self, kind: str, request: web.Request) -> web.Response:
        body = await self._body(request)
        _only(body, ("which", "wait"))
        which = body.get("which", "all")
        if which not in ("all", "foreign", "local", "failback"):
            raise ApiError(400, f"which: expected all, foreign, local or failback, got {which!r}")
        wait = body.get("wait", 0)
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= MAX_WAIT_S:
            raise ApiError(400, f"wait: expected seconds from 0 to {MAX_WAIT_S:g}, got {wait!r}")
        try:
            reply = await getattr(self.handlers, kind)({"which": which, "wait": wait})
        except ControlError as exc:
            raise ApiError(409, str(exc)) from None
        if not reply.get("done"):
            raise ApiError(409, "; ".join(reply.get("messages") or [f"{kind}: nothing to do"]), **reply)
        return _json(reply)

    async def post_reload(self, request: web.Request) -> web.Response:
        _only(await self._body(request), ())
        try:
            reply = await self.handlers.reload({})
        except ControlError as exc:
            raise ApiError(409, str(exc)) from None
        if not reply.get("applied"):
            raise ApiError(409, "reload refused, the running configuration stays: "
                                + "; ".join(reply.get("errors") or ["no reason given"]), **reply)
        return _json(reply)

    async def post_real(self, request: web.Request) -> web.Response:
        m = request.match_info
        action = m["action"]
        if action not in ACTIONS:
            raise ApiError(404, f"no such action {action!r}: expected drain, disable or enable")
        _only(await self._body(request), ())
        d = self.d
        if d.config.balancer is None:
            raise ApiError(404, "this configuration has no [balancer]")
        try:
            vs = find_virtual(d.config.balancer, m["virtual"])
            key = find_real(vs, m["real"])
        except BadName as exc:
            raise ApiError(404, str(exc)) from None
        peer = request.transport.get_extra_info("peername") if request.transport else None
        client = peer[0] if isinstance(peer, tuple) else "?"
        try:
            reply = await self.handlers.real({"action": action, "virtual": vs.name, "real": real_text(key),
                                              "_by": f"api {client}@{d.core.node}"})
        except ControlError as exc:
            raise ApiError(409, str(exc)) from None
        return _json({**reply, "virtual": vs.name, "real": real_text(key)})


def sse(event: dict) -> bytes:
    """One server-sent event: `event: <kind>`, `data: <json>` (one line), a blank line."""
    return f"event: {event['kind']}\ndata: {json.dumps(event, sort_keys=True, default=str)}\n\n".encode()


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name)
    if value is None:
        return False
    if value.lower() in ("", "1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise ApiError(400, f"{name}: expected 1 or 0, got {value!r}")


def _only(body: dict, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        expected = ", ".join(allowed) if allowed else "none"
        raise ApiError(400, f"unknown argument {unknown[0]!r} (expected: {expected})")


async def start_api(d) -> ApiServer | None:
    """Start daemon `d`'s API when its configuration has an [api] table: the event bus fed from
    its log, the metrics with the check scheduler's observations, the server. OSError/ValueError
    (a port taken, a token file gone since the check) stop the start, as a link that cannot open."""
    api = d.config.api
    if api is None:
        return None
    from ..config.api_rules import read_token
    token = None
    if api.token_file is not None:
        try:
            token = read_token(api.token_file)
        except (OSError, ValueError) as exc:
            raise ValueError(f"api: token file {api.token_file}: {getattr(exc, 'strerror', None) or exc}") from None
    bus = EventBus()
    metrics = Metrics(d)
    server = ApiServer(d, api, token, bus, metrics)
    handler = BusHandler(bus, asyncio.get_running_loop(), d.loaded.node)
    # the daemon's logger and every module's below it ("hadirector.*" propagate to it); a logger
    # of its own outside that tree (a test's) gets the handler too, never one record twice
    root = logging.getLogger(ROOT)
    loggers = {root}
    if d.log is not root and not (d.log.name.startswith(ROOT + ".") and d.log.propagate):
        loggers.add(d.log)
    for lg in loggers:
        lg.addHandler(handler)
    server._log_handler = (handler, loggers)
    if d.balancer is not None and d.balancer.health is not None:
        d.balancer.health.scheduler.on_result = metrics.checks.observe
    try:
        await server.start()
    except BaseException:
        await server.close()
        raise
    d.log.info("node %s: API on %s (%s)", d.loaded.node, server.url,
               "token required" if token else "no token: read-only")
    return server
