"""The control socket, over a real Unix socket."""

import asyncio
import os
import stat

import pytest

from hadirector.daemon.control import ControlError, ControlServer, request


async def _serve(tmp_path, handlers):
    server = ControlServer(str(tmp_path), handlers)
    await server.start()
    return server


async def test_round_trip_and_mode(tmp_path):
    async def status(req):
        return {"node": "a", "echo": req.get("x")}

    server = await _serve(tmp_path, {"status": status})
    try:
        mode = stat.S_IMODE(os.stat(tmp_path / "control.sock").st_mode)
        assert mode == 0o600
        reply = await asyncio.to_thread(request, str(tmp_path), "status", x=5)
        assert reply == {"ok": True, "node": "a", "echo": 5}
    finally:
        await server.close()
    assert not (tmp_path / "control.sock").exists()


async def test_errors_are_replies_not_crashes(tmp_path):
    async def boom(req):
        raise RuntimeError("kaput")

    server = await _serve(tmp_path, {"boom": boom, "ok": lambda r: asyncio.sleep(0, {})})
    try:
        with pytest.raises(ControlError, match="unknown command 'nope'"):
            await asyncio.to_thread(request, str(tmp_path), "nope")
        with pytest.raises(ControlError, match="RuntimeError: kaput"):
            await asyncio.to_thread(request, str(tmp_path), "boom")
        # the server still answers after a failing handler
        assert (await asyncio.to_thread(request, str(tmp_path), "ok"))["ok"] is True
        # garbage on the wire gets an error reply
        r, w = await asyncio.open_unix_connection(str(tmp_path / "control.sock"))
        w.write(b"this is not json\n")
        line = await r.readline()
        assert b"bad request" in line
        w.close()
    finally:
        await server.close()


def test_no_daemon_is_a_clear_error(tmp_path):
    with pytest.raises(ControlError, match="no hadirector daemon is running"):
        request(str(tmp_path), "status")


async def test_second_server_refused_while_first_alive(tmp_path):
    first = await _serve(tmp_path, {})
    try:
        with pytest.raises(ControlError, match="another daemon"):
            await _serve(tmp_path, {})
    finally:
        await first.close()


async def test_the_peer_is_the_kernels_word_not_the_clients(tmp_path):
    seen = {}

    async def who(req):
        seen.update(req["_peer"])
        return {}

    server = await _serve(tmp_path, {"who": who})
    try:
        await asyncio.to_thread(request, str(tmp_path), "who", _peer={"uid": 12345, "pid": 1, "gid": 1})
    finally:
        await server.close()
    assert seen == {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid()}
