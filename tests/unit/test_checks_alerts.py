"""Pure emailalert core: subjects, emailalertfreq reminders, emailalertstatus filter."""

import pytest

from hadirector.checks.alerts import AlertTracker, _smtp_target
from hadirector.config.model import Alerts, Real, VirtualService


def vs_of(**alerts):
    return VirtualService(address="198.18.0.100", port=80, reals=[Real(address="198.18.1.11")],
                          alerts=Alerts(to=("ops@example.org",), **alerts))


def test_subject_names_real_and_state():
    vs = vs_of()
    tr = AlertTracker(host="lb1", daemon_status="running")
    [m] = tr.on_real(vs, vs.real_key(vs.reals[0]), False, "", "connect refused", 0.0)
    assert m.subject == "[hadirector] real 198.18.1.11:80 of TCP 198.18.0.100:80 is down"
    assert "Reason: connect refused" in m.body and "Daemon-Status: running" in m.body and "lb1" in m.body
    [m] = tr.on_real(vs, vs.real_key(vs.reals[0]), True, "", "ok", 1.0)
    assert m.subject.endswith("is up")


def test_servicename_prefix_like_ldirectord():
    vs = VirtualService(address="198.18.0.100", port=80, reals=[Real(address="198.18.1.11")], servicename="web",
                        comment="call bob", alerts=Alerts(to=("a@b",)))
    [m] = AlertTracker(daemon_status="running").on_real(vs, vs.real_key(vs.reals[0]), False, "removed", "x", 0)
    assert m.subject.startswith("[web] [hadirector] real") and m.subject.endswith("(removed)")
    assert "Comment: call bob" in m.body


def test_reminders_every_freq_while_down():
    vs = vs_of(freq=60)
    tr = AlertTracker(daemon_status="running")
    k = vs.real_key(vs.reals[0])
    tr.on_real(vs, k, False, "", "x", 100_000)  # the clock is int ms
    assert tr.next_deadline() == 160_000
    assert tr.on_timer(159_999) == []
    [m] = tr.on_timer(160_000)
    assert "still down" in m.subject
    assert tr.next_deadline() == 220_000
    tr.on_real(vs, k, True, "", "ok", 200_000)
    assert tr.next_deadline() is None and tr.on_timer(1_000_000) == []


def test_no_reminder_when_freq_zero():
    vs = vs_of(freq=0)
    tr = AlertTracker(daemon_status="running")
    tr.on_real(vs, vs.real_key(vs.reals[0]), False, "", "x", 0.0)
    assert tr.next_deadline() is None


def test_status_filter():
    vs = vs_of(status=("starting",))
    tr = AlertTracker(daemon_status="running")
    k = vs.real_key(vs.reals[0])
    assert tr.on_real(vs, k, False, "", "x", 0.0) == []
    tr.set_daemon_status("starting")
    assert len(tr.on_real(vs, k, False, "", "x", 0.0)) == 1
    vs = vs_of(status=("none",))
    assert tr.on_real(vs, k, False, "", "x", 0.0) == []
    with pytest.raises(ValueError, match="daemon status"):
        tr.set_daemon_status("sleeping")


def test_no_recipients_no_mail():
    vs = VirtualService(address="198.18.0.100", port=80, reals=[Real(address="198.18.1.11")])
    assert AlertTracker(daemon_status="running").on_real(vs, vs.real_key(vs.reals[0]), False, "", "x", 0) == []


def test_smtp_target_parsing():
    assert _smtp_target(None) == ("localhost", 25)
    assert _smtp_target("127.0.0.1:2525") == ("127.0.0.1", 2525)
    assert _smtp_target("mail.example.org") == ("mail.example.org", 25)
    assert _smtp_target("[::1]:2525") == ("::1", 2525)
