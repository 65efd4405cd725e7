"""The two deployments in shared/seeds, typed in as they stand on disk, load with their values."""

from __future__ import annotations

from hadirector.config.model import BalancerResource, ScriptResource, VipResource
from legacy_util import copy_fixture, load


def test_seed000_linuxtone_lvs(tmp_path):
    d = copy_fixture(tmp_path, "seed000")
    loaded = load(d, node="primarylb.linuxtone.org")
    cfg, c = loaded.config, loaded.config.cluster
    assert loaded.node == "primarylb.linuxtone.org"
    assert c.nodes == ("primarylb.linuxtone.org", "backuplb.linuxtone.org")
    t = c.timing
    assert (t.keepalive, t.deadtime, t.warntime, t.initdead) == (2000, 30_000, 10_000, 120_000)
    serial, ucast = c.links
    assert (serial.kind, serial.device, serial.baud) == ("serial", "/dev/ttyS0", 19200)
    assert (ucast.kind, ucast.interface, ucast.peers, ucast.port) == ("ucast", "eth0", ("192.168.1.103",), 694)
    assert (c.auth.method, c.auth.key, c.auth.index) == ("sha1", "Hey!", 1)
    assert c.auto_failback == "on" and c.watchdog == "/dev/watchdog"
    assert c.ping == ("192.168.1.103",)
    assert [(g.name, g.addresses) for g in c.ping_groups] == [
        ("lbgroup", ("10.0.0.1", "10.0.0.2", "192.168.1.102", "192.168.1.103"))]
    assert c.respawn == ()  # ipfail is heartbeat's API client: not respawned (warned)
    assert (c.logging.logfile, c.logging.facility) == ("/var/log/ha-log", "local0")
    (g,) = cfg.groups
    assert (g.name, g.preferred_node) == ("lvs", "primarylb.linuxtone.org")
    lvs, ld = g.resources
    assert isinstance(lvs, ScriptResource) and (lvs.name, lvs.args) == ("lvs", ())
    assert isinstance(ld, BalancerResource) and ld.source == f"{d}/ldirectord.cf"
    b = cfg.balancer
    assert (b.checktimeout, b.checkinterval, b.autoreload, b.quiescent) == (3000, 1000, True, False)
    assert b.logfile == "/var/log/ldirectord.log"
    assert (b.alerts.to, b.alerts.freq, b.alerts.status) == (("cnseek@gmail.com",), 3600, ("all",))
    (v,) = b.virtual
    assert (v.address, v.port, v.protocol, v.scheduler, v.persistent) == ("192.168.1.106", 80, "tcp", "wrr", 5000)
    assert (v.checktype, v.checkport, v.service, v.checkinterval, v.checktimeout) == (
        "connect", 80, "http", 1000, 3000)
    assert [(r.address, r.port, r.method, r.weight) for r in v.reals] == [
        ("192.168.1.104", 80, "gate", 1), ("192.168.1.105", 80, "gate", 1)]
    assert (v.fallback.address, v.fallback.port, v.fallback.method) == ("127.0.0.1", 80, "gate")
    warned = sorted(int(str(w).split(":")[1]) for w in loaded.warnings if "/ha.cf:" in str(w))
    assert warned == [15, 20, 21, 22]  # crm on, ping_group again, respawn ipfail (replaced), apiauth


def test_seed003_test1_and_test2(tmp_path):
    copy_fixture(tmp_path, "seed003", "test1")
    copy_fixture(tmp_path, "seed003", "test2")
    one = load(tmp_path / "seed003" / "test1", node="test1").config
    two = load(tmp_path / "seed003" / "test2", node="test2").config
    c = one.cluster
    assert c.nodes == ("test1", "test2")
    t = c.timing
    assert (t.keepalive, t.deadtime, t.warntime, t.initdead) == (2000, 30_000, 10_000, 60_000)
    assert [(lk.kind, lk.interface, lk.peers, lk.port) for lk in c.links] == [
        ("ucast", "eth1", ("10.6.100.189",), 694)]
    assert two.cluster.links[0].peers == ("10.6.100.188",)
    assert (c.auth.method, c.auth.key, c.auth.index) == ("md5", "Hello!", 3)
    assert c.auto_failback == "on" and c.ping == ("10.6.100.1",)
    assert (c.logging.logfile, c.logging.debugfile, c.logging.facility) == (
        "/var/log/ha-log", "/var/log/ha-debug", "local0")
    (g,) = one.groups
    assert (g.name, g.preferred_node) == ("10.6.0.187", "test1")
    vip, nginx = g.resources
    assert isinstance(vip, VipResource)
    assert (vip.address, vip.prefixlen, vip.interface, vip.label) == ("10.6.0.187", 24, "eth0", "eth0:0")
    assert isinstance(nginx, ScriptResource) and nginx.name == "nginx"
    assert one.balancer is None
    # the two files differ only in the ucast peer
    assert one.model_copy(update={"cluster": c.model_copy(update={"links": two.cluster.links})}) == two


def test_locate_and_files(tmp_path):
    from hadirector.config.errors import Collector
    from hadirector.config.legacy import read_ha_dir
    from legacy_util import make_ha_dir

    d = make_ha_dir(tmp_path, hacf="node alpha beta\nkeepalive 1\ndeadtime 10\nucast eth0 198.18.0.2\n",
                    haresources="# groups\nalpha 198.18.0.100 ldirectord\n",
                    ldirectord="virtual=198.18.0.100:80\n    real=198.18.1.1:80 gate\n"
                               "virtual=198.18.0.100:443\n    real=198.18.1.1:443 gate\n"
                               "    real=198.18.1.2:443 gate\n")
    col = Collector()
    data, locate, files = read_ha_dir(d, col)
    assert data is not None and not col.errors
    assert files == tuple(str(d / f) for f in ("ha.cf", "authkeys", "haresources", "ldirectord.cf"))
    assert locate(("cluster", "timing", "deadtime")) == f"{d}/ha.cf:3"
    assert locate(("cluster", "timing", "warntime")) == f"{d}/ha.cf:3"  # derived from deadtime
    assert locate(("cluster", "auth", "key")) == f"{d}/authkeys:2"
    assert locate(("groups", 0, "preferred_node")) == f"{d}/haresources:2"
    assert locate(("balancer", "virtual", 1, "reals", 0, "address")) == f"{d}/ldirectord.cf:4"
    assert locate(("balancer", "virtual", 1, "reals", 1, "address")) == f"{d}/ldirectord.cf:5"
    assert locate(("cluster", "name")) == f"{d}/ha.cf"  # not set: the file
    assert locate(()) == str(d)
