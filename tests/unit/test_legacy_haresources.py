"""haresources: groups, continuation lines, IPaddr forms, scripts, ldirectord, group names."""

from __future__ import annotations

import pytest

from hadirector.config.errors import Collector
from hadirector.config.legacy import read_ha_dir
from hadirector.config.model import BalancerResource, ScriptResource, VipResource
from legacy_util import errors, load, make_ha_dir, one_error

LD = "virtual=198.18.0.100:80\n    real=198.18.1.1:80 gate\n"


def groups_of(tmp_path, text, **kw):
    return load(make_ha_dir(tmp_path, haresources=text, **kw)).config.groups


@pytest.mark.parametrize("token,expect", [
    ("198.18.0.10", dict(address="198.18.0.10", prefixlen=None, interface=None, label=None, broadcast=None)),
    ("198.18.0.10/24", dict(address="198.18.0.10", prefixlen=24, interface=None)),
    ("198.18.0.10/24/eth0", dict(prefixlen=24, interface="eth0", label=None)),
    ("198.18.0.10/24/eth0:0", dict(interface="eth0", label="eth0:0")),
    ("198.18.0.10/24/eth0/198.18.0.255", dict(interface="eth0", broadcast="198.18.0.255")),
    ("IPaddr::198.18.0.10/255.255.255.0/eth1", dict(prefixlen=24, interface="eth1")),
    ("IPaddr2::198.18.0.10/16/eth1:web/198.18.255.255",
     dict(prefixlen=16, interface="eth1", label="eth1:web", broadcast="198.18.255.255")),
    ("IPaddr::198.18.0.10", dict(address="198.18.0.10", prefixlen=None)),
    ("IPv6addr::2001:db8::10/64/eth0", dict(address="2001:db8::10", prefixlen=64, interface="eth0")),
    # the IPaddr wrappers collapse repeated slashes (sed 's%^BASEIP/*%%')
    ("IPaddr::10.0.30.15//8/eth0:10", dict(address="10.0.30.15", prefixlen=8, interface="eth0", label="eth0:10")),
    ("198.18.0.10/24//eth0", dict(prefixlen=24, interface="eth0")),
    # a third field starting with a digit is the broadcast address, not an interface
    ("IPaddr::135.9.8.7/24/135.9.8.210", dict(prefixlen=24, interface=None, broadcast="135.9.8.210")),
    ("IPaddr2::198.18.0.10/24/198.18.0.255", dict(interface=None, broadcast="198.18.0.255")),
])
def test_ipaddr_forms(tmp_path, token, expect):
    (g,) = groups_of(tmp_path, f"alpha {token}\n")
    (r,) = g.resources
    assert isinstance(r, VipResource)
    for k, v in expect.items():
        assert getattr(r, k) == v, k


def test_scripts_and_arguments(tmp_path):
    (g,) = groups_of(tmp_path, "alpha Filesystem::/dev/sdb1::/data::ext4 drbddisk::r0 nginx\n")
    assert [(r.name, r.args) for r in g.resources] == [
        ("Filesystem", ("/dev/sdb1", "/data", "ext4")), ("drbddisk", ("r0",)), ("nginx", ())]
    assert all(isinstance(r, ScriptResource) for r in g.resources)


def test_continuation_and_comments(tmp_path):
    d = make_ha_dir(tmp_path, haresources="# groups\nalpha 198.18.0.10 \\\n   nginx \\\n\tdrbddisk::r0\n"
                    "\n  # indented comment\nbeta 198.18.0.11 # db\n")
    cfg = load(d).config
    assert [len(g.resources) for g in cfg.groups] == [3, 1]
    assert cfg.groups[1].preferred_node == "beta"
    _data, locate, _ = read_ha_dir(d, Collector())
    assert locate(("groups", 0, "preferred_node")) == f"{d}/haresources:2"
    assert locate(("groups", 0, "resources", 2)) == f"{d}/haresources:4"
    assert locate(("groups", 1, "resources", 0)) == f"{d}/haresources:7"


def test_group_names_are_derived_and_unique(tmp_path):
    gs = groups_of(tmp_path, "alpha 198.18.0.10 nginx\nbeta nginx\nalpha nginx::x\nbeta ldirectord\n",
                   ldirectord=LD)
    assert [g.name for g in gs] == ["198.18.0.10", "nginx", "nginx-2", "ldirectord"]


def test_ldirectord_is_the_balancer(tmp_path):
    cfg = load(make_ha_dir(tmp_path, haresources="alpha 198.18.0.100 ldirectord\n", ldirectord=LD)).config
    r = cfg.groups[0].resources[1]
    assert isinstance(r, BalancerResource) and r.source == f"{tmp_path}/ha.d/ldirectord.cf"
    assert cfg.balancer is not None and cfg.balancer.virtual[0].port == 80


def test_ldirectord_names_its_file(tmp_path):
    d = make_ha_dir(tmp_path, haresources="alpha ldirectord::web.cf\n")
    (d / "web.cf").write_text(LD)
    cfg = load(d).config
    assert cfg.groups[0].resources[0].source == f"{d}/web.cf"
    # /etc/ha.d/... is read from the directory given
    d2 = make_ha_dir(tmp_path, haresources="alpha ldirectord::/etc/ha.d/web.cf\n", name="b")
    (d2 / "web.cf").write_text(LD)
    assert load(d2).config.balancer.virtual[0].address == "198.18.0.100"


def test_ldirectord_without_its_file(tmp_path):
    d = make_ha_dir(tmp_path, haresources="alpha ldirectord\n")
    assert one_error(d) == (f"{d}/haresources:1: ldirectord needs its configuration file, but "
                            f"{d}/ldirectord.cf does not exist")


def test_preferred_node_must_be_declared(tmp_path):
    d = make_ha_dir(tmp_path, haresources="alpha nginx\ngamma 198.18.0.10\n")
    assert one_error(d) == (f"{d}/haresources:2: 'gamma' is not a node declared in ha.cf; "
                            "nodes are alpha, beta")


@pytest.mark.parametrize("line,msg", [
    ("alpha 198.18.0.10/33", "netmask '33' in '198.18.0.10/33'"),
    ("alpha IPaddr::", "IPaddr takes one argument"),
    ("alpha IPaddr::not-an-ip/24", "'not-an-ip' is not an IP address"),
    ("alpha IPaddr::2001:db8::1", "use IPv6addr:: for it"),
    ("alpha 198.18.0.10/24/eth0/bcast", "broadcast 'bcast'"),
    ("alpha 198.18.0.10//eth0", "netmask 'eth0' in '198.18.0.10//eth0': expected a prefix length (0..32) or a "
                                "dotted netmask; IPaddr collapses repeated slashes"),
    ("alpha /etc/init.d/nginx", "not a path"),
    ("alpha ::x", "no script name"),
    ("alpha", "node alpha has no resources"),
])
def test_bad_resources(tmp_path, line, msg):
    d = make_ha_dir(tmp_path, haresources=line + "\n")
    err = one_error(d)
    assert err.startswith(f"{d}/haresources:1: ") and msg in err, err


def test_empty_haresources_means_no_groups(tmp_path):
    assert groups_of(tmp_path, "") == ()


def test_all_errors_reported(tmp_path):
    d = make_ha_dir(tmp_path, haresources="alpha 198.18.0.10/40\nzeta nginx\nbeta IPaddr::x\n")
    assert [e.split(": ", 1)[0] for e in errors(d)] == [f"{d}/haresources:{n}" for n in (1, 2, 3)]


def test_a_comment_on_a_continued_line_is_not_a_comment(tmp_path):
    # ResourceManager strips `#...` before it joins lines, so on the continued line heartbeat would
    # run `#` and `db` as resources
    d = make_ha_dir(tmp_path, haresources="alpha 198.18.0.10 \\\n  nginx # db\n")
    assert one_error(d).startswith(f"{d}/haresources:2: '#' on a continued line: heartbeat strips comments")


def test_continuation_joins_words(tmp_path):
    # `s/\\\n//`: the backslash and the line break go, nothing is put between
    (g,) = groups_of(tmp_path, "alpha ngi\\\nnx\n")
    assert [r.name for r in g.resources] == ["nginx"]


def test_extra_ipaddr_fields_are_ignored_as_the_wrapper_does(tmp_path):
    loaded = load(make_ha_dir(tmp_path, haresources="alpha 198.18.0.10/24/eth0/198.18.0.255/x\n"))
    (r,) = loaded.config.groups[0].resources
    assert (r.interface, r.broadcast) == ("eth0", "198.18.0.255")
    assert any("haresources:1: warning: IPaddr::198.18.0.10/24/eth0/198.18.0.255/x: the wrapper script ignores 'x'"
               in str(w) for w in loaded.warnings)


def test_ipv6addr_with_double_colon_warns_how_heartbeat_splits_it(tmp_path):
    loaded = load(make_ha_dir(tmp_path, haresources="alpha IPv6addr::2001:db8::10/64\n"))
    assert loaded.config.groups[0].resources[0].address == "2001:db8::10"
    assert any("splits resource arguments at '::', so IPv6addr would get '2001:db8 10/64'" in str(w)
               for w in loaded.warnings)


def test_common_resource_scripts_keep_their_arguments(tmp_path):
    (g,) = groups_of(tmp_path, "alpha IPsrcaddr::198.18.0.10 Filesystem::/dev/drbd0::/data::ext3 drbddisk::r0 "
                     "MailTo::root@example.org::web IProute::x LVSSyncDaemonSwap::master httpd\n")
    assert [(r.name, r.args) for r in g.resources] == [
        ("IPsrcaddr", ("198.18.0.10",)), ("Filesystem", ("/dev/drbd0", "/data", "ext3")), ("drbddisk", ("r0",)),
        ("MailTo", ("root@example.org", "web")), ("IProute", ("x",)), ("LVSSyncDaemonSwap", ("master",)),
        ("httpd", ())]
