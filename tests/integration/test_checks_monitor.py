"""HealthMonitor end to end on loopback: a real goes down, the alert mail arrives at a real SMTP
server (aiosmtpd) naming the real and its state, notify/fallback/quorum commands run with their
arguments, reminders repeat while down, and the desired state follows ldirectord's rules."""

import asyncio
import email
import email.policy
import stat

import pytest
from aiosmtpd.smtp import SMTP

from hadirector.checks.alerts import Notifier
from hadirector.checks.monitor import HealthMonitor
from hadirector.config.model import Alerts, Balancer, Fallback, Real, VirtualService

from hdtest import async_wait_until, listening, port_of


class Inbox:
    def __init__(self):
        self.mails = []

    async def handle_DATA(self, server, session, envelope):
        self.mails.append((envelope.mail_from, tuple(envelope.rcpt_tos), envelope.content.decode("utf-8", "replace")))
        return "250 OK"


@pytest.fixture
async def smtp():
    """aiosmtpd in the test's event loop, on a listening socket the kernel gave us."""
    inbox = Inbox()
    sock = listening()
    port = port_of(sock)
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(inbox, hostname="127.0.0.1"), sock=sock)
    try:
        yield inbox, f"127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def recorder(tmp_path, name):
    out = tmp_path / f"{name}.log"
    p = tmp_path / f"{name}.sh"
    p.write_text(f'#!/bin/sh\necho "$* | $HADIRECTOR_REAL $HADIRECTOR_STATE" >> {out}\n')
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return str(p), out


def subjects(inbox):
    return [str(email.message_from_string(content, policy=email.policy.default)["Subject"])
            for _, _, content in inbox.mails]


async def test_alert_mail_and_commands(smtp, tmp_path, held_ports):
    inbox, smtp_addr = smtp
    live_port = held_ports.reserve()  # the live real goes down and comes back on this number
    live = live_port.port
    up_srv = await asyncio.start_server(lambda r, w: w.close(), sock=live_port.listen())
    doomed_srv = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    doomed = doomed_srv.sockets[0].getsockname()[1]
    notify_down, down_log = recorder(tmp_path, "down")
    notify_up, up_log = recorder(tmp_path, "up")
    fbcmd, fb_log = recorder(tmp_path, "fallback")
    vs = VirtualService(address="198.18.0.100", port=80, checktype="connect", checkinterval="200ms",
                        quiescent=True, notify_down=notify_down, notify_up=notify_up, fallbackcommand=fbcmd,
                        fallback=Fallback(address="127.0.0.1", port=8080), servicename="web",
                        alerts=Alerts(to=("ops@example.test",), sender="lb@example.test", smtp=smtp_addr, freq=1),
                        reals=[Real(address="127.0.0.1", port=live, weight=4), Real(address="127.0.0.1", port=doomed)])
    desired = []
    mon = HealthMonitor(Balancer(virtual=(vs,)), on_desired=desired.append, startup_window=0.01)
    await mon.start()
    mon.set_daemon_status("running")
    try:
        await async_wait_until(lambda: fb_log.exists(), 6, what='the fallback command at start')
        assert fb_log.read_text().split("|")[0].split() == ["stop", "198.18.0.100:80", "tcp"]  # as ldirectord at start
        doomed_srv.close()
        await doomed_srv.wait_closed()
        want = f"[web] [hadirector] real 127.0.0.1:{doomed} of TCP 198.18.0.100:80 is down (quiescent, weight 0)"
        await async_wait_until(lambda: want in subjects(inbox), 6,
                               what=lambda: f'the "is down" alert mail (subjects: {subjects(inbox)})')
        mail_from, rcpts, content = inbox.mails[0]
        assert rcpts == ("ops@example.test",) and "From: lb@example.test" in content
        assert "Daemon-Status: running" in content and "Reason: connect to port" in content
        await async_wait_until(lambda: down_log.exists(), 6, what='the notify_down command')
        assert down_log.read_text().strip() == f"| 127.0.0.1:{doomed} DOWN"  # keepalived: no arguments
        view = mon.desired().service(vs.name)
        states = {r.port: (r.status, r.weight) for r in view.reals}
        assert states == {live: ("up", 4), doomed: ("quiescent", 0)} and view.fallback is None
        # emailalertfreq = 1 s: a reminder while it stays down
        await async_wait_until(lambda: any("still down" in s for s in subjects(inbox)), 4,
                               what='a "still down" reminder mail')
        # the last real goes: fallback on, fallbackcommand start
        up_srv.close()
        await up_srv.wait_closed()
        await async_wait_until(lambda: mon.desired().service(vs.name).fallback is not None, 6, what='the fallback to be on')
        await async_wait_until(lambda: "start 198.18.0.100:80 tcp" in fb_log.read_text(), 6, what='fallbackcommand start')
        await async_wait_until(lambda: any("fallback 127.0.0.1:8080" in s and s.endswith("is on")
                                           for s in subjects(inbox)), 6, what='the "fallback is on" mail')
        # it comes back
        back = await asyncio.start_server(lambda r, w: w.close(), sock=live_port.listen())
        await async_wait_until(lambda: mon.desired().service(vs.name).fallback is None, 6, what='the fallback to be off')
        await async_wait_until(lambda: up_log.exists() and f"127.0.0.1:{live} UP" in up_log.read_text(), 6,
                               what='the notify_up command')
        await async_wait_until(lambda: fb_log.read_text().count("stop") == 2, 6, what='the second fallbackcommand stop')
        # the mail goes out after the state change, over SMTP: wait for its delivery as above
        await async_wait_until(lambda: any(s.endswith(f"real 127.0.0.1:{live} of TCP 198.18.0.100:80 is up")
                                           for s in subjects(inbox)), 6, what='the "is up" alert mail')
        back.close()
        h = mon.health()
        assert all(x.last_check is not None for x in h.values())
        assert desired and desired[-1] == mon.desired() and desired[-1].keys == (vs.name,)
    finally:
        await mon.stop()


async def test_quorum_commands(tmp_path, held_ports):
    qup, qup_log = recorder(tmp_path, "qup")
    qdown, qdown_log = recorder(tmp_path, "qdown")
    srv = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    vs = VirtualService(address="198.18.0.100", port=80, checktype="connect", checkinterval="200ms",
                        quorum=3, hysteresis=0, quorum_up=qup, quorum_down=qdown,
                        fallback=Fallback(address="127.0.0.1", port=8080),
                        reals=[Real(address="127.0.0.1", port=port, weight=2), Real(address="127.0.0.1", port=held_ports.closed_tcp(), weight=2)])
    mon = HealthMonitor(Balancer(virtual=(vs,)), startup_window=0.01)
    await mon.start()
    try:
        # 2 < 3: quorum lost once the dead real is down
        await async_wait_until(lambda: qdown_log.exists(), 6, what='the quorum_down command')
        svc = mon.desired().service(vs.name)
        assert not mon.core.memory[vs.name].quorum_up and svc.fallback is not None
        assert [r.status for r in svc.reals] == ["down", "down"]  # withdrawn: the sorry server serves
        assert not qup_log.exists()
        assert [(r.address, r.port) for r in svc.installed] == [("127.0.0.1", 8080)]  # only the sorry server
    finally:
        srv.close()
        await mon.stop()


async def test_mail_failure_is_counted_not_raised(held_ports):
    from hadirector.checks.alerts import Mail
    n = Notifier(mail_timeout=2)
    ok = await n.send(Mail(("a@example.test",), None, f"127.0.0.1:{held_ports.closed_tcp()}", "s", "b"))
    assert not ok and n.failed == 1


async def test_node_notify_and_callback_arguments(tmp_path):
    cmd, log = recorder(tmp_path, "node")
    n = Notifier()
    assert await n.run(cmd, ("GROUP", "web", "MASTER", "100")) == 0
    await n.node_notify(cmd, "web", "BACKUP", 50)
    await n.callback(cmd, "/etc/ha.d/ldirectord.cf")
    lines = [l.split("|")[0].strip() for l in log.read_text().splitlines()]
    assert lines == ["GROUP web MASTER 100", "GROUP web BACKUP 50", "/etc/ha.d/ldirectord.cf"]
    with pytest.raises(ValueError, match="MASTER"):
        n.node_notify(cmd, "web", "ACTIVE")
