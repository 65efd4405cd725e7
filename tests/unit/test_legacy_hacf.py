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


@pytest.mark.parametrize("warntime", ["10", "30", "500ms"])
def test_warntime_is_compared_with_nothing(tmp_path, warntime):
    # heartbeat init_config checks deadtime against keepalive and initdead against deadtime only;
    # set_warntime_ms wants warntime above zero (warntime 10 with deadtime 10 is valid)
    t = cfg_of(tmp_path, BASE + f"keepalive 1\nwarntime {warntime}\ndeadtime 10\n").cluster.timing
    assert (t.keepalive, t.deadtime) == (1000, 10_000)


def test_warntime_zero_is_refused(tmp_path):
    d = make_ha_dir(tmp_path, hacf=BASE + "warntime 0\n")
    assert one_error(d) == f"{d}/ha.cf:5: warntime must be more than zero, got 0"


def test_bad_duration(tmp_path):
    # parse_config calls add_option per value: `2` is applied, then `seconds` is refused
    d = make_ha_dir(tmp_path, hacf=BASE + "keepalive 2 seconds\n")
    assert one_error(d) == (f"{d}/ha.cf:5: keepalive: expected a time in seconds, or N ms or N us, "
                            "got 'seconds'")
    d2 = make_ha_dir(tmp_path, hacf=BASE + "deadtime soon\n", name="b")
    assert one_error(d2).startswith(f"{d2}/ha.cf:5: deadtime: expected a time")


def test_seconds_suffix_is_not_heartbeat_syntax(tmp_path):
    # cl_get_msec knows ms and us only: heartbeat refuses `keepalive 2s`
    d = make_ha_dir(tmp_path, hacf=BASE + "keepalive 2s\n")
    assert one_error(d) == (f"{d}/ha.cf:5: keepalive: expected a time in seconds, or N ms or N us, got '2s'; "
                            "heartbeat knows seconds (`2`) and milliseconds (`2000ms`), not `s`")


def test_several_values_apply_in_turn(tmp_path):
    loaded = load(make_ha_dir(tmp_path, hacf=BASE + "keepalive 1 2\ndeadtime 10\n"))
    assert loaded.config.cluster.timing.keepalive == 2000
    assert any("keepalive has 2 values; heartbeat applies each in turn, so the last (2) wins" in str(w)
               for w in loaded.warnings)


def test_a_directive_without_value_is_ignored(tmp_path):
    loaded = load(make_ha_dir(tmp_path, hacf=BASE + "keepalive\n"))
    assert loaded.config.cluster.timing.keepalive == 1000
    assert [str(w) for w in loaded.warnings if ":5:" in str(w)] == [
        f"{tmp_path}/ha.d/ha.cf:5: warning: keepalive has no value; heartbeat ignores the line, and so does "
        "hadirector"]


def test_initdead_below_ten_seconds_warns(tmp_path):
    loaded = load(make_ha_dir(tmp_path, hacf=BASE + "keepalive 1\ndeadtime 4\ninitdead 8\n"))
    assert any(":7: warning: initdead is 8000 ms: heartbeat warns that it may be too small" in str(w)
               for w in loaded.warnings)


def test_deadping_against_keepalive(tmp_path):
    d = make_ha_dir(tmp_path, hacf=BASE + "keepalive 1\ndeadping 2\n")
    assert one_error(d) == f"{d}/ha.cf:6: deadping (2000 ms) must be more than twice keepalive (1000 ms)"


# ---------------------------------------------------------------- media


def test_udpport_after_media_warns_and_the_earlier_media_keep_theirs(tmp_path):
    # each heartbeat plugin reads udpport once, at its first line (bcast_init, ucast_init): media of a
    # kind seen before udpport keep the default, kinds first seen after it take the new port
    loaded = load(make_ha_dir(tmp_path, hacf="node alpha\nnode beta\nucast eth0 198.18.0.2\nudpport 700\n"
                              "bcast eth1\nucast eth2 198.18.1.2\n"))
    ports = {lk.name: lk.port for lk in loaded.config.cluster.links}
    assert ports == {"ucast:eth0": 694, "bcast:eth1": 700, "ucast:eth2": 694}
    (w,) = [str(x) for x in loaded.warnings if ":4:" in str(x)]
    assert w.startswith(f"{tmp_path}/ha.d/ha.cf:4: warning: udpport 700 comes after media lines that use it: "
                        "ucast (first at line 3). heartbeat warns and carries on")
    assert "ucast 694" in w


def test_baud_after_serial_warns_and_serial_keeps_its_speed(tmp_path):
    loaded = load(make_ha_dir(tmp_path, hacf="node alpha\nnode beta\nserial /dev/ttyS0\nbaud 38400\n"
                              "serial /dev/ttyS1\n"))
    assert [lk.baud for lk in loaded.config.cluster.links] == [19200, 19200]
    assert any(":4: warning: baud 38400 comes after the serial line at line 3" in str(w) for w in loaded.warnings)


def test_baud_twice_is_refused(tmp_path):
    d = make_ha_dir(tmp_path, hacf=BASE + "baud 19200\nbaud 38400\nserial /dev/ttyS0\n")
    assert one_error(d) == f"{d}/ha.cf:6: baud is set twice (first at line 5); heartbeat refuses a second baud rate"
    d2 = make_ha_dir(tmp_path, hacf=BASE + "baud 19200 38400\n", name="b")
    assert one_error(d2).startswith(f"{d2}/ha.cf:5: baud is set twice")


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
    ("mcast eth1 10.0.0.1 694 1 0", "mcast group 10.0.0.1 is not an IPv4 multicast address"),
    ("mcast eth1 mcast.example 694 1 0", "mcast group mcast.example is not an IPv4 multicast address"),
    ("mcast eth1 239.0.0.1 694 5 0", "mcast ttl: expected 0..4 (heartbeat's limit), got '5'"),
    ("mcast eth1 239.0.0.1 0 1 0", "mcast port: expected 1..65535, got '0'"),
    ("mcast eth1 239.0.0.1 694 1 2", "mcast loop: expected 0 or 1"),
    ("ucast", "ucast needs an interface and a peer address"),
    ("tipc x", "heartbeat medium tipc (TIPC sockets) is not supported"),
    ("normalpoll true", "unknown directive 'normalpoll'"),
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


def test_node_declared_twice_is_one_node(tmp_path):
    loaded = load(make_ha_dir(tmp_path, hacf=BASE + "node ALPHA\n"))
    assert loaded.config.cluster.nodes == ("alpha", "beta")
    assert any(f"ha.cf:5: warning: node 'alpha' is declared again (first at {tmp_path}/ha.d/ha.cf:1); read once"
               in str(w) for w in loaded.warnings)


def test_media_listed_twice_are_read_once(tmp_path):
    loaded = load(make_ha_dir(tmp_path, hacf=BASE + "bcast eth1\nbcast eth1\nserial /dev/ttyS0\nserial /dev/ttyS0\n"
                              "mcast eth2 239.0.0.1 694 1 0\nmcast eth2 239.0.0.1 694 1 0\n"))
    assert [lk.name for lk in loaded.config.cluster.links] == ["ucast:eth0", "bcast:eth1", "serial:/dev/ttyS0",
                                                              "mcast:eth2"]
    lines = sorted(int(str(w).split(":")[1]) for w in loaded.warnings if "listed again" in str(w) or "repeats" in str(w))
    assert lines == [6, 8, 10]


# ---------------------------------------------------------------- the other directives


@pytest.mark.parametrize("value,expect", [("on", "on"), ("off", "off"), ("legacy", "legacy"),
                                          ("yes", "on"), ("false", "off"), ("LEGACY", "legacy")])
def test_auto_failback(tmp_path, value, expect):
    assert cfg_of(tmp_path, BASE + f"auto_failback {value}\n").cluster.auto_failback == expect


def test_auto_failback_bad_value(tmp_path):
    d = make_ha_dir(tmp_path, hacf=BASE + "auto_failback sometimes\n")
    assert one_error(d) == f"{d}/ha.cf:5: auto_failback: expected on, off or legacy, got 'sometimes'"


@pytest.mark.parametrize("before,value,expect", [("", "on", "legacy"), ("", "off", "legacy"),
                                                 ("auto_failback on\n", "on", "off"),
                                                 ("auto_failback legacy\n", "yes", "legacy")])
def test_nice_failback_old_spelling(tmp_path, before, value, expect):
    # config.c set_nice_failback looks at heartbeat's nice_failback flag (set by an earlier boolean
    # auto_failback), not at the value: `off` after an auto_failback on/off, else `legacy`
    loaded = load(make_ha_dir(tmp_path, hacf=BASE + before + f"nice_failback {value}\n"))
    assert loaded.config.cluster.auto_failback == expect
    assert any("nice_failback is obsolete" in str(w) and f"auto_failback {expect}`" in str(w)
               for w in loaded.warnings)


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
    w = {int(str(x).split(":")[1]): str(x) for x in loaded.warnings if "/ha.cf:" in str(x)}
    assert 5 not in w  # acted on: no warning
    assert w[6].endswith("respawn of ipfail: not run; hadirector does its job itself: its ping / ping_group "
                         "connectivity score moves the groups to the node that reaches more ping nodes (ipfail's rule)")


def test_respawn_needs_full_path(tmp_path):
    d = make_ha_dir(tmp_path, hacf=BASE + "respawn root sleep 1\n")
    assert one_error(d) == (f"{d}/ha.cf:5: respawn command 'sleep' is not a full path name (heartbeat: "
                            "\"Client child command is not full pathname\")")


def test_a_nul_byte_is_an_error_at_its_line(tmp_path):
    # heartbeat's fgets/C strings would cut the line at the NUL (`/usr/lib` would be the command);
    # os.access() would raise ValueError: embedded null byte
    d = make_ha_dir(tmp_path, hacf=BASE + "respawn hacluster /usr/lib\0/heartbeat/ipfail\n")
    assert one_error(d) == (f"{d}/ha.cf:5: contains a NUL byte at column 27; the line is not read "
                            "(remove the character)")
    d2 = make_ha_dir(tmp_path, hacf=BASE + "keepalive \x1b[1m2\n", name="b")
    assert one_error(d2).startswith(f"{d2}/ha.cf:5: contains the control character 0x1b at column 11")


def test_watchdog_once(tmp_path):
    loaded = load(make_ha_dir(tmp_path, hacf=BASE + "watchdog /dev/watchdog\n"))
    assert loaded.config.cluster.watchdog == "/dev/watchdog"
    assert not any("watchdog" in str(w) for w in loaded.warnings)  # acted on: no warning
    d = make_ha_dir(tmp_path, hacf=BASE + "watchdog /dev/watchdog\nwatchdog /dev/watchdog1\n", name="b")
    assert one_error(d) == f"{d}/ha.cf:6: watchdog is set twice; heartbeat takes one watchdog device"
    d3 = make_ha_dir(tmp_path, hacf=BASE + "watchdog /dev/watchdog /dev/watchdog1\n", name="c")
    assert one_error(d3) == f"{d3}/ha.cf:5: watchdog is set twice; heartbeat takes one watchdog device"


@pytest.mark.parametrize("lines, want", [
    ("", (True, 1)),  # heartbeat's default: config.c Directives[] realtime "true", no rtprio -> 1
    ("realtime on\n", (True, 1)),
    ("realtime yes\nrtprio 50\n", (True, 50)),
    ("rtprio 99\n", (True, 99)),
    ("realtime off\n", (False, 1)),
    ("realtime false\n", (False, 1)),
])
def test_realtime_and_rtprio_map_to_cluster_realtime(tmp_path, lines, want):
    loaded = load(make_ha_dir(tmp_path, hacf=BASE + lines))
    rt = loaded.config.cluster.realtime
    assert (rt.enabled, rt.priority) == want
    assert (rt.policy, rt.lock_memory) == ("rr", True)  # heartbeat's SCHED_RR, and it locks itself
    assert not any("realtime" in str(w) or "rtprio" in str(w) for w in loaded.warnings)  # acted on


def test_realtime_errors_and_warnings_name_their_line(tmp_path):
    d = make_ha_dir(tmp_path, hacf=BASE + "realtime maybe\n")
    assert one_error(d) == (f"{d}/ha.cf:5: realtime: expected a boolean (on/off, yes/no, true/false, 1/0), "
                            "got 'maybe'")
    for bad in ("0", "100", "x"):  # set_realtime_prio: atoi within SCHED_FIFO's 1..99
        d = make_ha_dir(tmp_path, hacf=BASE + f"rtprio {bad}\n", name=f"p{bad}")
        assert one_error(d) == f"{d}/ha.cf:5: rtprio: expected a number 1..99, got {bad!r}"
    loaded = load(make_ha_dir(tmp_path, hacf=BASE + "realtime off\nrtprio 20\n", name="off"))
    assert [str(w).split(": ", 1)[1] for w in loaded.warnings if "rtprio" in str(w)] == [
        "warning: rtprio has no effect with `realtime off` (line 5), in heartbeat as in hadirector"]
    loaded = load(make_ha_dir(tmp_path, hacf=BASE + "realtime on\nrealtime off\n", name="twice"))
    assert loaded.config.cluster.realtime.enabled is False  # the later one wins, as in heartbeat
    assert any(":6: warning: realtime is set again (first at line 5)" in str(w) for w in loaded.warnings)


def test_logging_and_cluster_name(tmp_path):
    c = cfg_of(tmp_path, BASE + "logfile /var/log/ha-log\ndebugfile /var/log/ha-debug\n"
               "logfacility local0\ndebug 2\ncluster web\n").cluster
    assert (c.logging.logfile, c.logging.debugfile, c.logging.facility, c.logging.debug) == (
        "/var/log/ha-log", "/var/log/ha-debug", "local0", 2)
    assert c.name == "web"


@pytest.mark.parametrize("value", ["local9", "LOCAL0", "bogus"])
def test_bad_logfacility_lands_on_its_line(tmp_path, value):
    # cl_syslogfac_str2int takes the lower-case names only
    d = make_ha_dir(tmp_path, hacf=BASE + f"logfacility {value}\n")
    assert one_error(d).startswith(f"{d}/ha.cf:5: logfacility {value!r} is not a syslog facility")


# a value heartbeat's handler accepts, and one it refuses (config.c set_* handlers)
IGNORED_VALUES = {
    "hopfudge": ("3", "300"), "deadping": ("30", "soon"),
    "hbgenmethod": ("time", "x"), "msgfmt": ("netstring", "x"), "use_logd": ("yes", "x"),
    "conn_logd_time": ("10", "0"), "use_apphbd": ("no", "x"), "log_badpack": ("true", "x"),
    "syslogmsgfmt": ("false", "x"), "coredumps": ("1", "x"), "coreroot": ("/var/lib/cores", "cores"),
    "compression": ("bz2", "lzma"), "compression_threshold": ("2", "0"), "traditional_compression": ("no", "x"),
    "max_rexmit_delay": ("250", "0"), "memreserve": ("6500", "0"), "uuidfrom": ("nodename", "x"),
    "env": ("FOO=bar", "=bar"), "crmd_spawns_pengine": ("on", "x"),
    "record_config_changes": ("on", "x"), "record_pengine_inputs": ("off", "x"),
    "enable_config_writes": ("on", "x"), "quorum_server": ("q.example", None),
}


def test_every_ignored_directive_has_values():
    assert set(IGNORED_VALUES) == set(IGNORED) - {"crm_daemon_dir"}  # tested below: it needs crm first


@pytest.mark.parametrize("directive", sorted(IGNORED_VALUES))
def test_ignored_directives_warn_with_their_line(tmp_path, directive):
    good, bad = IGNORED_VALUES[directive]
    loaded = load(make_ha_dir(tmp_path, hacf=BASE + f"{directive} {good}\n"))
    assert [str(w) for w in loaded.warnings if ":5:" in str(w)] == [
        f"{tmp_path}/ha.d/ha.cf:5: warning: {directive} is accepted but not acted on: {IGNORED[directive][1]}"]
    if bad is not None:
        d = make_ha_dir(tmp_path, hacf=BASE + f"{directive} {bad}\n", name="bad")
        assert one_error(d).startswith(f"{d}/ha.cf:5: {directive}: expected ")


def test_pacemaker_directives_order_and_once(tmp_path):
    # heartbeat 3.0.6 refuses crm_daemon_dir unless crm/pacemaker came first (an inverted check),
    # crmd_spawns_pengine after it, and a second crm/pacemaker directive
    d = make_ha_dir(tmp_path, hacf=BASE + "crm_daemon_dir /usr/lib/pacemaker\ncrm off\ncrmd_spawns_pengine on\n"
                    "crm off\ncrm_daemon_dir /usr/lib/pacemaker\n")
    errs = errors(d)
    assert [e.split(": ", 1)[0] for e in errs] == [f"{d}/ha.cf:{n}" for n in (5, 7, 8)]
    assert "crm_daemon_dir before any crm/pacemaker directive: heartbeat 3.0.6 refuses it" in errs[0]
    assert "crmd_spawns_pengine must come before the crm directive (line 6)" in errs[1]
    assert "heartbeat refuses a second crm/pacemaker directive" in errs[2]
    loaded = load(make_ha_dir(tmp_path, hacf=BASE + "crm off\ncrm_daemon_dir /usr/lib/pacemaker\n", name="b"))
    assert any(":6: warning: crm_daemon_dir is accepted but not acted on" in str(w) for w in loaded.warnings)


def test_logfacility_security_is_auth(tmp_path):
    assert cfg_of(tmp_path, BASE + "logfacility security\n").cluster.logging.facility == "auth"


def test_use_logd_off_with_no_log_is_refused(tmp_path):
    d = make_ha_dir(tmp_path, hacf=BASE + "use_logd off\n")
    assert one_error(d).startswith(f"{d}/ha.cf:5: use_logd is off and there is no logfile")
    load(make_ha_dir(tmp_path, hacf=BASE + "use_logd off\nlogfacility daemon\n", name="b"))


@pytest.mark.parametrize("line,msg", [
    ("apiauth ipfail gid=haclient uid=hacluster", None),
    ("apiauth ipfail", "invalid apiauth 'ipfail'"),
    ("apiauth ipfail uid=a uid=b", "invalid apiauth"),
    ("stonith_host * external/ipmi n2 10.0.0.2 admin secret lan", None),
    ("stonith_host *", "stonith_host needs a host"),
    ("stonith baytech /etc/ha.d/conf/stonith.baytech", None),
    ("failfast root /bin/true", None),
    ("failfast root true", "failfast command 'true' is not a full path name"),
])
def test_whole_line_directives(tmp_path, line, msg):
    d = make_ha_dir(tmp_path, hacf=BASE + line + "\n")
    if msg is None:
        loaded = load(d)
        if line.startswith("stonith"):  # acted on: a fence device, no warning
            assert not [x for x in loaded.warnings if ":5:" in str(x)]
            (dev,) = loaded.config.cluster.fencing.devices
            assert dev.kind == "stonith" and dev.type == line.split()[2 if line.startswith("stonith_host") else 1]
            return
        (w,) = [str(x) for x in loaded.warnings if ":5:" in str(x)]
        assert "is accepted but not" in w
        return
    assert one_error(d).startswith(f"{d}/ha.cf:5: {msg}")


def test_apiauth_twice_for_one_client(tmp_path):
    d = make_ha_dir(tmp_path, hacf=BASE + "apiauth foo uid=root\napiauth foo gid=root\n")
    assert one_error(d).startswith(f"{d}/ha.cf:6: apiauth for foo is given twice")


def test_fence_lines_become_stonith_devices(tmp_path):
    # heartbeat resets the node through the device (stonith.h ST_GENERIC_RESET): action reboot
    loaded = load(make_ha_dir(tmp_path, hacf=BASE + "stonith_host * external/ipmi n2 10.0.0.2 admin s3 lan\n"
                              "stonith_host alpha null beta\nstonith baytech /etc/ha.d/conf/stonith.baytech\n"))
    assert loaded.unused == ()
    a, b, c = loaded.config.cluster.fencing.devices
    assert (a.kind, a.type, a.param_text, a.runs_on, a.action) == ("stonith", "external/ipmi",
                                                                    "n2 10.0.0.2 admin s3 lan", (), "reboot")
    assert (b.type, b.param_text, b.runs_on) == ("null", "beta", ("alpha",))
    assert (c.type, c.config_file, c.param_text) == ("baytech", "/etc/ha.d/conf/stonith.baytech", None)
    assert loaded.locate(("cluster", "fencing", "devices", 1)) == f"{tmp_path}/ha.d/ha.cf:6"
    assert not [w for w in loaded.warnings if "stonith" in str(w)]


def test_stonith_host_for_an_unknown_node_is_an_error(tmp_path):
    d = make_ha_dir(tmp_path, hacf=BASE + "stonith_host gamma null beta\n")
    assert one_error(d) == f"{d}/ha.cf:5: 'gamma' is not a cluster node; nodes are alpha, beta"


# ---------------------------------------------------------------- autojoin


def test_autojoin_with_haresources_is_refused_as_heartbeat_refuses_it(tmp_path):
    # config.c r1_style_valid: "R1 style resource management conflicts with autojoin set"
    d = make_ha_dir(tmp_path, hacf="ucast eth0 198.18.0.2\nautojoin any\n")
    errs = errors(d)
    assert errs[0].startswith(f"{d}/ha.cf:2: autojoin any: heartbeat refuses autojoin with haresources")
    assert load(make_ha_dir(tmp_path, hacf=BASE + "autojoin none\n", name="b")).config.cluster.nodes == ("alpha", "beta")


def test_autojoin_bad_value(tmp_path):
    d = make_ha_dir(tmp_path, hacf=BASE + "autojoin some\n")
    assert one_error(d) == f"{d}/ha.cf:5: autojoin: expected none, other or any, got 'some'"


def test_autojoin_any_with_pacemaker_adds_this_node(tmp_path):
    # heartbeat accepts autojoin with crm on, and init_config adds the local node when it is not
    # declared; hadirector admits no node at run time, and says so
    loaded = load(make_ha_dir(tmp_path, hacf="ucast eth0 198.18.0.2\ncrm on\nautojoin any\n", haresources=""),
                  node="Alpha")
    assert loaded.config.cluster.nodes == ("alpha",) and loaded.node == "alpha"
    (w,) = [str(x) for x in loaded.warnings if ":3:" in str(x)]
    assert "autojoin any is accepted but nodes do not join at run time" in w
    assert "this node (alpha) is added to the nodes, as heartbeat adds it" in w


def test_crm_on_warns_about_cib(tmp_path):
    loaded = load(make_ha_dir(tmp_path, hacf=BASE + "crm on\n"))
    w = [str(x) for x in loaded.warnings if ":5:" in str(x)]
    assert len(w) == 1 and "cib.xml" in w[0] and "runs the groups in haresources" in w[0]
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


def test_lines_end_at_newline_only_and_dos_endings_are_read(tmp_path):
    # a form feed is white space inside a line (heartbeat's WHITESPACE), not a line break
    cfg = cfg_of(tmp_path, "node alpha beta\r\nucast eth0 198.18.0.2\r\nkeepalive\f2\r\ndeadtime 10\r\n")
    assert cfg.cluster.timing.keepalive == 2000 and cfg.cluster.nodes == ("alpha", "beta")
