"""Status like crm_mon (issue 13 item 9): since when each node, link and group is as it is; every
node's connectivity score; the failed actions with their reason and time; and on a backup, `lvs`
says the balancer is not active here and who holds it, and can show the table it would install.

Found in issue 13: no since/last-change times, the peer's score shown as "-", failures never
shown, the backup's `lvs` an empty table without a word why.
"""

from __future__ import annotations

import json
import os
import time

from daemon_util import ctl, pair_cluster
from hdtest import need_root, wait_until

LDIRECTORD_CF = """checktimeout=1
checkinterval=1
virtual=198.18.0.100:80
	real=198.18.0.11:80 gate 3
	real=198.18.0.12:80 gate 1
	scheduler=wrr
	protocol=tcp
	checktype=on
"""

FLAKY = """#!/bin/sh
# fails to start on this node (dir-a), so the group moves to dir-b
case "$1" in
  start) echo "flaky: no disk here" >&2; exit 1 ;;
  stop) exit 0 ;;
  status) echo "flaky is stopped"; exit 3 ;;
esac
"""
STEADY = """#!/bin/sh
case "$1" in
  start) touch "$(dirname "$0")/steady.on"; exit 0 ;;
  stop) rm -f "$(dirname "$0")/steady.on"; exit 0 ;;
  status) if [ -e "$(dirname "$0")/steady.on" ]; then echo running; else echo stopped; fi ;;
esac
"""


def test_status_since_scores_failures_and_the_backups_lvs(lab, tmp_path):
    need_root("nft")
    c = pair_cluster(lab, tmp_path, auto_failback="off", extra_resources="ldirectord flaky",
                     ldirectord_cf=LDIRECTORD_CF)
    for node, script in (("dir-a", FLAKY), ("dir-b", STEADY)):
        d = os.path.join(c.ha_dir(node), "resource.d")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "flaky"), "w") as f:
            f.write(script)
        os.chmod(os.path.join(d, "flaky"), 0o755)
        with open(os.path.join(c.ha_dir(node), "ha.cf"), "a") as f:
            f.write("ping 198.18.0.10\n")  # the client answers: a score of 1 of 1 on both
    t0 = time.time()
    c.start("dir-a")
    c.start("dir-b")
    # dir-a is preferred, fails to start flaky, gives the group up; dir-b takes it
    c.wait_holder("dir-b", timeout=30, stable=0.5)

    def status(node):
        r = ctl(c, node, "status", "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)
    st = wait_until(lambda: (lambda s: s if all(n.get("score") == 1 for n in s["nodes"]) else None)(status("dir-b")),
                    15, 0.2, "both scores at 1")
    peer = next(n for n in st["nodes"] if n["name"] == "dir-a")
    assert peer["score_max"] == 1 and peer["since"] >= t0 - 1 and peer["failed_groups"]
    assert all(l["since"] >= t0 - 1 for l in peer["links"]), peer["links"]
    group = st["groups"][0]
    assert group["owner"] == "dir-b" and group["since"] >= t0 - 1

    text = ctl(c, "dir-b", "status").stdout
    lines = text.splitlines()
    assert lines[1].split()[:4] == ["NODE", "STATUS", "SCORE", "SINCE"], text
    a_row = next(l for l in lines if l.startswith("dir-a"))
    assert " 1/1 " in a_row and " ago)" in a_row and "ucast:eth0 up (" in a_row, text
    assert "failed on dir-a (not a candidate" in text, text
    g_row = next(l for l in lines if l.startswith(group["name"] + " "))
    assert "dir-b" in g_row and " ago)" in g_row, text

    # the failing node lists its failed actions, with the resource, action, time and reason
    text_a = ctl(c, "dir-a", "status").stdout
    failed = [l for l in text_a.splitlines() if l.startswith("* group")]
    assert any("flaky start on dir-a failed" in l and "ago):" in l and "generic or unspecified error" in l
               for l in failed), text_a

    # the backup's lvs: says so on stderr, an empty ipvsadm table on stdout; --would shows the table
    def lvs(node, *args):
        return ctl(c, node, "lvs", "-n", *args)
    r = lvs("dir-a")
    assert r.returncode == 0, r.stderr
    assert "balancer not active on this node (held by dir-b)" in r.stderr, r.stderr
    assert "198.18.0.100" not in r.stdout and "IP Virtual Server" in r.stdout, r.stdout
    r = lvs("dir-a", "--would")
    assert "TCP  198.18.0.100:80 wrr" in r.stdout and "198.18.0.11:80" in r.stdout, r.stdout
    # the holder: its table (the balancer resource starts after the VIP), nothing on stderr
    r = wait_until(lambda: (lambda r: r if "TCP  198.18.0.100:80 wrr" in r.stdout else None)(lvs("dir-b")),
                   15, 0.1, "the holder's table")
    assert r.stderr == "", r.stderr
    js = json.loads(ctl(c, "dir-a", "lvs", "--json").stdout)
    assert js["active"] is False and js["held_by"] == ["dir-b"] and js["services"] == []
