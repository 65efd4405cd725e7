"""`hadirector check` and `convert`, run as the installed console script."""

from __future__ import annotations

import os
import stat

import pytest

from legacy_util import AUTHKEYS, HACF, HARESOURCES, copy_fixture, make_ha_dir, run_cli


def test_check_seed000(tmp_path):
    d = copy_fixture(tmp_path, "seed000")
    p = run_cli("check", "--ha-dir", str(d), "--node", "primarylb.linuxtone.org")
    assert p.returncode == 0, p.stderr
    out = p.stdout.splitlines()
    assert out[0] == f"configuration OK: {d} (legacy heartbeat/ldirectord files)"
    assert ("cluster hadirector: 2 node(s): primarylb.linuxtone.org, backuplb.linuxtone.org "
            "(this node: primarylb.linuxtone.org)") in out
    assert "links: serial:/dev/ttyS0 19200 baud; ucast:eth0 -> 192.168.1.103 port 694" in out
    assert "timing: keepalive 2s, warntime 10s, deadtime 30s, initdead 120s" in out
    assert "auth: sha1 (key 1); auto_failback on" in out
    assert f"group lvs (preferred primarylb.linuxtone.org): script lvs, balancer ({d}/ldirectord.cf)" in out
    assert any(line.startswith("virtual TCP 192.168.1.106:80 wrr persistent 5s, 2 real(s) [gate]") for line in out)
    assert f"{d}/ha.cf:15: warning: `crm on`" in p.stderr


def test_check_seed003(tmp_path):
    d = copy_fixture(tmp_path, "seed003", "test2")
    p = run_cli("check", "--ha-dir", str(d), "--node", "test2")
    assert p.returncode == 0, p.stderr
    assert "group 10.6.0.187 (preferred test1): vip 10.6.0.187/24 on eth0:0, script nginx" in p.stdout


@pytest.mark.parametrize("what,files,expect", [
    ("misspelled directive", dict(hacf=HACF + "deadtim 30\n"),
     "{d}/ha.cf:7: unknown directive 'deadtim' (did you mean \"deadtime\"?)"),
    ("missing node", dict(hacf="keepalive 1\nucast eth0 198.18.0.2\n", haresources=""),
     "{d}/ha.cf: no `node` directive"),
    ("keepalive in seconds with a unit", dict(hacf=HACF.replace("keepalive 1", "keepalive 1s")),
     "{d}/ha.cf:1: keepalive: expected a time in seconds, or N ms or N us, got '1s'"),
    ("deadtime too short", dict(hacf=HACF.replace("deadtime 10", "deadtime 2")),
     "{d}/ha.cf:2: deadtime (2000 ms) must be more than twice keepalive (1000 ms)"),
    ("undefined key", dict(authkeys="auth 2\n1 sha1 x\n"),
     "{d}/authkeys:1: auth 2 names key 2, which is not defined"),
    ("unknown preferred node", dict(haresources="gamma nginx\n"),
     "{d}/haresources:1: 'gamma' is not a node declared in ha.cf"),
    ("baud twice", dict(hacf="node alpha beta\nbaud 38400\nserial /dev/ttyS0\nbaud 38400\n"),
     "{d}/ha.cf:4: baud is set twice (first at line 2)"),
    ("initdead below deadtime", dict(hacf=HACF + "initdead 5\n"),
     "{d}/ha.cf:7: initdead (5000 ms) must not be below deadtime (10000 ms)"),
    ("autojoin with haresources", dict(hacf=HACF + "autojoin any\n"),
     "{d}/ha.cf:7: autojoin any: heartbeat refuses autojoin with haresources resource management"),
    ("ignored medium", dict(hacf=HACF + "hbaping fc0\n"), "{d}/ha.cf:7: heartbeat medium hbaping"),
    ("bad mcast", dict(hacf=HACF + "mcast eth1 198.18.0.1 694 1 0\n"),
     "{d}/ha.cf:7: mcast group 198.18.0.1 is not an IPv4 multicast address"),
    ("watchdog twice", dict(hacf=HACF + "watchdog /dev/watchdog\nwatchdog /dev/watchdog1\n"),
     "{d}/ha.cf:8: watchdog is set twice"),
    ("relative respawn", dict(hacf=HACF + "respawn root sleep 1\n"),
     "{d}/ha.cf:7: respawn command 'sleep' is not a full path name"),
    ("bad auto_failback", dict(hacf=HACF + "auto_failback maybe\n"),
     "{d}/ha.cf:7: auto_failback: expected on, off or legacy"),
    ("no auth line", dict(authkeys="1 sha1 x\n"), "{d}/authkeys: no `auth N` line"),
    ("crc with a key", dict(authkeys="auth 1\n1 crc x\n"), "{d}/authkeys:2: crc takes no key"),
    ("bad IPaddr", dict(haresources="alpha IPaddr::198.18.0.1/99\n"), "{d}/haresources:1: netmask '99'"),
    ("ldirectord file missing", dict(haresources="alpha ldirectord::web.cf\n"),
     "{d}/haresources:1: ldirectord needs its configuration file, but {d}/web.cf does not exist"),
    ("bad forwarding method", dict(haresources="alpha ldirectord\n",
                                   ldirectord="virtual=198.18.0.1:80\n    real=198.18.1.1:80 route\n"),
     "{d}/ldirectord.cf:2: forwarding method must be gate, masq or ipip"),
    ("empty line in a virtual block", dict(haresources="alpha ldirectord\n",
                                           ldirectord="virtual=198.18.0.1:80\n\n    real=198.18.1.1:80 gate\n"),
     "{d}/ldirectord.cf:3: indented line outside a virtual= block"),
    ("connecttimeout", dict(haresources="alpha ldirectord\n",
                            ldirectord="connecttimeout=5\nvirtual=198.18.0.1:80\n    real=198.18.1.1:80 gate\n"),
     "{d}/ldirectord.cf:1: connecttimeout is no longer accepted"),
])
def test_check_refuses_with_file_and_line(tmp_path, what, files, expect):
    d = make_ha_dir(tmp_path, **files)
    p = run_cli("check", "--ha-dir", str(d), "--node", "alpha")
    assert p.returncode == 1, (what, p.stdout, p.stderr)
    assert expect.format(d=d) in p.stderr, p.stderr
    assert p.stdout == ""
    assert "hadirector: configuration has" in p.stderr


def test_crc_passes_with_a_loud_warning(tmp_path):
    d = make_ha_dir(tmp_path, authkeys="auth 1\n1 crc\n")
    p = run_cli("check", "--ha-dir", str(d), "--node", "alpha")
    assert p.returncode == 0, p.stderr
    assert f"{d}/authkeys:2: warning: CRC AUTHENTICATION AUTHENTICATES NOTHING" in p.stderr
    assert "auth: crc (key 1)" in p.stdout


def test_world_readable_authkeys(tmp_path):
    d = copy_fixture(tmp_path, "seed000")
    os.chmod(d / "authkeys", 0o644)
    p = run_cli("check", "--ha-dir", str(d), "--node", "primarylb.linuxtone.org")
    assert p.returncode == 1
    assert f"{d}/authkeys: readable by group and others (mode 0644): heartbeat refuses" in p.stderr


def test_every_error_on_stderr(tmp_path):
    d = make_ha_dir(tmp_path, hacf=HACF + "bogus 1\nbaud 7\n", authkeys=AUTHKEYS + "x\n",
                    haresources=HARESOURCES + "zeta 198.18.0.300\n")
    p = run_cli("check", "--ha-dir", str(d), "--node", "alpha")
    assert p.returncode == 1
    for where in ("ha.cf:7", "ha.cf:8", "authkeys:3", "haresources:2"):
        assert f"{d}/{where}: " in p.stderr, (where, p.stderr)
    assert "configuration has 5 error(s)" in p.stderr  # haresources:2 has two: node and address


def test_node_must_be_a_cluster_node(tmp_path):
    d = make_ha_dir(tmp_path)
    p = run_cli("check", "--ha-dir", str(d), "--node", "gamma")
    assert p.returncode == 1
    assert f"{d}/ha.cf:5: this node's name 'gamma' (--node) is not one of the cluster's nodes" in p.stderr


def test_convert_writes_toml_that_checks_equal(tmp_path):
    d = copy_fixture(tmp_path, "seed000")
    out = tmp_path / "cluster.toml"
    p = run_cli("convert", "--ha-dir", str(d), "--node", "primarylb.linuxtone.org", "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600  # it holds the key
    p2 = run_cli("check", "-c", str(out), "--node", "primarylb.linuxtone.org")
    assert p2.returncode == 0, p2.stderr
    legacy = run_cli("check", "--ha-dir", str(d), "--node", "primarylb.linuxtone.org").stdout.splitlines()
    toml = p2.stdout.splitlines()
    # the same cluster, groups and services (the first line names the source)
    assert toml[1:9] == legacy[1:9]


def test_convert_takes_node_as_check_does(tmp_path):
    d = make_ha_dir(tmp_path)
    p = run_cli("convert", "--ha-dir", str(d), "--node", "gamma")
    assert p.returncode == 1 and "this node's name 'gamma' (--node) is not one of the cluster's nodes" in p.stderr


def test_check_json(tmp_path):
    import json

    d = copy_fixture(tmp_path, "seed000")
    p = run_cli("check", "--ha-dir", str(d), "--node", "primarylb.linuxtone.org", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["ok"] is True and out["errors"] == [] and out["node"] == "primarylb.linuxtone.org"
    assert out["config"]["cluster"]["nodes"] == ["primarylb.linuxtone.org", "backuplb.linuxtone.org"]
    assert out["config"]["cluster"]["auth"]["key"] == "(not shown)" and "Hey!" not in p.stdout
    # watchdog: acted on, so only the machine's fact is left (no such device here)
    assert [w["message"] for w in out["warnings"] if w["where"] == f"{d}/ha.cf:14"] in (
        [], ["watchdog device /dev/watchdog does not exist on this machine"])
    assert "watchdog" not in out["not_run"]
    bad = make_ha_dir(tmp_path, hacf=HACF + "keepalive 2s\n")
    p = run_cli("check", "--ha-dir", str(bad), "--node", "alpha", "--json")
    assert p.returncode == 1 and p.stderr == ""
    out = json.loads(p.stdout)
    assert out["ok"] is False and out["config"] is None
    assert out["errors"] == [{"where": f"{bad}/ha.cf:7", "message": "keepalive: expected a time in seconds, or N "
                              "ms or N us, got '2s'; heartbeat knows seconds (`2`) and milliseconds (`2000ms`), not `s`"}]


def test_check_summary_says_what_runs(tmp_path):
    d = make_ha_dir(tmp_path, hacf=HACF + "respawn root /bin/sleep 100\nwatchdog /dev/watchdog\n"
                    "stonith_host * external/ipmi beta 198.18.0.2 admin secret lan\n",
                    haresources="alpha ldirectord\n",
                    ldirectord='fallbackcommand=/bin/true\nvirtual=198.18.0.100:80\n    real=198.18.1.1:80 gate\n'
                               '    checktype=external\n    checkcommand="/usr/local/bin/check-web"\n')
    p = run_cli("check", "--ha-dir", str(d), "--node", "alpha")
    assert p.returncode == 0, p.stderr
    out = p.stdout.splitlines()
    assert ("runs: /bin/true (fallbackcommand of TCP 198.18.0.100:80); /usr/local/bin/check-web "
            "(check of TCP 198.18.0.100:80)") in out
    assert "respawns: /bin/sleep 100 as root (restarted when they exit, unless with 100)" in out
    assert "watchdog: feeds /dev/watchdog every 1000 ms while healthy (timeout 11 s: a hung node is reset)" in out
    assert ("fencing: before taking over, alpha fences beta with stonith external/ipmi (delay 5000 ms when the "
            "peer ranks above alpha)") in out
    assert not [ln for ln in out if ln.startswith("configured but not run")]
    assert "secret" not in p.stdout
    assert "watches: 1 heartbeat link(s), 1 resource(s) of 1 group(s), 1 real server(s) of 1 virtual service(s)" in out


def test_toml_errors_name_key_paths(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('[cluster]\nnodes = ["a"]\n[cluster.timing]\ndeadtime = "x"\n')
    p = run_cli("check", "-c", str(f), "--node", "a")
    assert p.returncode == 1
    assert "cluster.timing.deadtime: expected a duration such as 2, 1.5 or 2000ms, got 'x'" in p.stderr
    assert "cluster.links: missing required key" in p.stderr
