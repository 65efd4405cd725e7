"""Two directors and corosync-qnetd (the witness) in a third namespace (issue 11, item 7).

Heartbeats run only on the directors' own link (eth1); the client, the directors and the witness
share the LAN. Cutting eth1 is "the link between the directors cut while both reach the witness":
qnetd's ffsplit gives its vote to the side with the lowest node id (dir-a), so exactly one side
keeps quorum. The VIP is made to sit on dir-b first, so the cut shows a takeover decided by the
witness: dir-b (no vote, no quorum) stops it, dir-a (vote) takes it. Judged from the client's
ARP view, sampled every 10 ms (lab/arpwatch.py). Then, the link healed, the witness is stopped:
nothing moves (2 of 3 votes).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from hadirector.lab import qnetd as lab_qnetd
from hadirector.lab.arpwatch import watch
from hadirector.lab.hacluster import HaCluster
from hadirector.lab.presets import director_pair
from hdtest import need_root, wait_until

KEEPALIVE, DEADTIME = 100, 500
WITNESS = "198.18.0.20"
QD_HB = 300  # ms, the qdevice heartbeat (qnetd started with heartbeat_interval_min=100)


def _status(c: HaCluster, node: str) -> dict:
    cp = subprocess.run([sys.executable, "-m", "hadirector", "status", "--json", "--state-dir", c.state_dir(node)],
                        capture_output=True, text=True, timeout=30)
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)


def _witness(c: HaCluster, node: str) -> dict:
    return _status(c, node)["witness"] or {}



def test_cut_link_witness_decides_and_witness_loss_moves_nothing(lab, tmp_path):
    need_root("ip", "nft", lab_qnetd.QNETD, lab_qnetd.QNETD_TOOL)
    pair = director_pair(lab, hb_link=True)
    witness = lab.host("witness")
    witness.connect(pair.lan, f"{WITNESS}/24")
    qnetd = lab_qnetd.QnetdServer(str(tmp_path / "qnetd"), listen=WITNESS, host=witness, port=5403).start()
    c = HaCluster(pair, str(tmp_path), keepalive=KEEPALIVE, deadtime=DEADTIME, auto_failback="off",
                  lan_heartbeat=False,
                  extra_hacf=f"quorum_device qnetd {WITNESS}:5403 algorithm ffsplit tls off heartbeat {QD_HB}ms")
    a, b = c.hosts["dir-a"], c.hosts["dir-b"]
    mac = {"dir-a": a.mac("eth0"), "dir-b": b.mac("eth0")}
    # dir-b alone: its own vote and the witness's (2 of 3) -> it takes the VIP
    c.start("dir-b")
    c.wait_holder("dir-b", timeout=15, stable=0.3)
    assert _witness(c, "dir-b")["vote"] == "ack"
    c.start("dir-a")  # auto_failback off: the VIP stays on dir-b
    wait_until(lambda: _witness(c, "dir-a").get("vote") == "ack" and
               _witness(c, "dir-a").get("members") == [1, 2], 15, 0.1, "dir-a to see dir-b and hold the vote",
               ignore=(AssertionError,))  # its control socket comes up a moment after the start
    time.sleep(2 * DEADTIME / 1000)
    assert c.holders() == ("dir-b",)

    # --- the directors' link cut; both still reach the witness and the client
    sampler = pair.client.worker.submit(watch, "eth0", c.vip, 8.0, 0.01)
    time.sleep(0.5)
    t_cut = time.monotonic()
    b.run(["ip", "link", "set", "eth1", "down"])
    took = c.wait_holder("dir-a", timeout=10, stable=1.0)  # includes the 1 s it must stay
    r = sampler.result(timeout=30)
    samples = r["samples"]
    assert samples and any(t < t_cut for t, _ in samples) and any(t > t_cut + took for t, _ in samples)
    two = [t for t, macs in samples if len(set(macs)) > 1]
    none = [t for t, macs in samples if t > t_cut and not macs]
    after = [set(macs) for t, macs in samples if t > t_cut + took + 0.5]
    assert all(m == {mac["dir-a"]} for m in after if m), after[-5:]
    assert not two, f"two directors answered ARP for the VIP in {len(two)} samples"
    # from the client's side: when dir-a first answered, when dir-b last did
    first_a = min(t for t, macs in samples if t > t_cut and set(macs) == {mac["dir-a"]})
    last_b = max((t for t, macs in samples if mac["dir-b"] in macs), default=t_cut)
    assert last_b < first_a
    gap = first_a - last_b
    wa, wb = _witness(c, "dir-a"), _witness(c, "dir-b")
    assert (wa["vote"], wb["vote"]) == ("ack", "nack"), (wa, wb)
    assert wa["members"] == [1] and wb["members"] == [2]
    assert (_status(c, "dir-b").get("groups") or [{}])[0].get("owner") != "dir-b"
    text = subprocess.run([sys.executable, "-m", "hadirector", "status", "--state-dir", c.state_dir("dir-b")],
                          capture_output=True, text=True, timeout=30).stdout
    assert f"witness connection {WITNESS}:5403: connected" in text and "qnetd says NACK" in text, text
    for n in ("dir-b", "dir-a"):  # where the time went, from the directors' own logs
        lines = [ln for ln in c.log(n).splitlines() if any(w in ln for w in ("witness", "quorum", "group", "dead"))]
        print(f"\n[{n}] " + f"\n[{n}] ".join(lines[-8:]))
    print(f"\nlink cut, witness decides: the client's ARP view has dir-a answering for the VIP "
          f"{(first_a - t_cut) * 1000:.0f} ms after the cut (deadtime {DEADTIME} ms; dir-b last answered "
          f"{(last_b - t_cut) * 1000:.0f} ms after it, so nobody answered for {gap * 1000:.0f} ms); "
          f"two answered in {len(two)} of {len(samples)} samples (0 ms); {len(none)} unanswered samples")

    # --- heal, then stop the witness: nothing moves
    b.run(["ip", "link", "set", "eth1", "up"])
    wait_until(lambda: _witness(c, "dir-b").get("members") == [1, 2] and
               _witness(c, "dir-a").get("members") == [1, 2], 15, 0.1, "the directors to see each other again")
    c.wait_holder("dir-a", timeout=5, stable=1.0)
    sampler = pair.client.worker.submit(watch, "eth0", c.vip, 5.0, 0.01)
    time.sleep(0.3)
    qnetd.stop()
    assert not qnetd.alive()
    wait_until(lambda: _witness(c, "dir-a").get("state") != "connected" and
               _witness(c, "dir-b").get("state") != "connected", 10, 0.1, "both to lose the witness")
    assert _witness(c, "dir-a")["vote"] is None and _witness(c, "dir-b")["vote"] is None
    r = sampler.result(timeout=30)
    assert r["samples"] and all(set(m) == {mac["dir-a"]} for _, m in r["samples"]), \
        [s for s in r["samples"] if set(s[1]) != {mac["dir-a"]}][:5]
    assert c.holders() == ("dir-a",)
    print(f"witness stopped: dir-a kept the VIP in all {len(r['samples'])} ARP samples")
