"""config.machine: what `run` would refuse on the machine `check` runs on, as errors on the node
being checked and warnings elsewhere."""

from __future__ import annotations

import os

from hadirector.config.machine import Machine, machine_problems, on_director
from legacy_util import load, make_ha_dir

HACF = "keepalive 1\ndeadtime 10\nucast eth0 198.18.0.2\nbcast eth1\nserial /dev/null\nnode alpha beta\n"


def machine(tmp_path, interfaces=("lo", "eth0"), addresses=(("eth0", "198.18.0.1/24"),)) -> Machine:
    rd = tmp_path / "resource.d"
    rd.mkdir(exist_ok=True)
    script = rd / "nginx"
    script.write_text("#!/bin/sh\n")
    os.chmod(script, 0o755)
    return Machine("alpha", frozenset(interfaces), tuple(addresses), (str(rd),))


def texts(problems):
    return [str(p) for p in problems]


def test_on_director_is_this_node_by_name():
    loaded = type("L", (), {"node": "alpha"})()
    assert on_director(loaded, "ALPHA") and not on_director(loaded, "beta")
    assert not on_director(type("L", (), {"node": None})(), "alpha")


def test_links_on_the_director_and_elsewhere(tmp_path):
    d = make_ha_dir(tmp_path, hacf=HACF, haresources="alpha 198.18.0.100 nginx\n")
    loaded = load(d)
    m = machine(tmp_path)
    errors = texts(p for p in machine_problems(loaded, m, True) if not p.warning)
    # ucast eth0 exists, /dev/null is a character device, the vip's subnet is on eth0: one error
    assert errors == [f"{d}/ha.cf:4: interface eth1 does not exist on this machine: run cannot open link bcast:eth1 "
                      "(interfaces here: eth0)"]
    # elsewhere (check run on a laptop for node alpha) the same facts are warnings
    elsewhere = machine_problems(loaded, Machine("laptop", m.interfaces, m.addresses, m.resource_dirs), False)
    assert all(p.warning for p in elsewhere)
    assert (f"{d}/ha.cf:4: warning: interface eth1 does not exist on this machine: run cannot open link bcast:eth1 "
            "(interfaces here: eth0) (a warning here: this machine is laptop, not alpha)") in texts(elsewhere)


def test_serial_port_must_be_a_character_device(tmp_path):
    d = make_ha_dir(tmp_path, hacf="serial /dev/null /etc/hostname /dev/nonexistent\nnode alpha beta\n",
                    haresources="")
    errs = texts(p for p in machine_problems(load(d), machine(tmp_path), True) if not p.warning)
    assert errs == [f"{d}/ha.cf:1: serial port /etc/hostname is not a character device",
                    f"{d}/ha.cf:1: serial port /dev/nonexistent does not exist on this machine"]


def test_vip_interface_and_subnet(tmp_path):
    d = make_ha_dir(tmp_path, hacf="ucast eth0 198.18.0.2\nnode alpha beta\n",
                    haresources="alpha 198.18.0.100 198.18.5.1 198.18.0.101/24/eth7\n")
    errs = texts(p for p in machine_problems(load(d), machine(tmp_path), True) if not p.warning)
    assert errs == [
        f"{d}/haresources:1: vip 198.18.5.1: no interface on this machine has an address whose subnet holds it, "
        "so group 198.18.0.100 cannot start here; name the interface (198.18.5.1/24/eth0)",
        f"{d}/haresources:1: vip 198.18.0.101: interface eth7 does not exist on this machine, so group "
        "198.18.0.100 cannot start here (interfaces here: eth0)"]


def test_resource_scripts_are_warned_at_their_line(tmp_path):
    d = make_ha_dir(tmp_path, hacf="ucast eth0 198.18.0.2\nnode alpha beta\n",
                    haresources="alpha nginx \\\n  nosuchscript::x\n")
    probs = machine_problems(load(d), machine(tmp_path), True)
    assert [(str(p), p.warning) for p in probs] == [
        (f"{d}/haresources:2: warning: resource script nosuchscript is not in {tmp_path}/resource.d on this machine: "
         "group nginx would fail to start here (heartbeat: \"Cannot locate resource script nosuchscript\")", True)]


def test_respawn_user_and_program(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("not a program\n")
    os.chmod(plain, 0o644)
    d = make_ha_dir(tmp_path, hacf="ucast eth0 198.18.0.2\nnode alpha beta\nrespawn nosuchuser /bin/true\n"
                    f"respawn root {plain}\nfailfast root /nonexistent/prog\n", haresources="")
    probs = machine_problems(load(d), machine(tmp_path), True)
    assert [(str(p), p.warning) for p in probs] == [
        (f"{d}/ha.cf:3: respawn user 'nosuchuser' does not exist on this machine (heartbeat refuses the "
         "line)", False),
        (f"{d}/ha.cf:4: respawn command {plain} is not an executable file on this machine (heartbeat "
         "refuses the line)", False),
        (f"{d}/ha.cf:5: warning: failfast command /nonexistent/prog is not an executable file on this machine "
         "(heartbeat refuses the line)", True)]


def test_monitorfile_and_watchdog(tmp_path):
    d = make_ha_dir(tmp_path, hacf="ucast eth0 198.18.0.2\nnode alpha beta\nwatchdog /dev/nonexistent-wd\n",
                    haresources="alpha ldirectord\n",
                    ldirectord='virtual=198.18.0.100:80\n    real=198.18.1.1:80 gate\n'
                               '    monitorfile="/nonexistent/dir/m"\n')
    probs = texts(machine_problems(load(d), machine(tmp_path), True))
    assert f"{d}/ha.cf:3: warning: watchdog device /dev/nonexistent-wd does not exist on this machine" in probs
    assert (f"{d}/ldirectord.cf:3: warning: monitorfile /nonexistent/dir/m cannot be opened for appending on this "
            "machine (ldirectord refuses the file then)") in probs


def test_native_toml_is_located_by_key_path(tmp_path):
    from hadirector.config import load_config

    f = tmp_path / "c.toml"
    f.write_text('[cluster]\nnodes = ["alpha"]\n[[cluster.links]]\nkind = "bcast"\ninterface = "eth9"\n'
                 '[cluster.auth]\nkey = "k"\n')
    loaded = load_config(path=f, node="alpha")
    (p,) = machine_problems(loaded, machine(tmp_path), True)
    assert str(p).startswith("cluster.links.0: interface eth9 does not exist on this machine")
