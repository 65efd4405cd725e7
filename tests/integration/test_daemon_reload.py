"""`hadirector reload` (issue 13 item 5): exit 0 when applied, 1 with the reasons when refused; the
command and the log say what changed in words, and a change that needs a restart names its
setting and is not applied.

Found in issue 13: there was no `hadirector reload`, and a reload's log said
`UpdateSummary(added=(), ...)` and "cluster settings changed" without saying which.
"""

from __future__ import annotations

import json

from daemon_util import SOLO_CLUSTER, Solo
from hdtest import wait_until

VIP = "127.0.0.80"


def balanced(weight: int = 3, deadtime: str = "500ms", logfile: str | None = None) -> str:
    cfg = SOLO_CLUSTER.replace('deadtime = "500ms"', f'deadtime = "{deadtime}"')
    if logfile:
        cfg += f'[cluster.logging]\nlogfile = "{logfile}"\n'
    return cfg + f"""
[[groups]]
name = "lb"
preferred_node = "solo"
[[groups.resources]]
kind = "balancer"
[balancer]
dataplane = "proxy"
[[balancer.virtual]]
address = "{VIP}"
port = 8080
checktype = "on"
[[balancer.virtual.reals]]
address = "127.0.0.84"
method = "masq"
weight = {weight}
[[balancer.virtual.reals]]
address = "127.0.0.85"
method = "masq"
"""


def _weights(solo) -> dict[str, int]:
    lv = json.loads(solo.ctl("lvs", "--json").stdout)
    return {r["address"]: r["weight"] for s in lv["services"] for r in s["reals"]}


def test_reload_applies_says_and_refuses(lab, tmp_path):
    solo = Solo(lab, tmp_path, balanced())
    solo.start()
    solo.wait_ready()
    wait_until(lambda: _weights(solo).get("127.0.0.84") == 3, 15, 0.1, lambda: "the balancer\n" + solo.log()[-2000:])

    r = solo.ctl("reload")
    assert (r.returncode, r.stdout.strip()) == (0, "no changes"), r.stdout + r.stderr

    solo.write(balanced(weight=2))
    r = solo.ctl("reload")
    line = f"virtual TCP {VIP}:8080: real 127.0.0.84:8080 weight 3 -> 2"
    assert r.returncode == 0 and r.stdout.strip() == line, r.stdout + r.stderr
    assert _weights(solo)["127.0.0.84"] == 2
    assert f"reload (control): {line}" in solo.log()

    # a cluster setting: named, not applied
    solo.write(balanced(weight=2, deadtime="400ms"))
    r = solo.ctl("reload")
    assert r.returncode == 0, r.stderr
    # (warntime follows deadtime when not set: it is said too)
    assert "not applied, needs a restart: cluster.timing.deadtime: 500ms -> 400ms" in r.stdout.splitlines(), r.stdout
    assert "reload (control): not applied, needs a restart: cluster.timing.deadtime: 500ms -> 400ms" in solo.log()
    st = json.loads(solo.ctl("status", "--json").stdout)
    assert st["phase"] == "running"

    # a broken file: refused with where and why, exit 1, the running configuration stays
    solo.write(balanced(weight=2).replace("weight = 2", "weight = -1"))
    r = solo.ctl("reload")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "balancer.virtual.0.reals.0.weight" in r.stderr and "refused" in r.stderr, r.stderr
    assert _weights(solo)["127.0.0.84"] == 2

    # logging applies at once: a new logfile gets the lines from now on
    logfile = tmp_path / "ha.log"
    solo.write(balanced(weight=2, logfile=str(logfile)))
    r = solo.ctl("reload")
    assert r.returncode == 0 and f"cluster.logging.logfile: none -> {logfile}" in r.stdout, r.stdout
    solo.write(balanced(weight=1, logfile=str(logfile)))
    assert solo.ctl("reload").returncode == 0
    wait_until(lambda: logfile.exists() and "weight 2 -> 1" in logfile.read_text(), 10, 0.05, "the new log file")


def test_reload_without_a_daemon_is_one_clear_line(tmp_path):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "hadirector", "reload", "--state-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "no hadirector daemon is running" in r.stderr
    assert "Traceback" not in r.stderr
