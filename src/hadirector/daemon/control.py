"""The control socket: `<state-dir>/control.sock`, mode 0600, one JSON object per line each way.

A request is `{"cmd": "status", ...args}`; the reply is `{"ok": true, ...}` or
`{"ok": false, "error": "..."}`. The server adds `"_peer": {"pid", "uid", "gid"}` to each
request, the client's credentials as the kernel gives them (SO_PEERCRED, unix(7)); a `_peer`
sent by the client is replaced, so a handler can trust it (who put a real in maintenance). The daemon registers one async handler per command; the client
side (`request`) is plain blocking sockets so CLI commands need no event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
from typing import Any, Awaitable, Callable

from ..errors import HadirectorError

SOCKET_NAME = "control.sock"
MAX_LINE = 1 << 20

Handler = Callable[[dict], Awaitable[dict]]


class ControlError(HadirectorError):
    pass


def socket_path(state_dir: str) -> str:
    return os.path.join(state_dir, SOCKET_NAME)


class ControlServer:
    def __init__(self, state_dir: str, handlers: dict[str, Handler], log: Callable[[str], None] | None = None,
                 debug: Callable[[str], None] | None = None):
        self.path = socket_path(state_dir)
        self.handlers = handlers
        self.log = log or (lambda msg: None)
        self.debug = debug or (lambda msg: None)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        if os.path.exists(self.path):
            if _alive(self.path):
                raise ControlError(f"another daemon is serving {self.path}")
            os.unlink(self.path)  # left behind by a crash
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._client, path=self.path, limit=MAX_LINE)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer_of(writer)
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    await self._reply(writer, {"ok": False, "error": "request line too long"})
                    break
                if not line:
                    break
                await self._reply(writer, await self._dispatch(line, peer))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _dispatch(self, line: bytes, peer: dict | None = None) -> dict:
        try:
            req = json.loads(line)
            if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
                raise ValueError("expected a JSON object with a string 'cmd'")
        except ValueError as exc:
            return {"ok": False, "error": f"bad request: {exc}"}
        req["_peer"] = peer
        who = f" (pid {peer['pid']}, uid {peer['uid']})" if peer else ""
        self.debug(f"control: {req['cmd']} requested{who}")
        handler = self.handlers.get(req["cmd"])
        if handler is None:
            return {"ok": False, "error": f"unknown command {req['cmd']!r}; known: {', '.join(sorted(self.handlers))}"}
        try:
            reply = await handler(req)
        except ControlError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # a bad request must never take the daemon down
            self.log(f"control: {req['cmd']} failed: {exc!r}")
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return {"ok": True, **reply}

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, obj: dict) -> None:
        writer.write(json.dumps(obj, default=str).encode() + b"\n")
        await writer.drain()


def _peer_of(writer: asyncio.StreamWriter) -> dict | None:
    """The connected client's pid, uid and gid (SO_PEERCRED: struct ucred, three ints)."""
    sock = writer.get_extra_info("socket")
    try:
        pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                            struct.calcsize("3i")))
    except (OSError, AttributeError, struct.error):
        return None
    return {"pid": pid, "uid": uid, "gid": gid}


def _alive(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(1.0)
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def request(state_dir: str, cmd: str, timeout: float = 10.0, **args: Any) -> dict:
    """Send one command to the daemon and return its reply; ControlError says what went wrong."""
    path = socket_path(state_dir)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        try:
            s.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            raise ControlError(f"no hadirector daemon is running (nothing listens on {path}; "
                               "start one with `hadirector run`, or pass --state-dir)") from None
        except PermissionError:
            raise ControlError(f"permission denied on {path} (the socket is mode 0600: run as its owner)") from None
        except OSError as exc:  # e.g. a path too long for a socket, a state dir that is a file
            raise ControlError(f"cannot reach the daemon at {path}: {exc.strerror or exc}") from None
        s.sendall(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise ControlError("the daemon closed the connection without replying")
            buf += chunk
            if len(buf) > MAX_LINE * 16:
                raise ControlError("reply too long")
    except socket.timeout:
        raise ControlError(f"the daemon did not answer within {timeout:g}s") from None
    except OSError as exc:  # the daemon went away mid-request
        raise ControlError(f"lost the connection to the daemon at {path}: {exc.strerror or exc}") from None
    finally:
        s.close()
    try:
        reply = json.loads(buf)
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        raise ControlError(f"the reply from {path} is not a JSON object (is that a hadirector daemon?)")
    if not reply.get("ok"):
        raise ControlError(reply.get("error", "the daemon refused the request"))
    return reply
