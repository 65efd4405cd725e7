"""Issue 11 item 3: fencing before takeover, in network namespaces, judged from the client's ARP
view (lab/arpwatch.py: who answers "who has the VIP" every 10 ms).

Two directors and a client (lab/presets.py director_pair, heartbeat on the LAN and on eth1);
their ha.d is converted to native TOML (`hadirector convert`) and given a [cluster.fencing]
block, as an operator moving to fence-agents would do. The holder dir-a is frozen (SIGSTOP): its
heartbeats stop, and so does its VIP lease.

* with the lab fence agent (lab/fence_agent.py, the fence-agents stdin protocol), dir-b fences
  dir-a (the agent kills its daemon by pid file and sets its links down) and only then takes
  the VIP; the takeover time is printed;
* with fence-agents' own fence_dummy told to fail (`type=fail`, the real package's agent), the
  fence fails, is retried, and the VIP is never taken: dir-b's MAC never answers, status and log
  say why; when dir-a resumes it keeps the VIP.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import hadirector.lab.fence_agent as lab_agent
from hadirector.lab.arpwatch import watch
from hadirector.lab.hacluster import HaCluster
from hadirector.lab.presets import director_pair
from hdtest import need, need_root, wait_until

KEEPALIVE, DEADTIME, DELAY = 100, 500, 1000


def _fencing_toml(c: HaCluster, device: str) -> str:
    return f"""
[cluster.fencing]
delay = "{DELAY}ms"
[[cluster.fencing.devices]]
{device}
"""


def _lab_device(c: HaCluster) -> str:
    # one device that can fence either node; the plug is the node, the rest its "power switch"
    lines = [f'agent = "{lab_agent.__file__}"', 'name = "lab-power"', 'action = "off"', 'timeout = "10s"',
             "[cluster.fencing.devices.params]"]
    return "\n".join(lines)


def _write(c: HaCluster, name: str, device: str, params: dict[str, str]) -> str:
    toml = c.hosts[name].run([sys.executable, "-m", "hadirector", "convert", "--ha-dir", c.ha_dir(name),
                              "--node", name], check=True).stdout
    cfg = os.path.join(c.workdir, name, "cluster.toml")
    with open(cfg, "w") as f:
        f.write(toml + _fencing_toml(c, device) + "".join(f'{k} = "{v}"\n' for k, v in params.items()))
    chk = subprocess.run([sys.executable, "-m", "hadirector", "check", "-c", cfg, "--node", name],
                         capture_output=True, text=True, timeout=60)
    assert chk.returncode == 0, chk.stdout + chk.stderr
    assert "fencing: before taking over" in chk.stdout, chk.stdout
    return cfg


def _start(c: HaCluster, cfgs: dict[str, str]) -> None:
    """Both at once: a node that starts alone fences the other after initdead (Pacemaker's
    startup-fencing), which here would power the late one off."""
    for name, cfg in cfgs.items():
        c.procs[name] = c.hosts[name].spawn([sys.executable, "-m", "hadirector", "run", "-c", cfg, "--node", name,
                                             "--state-dir", c.state_dir(name)], name="hadirector")


def _pid(c: HaCluster, name: str) -> int:
    with open(os.path.join(c.state_dir(name), "hadirector.pid")) as f:
        return int(f.read().split()[0])


def _status(c: HaCluster, name: str) -> dict:
    p = subprocess.run([sys.executable, "-m", "hadirector", "status", "--json", "--state-dir", c.state_dir(name)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def _arp(c: HaCluster, seconds: float):
    """Start sampling who answers ARP for the VIP from the client; returns a future of samples."""
    return c.pair.client.worker.submit(watch, "eth0", c.vip, seconds, 0.01)


def _answerers(samples, t0: float = 0.0) -> list[tuple[float, tuple[str, ...]]]:
    return [(t, tuple(sorted(m))) for t, m in samples if t >= t0]


@pytest.fixture
def cluster(lab, tmp_path):
    need_root("ip", "nft")
    pair = director_pair(lab, hb_link=True)
    c = HaCluster(pair, str(tmp_path), keepalive=KEEPALIVE, deadtime=DEADTIME, auto_failback="off")
    yield c
    for name in c.hosts:  # a frozen daemon must be able to stop
        try:
            os.kill(_pid(c, name), signal.SIGCONT)
        except (OSError, ValueError):
            pass


def test_frozen_holder_is_fenced_then_taken_over(cluster):
    c = cluster
    cfgs = {}
    for name in ("dir-a", "dir-b"):
        other = "dir-b" if name == "dir-a" else "dir-a"
        cfgs[name] = _write(c, name, _lab_device(c), {"pidfile": os.path.join(c.state_dir(other), "hadirector.pid"),
                                                      "netns": c.hosts[other].netns})
    _start(c, cfgs)
    c.wait_holder("dir-a", timeout=15, stable=0.5)
    mac_a, mac_b = c.hosts["dir-a"].mac("eth0"), c.hosts["dir-b"].mac("eth0")
    pid_a = _pid(c, "dir-a")
    arp = _arp(c, 6.0)
    time.sleep(0.5)
    t_freeze = time.monotonic()
    os.kill(pid_a, signal.SIGSTOP)  # hung: no heartbeats, no lease renewals
    # the fault took effect: dir-b declares it dead
    wait_until(lambda: "dir-a: active -> dead" in c.log("dir-b"), 5, 0.02, lambda: c.log("dir-b")[-2000:])
    samples = arp.result(timeout=20)["samples"]
    seen = _answerers(samples)
    assert seen, "the ARP sampler recorded nothing"
    before = [m for t, m in seen if t < t_freeze]
    assert before and all(m == (mac_a,) for m in before[-10:]), before[-10:]
    assert not [m for t, m in seen if len(m) > 1], "two MACs answered one request"
    first_b = next((t for t, m in seen if m == (mac_b,)), None)
    assert first_b is not None, f"dir-b never answered: {c.log('dir-b')[-3000:]}"
    takeover = first_b - t_freeze
    print(f"\ntakeover with fencing (deadtime {DEADTIME} ms, fencing delay {DELAY} ms): {takeover * 1000:.0f} ms "
          f"from SIGSTOP to dir-b's first ARP answer")
    log_b = c.log("dir-b")
    assert "node dir-a: fencing it (attempt 1)" in log_b and f"after the fencing delay of {DELAY} ms" in log_b, log_b
    assert "node dir-a: fenced by lab-power" in log_b, log_b
    # fenced means powered off: the daemon is gone (SIGKILL reaches a stopped process), links down
    wait_until(lambda: not c.procs["dir-a"].alive(), 5, 0.05, "dir-a's daemon killed by the fence")
    assert all("UP" not in l.get("flags", []) for l in c.hosts["dir-a"].links() if l["ifname"] != "lo")
    # the order: fence done, then acquire
    assert "acquiring on dir-b" in log_b and \
        log_b.index("fenced by lab-power") < log_b.index("acquiring on dir-b"), log_b
    assert takeover >= (DEADTIME + DELAY) / 1000, takeover  # the delay was really waited
    st = _status(c, "dir-b")
    (h,) = [h for h in st["fencing"]["history"] if h["target"] == "dir-a"]
    assert h["ok"] and h["device"] == "lab-power" and h["time"] > 0, st["fencing"]
    assert st["fencing"]["peers"]["dir-a"]["state"] == "fenced"
    text = subprocess.run([sys.executable, "-m", "hadirector", "status", "--state-dir", c.state_dir("dir-b")],
                          capture_output=True, text=True, timeout=30).stdout
    assert "Fencing:" in text and "dir-a" in text and "lab-power" in text, text


def test_a_failing_fence_blocks_the_takeover(cluster):
    need("/usr/sbin/fence_dummy")
    c = cluster
    device = 'agent = "fence_dummy"\nname = "dummy-fail"\naction = "off"\n[cluster.fencing.devices.params]'
    _start(c, {name: _write(c, name, device, {"type": "fail", "power_timeout": "1"}) for name in ("dir-a", "dir-b")})
    c.wait_holder("dir-a", timeout=15, stable=0.5)
    mac_b = c.hosts["dir-b"].mac("eth0")
    pid_a = _pid(c, "dir-a")
    arp = _arp(c, 7.0)
    time.sleep(0.3)
    t_freeze = time.monotonic()
    os.kill(pid_a, signal.SIGSTOP)
    wait_until(lambda: "dir-a: active -> dead" in c.log("dir-b"), 5, 0.02, lambda: c.log("dir-b")[-2000:])
    wait_until(lambda: c.log("dir-b").count("FENCING FAILED") >= 2, 15, 0.1,
               lambda: f"two failed fences: {c.log('dir-b')[-3000:]}")
    seen = _answerers(arp.result(timeout=20)["samples"], t_freeze)
    assert seen and not [m for t, m in seen if mac_b in m], "dir-b answered for the VIP without a fence"
    assert not [m for t, m in seen if len(m) > 1]
    assert c.holders() == ("dir-a",)  # dir-a's address stays; dir-b never added it
    st = _status(c, "dir-b")
    peer = st["fencing"]["peers"]["dir-a"]
    assert peer["state"] in ("failed", "running") and peer["failed_attempts"] >= 2, st["fencing"]
    assert [h["ok"] for h in st["fencing"]["history"]][:2] == [False, False]
    assert "exit 1" in st["fencing"]["history"][0]["detail"], st["fencing"]["history"][0]
    text = subprocess.run([sys.executable, "-m", "hadirector", "status", "--state-dir", c.state_dir("dir-b")],
                          capture_output=True, text=True, timeout=30).stdout
    assert "takeover waits for fencing of dir-a (failed" in text and "FAILED" in text, text
    assert "its groups are not taken over; next attempt in" in c.log("dir-b")
    # dir-a resumes: heard again, no fence needed; it still holds the VIP
    os.kill(pid_a, signal.SIGCONT)
    wait_until(lambda: _status(c, "dir-b")["fencing"]["peers"]["dir-a"]["state"] == "ok", 10, 0.1,
               "dir-b hears dir-a again")
    c.wait_holder("dir-a", timeout=10, stable=1.0)


def test_hacf_stonith_host_through_cluster_glue(cluster):
    """heartbeat's own lines: `stonith_host * null dir-a dir-b` in ha.cf runs cluster-glue's
    `stonith -t null -p "dir-a dir-b" -T reset dir-a` (the null device resets nothing but says it
    did); dir-b takes over only after it returned 0."""
    need("/usr/sbin/stonith")
    c = cluster
    for name in c.hosts:
        with open(os.path.join(c.ha_dir(name), "ha.cf"), "a") as f:
            f.write("stonith_host * null dir-a dir-b\n")
    chk = subprocess.run([sys.executable, "-m", "hadirector", "check", "--ha-dir", c.ha_dir("dir-b"), "--node", "dir-b"],
                         capture_output=True, text=True, timeout=60)
    assert chk.returncode == 0 and "dir-b fences dir-a with stonith null" in chk.stdout, chk.stdout + chk.stderr
    assert "not yet acted on" not in chk.stderr, chk.stderr  # acted on: no warning for the line
    c.start("dir-a")
    c.start("dir-b")
    c.wait_holder("dir-a", timeout=15, stable=0.5)
    pid_a = _pid(c, "dir-a")
    mac_a, mac_b = c.hosts["dir-a"].mac("eth0"), c.hosts["dir-b"].mac("eth0")
    arp = _arp(c, 8.0)
    time.sleep(0.3)
    t_freeze = time.monotonic()
    os.kill(pid_a, signal.SIGSTOP)
    # dir-a keeps the address on its frozen interface (its lease makes its kernel silent): judge
    # by who answers ARP
    wait_until(lambda: c.hosts["dir-b"].has_address(c.vip), 15, 0.02, lambda: c.log("dir-b")[-3000:])
    seen = _answerers(arp.result(timeout=20)["samples"], t_freeze)
    first_b = next((t for t, m in seen if m == (mac_b,)), None)
    assert first_b is not None and not [m for _, m in seen if len(m) > 1], seen[-20:]
    took = first_b - t_freeze
    log_b = c.log("dir-b")
    assert "node dir-a: fenced by stonith null" in log_b, log_b
    assert log_b.index("fenced by stonith null") < log_b.index("acquiring on dir-b"), log_b
    # the default delay (5 s) applies: dir-a held the group when last heard
    assert took >= 5.0, took
    print(f"\ntakeover with ha.cf stonith_host (cluster-glue null device, default delay 5 s): {took * 1000:.0f} ms "
          "from SIGSTOP to dir-b's first ARP answer")
    os.kill(pid_a, signal.SIGCONT)  # the null device left it running: it wakes up, yields
    waited = c.wait_holder("dir-b", timeout=30, stable=1.0)
    print(f"dir-a resumed and gave the VIP up within {waited - 1.0:.1f} s")
    assert mac_a  # (dir-a's MAC: never seen with dir-b's above)
