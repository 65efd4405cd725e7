"""The check scheduler (the asyncio driver of checks/plan.py) against real loopback servers: it
really checks every real, bounds concurrency, skips overruns, reloads by difference, honours
maintenance files, runs combined checks and detects failures. Timing (spreading, exact intervals,
phases, no catch-up) is the plan's and is tested with a hand-advanced clock in
tests/unit/test_checks_plan.py; here nothing waits a fixed time: each test waits (bounded) for
what it expects to happen."""

import asyncio
import os

from hadirector.checks.scheduler import CheckScheduler
from hadirector.config.model import Real, VirtualService

from hdtest import async_wait_until


class Listener:
    """A TCP server on 127.0.0.1 that records accept times and optionally answers HTTP slowly."""

    def __init__(self, delay: float | None = None, hold: float | None = None):
        self.accepts: list[float] = []
        self.requests = 0
        self.open = 0
        self.max_open = 0
        self.delay, self.hold = delay, hold

    async def start(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader, writer):
        loop = asyncio.get_running_loop()
        self.accepts.append(loop.time())
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        try:
            if self.hold:
                await asyncio.sleep(self.hold)
            line = await reader.readline()
            if line:
                self.requests += 1
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass
                if self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.open -= 1
            writer.close()

    async def close(self):
        self.server.close()


def vs_of(ports, **kw):
    kw.setdefault("checktype", "connect")
    kw.setdefault("checkinterval", "1s")
    kw.setdefault("checktimeout", "2s")
    return VirtualService(address="198.18.0.100", port=80, reals=[Real(address="127.0.0.1", port=p) for p in ports], **kw)


async def test_every_real_is_checked_against_its_socket():
    ls = [await Listener().start() for _ in range(40)]
    sched = CheckScheduler([vs_of([l.port for l in ls], checkinterval="300ms")], startup_window=0.3)
    await sched.start()
    try:
        await async_wait_until(lambda: all(len(l.accepts) >= 2 for l in ls), 10, what='two checks of every real')
    finally:
        await sched.stop()
        for l in ls:
            await l.close()
    st = sched.stats()
    assert st.checks >= 80 and st.errors == 0 and st.overruns == 0
    assert all(h.up and h.last_ok for h in sched.health().values())


async def test_concurrency_bound(held_ports):
    l = Listener(hold=0.4)  # each connection is held 0.4 s before the server reads
    held = held_ports.reserve("0.0.0.0")  # one number for all twelve loopback addresses
    port = held.port
    reals = [Real(address=f"127.0.0.{i + 1}", port=port) for i in range(12)]
    servers = [await asyncio.start_server(l._handle, sock=held.listen(r.address)) for r in reals]
    vs = VirtualService(address="198.18.0.100", port=80, checktype="negotiate", service="simpletcp", request="x",
                        receive="ok", checkinterval="1s", negotiatetimeout="3s", reals=reals)
    sched = CheckScheduler([vs], concurrency=3, startup_window=0.05)
    await sched.start()
    try:
        await async_wait_until(lambda: sched.stats().queued > 0, 10)  # the others wait for a free slot
        await async_wait_until(lambda: len(l.accepts) >= 9, 10)
    finally:
        await sched.stop()
        for s in servers:
            s.close()
    assert l.max_open == 3, l.max_open


async def test_overrun_skips_a_turn_never_two_checks_at_once():
    l = await Listener(delay=1.3).start()
    vs = vs_of([l.port], checktype="negotiate", service="http", request="/", checkinterval="500ms",
               negotiatetimeout="3s")
    sched = CheckScheduler([vs], startup_window=0.01)
    await sched.start()
    try:
        await async_wait_until(lambda: sched.stats().overruns >= 2, 10)
    finally:
        await sched.stop()
        await l.close()
    assert l.max_open == 1


async def test_failure_detection_and_recovery_with_failurecount_and_rise():
    l = await Listener().start()
    port = l.port
    vs = vs_of([port], checkinterval="200ms", failurecount=2, rise=2)
    events = []
    sched = CheckScheduler([vs], on_event=events.append, startup_window=0.01)
    loop = asyncio.get_running_loop()
    await sched.start()
    try:
        await async_wait_until(lambda: sched.stats().checks >= 1, 10)  # checked (and up) first
        await l.close()
        await l.server.wait_closed()
        stopped = loop.time()
        await async_wait_until(lambda: events, 5)
        assert events and events[0].kind == "down" and "refused" in events[0].reason.lower()
        assert loop.time() - stopped < 0.2 * 2 + 2 + 1.0  # checkinterval x failurecount + checktimeout (+ slack)
        l2 = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)
        await async_wait_until(lambda: len(events) > 1, 5)
        assert events[1].kind == "up"
        h = sched.health()[events[1].key]
        assert h.up and h.checks >= 4
        l2.close()
    finally:
        await sched.stop()


async def test_timeout_counts_as_failure():
    l = await Listener(delay=5).start()
    vs = vs_of([l.port], checktype="negotiate", service="http", checkinterval="300ms", negotiatetimeout="250ms")
    events = []
    sched = CheckScheduler([vs], on_event=events.append, startup_window=0.01)
    await sched.start()
    try:
        await async_wait_until(lambda: events, 2)
    finally:
        await sched.stop()
        await l.close()
    assert events[0].kind == "down" and "within 0.25 s" in events[0].reason
    assert sched.stats().timeouts >= 1


async def test_update_applies_only_the_difference(held_ports):
    a, b, c = [await Listener().start() for _ in range(3)]
    dead = held_ports.closed_tcp()
    vs1 = vs_of([a.port, b.port, dead], checkinterval="200ms")
    sched = CheckScheduler([vs1], startup_window=0.01)
    await sched.start()
    try:
        key_dead = next(k for k in sched.health() if k.port == dead)
        await async_wait_until(lambda: not sched.health()[key_dead].up, 10)
        before = sched.health()
        # another service added, real b removed, real a's request changed, dead real unchanged
        vs2 = vs_of([a.port, dead], checkinterval="200ms", checktype="connect", failurecount=1)
        other = VirtualService(address="198.18.0.101", port=81, checktype="connect", checkinterval="200ms",
                               reals=[Real(address="127.0.0.1", port=c.port)])
        s = sched.update([vs2, other])
        assert [k.port for k in s.removed] == [b.port] and [k.port for k in s.added] == [c.port]
        assert s.unchanged == 2
        b_seen = len(b.accepts)
        await async_wait_until(lambda: len(c.accepts) >= 3, 10)  # the new real: checked every 200 ms
        await async_wait_until(lambda: sched.health()[key_dead].checks > before[key_dead].checks, 10)
        after = sched.health()
        assert not after[key_dead].up and after[key_dead].last_change == before[key_dead].last_change  # state kept
        assert len(b.accepts) <= b_seen + 1  # no longer checked (one may have been in flight)
        # a new interval keeps the state and takes effect: while c is checked 3 more times
        # (>= 400 ms), a, now every 1 s, is checked at most once
        s = sched.update([vs_of([a.port, dead], checkinterval="1s"), other])
        assert len(s.changed) == 2
        n, m = len(a.accepts), len(c.accepts)
        await async_wait_until(lambda: len(c.accepts) >= m + 3, 10)
        assert len(a.accepts) - n <= 1
    finally:
        await sched.stop()
        for l in (a, b, c):
            await l.close()


async def test_maintenance_file_forces_down(tmp_path):
    l = await Listener().start()
    vs = vs_of([l.port], checkinterval="200ms", failurecount=3)
    events = []
    sched = CheckScheduler([vs], on_event=events.append, startup_window=0.01, maintenancedir=str(tmp_path))
    await sched.start()
    try:
        await async_wait_until(lambda: sched.stats().checks >= 1, 10)  # checked (and up) first
        (tmp_path / f"127.0.0.1:{l.port}").write_text("")
        await async_wait_until(lambda: events, 1.5)
        assert events[0].kind == "down" and "maintenance" in events[0].reason  # at once, despite failurecount 3
        os.unlink(tmp_path / f"127.0.0.1:{l.port}")
        await async_wait_until(lambda: len(events) > 1, 1.5)
        assert events[1].kind == "up"
    finally:
        await sched.stop()
        await l.close()


async def test_combined_checks_n_connects_then_negotiate():
    l = await Listener().start()
    vs = vs_of([l.port], checktype="combined", num_connects=2, service="http", request="/", receive="ok",
               checkinterval="150ms", negotiatetimeout="2s")
    sched = CheckScheduler([vs], startup_window=0.01)
    await sched.start()
    try:
        await async_wait_until(lambda: len(l.accepts) >= 7, 3)
    finally:
        await sched.stop()
        await l.close()
    n = len(l.accepts)
    # negotiate, connect, connect, negotiate, connect, connect, negotiate ...: one request per 3 checks
    # (the last negotiate may have been stopped between its connect and its request)
    assert (n + 2) // 3 - 1 <= l.requests <= (n + 2) // 3, (n, l.requests)
    assert l.requests >= 2


async def test_connect_timeout_on_the_fast_path():
    # a listener whose accept queue is full drops new SYNs: the connect never completes
    import socket
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        fillers.append(c)
    await asyncio.sleep(0.2)
    vs = vs_of([port], checkinterval="2s", checktimeout="300ms")
    events = []
    sched = CheckScheduler([vs], on_event=events.append, startup_window=0.01)
    await sched.start()
    try:
        await async_wait_until(lambda: events, 2)
    finally:
        await sched.stop()
        for c in fillers:
            c.close()
        lsock.close()
    assert events and events[0].kind == "down" and events[0].reason == "no answer within 0.3 s"
    assert sched.stats().timeouts == 1
