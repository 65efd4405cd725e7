"""Byte-stream behaviour of the TCP relay: half-close, large transfers both ways, server-first
protocols, many concurrent connections (loopback, no root)."""

import asyncio
import hashlib
import os

import pytest

from hadirector.dataplane.proxy import ProxyDataPlane
from hdtest import async_wait_until

from proxy_util import balancer_config, desired_for, service_key

KEY = service_key()


class StreamReal:
    """mode "upload": read to EOF, answer the sha256 of what came, close.
    mode "echo": echo everything back as it comes, close after EOF.
    mode "banner": greet first, then echo lines."""

    def __init__(self, mode, host="127.0.0.3"):
        self.mode = mode
        self.host = host
        self.server = None
        self.port = 0

    async def start(self):
        self.server = await asyncio.start_server(self._client, self.host, 0, backlog=1024)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self):
        self.server.close()
        await self.server.wait_closed()

    async def _client(self, reader, writer):
        try:
            if self.mode == "upload":
                h = hashlib.sha256()
                while chunk := await reader.read(1 << 16):
                    h.update(chunk)
                writer.write(h.hexdigest().encode())
            elif self.mode == "echo":
                while chunk := await reader.read(1 << 16):
                    writer.write(chunk)
                    await writer.drain()
            else:
                writer.write(b"220 hello\r\n")
                while line := await reader.readline():
                    writer.write(b"250 " + line)
                    await writer.drain()
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def proxy():
    made = []

    async def make(real):
        dp = ProxyDataPlane(listen={KEY: ("127.0.0.10", 0)})
        made.append(dp)
        await dp.apply(desired_for(balancer_config([(real.host, real.port, 1)])))
        return dp, dp.listen_address(KEY)

    yield make
    for dp in made:
        await dp.close()


async def test_half_close_upload_then_answer(proxy):
    real = await StreamReal("upload").start()
    try:
        dp, (host, port) = await proxy(real)
        data = os.urandom(3 * 1024 * 1024 + 17)
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(data)
        await writer.drain()
        writer.write_eof()  # our FIN must reach the real while its answer can still come back
        async with asyncio.timeout(20):
            answer = await reader.read()
        writer.close()
        assert answer == hashlib.sha256(data).hexdigest().encode()
        st = dp.stats().service(KEY)
        assert st.counters.inbytes == len(data) and st.counters.outbytes == 64
    finally:
        await real.stop()


async def test_large_transfer_both_ways_at_once(proxy):
    real = await StreamReal("echo").start()
    try:
        _, (host, port) = await proxy(real)
        data = os.urandom(24 * 1024 * 1024)
        reader, writer = await asyncio.open_connection(host, port)

        async def send():
            for i in range(0, len(data), 1 << 20):
                writer.write(data[i:i + (1 << 20)])
                await writer.drain()
            writer.write_eof()

        async def receive():
            got = bytearray()
            while chunk := await reader.read(1 << 20):
                got += chunk
            return bytes(got)

        async with asyncio.timeout(60):
            _, echoed = await asyncio.gather(send(), receive())
        writer.close()
        assert len(echoed) == len(data) and echoed == data
    finally:
        await real.stop()


async def test_server_speaks_first(proxy):
    real = await StreamReal("banner").start()
    try:
        _, (host, port) = await proxy(real)
        reader, writer = await asyncio.open_connection(host, port)
        async with asyncio.timeout(5):
            assert await reader.readline() == b"220 hello\r\n"
            writer.write(b"HELO x\r\n")
            assert await reader.readline() == b"250 HELO x\r\n"
        writer.close()
    finally:
        await real.stop()


async def test_many_concurrent_connections(proxy):
    real = await StreamReal("echo").start()
    try:
        dp, (host, port) = await proxy(real)

        async def one(i):
            reader, writer = await asyncio.open_connection(host, port)
            msg = f"connection {i} ".encode() * 100
            writer.write(msg)
            writer.write_eof()
            got = await reader.read()
            writer.close()
            return got == msg

        async with asyncio.timeout(30):
            results = await asyncio.gather(*(one(i) for i in range(300)))
        assert all(results)
        await async_wait_until(lambda: not dp.stats().service(KEY).reals[(real.host, real.port)].inactive,
                               5, 0.05, "the closed connections to be freed")
        assert dp.stats().service(KEY).counters.conns == 300
    finally:
        await real.stop()
