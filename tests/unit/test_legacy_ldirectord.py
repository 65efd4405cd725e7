"""ldirectord.cf: values as ldirectord reads them, and a differential test against the real
ldirectord (Perl, /usr/sbin/ldirectord): for each file both accept it, or both refuse it at the
same line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from hadirector.config.errors import Collector
from hadirector.config.legacy import read_ha_dir
from legacy_util import errors, load, make_ha_dir, one_error

LDIRECTORD = "/usr/sbin/ldirectord"
HR = "alpha ldirectord\n"


def balancer_of(tmp_path, text, name="ha.d"):
    return load(make_ha_dir(tmp_path, haresources=HR, ldirectord=text, name=name)).config.balancer


# (name, ldirectord.cf text). ldirectord refuses every "bad_" file; we must refuse it at the same line.
CASES = [
    # (the nft data plane, which `auto` picks, takes one method per service and no gate with
    # fwmark: the cases stay within it; test_nft_refusals_name_the_line covers the others)
    ("ok_basic", "checktimeout=3\nvirtual=192.0.2.1:80\n\treal=192.0.2.2:80 masq\n\treal=192.0.2.3:80 masq 3\n"
                 "\tscheduler=wrr\n"),
    ("ok_service_names", 'virtual=192.0.2.1:http\n    real=192.0.2.2:http gate 2 "index.html", "OK"\n'
                         "    checktype=3\n    service=http\n"),
    ("ok_fwmark", "virtual=5\n    real=192.0.2.2 masq\n    protocol=fwm\n"),
    ("ok_v6", "virtual6=[2001:db8::1]:80\n    real6=[2001:db8::2]:80 gate\n    netmask=64\n    persistent=300\n"),
    ("ok_range", "virtual=192.0.2.1:80\n    real=192.0.2.10->192.0.2.12:80 gate 1\n"),
    ("ok_thresholds", "virtual=192.0.2.1:80\n    real=192.0.2.10:80 gate 1 l:5 u:10\n"),
    ("ok_dns_udp", "virtual=192.0.2.1:53\n    real=192.0.2.10:53 gate\n"),
    ("ok_globals", 'autoreload=no\nfork=yes\nquiescent=yes\nreaddquiescent=no\ncleanstop=no\n'
                   'emailalert="a@b.c"\nemailalertfreq=60\nemailalertstatus=starting, running\n'
                   'emailalertfrom=x@y\nsmtp=mail.example.org\nfallbackcommand=/bin/true\nsupervised=yes\n'
                   'negotiatetimeout=5\nfailurecount=3\ncallback="/bin/true"\n'),
    ("ok_virtual_fallback", 'virtual=192.0.2.1:80\n    real=192.0.2.10:80 gate\n    fallback=127.0.0.1 masq\n'
                            '    virtualhost="www.example.org"\n    httpmethod=head\n    request="/x"\n'
                            '    receive="y"\n'),
    ("ok_comments_in_block", "virtual=192.0.2.1:80\n# top comment\n    real=192.0.2.10:80 gate # trailing\n"
                             "    # indented comment\n    scheduler=rr\n"),
    ("ok_two_blocks", "virtual=192.0.2.1:80\n    real=192.0.2.10:80 gate\nchecktimeout=4\n"
                      "virtual=192.0.2.1:443\n    real=192.0.2.10:443 gate\n"),
    ("bad_connecttimeout", "connecttimeout=3\n"),
    ("bad_connecttimeout_in_virtual", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    connecttimeout=3\n"),
    ("bad_timeout", "timeout=3\n"),
    ("bad_unknown_global", "checktimout=3\n"),
    ("bad_unknown_in_virtual", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    schedular=rr\n"),
    ("bad_method", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 direct\n"),
    ("bad_blank_line_in_block", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n\n    real=192.0.2.3:80 gate\n"),
    ("bad_real6_in_virtual", "virtual=192.0.2.1:80\n    real6=[2001:db8::2]:80 gate\n"),
    ("bad_checktype", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    checktype=conect\n"),
    ("bad_service", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    service=htp\n"),
    ("bad_quiescent", "quiescent=maybe\n"),
    ("bad_request_unquoted", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    request=index.html\n"),
    ("bad_netmask_v4", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    netmask=24\n"),
    ("bad_protocol", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    protocol=sctp\n"),
    ("bad_fwmark_protocol", "virtual=7\n    real=192.0.2.2:80 gate\n    protocol=tcp\n"),
    ("bad_v6_in_virtual", "virtual=[2001:db8::1]:80\n    real=192.0.2.2:80 gate\n"),
    ("bad_real_trailing", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate 1 junk\n"),
    ("bad_range", "virtual=192.0.2.1:80\n    real=192.0.2.12->192.0.2.10:80 gate\n"),
    ("bad_alertstatus", "emailalertstatus=all, none\n"),
    ("bad_fallback_method", "fallback=127.0.0.1:80 nat\n"),
    ("bad_checkport", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    checkport=70000\n"),
    ("bad_spaces_only_line", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n        \n"),
    ("bad_indented_global", "    checktimeout=3\n"),
    ("bad_comment_after_global", "quiescent=no # keep\n"),
    ("bad_httpmethod", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    httpmethod=POST\n"),
    ("bad_real_port_name", "virtual=192.0.2.1:80\n    real=192.0.2.2:nosuchsvc gate\n"),
    ("bad_callback_unquoted", "callback=/bin/true\n"),
    ("bad_global_fallback_tcp_only_service", "fallback=127.0.0.1:http\n"),  # http is tcp-only in /etc/services
    ("bad_zero_checkinterval", "checkinterval=0\n"),
    ("bad_checktimeout_in_virtual", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    checktimeout=0\n"),
    ("bad_scheduler_global", "scheduler=rr\n"),
    # ld_setup passes -M only with -p: netmask alone is ignored; -o only for udp
    ("ok_netmask_without_persistent", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    netmask=255.255.255.0\n"),
    ("ok_ops_on_tcp", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    ops=yes\n"),
    ("ok_scheduler_search", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    scheduler=Wrr\n"),
    ("ok_virtual_without_port_is_a_fwmark", "virtual=10.0.0.1\n    real=192.0.2.2:80 masq\n"),
    ("ok_execute", "execute=other.cf\nvirtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n"),
    ("ok_execute_empty", "execute=\n"),
    ("ok_emailalertstatus_empty", "emailalertstatus=\n"),
    ("ok_real_twice", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    real=192.0.2.2:80 gate\n"),
    ("ok_persistent_digits_anywhere", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    persistent=abc300\n"),
    ("ok_supervised_bare", "supervised\n"),
    ("ok_cleanstop_no", "cleanstop=no\nvirtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    cleanstop=no\n"),
    ("ok_logfile_and_monitorfile", 'logfile="/tmp/ld-test.log"\nvirtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n'
                                   '    monitorfile="/tmp/ld-test.monitor"\n'),
    ("bad_duplicate_virtual_at_eof", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\nvirtual=192.0.2.1:80\n"
                                     "    real=192.0.2.3:80 gate\n"),
    ("bad_duplicate_virtual_mid", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\nvirtual=192.0.2.1:80\n"
                                  "    real=192.0.2.3:80 gate\n\n\nchecktimeout=3\n"),
    ("bad_duplicate_fwmark", "virtual=5\n    real=192.0.2.2 gate\nvirtual=5\n    real=192.0.2.3 gate\nquiescent=no\n"),
    ("bad_emailalertfrom_in_virtual", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    emailalertfrom=a@b\n"),
    ("bad_ops_trailing_comment", "virtual=192.0.2.1:53\n    real=192.0.2.2:53 gate\n    ops=yes # one packet\n"),
    ("bad_real_of_other_family", "virtual=192.0.2.1:80\n    real=[2001:db8::2]:80 gate\n"),
    ("bad_monitorfile_unwritable", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n"
                                   '    monitorfile="/nonexistent/dir/x"\n'),
]

# Files ldirectord accepts and hadirector refuses at load, on purpose: (name, text, line, reason).
STRICTER = [
    # ldirectord leaves schedulers to ipvsadm, which fails at start; hadirector refuses at load
    ("scheduler_unknown", "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    scheduler=bogus\n", 3,
     "expected 'rr', 'wrr'"),
]


def _ldirectord(path) -> tuple[bool, int | None, str]:
    """Run the real ldirectord's parser: `-d FILE status` reads the file and, with no daemon
    running, exits 3; a configuration error exits 2 naming the line. -d keeps it off /var/log."""
    p = subprocess.run([LDIRECTORD, "-d", str(path), "status"], capture_output=True, text=True, timeout=60,
                       cwd=os.path.dirname(path))
    if p.returncode == 3:
        return True, None, ""
    m = re.search(r"reading file \S+ at line (\d+): (.*)", p.stderr)
    assert p.returncode == 2 and m, (p.returncode, p.stdout, p.stderr)
    return False, int(m.group(1)), m.group(2)


@pytest.mark.parametrize("name,text", CASES, ids=[c[0] for c in CASES])
def test_same_verdict_as_ldirectord(tmp_path, name, text):
    if not os.path.exists(LDIRECTORD) or not shutil.which("ipvsadm"):
        pytest.skip("needs ldirectord and ipvsadm (installed by `make test` as root)")
    d = make_ha_dir(tmp_path, haresources=HR, ldirectord=text)
    ok, line, why = _ldirectord(d / "ldirectord.cf")
    assert ok == name.startswith("ok_"), (name, line, why)
    if name == "bad_monitorfile_unwritable":
        # ldirectord opens the monitor file when it reads the file; that is a fact of the machine,
        # which `hadirector check` checks (config.machine), so the load itself accepts it
        assert line == 3
        load(d)
        return
    if ok:
        load(d)
        return
    ours = [e for e in errors(d) if "/ldirectord.cf" in e]
    assert ours, errors(d)
    m = re.match(r".*/ldirectord\.cf:(\d+): ", ours[0])
    assert m and int(m.group(1)) == line, (ours, line, why)


@pytest.mark.parametrize("name,text,line,msg", STRICTER, ids=[c[0] for c in STRICTER])
def test_stricter_than_ldirectord_on_purpose(tmp_path, name, text, line, msg):
    d = make_ha_dir(tmp_path, haresources=HR, ldirectord=text)
    if os.path.exists(LDIRECTORD) and shutil.which("ipvsadm"):
        assert _ldirectord(d / "ldirectord.cf")[0], name  # ldirectord itself reads it
    err = one_error(d)
    assert err.startswith(f"{d}/ldirectord.cf:{line}: ") and msg in err, err


def test_duplicate_virtual_is_refused_at_ldirectord_s_line(tmp_path):
    # ld_read_config checks for a duplicate once the block is read, at the line that ended it
    # (the file's last line at the end of the file)
    d = make_ha_dir(tmp_path, haresources=HR, ldirectord="virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n"
                    "virtual=192.0.2.1:80\n    real=192.0.2.3:80 gate\n\nchecktimeout=3\n")
    assert one_error(d) == (f"{d}/ldirectord.cf:5: duplicate virtual service TCP 192.0.2.1:80: the virtual= block "
                            "at line 3 repeats the one at line 1 (ldirectord reports it here, where the block ends)")
    d2 = make_ha_dir(tmp_path, haresources=HR, ldirectord="virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n"
                     "virtual=192.0.2.1:80\n    real=192.0.2.3:80 gate\n", name="b")
    assert one_error(d2).startswith(f"{d2}/ldirectord.cf:4: duplicate virtual service TCP 192.0.2.1:80")
    # tcp and udp on one address and port are two services, as ldirectord's id is protocol:ip:port
    b = balancer_of(tmp_path, "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\nvirtual=192.0.2.1:80\n"
                    "    real=192.0.2.3:80 gate\n    protocol=udp\n", name="c")
    assert [v.protocol for v in b.virtual] == ["tcp", "udp"]


# ---------------------------------------------------------------- values


def test_service_names_checktype_number_and_request(tmp_path):
    (v,) = balancer_of(tmp_path, CASES[1][1]).virtual
    assert (v.address, v.port, v.protocol, v.service) == ("192.0.2.1", 80, "tcp", "http")
    assert (v.checktype, v.num_connects) == ("combined", 3)
    (r,) = v.reals
    assert (r.port, r.method, r.weight, r.request, r.receive) == (80, "gate", 2, "/index.html", "OK")


def test_reals_default_and_range(tmp_path):
    (v,) = balancer_of(tmp_path, "virtual=192.0.2.1:80\n    real=192.0.2.10->192.0.2.12 masq\n"
                       "    real=192.0.2.20:8080 masq 0 l:5 u:10\n").virtual
    assert [(r.address, r.port, r.method, r.weight) for r in v.reals] == [
        ("192.0.2.10", None, "masq", 1), ("192.0.2.11", None, "masq", 1), ("192.0.2.12", None, "masq", 1),
        ("192.0.2.20", 8080, "masq", 0)]
    assert (v.reals[3].lower_threshold, v.reals[3].upper_threshold) == (5, 10)
    assert v.real_port(v.reals[0]) == 80


def test_fwmark_ipv6_and_dns(tmp_path):
    b = balancer_of(tmp_path, "virtual=5\n    real=192.0.2.2 masq\nvirtual6=[2001:db8::1]:80\n"
                    "    real6=[2001:db8::2]:80 gate\n    netmask=64\n    persistent=300\n"
                    "virtual=192.0.2.1:domain\n    real=192.0.2.10:53 gate\nvirtual6=7\n    real6=[2001:db8::3] masq\n")
    fw, v6, dns, fw6 = b.virtual
    assert (fw.fwmark, fw.protocol, fw.service, fw.ipv6) == (5, "fwm", "none", False)
    assert (v6.address, v6.ipv6, v6.netmask, v6.persistent) == ("2001:db8::1", True, "64", 300_000)
    assert (dns.port, dns.protocol, dns.service) == (53, "udp", "dns")
    assert (fw6.fwmark, fw6.ipv6) == (7, True)


def test_nft_refusals_name_the_line(tmp_path):
    # ldirectord takes these (IPVS can do them); the nft data plane cannot, so they are refused
    # when the file is read, at the line of the real (config/dataplane_rules.py)
    d = make_ha_dir(tmp_path, haresources=HR, ldirectord=(
        "virtual=5\n    real=192.0.2.2 gate\n"
        "virtual=192.0.2.1:80\n    real=192.0.2.20:80 ipip\n"
        "virtual=192.0.2.1:81\n    real=192.0.2.2:81 gate\n    real=192.0.2.3:81 masq\n"))
    errs = errors(d)
    assert [e.split(": ", 1)[0].rsplit(":", 1)[1] for e in errs] == ["2", "4", "7"], errs
    assert "direct routing (gate) of a fwmark service" in errs[0]
    assert "ipip (tunnel)" in errs[1] and "both take new connections" in errs[2]


def test_globals_and_their_inheritance(tmp_path):
    b = balancer_of(tmp_path, CASES[7][1] + "checktimeout=7\nfallback=127.0.0.1:8080\n"
                    "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n"
                    "virtual=192.0.2.1:81\n    real=192.0.2.2:81 gate\n    emailalertfreq=5\n"
                    "    failurecount=1\n    quiescent=no\n")
    assert (b.autoreload, b.fork, b.supervised, b.quiescent, b.readdquiescent, b.cleanstop) == (
        False, True, True, True, False, False)
    assert (b.negotiatetimeout, b.failurecount, b.checktimeout, b.callback) == (5000, 3, 7000, "/bin/true")
    assert b.alerts.to == ("a@b.c",) and b.alerts.status == ("starting", "running")
    assert (b.alerts.freq, b.alerts.sender, b.alerts.smtp) == (60, "x@y", "mail.example.org")
    assert (b.fallback.address, b.fallback.port, b.fallback.method) == ("127.0.0.1", 8080, "gate")
    v80, v81 = b.virtual
    assert (v80.checktimeout, v80.failurecount, v80.quiescent, v80.fallback.port) == (7000, 3, True, 8080)
    assert v80.alerts == b.alerts
    # a virtual that sets one alert setting keeps the global others (ldirectord ld_setup)
    assert (v81.alerts.freq, v81.alerts.to, v81.failurecount, v81.quiescent) == (5, ("a@b.c",), 1, False)


def test_virtual_fallback_takes_the_virtual_port_and_gate(tmp_path):
    (v,) = balancer_of(tmp_path, "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    fallback=127.0.0.1\n").virtual
    assert (v.fallback.address, v.fallback.port, v.fallback.method) == ("127.0.0.1", 80, "gate")


def test_checkcount_is_read_as_failurecount(tmp_path):
    d = make_ha_dir(tmp_path, haresources=HR, ldirectord="checkcount=4\nvirtual=192.0.2.1:80\n"
                    "    real=192.0.2.2:80 gate\n")
    loaded = load(d)
    assert loaded.config.balancer.virtual[0].failurecount == 4
    assert any("checkcount is deprecated" in str(w) and ":1:" in str(w) for w in loaded.warnings)


def test_virtual_checkinterval_warns_without_fork(tmp_path):
    d = make_ha_dir(tmp_path, haresources=HR, ldirectord="virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n"
                    "    checkinterval=3\n")
    loaded = load(d)
    assert loaded.config.balancer.virtual[0].checkinterval == 3000
    assert any("unless fork=yes" in str(w) and ":3:" in str(w) for w in loaded.warnings)


def test_inherited_value_is_located_at_the_global_line(tmp_path):
    d = make_ha_dir(tmp_path, haresources=HR, ldirectord="# globals\nchecktimeout=3\n"
                    "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    real=192.0.2.3:80 gate\n")
    _data, locate, _ = read_ha_dir(d, Collector())
    assert locate(("balancer", "virtual", 0, "checktimeout")) == f"{d}/ldirectord.cf:2"
    assert locate(("balancer", "virtual", 0, "reals", 1, "address")) == f"{d}/ldirectord.cf:5"
    assert locate(("balancer", "virtual", 0, "scheduler")) == f"{d}/ldirectord.cf:3"


def test_netmask_without_persistent_is_ignored_as_ldirectord_ignores_it(tmp_path):
    # ld_setup: `-M netmask` only inside `if (defined $$v{persistent})`
    d = make_ha_dir(tmp_path, haresources=HR, ldirectord="virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n"
                    "    netmask=255.255.255.0\n")
    loaded = load(d)
    assert loaded.config.balancer.virtual[0].netmask is None
    assert [str(w) for w in loaded.warnings if ":3:" in str(w)] == [
        f"{d}/ldirectord.cf:3: warning: netmask without persistent is ignored, as ldirectord ignores it (it is the "
        "granularity of persistence)"]


def test_ops_applies_to_udp_only(tmp_path):
    b = balancer_of(tmp_path, "virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    ops=yes\n"
                    "virtual=192.0.2.1:53\n    real=192.0.2.2:53 gate\n    ops=yes\n")
    assert [(v.protocol, v.ops) for v in b.virtual] == [("tcp", False), ("udp", True)]


def test_virtual_address_without_port_warns_it_is_a_fwmark(tmp_path):
    # (a masq real: the nft data plane cannot direct-route a fwmark service, test_nft_refusals_name_the_line)
    loaded = load(make_ha_dir(tmp_path, haresources=HR, ldirectord="virtual=10.0.0.1\n    real=192.0.2.2 masq\n"))
    assert loaded.config.balancer.virtual[0].fwmark == 10
    assert any("ldirectord.cf:1: warning: virtual=10.0.0.1 is read as firewall mark 10" in str(w)
               for w in loaded.warnings)


@pytest.mark.parametrize("text,line,msg", [
    ("cleanstop=no\n", 1, "cleanstop=no is not acted on: hadirector removes its virtual services"),
    ('logfile="/var/log/ld.log"\n', 1, "logfile is accepted but not acted on"),
    ("execute=other.cf\n", 1, "execute=other.cf is accepted but not acted on: hadirector runs one balancer"),
    ("supervised=no\n", 1, "supervised=no is not acted on"),
    ('virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n    monitorfile="/tmp/m"\n', 3,
     "monitorfile is accepted but not yet acted on: check results are not written to /tmp/m"),
])
def test_directives_not_acted_on_warn(tmp_path, text, line, msg):
    loaded = load(make_ha_dir(tmp_path, haresources=HR, ldirectord=text))
    assert any(f"ldirectord.cf:{line}: warning: {msg}" in str(w) for w in loaded.warnings), loaded.warnings


def test_model_rule_lands_on_the_line(tmp_path):
    d2 = make_ha_dir(tmp_path, haresources=HR, ldirectord="virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n"
                     "    scheduler=xyz\n", name="b")
    assert one_error(d2).startswith(f"{d2}/ldirectord.cf:3: expected 'rr', 'wrr'")


def test_load_is_accepted_with_a_warning(tmp_path):
    loaded = load(make_ha_dir(tmp_path, haresources=HR, ldirectord='virtual=192.0.2.1:80\n'
                              '    real=192.0.2.2:80 gate\n    load="snmp"\n'))
    assert any("load is accepted but not acted on" in str(w) and ":3:" in str(w) for w in loaded.warnings)


def test_unreferenced_ldirectord_cf_warns(tmp_path):
    loaded = load(make_ha_dir(tmp_path, ldirectord="virtual=192.0.2.1:80\n    real=192.0.2.2:80 gate\n"))
    assert loaded.config.balancer is not None
    assert any("no haresources group starts ldirectord" in str(w) for w in loaded.warnings)
