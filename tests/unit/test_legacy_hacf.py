"""ha.cf: every directive hadirector maps, heartbeat's rules, and where each problem is reported."""

from __future__ import annotations

import pytest

from hadirector.config.errors import Collector
from hadirector.config.legacy import read_ha_dir
from hadirector.config.legacy.hacf import IGNORED
from legacy_util import errors, load, make_ha_dir, one_error

BASE = "node alpha\nnode beta\nudpport 694\nucast eth0 198.18.0.2\n"


def cfg_of(tmp_path, hacf, **kw):
    return load(make_ha_dir(tmp_path, hacf=hacf, **kw)).config


# ---------------------------------------------------------------- timing


@pytest.mark.parametrize("text,ms", [("2", 2000), ("1.7", 1700), ("2000ms", 2000), ("500ms", 500),
                                     ("250000us", 250)])
def test_keepalive_forms(tmp_path, text, ms):
    cfg = cfg_of(tmp_path, BASE + f"keepalive {text}\ndeadtime 30\n")
    assert cfg.cluster.timing.keepalive == ms


def test_warntime_defaults_to_half_deadtime(tmp_path):
    t = cfg_of(tmp_path, BASE + "keepalive 1\ndeadtime 12\n").cluster.timing
    assert (t.deadtime, t.warntime) == (12_000, 6000)


@pytest.mark.parametrize("deadtime,initdead", [(30, 30_000), (5, 12_000), (8, 16_000), (10, 20_000)])
def test_initdead_defaults_as_heartbeat(tmp_path, deadtime, initdead):
    # heartbeat init_config: deadtime if > 10 s, 12 s if < 6 s, else 2 x deadtime
    t = cfg_of(tmp_path, BASE + f"keepalive 1\ndeadtime {deadtime}\n").cluster.timing
    assert t.initdead == initdead


def test_deadtime_must_exceed_twice_keepalive(tmp_path):
    d = make_ha_dir(tmp_path, hacf=BASE + "keepalive 2\ndeadtime 4\n")
    err = one_error(d)
    assert err.startswith(f"{d}/ha.cf:6: ")
    assert "deadtime (4000 ms) must be more than twice keepalive (2000 ms)" in err


def test_initdead_below_deadtime_is_reported_at_initdead(tmp_path):
    d = make_ha_dir(tmp_path, hacf=BASE + "keepalive 1\ndeadtime 30\ninitdead 20\n")
    err = one_error(d)
    assert err.startswith(f"{d}/ha.cf:7: ") and "initdead (20000 ms) must not be below deadtime" in err


def test_warntime_not_below_deadtime(tmp_path):
    d = make_ha_dir(tmp_path, hacf=BASE + "keepalive 1\nwarntime 30\ndeadtime 20\n")
    err = one_error(d)
    assert err.startswith(f"{d}/ha.cf:6: ") and "warntime (30000 ms) must be less than deadtime" in err


def test_bad_duration(tmp_path):
    d = make_ha_dir(tmp_path, hacf=BASE + "keepalive 2 seconds\n")
    assert one_error(d) == f"{d}/ha.cf:5: keepalive takes one value, got 2: 2 seconds"
    d2 = make_ha_dir(tmp_path, hacf=BASE + "deadtime soon\n", name="b")
    assert one_error(d2).startswith(f"{d2}/ha.cf:5: deadtime: expected a duration")


# ---------------------------------------------------------------- media


def test_udpport_must_precede_media(tmp_path):
    d = make_ha_dir(tmp_path, hacf="node alpha\nnode beta\nucast eth0 198.18.0.2\nudpport 700\n")
    err = one_error(d)
    assert err.startswith(f"{d}/ha.cf:4: udpport must precede the media lines that use it")
    assert "ha.cf:3" in err


def test_baud_must_precede_serial(tmp_path):
    d = make_ha_dir(tmp_path, hacf="node alpha\nnode beta\nserial /dev/ttyS0\nbaud 38400\n")
    err = one_error(d)
    assert err.startswith(f"{d}/ha.cf:4: baud must precede the serial lines that use it")


def test_udpport_and_baud_apply_to_their_media(tmp_path):
    cfg = cfg_of(tmp_path, "node alpha beta\nudpport 1694\nbaud 115200\nserial /dev/ttyS0, /dev/ttyS1\n"
                 "bcast eth2 eth3\nucast eth1 198.18.0.2\nmcast eth4 239.0.0.7 5405 2 1\n")
    links = {lk.name: lk for lk in cfg.cluster.links}
    assert links["serial:/dev/ttyS0"].baud == 115200 and links["serial:/dev/ttyS1"].baud == 115200
    assert links["bcast:eth2"].port == 1694 and links["bcast:eth3"].port == 1694
    assert links["ucast:eth1"].port == 1694
    m = links["mcast:eth4"]
    assert (m.group, m.port, m.ttl, m.loop) == ("239.0.0.7", 5405, 2, True)  # mcast has its own port


def test_invalid_baud(tmp_path):
    d = make_ha_dir(tmp_path, hacf=BASE + "baud 12345\n")
    assert "baud: expected one of 9600, 19200" in one_error(d)


def test_ucast_lines_on_one_interface_make_one_link(tmp_path):
    d = make_ha_dir(tmp_path, hacf="node alpha beta gamma\nucast eth1 198.18.0.1\nucast eth1 198.18.0.2\n"
                    "ucast eth1 198.18.0.3\nucast eth2 198.18.1.3\n")
    cfg = load(d).config
    assert [(lk.interface, lk.peers) for lk in cfg.cluster.links] == [
        ("eth1", ("198.18.0.1", "198.18.0.2", "198.18.0.3")), ("eth2", ("198.18.1.3",))]
    # a local address stays in the model: one file serves every node
    assert cfg.cluster.links[0].remote_peers(["198.18.0.2"]) == ("198.18.0.1", "198.18.0.3")
    _data, locate, _files = read_ha_dir(d, Collector())
    assert locate(("cluster", "links", 0, "peers", 2)) == f"{d}/ha.cf:4"
    assert locate(("cluster", "links", 1)) == f"{d}/ha.cf:5"


def test_ucast_takes_one_peer_per_line(tmp_path):
    d = make_ha_dir(tmp_path, hacf="node alpha beta\nucast eth1 198.18.0.1 198.18.0.9\n")
    loaded = load(d)
    assert loaded.config.cluster.links[0].peers == ("198.18.0.1",)
    assert any("one peer per line" in str(w) and ":2:" in str(w) for w in loaded.warnings)


def test_ucast_host_name_is_resolved(tmp_path):
    loaded = load(make_ha_dir(tmp_path, hacf="node alpha beta\nucast eth1 localhost\n"))
    assert loaded.config.cluster.links[0].peers == ("127.0.0.1",)
    assert any("resolved to 127.0.0.1" in str(w) for w in loaded.warnings)


def test_ucast6_and_mcast6(tmp_path):
    cfg = cfg_of(tmp_path, "node alpha beta\nucast6 eth1 fd00::2\nmcast6 eth2 ff02::694 694 1 0\n")
    assert cfg.cluster.links[0].peers == ("fd00::2",)
    assert cfg.cluster.links[1].group == "ff02::694"


@pytest.mark.parametrize("line,msg", [
    ("ucast eth1", "ucast needs an interface and a peer address"),
    ("ucast eth1 not_an@address", "expected an IP address or host name"),
    ("mcast eth1 239.0.0.1 694 1", "mcast needs interface, group, port, ttl and loop"),
    ("mcast eth1 10.0.0.1 694 1 0", "mcast group 10.0.0.1 is not a multicast address"),
    ("mcast eth1 239.0.0.1 694 0 0", "mcast ttl: expected 1..255"),
    ("mcast eth1 239.0.0.1 694 1 2", "mcast loop: expected 0 or 1"),
    ("serial ttyS0", "serial port 'ttyS0' is not a full path name"),
    ("hbaping fc0", "heartbeat medium hbaping (Fibre Channel HBA pings) is not supported"),
])
def test_media_errors(tmp_path, line, msg):
    d = make_ha_dir(tmp_path, hacf=BASE + line + "\n")
    err = one_error(d)
    assert err.startswith(f"{d}/ha.cf:5: ") and msg in err, err


def test_udp_is_the_old_name_of_bcast(tmp_path):
    loaded = load(make_ha_dir(tmp_path, hacf="node alpha beta\nudp eth1\n"))
    assert loaded.config.cluster.links[0].kind == "bcast"
    assert any("old name for `bcast`" in str(w) for w in loaded.warnings)


def test_no_media(tmp_path):
    d = make_ha_dir(tmp_path, hacf="node alpha beta\n")
    assert one_error(d) == (f"{d}/ha.cf: no heartbeat media: add at least one ucast, mcast, bcast or "
                            "serial line")


# ---------------------------------------------------------------- nodes


def test_missing_node_names_ha_cf(tmp_path):
    d = make_ha_dir(tmp_path, hacf="ucast eth0 198.18.0.2\n", haresources="")
    err = one_error(d, node=None)
    assert err.startswith(f"{d}/ha.cf: no `node` directive")


def test_node_names_are_lower_cased_like_heartbeat(tmp_path):
    cfg = cfg_of(tmp_path, "node Alpha,BETA\nucast eth0 198.18.0.2\n", haresources="ALPHA nginx\n")
    assert cfg.cluster.nodes == ("alpha", "beta") and cfg.groups[0].preferred_node == "alpha"


def test_node_declared_twice(tmp_path):
    d = make_ha_dir(tmp_path, hacf=BASE + "node alpha\n")
    assert one_error(d) == f"{d}/ha.cf:5: node 'alpha' is declared twice (first at {d}/ha.cf:1)"


# ---------------------------------------------------------------- the other directives


@pytest.mark.parametrize("value,expect", [("on", "on"), ("off", "off"), ("legacy", "legacy"),
                                          ("yes", "on"), ("false", "off"), ("LEGACY", "legacy")])
def test_auto_failback(tmp_path, value, expect):
    assert cfg_of(tmp_path, BASE + f"auto_failback {value}\n").cluster.auto_failback == expect


def test_auto_failback_bad_value(tmp_path):
    d = make_ha_dir(tmp_path, hacf=BASE + "auto_failback sometimes\n")
    assert one_error(d) == f"{d}/ha.cf:5: auto_failback: expected on, off or legacy, got 'sometimes'"


@pytest.mark.parametrize("value,expect", [("on", "off"), ("off", "legacy")])
def test_nice_failback_old_spelling(tmp_path, value, expect):
    loaded = load(make_ha_dir(tmp_path, hacf=BASE + f"nice_failback {value}\n"))
    assert loaded.config.cluster.auto_failback == expect
    assert any("nice_failback is obsolete" in str(w) and ":5:" in str(w) for w in loaded.warnings)


def test_ping_and_ping_groups(tmp_path):
    loaded = load(make_ha_dir(tmp_path, hacf=BASE + "ping 198.18.0.1 198.18.0.254\nping6 fd00::1\n"
                              "ping_group gw 198.18.1.1 198.18.1.2\nping_group gw 198.18.1.3\n"))
    c = loaded.config.cluster
    assert c.ping == ("198.18.0.1", "198.18.0.254", "fd00::1")
    assert [(g.name, g.addresses) for g in c.ping_groups] == [("gw", ("198.18.1.1", "198.18.1.2", "198.18.1.3"))]
    assert any("ping_group gw is declared again" in str(w) and ":8:" in str(w) for w in loaded.warnings)


def test_respawn(tmp_path):
    loaded = load(make_ha_dir(tmp_path, hacf=BASE + "respawn root /bin/sleep 1000\n"
                              "respawn hacluster /usr/lib/heartbeat/ipfail\n"))
    assert [(r.user, r.command) for r in loaded.config.cluster.respawn] == [("root", "/bin/sleep 1000")]
    assert any("respawn of ipfail" in str(w) and ":6:" in str(w) for w in loaded.warnings)


def test_respawn_needs_full_path(tmp_path):
    d = make_ha_dir(tmp_path, hacf=BASE + "respawn root sleep 1\n")
    assert one_error(d) == f"{d}/ha.cf:5: respawn command 'sleep' is not a full path name"


def test_watchdog_once(tmp_path):
    assert cfg_of(tmp_path, BASE + "watchdog /dev/watchdog\n").cluster.watchdog == "/dev/watchdog"
    d = make_ha_dir(tmp_path, hacf=BASE + "watchdog /dev/watchdog\nwatchdog /dev/watchdog1\n", name="b")
    assert one_error(d) == f"{d}/ha.cf:6: watchdog is set twice; heartbeat takes one watchdog device"


def test_logging_and_cluster_name(tmp_path):
    c = cfg_of(tmp_path, BASE + "logfile /var/log/ha-log\ndebugfile /var/log/ha-debug\n"
               "logfacility local0\ndebug 2\ncluster web\n").cluster
    assert (c.logging.logfile, c.logging.debugfile, c.logging.facility, c.logging.debug) == (
        "/var/log/ha-log", "/var/log/ha-debug", "local0", 2)
    assert c.name == "web"


def test_bad_logfacility_lands_on_its_line(tmp_path):
    # the model validates the facility; its key path comes back to the ha.cf line
    d = make_ha_dir(tmp_path, hacf=BASE + "logfacility local9\n")
    err = one_error(d)
    assert err.startswith(f"{d}/ha.cf:5: unknown syslog facility 'local9'")


@pytest.mark.parametrize("directive", sorted(set(IGNORED) - {"crm", "pacemaker"}))
def test_ignored_directives_warn_with_their_line(tmp_path, directive):
    loaded = load(make_ha_dir(tmp_path, hacf=BASE + f"{directive} something\n"))
    assert [str(w) for w in loaded.warnings if ":5:" in str(w)] == [
        f"{tmp_path}/ha.d/ha.cf:5: warning: {directive} is accepted but not acted on: {IGNORED[directive]}"]


def test_crm_on_warns_about_cib(tmp_path):
    loaded = load(make_ha_dir(tmp_path, hacf=BASE + "crm on\n"))
    w = [str(x) for x in loaded.warnings if ":5:" in str(x)]
    assert len(w) == 1 and "cib.xml" in w[0] and "uses haresources" in w[0]
    quiet = load(make_ha_dir(tmp_path, hacf=BASE + "crm off\n", name="b"))
    assert not [x for x in quiet.warnings if ":5:" in str(x)]


def test_unknown_directive_suggests(tmp_path):
    d = make_ha_dir(tmp_path, hacf=BASE + "keeplive 2\n")
    assert one_error(d) == f'{d}/ha.cf:5: unknown directive \'keeplive\' (did you mean "keepalive"?)'


def test_comments_and_blank_lines(tmp_path):
    cfg = cfg_of(tmp_path, "# a comment\n\n   node alpha beta   # trailing\n\tucast eth0 198.18.0.2#x\n")
    assert cfg.cluster.nodes == ("alpha", "beta")
    assert cfg.cluster.links[0].peers == ("198.18.0.2",)


def test_every_error_is_reported(tmp_path):
    d = make_ha_dir(tmp_path, hacf=BASE + "keeplive 2\nbaud 1\nfoo\nauto_failback maybe\n")
    errs = errors(d)
    assert [e.split(": ", 1)[0] for e in errs] == [f"{d}/ha.cf:{n}" for n in (5, 6, 7, 8)]


def test_repeated_directive_warns(tmp_path):
    loaded = load(make_ha_dir(tmp_path, hacf=BASE + "keepalive 1\nkeepalive 2\ndeadtime 10\n"))
    assert loaded.config.cluster.timing.keepalive == 2000
    assert any("keepalive is set again (first at line 5)" in str(w) for w in loaded.warnings)
