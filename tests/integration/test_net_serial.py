"""Serial heartbeat links over a pseudo-terminal pair (no root needed): the link opens the pty's
slave by its path with pyserial; the master end plays the other node."""

from __future__ import annotations

import asyncio
import os
import random

import pytest

from hadirector.config.model import Link
from hadirector.net.transports import SerialLink, TransportError, frame_encode, open_link
from hdtest import async_wait_until


class Inbox:
    def __init__(self):
        self.queue: asyncio.Queue = asyncio.Queue()

    def __call__(self, name, data, addr):
        self.queue.put_nowait((name, data, addr))

    async def get(self, timeout=5.0):
        return await asyncio.wait_for(self.queue.get(), timeout)


@pytest.fixture
def pty_pair():
    """[master fd, slave path]; a test that closes the master sets pair[0] to None."""
    master, slave = os.openpty()
    pair = [master, os.ttyname(slave)]
    yield pair
    os.close(slave)
    if pair[0] is not None:
        os.close(pair[0])


async def test_datagrams_cross_a_serial_line_both_ways(pty_pair):
    master, path = pty_pair
    inbox_a, inbox_b = Inbox(), Inbox()
    a = await open_link(Link(kind="serial", device=path, baud=115200), inbox_a)
    b = SerialLink(Link(kind="serial", device="pty-master"), inbox_b, fd=master)
    try:
        assert a.name == f"serial:{path}"
        rng = random.Random(7)
        sent = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))) for _ in range(30)]
        sent.append(b"\xc0\xdb\xc0\xdb")  # the framing bytes themselves
        for d in sent:
            a.send(d)
        got = [(await inbox_b.get())[1] for _ in sent]
        assert got == sent
        b.send(b"pong")
        name, data, addr = await inbox_a.get()
        assert (name, data, addr) == (f"serial:{path}", b"pong", path)
        assert a.stats.sent == len(sent) and b.stats.received == len(sent)
        assert a.stats.bad_frames == b.stats.bad_frames == 0
    finally:
        a.close()
        b.close()


async def test_line_noise_is_dropped_and_counted(pty_pair):
    master, path = pty_pair
    inbox = Inbox()
    a = await open_link(Link(kind="serial", device=path), inbox)
    try:
        os.write(master, b"\x00\xffgarbage\xc0" + frame_encode(b"one")[:-3] + b"\xc0" + frame_encode(b"two"))
        assert (await inbox.get())[1] == b"two"
        assert a.stats.bad_frames == 2 and a.stats.received == 1
    finally:
        a.close()


async def test_a_stalled_line_drops_and_counts_instead_of_failing(pty_pair):
    master, path = pty_pair  # nobody reads the master: the pty buffer and our queue fill up
    a = await open_link(Link(kind="serial", device=path), Inbox())
    try:
        for _ in range(400):
            a.send(b"x" * 1000)  # never raises
        assert a.stats.send_errors > 0 and a.stats.last_error == "serial output queue full"
        assert a.stats.sent + a.stats.send_errors == 400
    finally:
        a.close()


async def test_a_vanished_line_is_reported_down(pty_pair):
    master, path = pty_pair
    a = await open_link(Link(kind="serial", device=path), Inbox())
    try:
        assert a.up
        os.close(master)  # the other end hangs up: reads on the slave fail (EIO)
        pty_pair[0] = None
        await async_wait_until(lambda: not a.up, 5, 0.02, "the hung-up line to be reported down")
        assert a.stats.last_error
        a.send(b"lost")  # counted, not raised
        assert a.stats.send_errors == 1
    finally:
        a.close()


async def test_missing_device_is_a_clear_error(tmp_path):
    with pytest.raises(TransportError) as err:
        await open_link(Link(kind="serial", device=str(tmp_path / "ttyS9")), Inbox())
    assert "ttyS9" in str(err.value)
