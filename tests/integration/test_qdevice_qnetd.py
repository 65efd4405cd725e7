"""hadirector's qdevice-net client against a real corosync-qnetd (Debian `corosync-qnetd`),
started here with -f -s off on 127.0.0.1, a kernel-picked port and its own state directory, and
ended by its pid. Two directors' clients (node ids 1 and 2) with a split membership (each sees only
itself): qnetd gives exactly one of them its vote, with ffsplit and with lms; qnetd's own view
(corosync-qnetd-tool) agrees; qnetd stopped: both report None and the quorum cores of two
directors that see each other keep their groups (losing the witness alone moves nothing)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time

import pytest

from hadirector.cluster import qdevice as q
from hadirector.cluster.quorum import OK, Quorum
from hadirector.config.model import Quorum as QuorumConfig, QuorumDevice
from hadirector.daemon.qdevice import QdeviceDriver
from hadirector.lab import qnetd as lab_qnetd
from hdtest import async_wait_until, need

HB = 300  # ms; qnetd is started with heartbeat_interval_min=100
NAMES = {1: "alpha", 2: "beta"}


@pytest.fixture
def qnetd(tmp_path):
    need(lab_qnetd.QNETD, lab_qnetd.QNETD_TOOL)
    srv = lab_qnetd.QnetdServer(str(tmp_path / "qnetd")).start()
    try:
        yield srv
    finally:
        srv.stop()


class Pair:
    """Two clients, as two directors would run them, each feeding its director's quorum core."""

    def __init__(self, port: int, algorithm: str) -> None:
        cfg = QuorumConfig(device=QuorumDevice(host="127.0.0.1", port=port, algorithm=algorithm, tls=False))
        self.votes: dict[int, list] = {1: [], 2: []}
        self.quorum = {nid: Quorum(cfg, NAMES.values(), NAMES[nid], 0) for nid in NAMES}
        self.drivers = {}
        for nid in NAMES:
            core = q.QdeviceClient(q.Settings("qtest", nid, (1, 2), q.ALGORITHMS[algorithm],
                                              heartbeat_interval=HB, retry_min=200, retry_max=400))
            self.drivers[nid] = QdeviceDriver(core, "127.0.0.1", port, self._on_vote(nid))

    def _on_vote(self, nid):
        def on_vote(vote, detail, members):
            self.votes[nid].append((time.monotonic(), vote, detail))
            self.quorum[nid].on_witness(vote, int(time.monotonic() * 1000), {NAMES[m] for m in members})
        return on_vote

    def vote(self, nid):
        return self.drivers[nid].core.vote

    def see(self, view: dict[int, set[int]]) -> None:
        now = int(time.monotonic() * 1000)
        for nid, members in view.items():
            self.quorum[nid].set_members({NAMES[m] for m in members if m != nid}, now)
            self.drivers[nid].set_membership(members)

    def start(self):
        for d in self.drivers.values():
            d.start()

    async def connected(self):
        await async_wait_until(lambda: all(d.core.state == q.State.CONNECTED for d in self.drivers.values()),
                               5, what="both clients connected")

    async def together(self):
        """Both connected, seeing each other, both holding the vote."""
        await self.connected()
        self.see({1: {1, 2}, 2: {1, 2}})
        await async_wait_until(lambda: self.vote(1) is True and self.vote(2) is True, 5,
                               what=lambda: f"both ACK; votes {self.votes}")

    async def stop(self):
        for d in self.drivers.values():
            await d.stop()


async def _split_gives_one_vote(qnetd, algorithm):
    pair = Pair(qnetd.port, algorithm)
    pair.start()
    try:
        await pair.together()  # the directors see each other: both get the vote
        t0 = time.monotonic()
        pair.see({1: {1}, 2: {2}})  # the link between them is cut
        await async_wait_until(lambda: {pair.vote(1), pair.vote(2)} == {True, False}
                               and not any(d.core.status(0)["answer_pending"] for d in pair.drivers.values()),
                               5, what=lambda: f"one ACK, one NACK; votes {pair.votes}")
        took = time.monotonic() - t0
        assert (pair.vote(1), pair.vote(2)) == (True, False)  # tie-breaker: lowest node id
        view = await asyncio.to_thread(qnetd.clients)
        assert view == {1: "ACK", 2: "NACK"}, view
        assert pair.quorum[1].mode == OK and pair.quorum[1].verdict.votes == 2  # 1 node + the witness
        assert pair.quorum[2].mode != OK and pair.quorum[2].verdict.votes == 1
        print(f"\n{algorithm}: split decided by qnetd in {took * 1000:.0f} ms "
              f"(node 1 {pair.votes[1][-1][2]}; node 2 {pair.votes[2][-1][2]})")
        return pair
    except BaseException:
        await pair.stop()
        raise


async def test_ffsplit_split_membership_exactly_one_vote(qnetd):
    pair = await _split_gives_one_vote(qnetd, "ffsplit")
    await pair.stop()


async def test_lms_split_membership_exactly_one_vote(qnetd):
    pair = await _split_gives_one_vote(qnetd, "lms")
    await pair.stop()


async def test_qnetd_stopped_both_none_and_nothing_moves_then_it_comes_back(qnetd):
    pair = Pair(qnetd.port, "ffsplit")
    pair.start()
    try:
        await pair.together()
        assert all(qz.mode == OK and qz.verdict.votes == 3 for qz in pair.quorum.values())
        t0 = time.monotonic()
        qnetd.stop()
        assert not qnetd.alive()
        with pytest.raises(OSError):  # the fault took effect: nobody listens on qnetd's port
            socket.create_connection(("127.0.0.1", qnetd.port), timeout=1).close()
        await async_wait_until(lambda: pair.vote(1) is None and pair.vote(2) is None, 5,
                               what=lambda: f"both None; votes {pair.votes}")
        lost = time.monotonic() - t0
        for nid, qz in pair.quorum.items():  # two directors that see each other: 2 of 3 votes
            assert qz.mode == OK and qz.verdict.votes == 2 and qz.witness_state() == "unknown", qz.snapshot(0)
        assert all(d.core.state != q.State.CONNECTED for d in pair.drivers.values())
        print(f"\nqnetd stopped: both clients report no vote after {lost * 1000:.0f} ms "
              f"({pair.votes[1][-1][2]}); quorum stays ok on both")
        qnetd.start()  # the same port: the clients reconnect by themselves
        await async_wait_until(lambda: pair.vote(1) is True and pair.vote(2) is True, 10,
                               what=lambda: f"both ACK again; votes {pair.votes}")
    finally:
        await pair.stop()


async def test_a_client_silenced_is_dropped_and_the_other_side_gets_the_vote(qnetd):
    """qnetd's dead-peer detection: a client that stops sending (frozen) loses its place, and
    with ffsplit the other side of the split gets the vote."""
    pair = Pair(qnetd.port, "ffsplit")
    pair.start()
    try:
        await pair.connected()
        pair.see({1: {1}, 2: {2}})
        await async_wait_until(lambda: (pair.vote(1), pair.vote(2)) == (True, False), 5, what="1 ACK, 2 NACK")
        await pair.drivers[1].stop()  # node 1 goes away without a word
        await async_wait_until(lambda: pair.vote(2) is True, 5, what=lambda: f"node 2 ACK; {pair.votes[2]}")
        assert (await asyncio.to_thread(qnetd.clients)) == {2: "ACK"}
    finally:
        await pair.stop()


async def test_qnetd_frozen_echo_timeout_gives_none(qnetd):
    """qnetd alive but silent (SIGSTOP: connections stay open, nothing answers): no echo reply by
    the next heartbeat -> the clients give the witness up (qdevice_net_echo_request_timer_callback)."""
    pair = Pair(qnetd.port, "ffsplit")
    pair.start()
    try:
        await pair.together()
        t0 = time.monotonic()
        os.kill(qnetd.pid, signal.SIGSTOP)
        try:
            await async_wait_until(lambda: pair.vote(1) is None and pair.vote(2) is None, 5,
                                   what=lambda: f"both None; votes {pair.votes}")
            lost = time.monotonic() - t0
            assert all("no echo reply" in pair.votes[n][-1][2] for n in NAMES), pair.votes
            assert HB / 1000 <= lost <= 3 * HB / 1000 + 0.5, lost
            print(f"\nqnetd frozen: no vote after {lost * 1000:.0f} ms (heartbeat {HB} ms)")
        finally:
            os.kill(qnetd.pid, signal.SIGCONT)
        await async_wait_until(lambda: pair.vote(1) is True and pair.vote(2) is True, 10,
                               what=lambda: f"both ACK again; votes {pair.votes}")
    finally:
        await pair.stop()
