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


# --------------------------------------------------------------------------- once, from the holder

def _down_up(tr, vs, k, at_down, at_up=None):
    out = tr.on_real(vs, k, False, "", "refused", at_down)
    if at_up is not None:
        out += tr.on_real(vs, k, True, "", "ok", at_up)
    return out


def test_a_backup_holds_its_alerts_and_sends_only_what_the_old_holder_could_not():
    vs = vs_of(freq=0)  # detection: 1 x 10 s interval + 5 s timeout = 15 s (the defaults)
    k = vs.real_key(vs.reals[0])
    tr = AlertTracker(daemon_status="running", active=False)
    assert _down_up(tr, vs, k, 100_000, 200_000) == []  # the holder sent these
    assert _down_up(tr, vs, k, 290_000) == []  # the holder died at 280 s, before it could see this
    sent = tr.set_active(True, 300_000, previous_seen=280_000)
    # 200 s is older than 280 - 15 s: the holder saw it; 290 s is not
    assert [m.subject.rsplit(" ", 1)[-1] for m in sent] == ["down"]
    assert tr.set_active(True, 301_000, previous_seen=280_000) == []  # nothing twice
    [m] = tr.on_real(vs, k, True, "", "ok", 310_000)  # active: sent at once
    assert m.subject.endswith("is up")


def test_a_first_holder_sends_everything_it_held_and_reminders_only_when_active():
    vs = vs_of(freq=60)
    k = vs.real_key(vs.reals[0])
    tr = AlertTracker(daemon_status="running", active=False)
    tr.on_real(vs, k, False, "", "x", 0)
    assert tr.next_deadline() == 60_000 and tr.on_timer(60_000) == []  # kept, not mailed
    assert len(tr.set_active(True, 61_000, previous_seen=None)) == 1
    [m] = tr.on_timer(120_000)
    assert "still down" in m.subject
    tr.set_active(False, 121_000)
    assert tr.on_timer(180_000) == []


def test_maintenance_silences_the_check_and_says_the_state_when_it_ends():
    vs = vs_of()
    k = vs.real_key(vs.reals[0])
    tr = AlertTracker(daemon_status="running")
    assert tr.set_maintenance({k}, 0) == []
    assert tr.on_real(vs, k, False, "", "switched off for maintenance", 10) == []
    assert tr.on_real(vs, k, True, "", "ok", 20) == []
    assert tr.set_maintenance(set(), 30) == []  # up, as last alerted: nothing to say
    tr.set_maintenance({k}, 40)
    tr.on_real(vs, k, False, "", "still off", 50)
    [m] = tr.set_maintenance(set(), 60)  # enabled while down: that is a failure now
    assert m.subject.endswith("is down") and "still off" in m.body


def test_notify_commands_follow_the_same_rule():
    from hadirector.checks.alerts import RealNotify
    vs = VirtualService(address="198.18.0.100", port=80, reals=[Real(address="198.18.1.11")],
                        notify_down="/bin/down")
    k = vs.real_key(vs.reals[0])
    tr = AlertTracker(daemon_status="running", active=False)
    assert tr.on_real(vs, k, False, "", "x", 0) == []
    [n] = tr.set_active(True, 1, None)
    assert isinstance(n, RealNotify) and not n.up
