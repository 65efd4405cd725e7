"""ha.cf `quorum_device`: hadirector's own directive for a corosync-qnetd witness."""

from __future__ import annotations

import pytest

from legacy_util import errors, load, make_ha_dir, one_error

BASE = "node alpha\nnode beta\nudpport 694\nucast eth0 198.18.0.2\n"


def device(tmp_path, line):
    tmp_path.mkdir(exist_ok=True)
    return load(make_ha_dir(tmp_path, hacf=BASE + line + "\n")).config.cluster.quorum.device


def test_host_only_takes_the_defaults(tmp_path):
    d = device(tmp_path, "quorum_device qnetd 198.18.9.1")
    assert (d.model, d.host, d.port, d.algorithm, d.tls, d.heartbeat_interval) == \
        ("net", "198.18.9.1", 5403, "ffsplit", True, 2000)


def test_every_option(tmp_path):
    d = device(tmp_path, "quorum_device qnetd witness.example:5500 algorithm lms tls off heartbeat 1500ms "
                         "ca /etc/q/ca.pem cert /etc/q/c.pem key /etc/q/c.key")
    assert (d.host, d.port, d.algorithm, d.tls, d.heartbeat_interval) == ("witness.example", 5500, "lms", False, 1500)
    assert (d.ca_file, d.cert_file, d.key_file) == ("/etc/q/ca.pem", "/etc/q/c.pem", "/etc/q/c.key")


def test_ipv6_in_brackets(tmp_path):
    d = device(tmp_path, "quorum_device qnetd [2001:db8::9]:5404 tls no")
    assert (d.host, d.port, d.tls) == ("2001:db8::9", 5404, False)
    assert device(tmp_path / "b", "quorum_device qnetd 2001:db8::9").host == "2001:db8::9"


def test_no_directive_no_device(tmp_path):
    assert load(make_ha_dir(tmp_path, hacf=BASE)).config.cluster.quorum.device is None


@pytest.mark.parametrize("line,words", [
    ("quorum_device", "needs the model `qnetd`"),
    ("quorum_device net 198.18.9.1", "needs the model `qnetd`"),
    ("quorum_device qnetd 198.18.9.1:99999", "port '99999' is not 1..65535"),
    ("quorum_device qnetd 198.18.9.1 algorithm 2nodelms", "algorithm '2nodelms' is not ffsplit or lms"),
    ("quorum_device qnetd 198.18.9.1 tls maybe", "tls 'maybe' is not on or off"),
    ("quorum_device qnetd 198.18.9.1 tls", "'tls' has no value"),
    ("quorum_device qnetd 198.18.9.1 algoritm lms", 'unknown option \'algoritm\' (did you mean "algorithm"?)'),
    ("quorum_device qnetd 198.18.9.1 ca relative.pem", "is not an absolute path"),
    ("quorum_device qnetd 198.18.9.1 heartbeat 50ms", "greater than or equal to 100"),
])
def test_errors_name_the_line(tmp_path, line, words):
    msg = one_error(make_ha_dir(tmp_path, hacf=BASE + line + "\n"))
    assert "ha.cf:5" in msg and words in msg, msg


def test_given_twice(tmp_path):
    errs = errors(make_ha_dir(tmp_path, hacf=BASE + "quorum_device qnetd 198.18.9.1\nquorum_device qnetd 198.18.9.2\n"))
    assert any("ha.cf:6" in e and "first at line 5" in e for e in errs), errs


def test_check_names_unreadable_tls_files_at_the_line(tmp_path):
    from hadirector.config.machine import Machine, machine_problems
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    d = make_ha_dir(tmp_path, hacf=BASE + f"quorum_device qnetd 198.18.9.1 ca {ca} cert /nonexistent/c.pem "
                                          "key /nonexistent/c.key\n")
    probs = [p for p in machine_problems(load(d), Machine("alpha", frozenset({"eth0"})), True) if not p.warning]
    msgs = [str(p) for p in probs]
    assert len(msgs) == 2 and all("ha.cf:5" in m for m in msgs), msgs
    assert "cert_file /nonexistent/c.pem cannot be read" in msgs[0] and "key_file" in msgs[1]
    (tmp_path / "off").mkdir()
    off = make_ha_dir(tmp_path / "off", hacf=BASE + "quorum_device qnetd 198.18.9.1 tls off\n")
    assert not [p for p in machine_problems(load(off), Machine("alpha", frozenset({"eth0"})), True) if not p.warning]
