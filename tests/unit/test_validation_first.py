"""Every error the desired-state, check and data-plane code can raise is either refused first when
the configuration is read, with its key path (file:line for legacy files), or cannot come from
the configuration at all (the machine, an option the code passes, an internal invariant).

The raise sites are listed from the source by their syntax trees, so a new `raise` fails
`test_every_raise_site_is_accounted_for` until it is placed in RAISES below. For each one the
configuration can reach, a bad value is refused by `build_config` at the expected location, and
the raise site really fires for that value when the loader is bypassed - so the loader is what
stands between a bad file and an error at failover time. `hadirector check` itself (the console
script) refuses `schedflags = ["bogus"]` and a fwmark service with gate reals.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hadirector
from hadirector.balancer.persistence import PersistenceTable
from hadirector.balancer.schedulers import make_scheduler
from hadirector.balancer.state import DesiredState, RealState, ServiceState, build_desired
from hadirector.checks.plan import CheckPlan
from hadirector.checks.risefall import RiseFall
from hadirector.config.build import build_config
from hadirector.config.errors import Collector
from hadirector.config.model import Balancer, RealKey
from hadirector.dataplane.nft_render import Link, RenderEnv, render

from legacy_util import make_ha_dir, run_cli

SRC = Path(hadirector.__file__).resolve().parent
SCANNED = ["balancer/persistence.py", "balancer/schedulers.py", "balancer/state.py", "balancer/maglev.py",
           "checks/plan.py", "checks/risefall.py", "dataplane/base.py", "dataplane/nft_render.py",
           "dataplane/nft.py", "dataplane/libnft.py", "dataplane/netfacts.py", "dataplane/proxy/plane.py",
           "dataplane/proxy/table.py", "dataplane/proxy/tcp.py", "dataplane/proxy/udp.py", "dataplane/proxy/proxy_protocol.py"]

VIP = "198.18.0.100"
KEY = RealKey(f"TCP {VIP}:80", "198.18.0.11", 80)
ENV = RenderEnv(links={"198.18.0.11": Link("eth0", "02:00:00:00:00:11"), "198.18.0.12": Link("eth0", "02:00:00:00:00:12")},
                dev_macs={"eth0": "02:00:00:00:00:02"}, vip_devs={VIP: "eth0"})


def vs(**kw):
    v = {"address": VIP, "port": 80, "reals": [{"address": "198.18.0.11", "method": "gate"}]}
    v.update(kw)
    return v


def render_bypassing_the_loader(**kw):
    """The model alone (as a test or a tool can build it), without the loader's rules."""
    return render(build_desired(Balancer.model_validate({"virtual": [vs(**kw)]})), ENV)


def render_state(**real):
    svc = ServiceState(key=KEY.virtual, protocol="tcp", address=VIP, port=80, fwmark=None, ipv6=False,
                       scheduler="wrr", reals=(RealState(method="masq", weight=1, status="up", **real),))
    return render(DesiredState(services=(svc,)), ENV)


ENVIRONMENT = "the machine: a device, a route, a neighbour, the kernel or libnftables"
OPTION = "an option the code passes (NftOptions, ProxyDataPlane, CheckPlan), not the configuration"
INTERNAL = "an internal invariant or lookup: no input reaches it"

# (file, function, start of the message) -> (bad virtual service, key path, the site firing) or a reason
RAISES = {
    ("balancer/persistence.py", "__init__", "persistence timeout must be positive"):
        (vs(persistent=0), "balancer.virtual.0.persistent", lambda: PersistenceTable(timeout=0, prefix=32)),
    ("balancer/schedulers.py", "make_scheduler", "unknown scheduler"):
        (vs(scheduler="bogus"), "balancer.virtual.0.scheduler", lambda: make_scheduler("bogus")),
    ("balancer/schedulers.py", "schedule", ""): INTERNAL,  # abstract method
    ("balancer/schedulers.py", "_oh", ""): INTERNAL,  # abstract method
    ("balancer/state.py", "service", ""): INTERNAL,  # DesiredState.service(key): KeyError for an unknown key
    # the modes come from the cluster's maintenance map, whose decoder refuses any other state
    ("balancer/state.py", "set_maintenance", "maintenance mode must be one of "): INTERNAL,
    ("checks/plan.py", "__init__", "concurrency must be at least 1"): OPTION,
    ("checks/plan.py", "__init__", "startup_window must not be negative"): OPTION,
    ("checks/plan.py", "set", ": check interval must be at least 1 ms"):
        (vs(checkinterval=0), "balancer.virtual.0.checkinterval", lambda: CheckPlan().set(KEY, 0, 0)),
    ("checks/risefall.py", "initial", ": failurecount and rise must be at least 1"):
        (vs(failurecount=0), "balancer.virtual.0.failurecount", lambda: RiseFall.initial(KEY, 0, 1, False, 0)),
    ("checks/risefall.py", "on_result", "no transition for state up="): INTERNAL,
    ("dataplane/nft_render.py", "_method", "real "):
        (vs(reals=[{"address": "not-an-address"}]), "balancer.virtual.0.reals.0.address",
         lambda: render_state(address="not-an-address", port=80)),
    ("dataplane/nft_render.py", "_render_service", ": real "):  # ipip
        (vs(reals=[{"address": "198.18.0.11", "method": "ipip"}]), "balancer.virtual.0.reals.0.method",
         lambda: render_bypassing_the_loader(reals=[{"address": "198.18.0.11", "method": "ipip"}])),
    ("dataplane/nft_render.py", "_render_service", ": mixes gate reals with masq/local reals"):
        (vs(reals=[{"address": "198.18.0.11", "method": "gate"}, {"address": "198.18.0.12", "method": "masq"}]),
         "balancer.virtual.0.reals.1.method",
         lambda: render_bypassing_the_loader(reals=[{"address": "198.18.0.11", "method": "gate"},
                                                    {"address": "198.18.0.12", "method": "masq"}])),
    ("dataplane/nft_render.py", "_render_service", ": direct routing (gate) of a fwmark service"):
        ({"fwmark": 5, "reals": [{"address": "198.18.0.11", "method": "gate"}]}, "balancer.virtual.0.reals.0.method",
         lambda: render(build_desired(Balancer.model_validate(
             {"virtual": [{"fwmark": 5, "reals": [{"address": "198.18.0.11", "method": "gate"}]}]})), ENV)),
    ("dataplane/nft_render.py", "_render_service", ": gate real "):
        (vs(reals=[{"address": "198.18.0.11", "port": 8080, "method": "gate"}]), "balancer.virtual.0.reals.0.port",
         lambda: render_bypassing_the_loader(reals=[{"address": "198.18.0.11", "port": 8080, "method": "gate"}])),
    ("dataplane/nft_render.py", "_render_nat", ": snat address "): OPTION,
    ("dataplane/nft_render.py", "_render_gate", ": no device known for VIP "): ENVIRONMENT,
    ("dataplane/nft_render.py", "_render_gate", ": no link-layer address known for gate real "): ENVIRONMENT,
    ("dataplane/nft_render.py", "_render_gate", ": no MAC address known for device "): ENVIRONMENT,
    ("dataplane/nft_render.py", "__post_init__", "snat "): OPTION,
    ("dataplane/nft_render.py", "__post_init__", "table name "): OPTION,
    ("dataplane/nft.py", "_init_nft", "nft data plane: "): ENVIRONMENT,
    ("dataplane/nft.py", "apply", "nft data plane is closed"): INTERNAL,
    ("dataplane/nft.py", "_apply_sync", ""): ENVIRONMENT,  # a RenderError of the machine's facts (above)
    ("dataplane/nft.py", "_commit", "nftables refused the ruleset: "): ENVIRONMENT,
    ("dataplane/netfacts.py", "__init__", "netlink: open a socket: "): ENVIRONMENT,
    ("dataplane/netfacts.py", "_dump", "netlink: "): ENVIRONMENT,  # listing links, addresses, neighbours
    ("dataplane/netfacts.py", "route", "netlink: "): ENVIRONMENT,  # the socket failed (a refusal is answered)
    ("dataplane/nft.py", "_vip_dev", ": cannot tell which device VIP "): ENVIRONMENT,
    ("dataplane/nft.py", "_real_dev", ": no route to gate real "): ENVIRONMENT,
    ("dataplane/nft.py", "_real_dev", ": gate real "): ENVIRONMENT,
    ("dataplane/proxy/proxy_protocol.py", "proxy_header", "PROXY protocol v1 carries TCP only"): OPTION,
    ("dataplane/proxy/proxy_protocol.py", "proxy_header", "unknown PROXY protocol version "): OPTION,
    ("dataplane/proxy/plane.py", "__init__", "proxy_protocol: expected v1 or v2, got "): OPTION,
    ("dataplane/proxy/plane.py", "apply", ""): ENVIRONMENT,  # cannot listen on the address
    ("dataplane/libnft.py", "__init__", "neither "): ENVIRONMENT,
    ("dataplane/libnft.py", "_context", "nft_ctx_new failed"): ENVIRONMENT,
    ("dataplane/libnft.py", "run", ""): ENVIRONMENT,
    ("dataplane/libnft.py", "run_text", ""): ENVIRONMENT,  # the VIP lease renewals (kernel refusal)
    ("dataplane/libnft.py", "_read", ": "): ENVIRONMENT,  # an nfnetlink read (no permission, no such set)
}


def raise_sites() -> set[tuple[str, str, str]]:
    """(file, enclosing function, the first literal part of the message) of every `raise X(...)`."""
    out = set()
    for rel in SCANNED:
        path = SRC / rel
        if not path.exists():
            continue
        tree = ast.parse(path.read_text(), rel)
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Raise) and node.exc is not None:
                    msg = ""
                    if isinstance(node.exc, ast.Call) and node.exc.args:
                        a = node.exc.args[0]
                        if isinstance(a, ast.Constant) and isinstance(a.value, str):
                            msg = a.value
                        elif isinstance(a, ast.JoinedStr):  # f"...": its first literal part
                            msg = next((v.value for v in a.values if isinstance(v, ast.Constant)), "")
                    out.add((rel, fn.name, msg))
    return out


def _match(site, key) -> bool:
    return site[0] == key[0] and site[1] == key[1] and site[2].startswith(key[2]) and \
        (key[2] or not site[2])


def test_every_raise_site_is_accounted_for():
    sites = raise_sites()
    assert len(sites) > 30
    unknown = [s for s in sites if not any(_match(s, k) for k in RAISES)]
    assert unknown == [], f"classify these raise sites in RAISES: {unknown}"
    stale = [k for k in RAISES if not any(_match(s, k) for s in sites)]
    assert stale == [], f"these RAISES entries match no raise site any more: {stale}"


CLUSTER = {"nodes": ["a"], "links": [{"kind": "ucast", "interface": "eth0", "peers": ["198.18.0.2"]}],
           "auth": {"method": "sha256", "key": "k"}}
FROM_CONFIG = [(k, v) for k, v in RAISES.items() if isinstance(v, tuple)]


@pytest.mark.parametrize("site,case", FROM_CONFIG, ids=[f"{k[0]}:{k[1]}:{k[2][:30]}" for k, _ in FROM_CONFIG])
def test_the_loader_refuses_it_first(site, case):
    virtual, where, fires = case
    col = Collector()
    cfg = build_config({"cluster": CLUSTER, "balancer": {"virtual": [virtual]}}, col)
    assert cfg is None and where in [p.where for p in col.errors], [str(p) for p in col.problems]
    # bypassing the loader, the data plane (or the core) does raise it
    with pytest.raises(Exception) as exc:
        fires()
    assert site[2].strip(": ") in str(exc.value), (site, exc.value)


def test_a_good_service_passes_every_rule():
    col = Collector()
    cfg = build_config({"cluster": CLUSTER, "balancer": {"virtual": [
        vs(reals=[{"address": "198.18.0.11", "method": "gate", "weight": 2}, {"address": "198.18.0.12", "method": "gate"}],
           scheduler="sh", schedflags=["sh-port"], persistent=300, netmask="255.255.255.0")]}}, col)
    assert cfg is not None, [str(p) for p in col.problems]
    render(build_desired(cfg.balancer), ENV)  # and the nft data plane takes it


@pytest.mark.parametrize("dataplane,virtual,where,words", [
    ("proxy", {"fwmark": 5, "reals": [{"address": "198.18.0.11", "method": "masq"}]}, "balancer.virtual.0.fwmark",
     "cannot serve a fwmark service"),
    ("nft", vs(schedflags=["sh-port"]), "balancer.virtual.0.schedflags", "needs scheduler sh"),
    ("auto", vs(reals=[{"address": "198.18.0.11", "lower_threshold": 5}]), "balancer.virtual.0.reals.0.lower_threshold",
     "above upper_threshold"),
    ("proxy", vs(checktype="negotiate", service="http", receive="(unclosed"), "balancer.virtual.0.receive",
     "not a valid regular expression"),
    ("proxy", vs(service="http_proxy", request="/status"), "balancer.virtual.0.request", "absolute URL"),
    ("proxy", vs(reals=[{"address": "198.18.0.11", "method": "ipip"}]), None, None),  # the proxy relays ipip as masq
])
def test_rules_follow_the_chosen_data_plane(dataplane, virtual, where, words):
    col = Collector()
    cfg = build_config({"cluster": CLUSTER, "balancer": {"dataplane": dataplane, "virtual": [virtual]}}, col)
    if where is None:
        assert cfg is not None, [str(p) for p in col.problems]
        return
    assert cfg is None
    assert any(p.where == where and words in p.message for p in col.errors), [str(p) for p in col.errors]


TOML = """\
[cluster]
nodes = ["a"]
[[cluster.links]]
kind = "ucast"
interface = "eth0"
peers = ["198.18.0.2"]
[cluster.auth]
method = "sha256"
key = "k"

[balancer]
[[balancer.virtual]]
address = "198.18.0.100"
port = 80
scheduler = "sh"
schedflags = ["bogus"]
[[balancer.virtual.reals]]
address = "198.18.0.11"
"""


def test_check_refuses_bogus_schedflags_with_the_key_path(tmp_path):
    f = tmp_path / "cluster.toml"
    f.write_text(TOML)
    p = run_cli("check", "-c", str(f), "--node", "a")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "balancer.virtual.0.schedflags: unknown scheduler flag 'bogus'" in p.stderr
    assert "Traceback" not in p.stderr and "configuration OK" not in p.stdout
    f.write_text(TOML.replace('schedflags = ["bogus"]', 'schedflags = ["sh-port"]'))
    p = run_cli("check", "-c", str(f), "--node", "a")
    assert p.returncode == 0 and "configuration OK" in p.stdout, p.stderr


def test_check_refuses_a_fwmark_service_with_gate_reals_at_its_line(tmp_path):
    d = make_ha_dir(tmp_path, haresources="alpha ldirectord\n",
                    ldirectord="checktimeout=3\nvirtual=5\n\treal=198.18.0.11 gate\n\tprotocol=fwm\n")
    p = run_cli("check", "--ha-dir", str(d), "--node", "alpha")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert (f"{d}/ldirectord.cf:3: real 198.18.0.11: direct routing (gate) of a fwmark service is not "
            "possible with the nft data plane") in p.stderr
    assert "Traceback" not in p.stderr
