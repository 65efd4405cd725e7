"""Our desired state against the real ldirectord's IPVS table, for the same ldirectord.cf and the
same health: quiescent, removal, the fallback server (also with every real up at weight 0),
checktype on/off, maintenance and the fallbackcommand.

Each scenario runs /usr/sbin/ldirectord in debug mode with the stand-in ipvsadm of
ldirectord_util.py against loopback servers (listening = up, bound but not listening = refused),
waits until it has checked every real twice, and compares the table it built with
`balancer.state.build_desired` for the same file (read by our legacy loader) and the same health.
The scenarios run side by side, so the whole module takes one ldirectord start (a few seconds).
"""

from __future__ import annotations

import pytest

import os

from hadirector.balancer.state import DesiredStateCore, RealHealth, RunCommand, build_desired
from hadirector.config import load_config
from hadirector.config.model import Balancer

from ldirectord_util import Hold, Run, need_ldirectord, run_all

VIP = "198.18.0.100:80"
A, B, FB = "127.0.0.21", "127.0.0.22", "127.0.0.29"

# name: (global lines, per-virtual lines, reals as (address, up, method, weight), fallback?)
SCENARIOS = {
    # ldirectord fallback_on/_status_check: the fallback comes only when no real is up; weight 0
    # does not count (real_status holds every real whose check passed)
    "all_up_weight_zero": ("", "", [(A, True, "masq", 0), (B, True, "masq", 0)], True),
    "one_down_quiescent": ("quiescent=yes\n", "", [(A, True, "masq", 2), (B, False, "masq", 1)], True),
    "one_down_removed": ("quiescent=no\n", "", [(A, True, "masq", 2), (B, False, "masq", 1)], True),
    "all_down_quiescent": ("quiescent=yes\n", "", [(A, False, "masq", 2), (B, False, "masq", 1)], True),
    "all_down_removed": ("quiescent=no\n", "", [(A, False, "masq", 2), (B, False, "masq", 1)], True),
    "all_down_readdquiescent": ("quiescent=yes\nreaddquiescent=yes\n", "",
                                [(A, False, "masq", 2), (B, False, "masq", 1)], True),
    "checktype_on": ("", "\tchecktype=on\n", [(A, False, "masq", 3), (B, False, "masq", 1)], True),
    "checktype_off": ("quiescent=no\n", "\tchecktype=off\n", [(A, True, "masq", 3), (B, True, "masq", 1)], True),
    "maintenance": ("quiescent=no\nmaintenancedir=MAINT\n", "", [(A, True, "masq", 2), (B, True, "masq", 1)], True),
}


@pytest.fixture(scope="module")
def ldirectord_runs(tmp_path_factory):
    need_ldirectord()
    hold = Hold()
    base = tmp_path_factory.mktemp("ldirectord")
    runs, expect = {}, {}
    try:
        for name, (glob, virt, reals, fallback) in SCENARIOS.items():
            d = base / name
            d.mkdir()
            lines = []
            health = {}
            for addr, up, method, weight in reals:
                port = hold.port(addr, up)
                lines.append(f"\treal={addr}:{port} {method} {weight}\n")
                health[(addr, port)] = up
            fb = ""
            if fallback:
                fb = f"\tfallback={FB}:{hold.port(FB, True)} masq\n"
            maint = d / "maint"
            maint.mkdir()
            if name == "maintenance":
                addr, port = next(iter(health))
                (maint / f"{addr}:{port}").write_text("")
                health[(addr, port)] = False  # in maintenance: forced down (_check_real)
            glob = glob.replace("MAINT", str(maint))
            cmdlog = d / "fallbackcommand.log"
            fbcmd = d / "fallbackcommand.sh"
            fbcmd.write_text(f'#!/bin/sh\necho "$@" >> {cmdlog}\n')
            fbcmd.chmod(0o755)
            text = (f"checktimeout=2\ncheckinterval=1\ncleanstop=no\nfallbackcommand={fbcmd}\n{glob}"
                    f"virtual={VIP}\n\tchecktype=connect\n\tscheduler=wrr\n{virt}{''.join(lines)}{fb}")
            # two full rounds over the reals, and the next check started, so the second round's
            # last result is in the table (ldirectord checks one real after the other; a real in
            # maintenance is forced down without a "Checking" line)
            checked = len(reals) - (name == "maintenance")
            runs[name] = Run(d, text, want_checks=2 * checked + 1)
            expect[name] = (text, health, cmdlog)
        run_all(list(runs.values()))
        yield runs, expect
    finally:
        hold.close()


def ours(run) -> Balancer:
    """The same ldirectord.cf read by our legacy loader, in a heartbeat directory of its own."""
    d = run.directory / "ha.d"
    d.mkdir(exist_ok=True)
    (d / "ha.cf").write_text("keepalive 1\ndeadtime 10\nucast eth0 198.18.0.2\nnode alpha\nnode beta\n")
    (d / "authkeys").write_text("auth 1\n1 sha1 s3cret\n")
    os.chmod(d / "authkeys", 0o600)
    (d / "haresources").write_text("alpha ldirectord\n")
    (d / "ldirectord.cf").write_text(run.config)
    return load_config(ha_dir=d, node="alpha").config.balancer


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_same_table_as_ldirectord(ldirectord_runs, name):
    runs, expect = ldirectord_runs
    text, health, cmdlog = expect[name]
    b = ours(runs[name])
    (vs,) = b.virtual
    facts = {vs.real_key(r): RealHealth(health[(r.address, vs.real_port(r))]) for r in vs.reals}
    # the core as the daemon drives it: start (every real unchecked), then the checks' facts
    core = DesiredStateCore(b)
    actions = core.start(0) + core.on_health_many(facts, 1000)
    [svc] = core.desired.services
    assert core.desired == build_desired(b, facts)
    mine = {(f"{r.address}:{r.port}", r.weight, r.method) for r in svc.installed}
    theirs = runs[name].installed(VIP)
    assert mine == theirs, (name, runs[name].out[-4000:])
    # the fallbackcommand ends on the same verdict (ldirectord do_fallback_command)
    ran = [a.args[0] for a in actions if isinstance(a, RunCommand) and a.command == vs.fallbackcommand]
    theirs_cmd = cmdlog.read_text().split()
    assert ran and theirs_cmd and ran[-1] == theirs_cmd[-3], (name, ran, theirs_cmd)
