"""The HTTP API and the Prometheus metrics (issue 14 parts 1 and 2), on two real daemons.

Two nodes on loopback (no root needed): alpha and beta with one ucast heartbeat link bound to
127.0.0.1 / 127.0.0.2, a group `lb` holding the balancer (userspace proxy) preferred on alpha,
two real HTTP servers with connect checks. alpha serves the API from its TOML `[api]` table with
a token file; beta from `hadirector run --api 127.0.0.2:0` (the kernel picks the port), without a
token: read-only. Each test talks HTTP to the daemons over real sockets and compares with what
the control socket's commands (`status --json`, `lvs --json`) print.
"""

from __future__ import annotations

import json
import select
import socket
import ssl
import subprocess
import sys
import time

import pytest

from api_util import EventStream, Http, api_address, client_tls, wait_http
from checks_util import make_cert
from daemon_util import Procs, listening as _listening
from hdtest import wait_until

HB_PORT = 16970
VIP, VPORT, RPORT = "127.0.0.170", 18480, 18481
REALS = ["127.0.0.71", "127.0.0.72"]
VIRTUAL = f"TCP {VIP}:{VPORT}"
SOURCES = {"alpha": "127.0.0.1", "beta": "127.0.0.2"}
TOKEN = "t0ken-for-the-api-test"
INTERVAL_MS = 300

CONFIG = """
[cluster]
name = "apitest"
nodes = ["alpha", "beta"]
auto_failback = "off"
[cluster.timing]
keepalive = "100ms"
deadtime = "1s"
initdead = "1s"
[cluster.auth]
key = "api test"
[[cluster.links]]
kind = "ucast"
interface = "lo"
peers = ["127.0.0.1", "127.0.0.2"]
source = "{source}"
port = {hb}
[[groups]]
name = "lb"
preferred_node = "alpha"
[[groups.resources]]
kind = "balancer"
[balancer]
dataplane = "proxy"
checkinterval = "{interval}ms"
checktimeout = "500ms"
[[balancer.virtual]]
address = "{vip}"
port = {vport}
scheduler = "wrr"
checktype = "connect"
{reals}
{api}
"""


def _config(node: str, api: str = "") -> str:
    reals = "".join(f'[[balancer.virtual.reals]]\naddress = "{a}"\nport = {RPORT}\nmethod = "masq"\n'
                    for a in REALS)
    return CONFIG.format(source=SOURCES[node], hb=HB_PORT, interval=INTERVAL_MS, vip=VIP, vport=VPORT,
                         reals=reals, api=api)


def _httpd(p: Procs, addr: str) -> None:
    p.start(f"real-{addr}", [sys.executable, "-m", "hadirector.lab.httpd", "--port", str(RPORT), "--bind", addr,
                             "--identity", addr])


def _ctl(state, *args):
    return subprocess.run([sys.executable, "-m", "hadirector", *args, "--state-dir", state],
                          capture_output=True, text=True, timeout=30)


class Pair:
    def __init__(self, tmp, p: Procs):
        self.tmp, self.p = tmp, p
        self.state = {n: str(tmp / n / "state") for n in SOURCES}
        self.cfg = {}
        self.http: dict[str, Http] = {}
        self.tls = None  # alpha's API speaks TLS: the client's context trusting its certificate

    def log(self, node):
        return self.p.log(node)

    def status(self, node):
        r = _ctl(self.state[node], "status", "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    p = Procs(str(tmp))
    try:
        for addr in REALS:
            _httpd(p, addr)
        for addr in REALS:
            wait_until(lambda a=addr: _listening(a, RPORT), 10, 0.05, f"real {addr}")
        pr = Pair(tmp, p)
        token = tmp / "token"
        token.write_text(TOKEN + "\n")
        token.chmod(0o600)
        for node in SOURCES:
            (tmp / node).mkdir()
            pr.cfg[node] = tmp / node / "cluster.toml"
        key, cert = make_cert(tmp, "alpha.example.test")
        pr.tls = client_tls(cert)
        pr.cfg["alpha"].write_text(_config("alpha", f'[api]\nlisten = "127.0.0.1:0"\ntoken_file = "{token}"\n'
                                                    f'cert_file = "{cert}"\nkey_file = "{key}"\n'
                                                    "max_connections = 16\nmax_body = 2048\n"))
        pr.cfg["beta"].write_text(_config("beta"))
        argv = {"alpha": [], "beta": ["--api", "127.0.0.2:0"]}
        for node, token_ in (("alpha", TOKEN), ("beta", None)):
            # alpha first, holding lb before beta starts (auto_failback off: whoever is alone takes it)
            p.start(node, [sys.executable, "-m", "hadirector", "run", "-c", str(pr.cfg[node]), "--node", node,
                           "--state-dir", pr.state[node], *argv[node]])
            where = wait_until(lambda n=node: api_address(p.log(n)), 20, 0.05,
                               lambda n=node: f"{n}'s API address in its log:\n{p.log(n)[-2000:]}")
            pr.http[node] = Http(*where, token=token_, tls=pr.tls if node == "alpha" else None)
            wait_http(pr.http[node])
            if node == "alpha":
                wait_until(lambda: _listening(VIP, VPORT), 20, 0.05,
                           lambda: "the VIP service on alpha\n" + p.log("alpha")[-2000:])
        # beta is heard, every check ran
        wait_until(lambda: all(n["status"] == "active" for n in pr.status("alpha")["nodes"] if not n.get("local")),
                   15, 0.1, "beta active on alpha")
        wait_until(lambda: all(c["last_result"] == "ok" for c in pr.status("alpha")["checks"].values())
                   and len(pr.status("alpha")["checks"]) == 2, 15, 0.1, "the first checks")
        # each check says how long it took (the dashboard's latency): a connect on loopback, well
        # under its 500 ms checktimeout
        for c in pr.status("alpha")["checks"].values():
            assert isinstance(c["latency_ms"], float) and 0 < c["latency_ms"] < 500, c
        yield pr
    finally:
        p.close()


# --------------------------------------------------------------------------- configuration

def _check(capsys, cfg) -> tuple[int, str]:
    """`hadirector check -c CFG --node alpha`, in this process (the CLI's own main)."""
    from hadirector.cli import main
    capsys.readouterr()
    code = main(["check", "-c", str(cfg), "--node", "alpha"])
    return code, capsys.readouterr().err


def test_api_files_that_cannot_work_are_refused_at_load(tmp_path, capsys):
    token = tmp_path / "token"
    token.write_text("x\n")
    token.chmod(0o644)
    cfg = tmp_path / "c.toml"
    cfg.write_text(_config("alpha", f'[api]\nlisten = "127.0.0.1:0"\ntoken_file = "{token}"\n'))
    code, err = _check(capsys, cfg)
    assert code == 1 and f"api.token_file ({token}): readable by group and others (mode 0644)" in err, err
    # the same rule for `run --api-token-file` with a configuration without [api], before anything starts
    cfg.write_text(_config("alpha"))
    r = subprocess.run([sys.executable, "-m", "hadirector", "run", "-c", str(cfg), "--node", "alpha",
                        "--state-dir", str(tmp_path / "s"), "--api", "127.0.0.1:0", "--api-token-file", str(token)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and f"--api-token-file ({token}): readable by group and others" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "s" / "control.sock").exists()
    token.chmod(0o600)
    token.write_text("\n")
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    key1, cert1 = make_cert(tmp_path / "one")
    key2, cert2 = make_cert(tmp_path / "two")
    for api, says in (('listen = "localhost:80"', "api.listen: expected an IP address before the port in "
                                                   "'localhost:80', got 'localhost'"),
                      (f'listen = "127.0.0.1:80"\ntoken_file = "{token}"',
                       f"api.token_file ({token}): empty: put one token on the first line"),
                      ('listen = "127.0.0.1:80"\ncert_file = "/nonexistent.pem"',
                       "TLS needs both cert_file and key_file"),
                      ('listen = "127.0.0.1:80"\ncert_file = "/nonexistent.pem"\nkey_file = "/nonexistent.key"',
                       "api.cert_file (/nonexistent.pem): no such file"),
                      (f'listen = "127.0.0.1:80"\ncert_file = "{cert1}"\nkey_file = "{key2}"',
                       f"api.cert_file: {cert1} and {key2} do not load as a TLS certificate and its key")):
        cfg.write_text(_config("alpha", f"[api]\n{api}\n"))
        code, err = _check(capsys, cfg)
        assert code == 1 and says in err and "Traceback" not in err, err
    cfg.write_text(_config("alpha", f'[api]\nlisten = "127.0.0.1:80"\ncert_file = "{cert1}"\nkey_file = "{key1}"\n'))
    code, err = _check(capsys, cfg)
    assert code == 0, err


# --------------------------------------------------------------------------- reading

VOLATILE = {"now", "uptime_s", "silent_ms", "links", "packets_ok", "vip_guard", "last_check", "checks",
            "generation", "since", "last_monitor", "dropped"}


def _stable(obj):
    """status without what changes from one moment to the next (counters, clocks)."""
    if isinstance(obj, dict):
        return {k: _stable(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_stable(v) for v in obj]
    return obj


def test_status_is_what_status_json_prints(pair):
    a = pair.http["alpha"]
    r = a.get("/api/v1/status")
    assert r.status == 200 and r.headers["content-type"].startswith("application/json"), r
    api = r.json()
    cli = pair.status("alpha")
    assert set(api) == set(cli)
    assert _stable(api) == _stable(cli)
    assert api["node"] == "alpha" and api["generation"] == cli["generation"]
    assert set(api["checks"]) == set(cli["checks"]) and len(api["checks"]) == 2
    lb = [g for g in api["groups"] if g["name"] == "lb"][0]
    assert lb["holders"] == ["alpha"] and lb["state"] == "held"


def test_lvs_is_what_lvs_json_prints_with_checks(pair):
    api = pair.http["alpha"].get("/api/v1/lvs").json()
    r = _ctl(pair.state["alpha"], "lvs", "--json")
    cli = json.loads(r.stdout)
    assert set(api) == set(cli) and api["active"] is True and api["held_by"] == ["alpha"]
    assert [s["key"] for s in api["services"]] == [VIRTUAL] == [s["key"] for s in cli["services"]]
    reals = {r["address"]: r for r in api["services"][0]["reals"]}
    assert set(reals) == set(REALS)
    for addr, real in reals.items():
        assert real["check"]["state"] == "up" and real["check"]["address"] == addr, real
    # beta: the table it would install, over its read-only API without a token
    b = pair.http["beta"].get("/api/v1/lvs?would=1").json()
    assert b["active"] is False and b["would"] is True and b["held_by"] == ["alpha"]
    assert {r["address"] for r in b["services"][0]["reals"]} == set(REALS)
    # with the flow table: what `lvs -c --json` prints (on a backup, the entries synced to it;
    # test_failover_flows.py checks those through the same render/lvs.py connections_json)
    api_c = pair.http["alpha"].get("/api/v1/lvs?connections=1").json()["connections"]
    cli_c = json.loads(_ctl(pair.state["alpha"], "lvs", "-c", "--json").stdout)
    assert set(api_c) == set(cli_c) == {"active", "held_by", "synced", "synced_from", "connections"}, api_c
    assert api_c["active"] is True and api_c["synced"] is False and isinstance(api_c["connections"], list)
    r = pair.http["alpha"].get("/api/v1/lvs?connections=maybe")
    assert r.status == 400 and r.json()["error"] == "connections: expected 1 or 0, got 'maybe'", r


def test_the_token_rules(pair):
    a, b = pair.http["alpha"], pair.http["beta"]
    # alpha has a token: every request needs it, except the page and /api/v1/auth
    for path in ("/api/v1/status", "/api/v1/lvs", "/metrics", "/api/v1/events"):
        r = a.get(path, token=None)
        assert r.status == 401 and "token" in r.json()["error"], (path, r)
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = a.get(path, token="wrong", timeout=3) if path != "/api/v1/events" else a.get(path, token="wrong")
        assert r.status == 401 and r.json()["error"] == "bad token", (path, r)
    assert a.post("/api/v1/standby", {}, token=None).status == 401
    assert a.get("/api/v1/auth", token=None).json() == {"token_required": True, "authorized": False}
    assert a.get("/api/v1/auth", token="wrong").json() == {"token_required": True, "authorized": False}
    assert a.get("/api/v1/auth").json() == {"token_required": True, "authorized": True}
    assert a.get(f"/api/v1/auth?token={TOKEN}", token=None).json()["authorized"] is True  # EventSource's way
    # beta has none: reading is open, every change refused with a reason
    assert b.get("/api/v1/auth").json() == {"token_required": False, "authorized": False}
    assert b.get("/api/v1/status").status == 200
    for path in ("/api/v1/standby", "/api/v1/takeover", "/api/v1/reload",
                 f"/api/v1/reals/{VIRTUAL}/{REALS[0]}:{RPORT}/drain".replace(" ", "%20")):
        r = b.post(path, {})
        assert r.status == 403 and "token" in r.json()["error"] and "token_file" in r.json()["error"], (path, r)
    assert pair.status("beta")["maintenance"] == []
    assert b.post("/api/v1/nothing", {}).status == 404  # no such path, whoever asks


def test_error_codes(pair):
    a = pair.http["alpha"]
    r = a.post("/api/v1/standby", "{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400 and "not JSON" in r.json()["error"], r
    r = a.post("/api/v1/standby", {"which": "everything"})
    assert r.status == 400 and r.json()["error"].startswith("which: expected all, foreign, local or failback"), r
    r = a.post("/api/v1/standby", {"wait": 1e9})
    assert r.status == 400 and r.json()["error"].startswith("wait: expected seconds"), r
    r = a.post("/api/v1/reload", {"force": True})
    assert r.status == 400 and "unknown argument 'force'" in r.json()["error"], r
    r = a.get("/api/v1/lvs?would=maybe")
    assert r.status == 400 and r.json()["error"].startswith("would:"), r
    r = a.post(f"/api/v1/reals/tcp:{VIP}:9/{REALS[0]}/drain")
    assert r.status == 404 and "no virtual service" in r.json()["error"], r
    r = a.post(f"/api/v1/reals/tcp:{VIP}:{VPORT}/127.0.0.99/drain")
    assert r.status == 404 and "has no real server '127.0.0.99'" in r.json()["error"], r
    r = a.post(f"/api/v1/reals/tcp:{VIP}:{VPORT}/{REALS[0]}/explode")
    assert r.status == 404 and "no such action 'explode'" in r.json()["error"], r
    r = a.get("/api/v1/nothing")
    assert r.status == 404 and r.json()["error"] == "no such path: /api/v1/nothing", r
    r = a.request("PUT", "/api/v1/standby")
    assert r.status == 405 and r.json()["allowed"] == ["POST"] and r.headers["allow"] == "POST", r
    r = a.get("/api/v1/standby")
    assert r.status == 405, r
    # the body limit (max_body = 2048): refused before it is read
    r = a.post("/api/v1/standby", {"which": "all", "pad": "x" * 5000})
    assert r.status == 413 and "too large" in r.json()["error"], r
    # a standby of the groups alpha holds for others (none: lb prefers alpha) cannot be carried
    # out: 409 with the core's words
    r = a.post("/api/v1/standby", {"which": "foreign"})
    assert r.status == 409 and r.json()["done"] is False, r
    assert r.json()["error"] == "standby foreign: no selected group is held here", r
    # a takeover of what it already runs is done (200), saying so
    r = a.post("/api/v1/takeover", {})
    assert r.status == 200 and r.json()["messages"] == ["takeover all: every selected group already runs here"], r
    # the page, from the package, with a policy that lets it load only its own files
    r = a.get("/", token=None)
    assert r.status == 200 and r.headers["content-type"].startswith("text/html"), r
    assert b"dashboard.js" in r.body and "default-src 'self'" in r.headers["content-security-policy"], r
    r = a.get("/static/dashboard.js", token=None)
    assert r.status == 200 and "javascript" in r.headers["content-type"], r
    r = a.get("/static/nothing-here.css", token=None)
    assert r.status == 404 and "no dashboard file 'nothing-here.css'" in r.json()["error"], r
    r = a.get("/static/../../etc/passwd", token=None)
    assert r.status == 404, r


# --------------------------------------------------------------------------- changes and events

def test_drain_and_enable_a_real_stream_the_events(pair):
    a = pair.http["alpha"]
    ev = EventStream(a.host, a.port, TOKEN, tls=pair.tls)
    try:
        wait_until(lambda: ev.status is not None, 5, 0.05, "the stream's headers")
        assert ev.status == 200 and ev.content_type.startswith("text/event-stream")
        # the recent events come first: alpha started, settled and took lb before we connected
        wait_until(lambda: ev.find(lambda k, e: k == "cluster" and e.get("group") == "lb"
                                   and e["event"] == "owner-changed"), 5, 0.05,
                   lambda: f"lb's owner change in the backlog: {ev.events}")
        real = f"{REALS[0]}:{RPORT}"
        path = f"/api/v1/reals/{VIRTUAL.replace(' ', '%20')}/{real}/drain"
        r = a.post(path)
        assert r.status == 200 and r.json()["state"] == "drain", r
        assert "maintenance drain" in r.json()["message"] and "by api 127.0.0.1@alpha" in r.json()["message"]
        got = wait_until(lambda: ev.find(lambda k, e: k == "maintenance" and e.get("real") == real), 5, 0.05,
                         lambda: f"the drain on the stream: {ev.events}")
        assert got["virtual"] == VIRTUAL and got["text"].startswith(f"real {real} of {VIRTUAL}: maintenance drain")
        assert isinstance(got["time"], float) and abs(got["time"] - time.time()) < 30
        lvs = a.get("/api/v1/lvs").json()
        weights = {r["address"]: r["weight"] for r in lvs["services"][0]["reals"]}
        assert weights[REALS[0]] == 0, weights  # drained: weight 0, kept in the table
        assert any(m["real"] == real and m["state"] == "drain" for m in pair.status("beta")["maintenance"])
        r = a.post(f"/api/v1/reals/tcp:{VIP}:{VPORT}/{REALS[0]}/enable")
        assert r.status == 200 and r.json()["state"] == "enabled", r
        wait_until(lambda: ev.find(lambda k, e: k == "maintenance" and "maintenance ended" in e["text"]), 5, 0.05,
                   lambda: f"the enable on the stream: {ev.events}")
        assert ev.error is None
    finally:
        ev.close()


def test_a_real_going_down_is_streamed_counted_and_shown(pair):
    a = pair.http["alpha"]
    ev = EventStream(a.host, a.port, TOKEN, tls=pair.tls)
    try:
        wait_until(lambda: ev.status == 200, 5, 0.05, "the stream")
        pair.p.stop(f"real-{REALS[1]}")  # the fault: the real server is gone
        assert not _listening(REALS[1], RPORT)
        got = wait_until(lambda: ev.find(lambda k, e: k == "check" and e["event"] == "real-down"), 10, 0.05,
                         lambda: f"real-down on the stream: {ev.events}")
        assert got["virtual"] == VIRTUAL and got["real"] == f"{REALS[1]}:{RPORT}" and got["level"] == "warning"
        assert got["text"].startswith(f"real {VIRTUAL}") or REALS[1] in got["text"], got
        fams = _metrics(a)
        assert _value(fams, "hadirector_real_up", virtual=VIRTUAL, real=f"{REALS[1]}:{RPORT}") == 0.0
        assert _value(fams, "hadirector_check_failures_total", virtual=VIRTUAL, real=f"{REALS[1]}:{RPORT}") >= 1
    finally:
        ev.close()
        _httpd(pair.p, REALS[1])
        wait_until(lambda: _listening(REALS[1], RPORT), 10, 0.05, "the real back")
    wait_until(lambda: all(c["state"] == "up" for c in pair.status("alpha")["checks"].values()), 10, 0.1,
               "the real up again")


def test_standby_and_takeover_over_http_reach_the_other_nodes_stream(pair):
    a, b = pair.http["alpha"], pair.http["beta"]
    ev = EventStream(b.host, b.port)  # beta's stream: no token there
    try:
        wait_until(lambda: ev.status == 200, 5, 0.05, "beta's stream")
        first = len(ev.events)
        r = a.post("/api/v1/standby", {"wait": 10})
        assert r.status == 200 and r.json()["done"] is True, r
        assert "group lb: now held by beta" in r.json()["messages"], r.json()
        got = wait_until(lambda: ev.find(lambda k, e: e["event"] == "owner-changed" and e.get("group") == "lb"
                                         and "-> beta" in e["text"] and e["id"] > first), 10, 0.05,
                         lambda: f"lb moving to beta on beta's stream: {ev.events}")
        assert got["kind"] == "cluster" and got["director"] == "beta"
        assert got["text"].startswith("group lb: owner alpha -> beta"), got
        fams = _metrics(b)
        assert _value(fams, "hadirector_group_held", group="lb") == 1.0
        assert _value(fams, "hadirector_failovers_total", group="lb") >= 1
        assert _value(_metrics(a), "hadirector_group_held", group="lb") == 0.0
        r = a.post("/api/v1/takeover", {"wait": 10})
        assert r.status == 200 and "group lb: now running here" in r.json()["messages"], r.json()
        wait_until(lambda: ev.find(lambda k, e: e["event"] == "owner-changed" and "beta -> alpha" in e["text"]),
                   10, 0.05, lambda: f"lb back to alpha on beta's stream: {ev.events}")
        wait_until(lambda: _listening(VIP, VPORT), 10, 0.05, "the VIP service back on alpha")
    finally:
        ev.close()


def test_reload_over_http(pair):
    a = pair.http["alpha"]
    cfg = pair.cfg["alpha"]
    good = cfg.read_text()
    try:
        cfg.write_text(good.replace(f'checkinterval = "{INTERVAL_MS}ms"', 'checkinterval = "400ms"'))
        r = a.post("/api/v1/reload")
        assert r.status == 200 and r.json()["applied"] is True and r.json()["errors"] == [], r
        assert r.json()["changes"] == [f"balancer: checkinterval {INTERVAL_MS}ms -> 400ms"], r.json()
        cfg.write_text(good.replace("[[balancer.virtual]]", "[[balancer.virtual]]\nschedulr = 'rr'"))
        r = a.post("/api/v1/reload")
        assert r.status == 409 and r.json()["applied"] is False, r
        assert r.json()["error"].startswith("reload refused, the running configuration stays: ")
        assert "schedulr: unknown key" in r.json()["error"], r
    finally:
        cfg.write_text(good)
    r = a.post("/api/v1/reload")
    assert r.status == 200 and r.json()["changes"] == [f"balancer: checkinterval 400ms -> {INTERVAL_MS}ms"], r


# --------------------------------------------------------------------------- metrics

def _metrics(client: Http) -> dict:
    from prometheus_client.parser import text_string_to_metric_families
    r = client.get("/metrics")
    assert r.status == 200 and r.headers["content-type"].startswith("text/plain"), r
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def _value(fams: dict, sample: str, **labels) -> float:
    for f in fams.values():
        for s in f.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise AssertionError(f"no sample {sample}{labels} in {sorted(fams)}")


def test_metrics_agree_with_status_and_lvs(pair):
    a = pair.http["alpha"]
    wait_until(lambda: all(c["state"] == "up" for c in pair.status("alpha")["checks"].values()), 10, 0.1,
               "every real up")
    fams = _metrics(a)
    st = pair.status("alpha")
    types = {name: f.type for name, f in fams.items()}
    assert types["hadirector_peer_up"] == "gauge" and types["hadirector_failovers"] == "counter"
    assert types["hadirector_check_duration_seconds"] == "histogram", types
    assert "hadirector_quorum" not in types  # two plain nodes: quorum decides nothing (test_metrics_quorum.py)
    beta = [n for n in st["nodes"] if n["name"] == "beta"][0]
    assert _value(fams, "hadirector_peer_up", node="beta") == (1.0 if beta["status"] == "active" else 0.0) == 1.0
    for link in beta["links"]:
        assert _value(fams, "hadirector_link_up", node="beta", link=link["name"]) == float(link["status"] == "up")
    lb = [g for g in st["groups"] if g["name"] == "lb"][0]
    assert _value(fams, "hadirector_group_held", group="lb") == float("alpha" in lb["holders"]) == 1.0
    assert _value(fams, "hadirector_failovers_total", group="lb") >= 2  # the standby and the takeover
    lvs = a.get("/api/v1/lvs").json()
    for real in lvs["services"][0]["reals"]:
        name = f"{real['address']}:{real['port']}"
        assert _value(fams, "hadirector_real_weight", virtual=VIRTUAL, real=name) == real["weight"]
        assert _value(fams, "hadirector_real_up", virtual=VIRTUAL, real=name) == float(real["check"]["state"] == "up")
        count = _value(fams, "hadirector_check_duration_seconds_count", virtual=VIRTUAL, real=name)
        assert count >= 1 and _value(fams, "hadirector_check_duration_seconds_sum", virtual=VIRTUAL, real=name) > 0
        assert _value(fams, "hadirector_check_duration_seconds_bucket", virtual=VIRTUAL, real=name, le="+Inf") == count
    # traffic through the VIP shows in the real's counters
    before = sum(_value(fams, "hadirector_real_connections_total", virtual=VIRTUAL, real=f"{r}:{RPORT}")
                 for r in REALS)
    for _ in range(4):
        with socket.create_connection((VIP, VPORT), timeout=3) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert s.makefile("rb").read()
    fams = wait_until(lambda: (f := _metrics(a)) and sum(
        _value(f, "hadirector_real_connections_total", virtual=VIRTUAL, real=f"{r}:{RPORT}") for r in REALS)
        >= before + 4 and f, 5, 0.1, "the connections counted")
    assert sum(_value(fams, "hadirector_real_bytes_total", virtual=VIRTUAL, real=f"{r}:{RPORT}", direction="out")
               for r in REALS) > 0
    dropped = st["dropped"]
    for reason, n in dropped.items():
        assert _value(fams, "hadirector_heartbeat_dropped_total", reason=reason) >= n


# --------------------------------------------------------------------------- bounds

def test_many_connections_do_not_stall_the_cluster(pair):
    a = pair.http["alpha"]
    peers_before = pair.status("beta")["nodes"]
    socks = []
    try:
        for _ in range(40):  # max_connections = 16 on alpha: the rest are answered 503 and closed
            s = pair.tls.wrap_socket(socket.create_connection((a.host, a.port), timeout=3))
            s.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n")  # never finished: a slow client
            s.setblocking(False)  # TLS 1.3 session tickets make it readable with no data for us
            socks.append(s)
        refused = set()
        deadline = time.monotonic() + 3
        while len(refused) < 24 and time.monotonic() < deadline:
            ready, _, _ = select.select([s for s in socks if s not in refused], [], [], 0.2)
            for s in ready:
                try:
                    head = s.recv(200)
                except ssl.SSLWantReadError:
                    continue
                if head.startswith(b"HTTP/1.1 503"):
                    refused.add(s)
        assert len(refused) == 24, len(refused)  # exactly the ones over the limit
        assert not refused & set(socks[:16])
        # while they hang, heartbeats flow: beta still sees alpha active, and nothing was declared dead
        time.sleep(1.5)  # more than deadtime (1 s)
        alpha_on_beta = [n for n in pair.status("beta")["nodes"] if n["name"] == "alpha"][0]
        assert alpha_on_beta["status"] == "active", alpha_on_beta
        assert "alpha: active -> dead" not in pair.log("beta")
    finally:
        for s in socks:
            s.close()
    # the slots come back: the API answers again
    wait_until(lambda: a.get("/api/v1/status", timeout=2).status == 200, 10, 0.1, "the API after the flood")
    assert peers_before


def test_a_quiet_stream_gets_a_keep_alive_every_15_s(pair):
    b = pair.http["beta"]
    ev = EventStream(b.host, b.port)
    try:
        t0 = time.monotonic()
        wait_until(lambda: "hadirector events" in ev.comments, 5, 0.05, "the stream's opening comment")
        # 15 s after the last thing sent (an event on beta meanwhile would push it back)
        wait_until(lambda: "keep-alive" in ev.comments, 35, 0.1, lambda: f"a keep-alive: {ev.comments}")
        took = time.monotonic() - t0
        assert took >= 14, took
        assert ev.error is None and ev.status == 200
    finally:
        ev.close()
