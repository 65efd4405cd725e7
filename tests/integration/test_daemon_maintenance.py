"""Maintenance and alerts once (issue 13 items 6 and 7), the whole stack in namespaces: two
directors with `haresources: dir-a VIP ldirectord`, the balancer in the kernel (nftables, direct
routing), two real HTTP servers, and a real SMTP server (aiosmtpd) for ldirectord's emailalert.

- a real going down is mailed once, by the node holding the balancer, not by both (they both
  check it); a takeover after the holder loses power re-sends nothing already mailed, and the new
  holder mails what changes next; the fallbackcommand runs on the holder only;
- `hadirector real drain|disable|enable` on the holder: drain keeps the real at weight 0, disable
  takes it out, both are shown as maintenance in `lvs --checks` and `status`; a real in
  maintenance that fails is not mailed; the marks reach a node that was down when they were set,
  so after a failover the new holder's table has them too; they survive `reload`; enabling a real
  that is down mails it down then.

Found in issue 13: alerts were sent twice (checks run on every node and every node mailed).
"""

from __future__ import annotations

import collections
import email
import email.policy
import json
import mailbox
import os
import sys
import time

from daemon_util import ctl, pair_cluster
from hdtest import need_root, wait_until

VIP = "198.18.0.100"
REALS = {"real1": "198.18.0.11", "real2": "198.18.0.12"}


def ldirectord_cf(tmp_path) -> str:
    return f"""checktimeout=1
checkinterval=1
quiescent=no
emailalert="ops@example.test"
emailalertfrom=hadirector@example.test
smtp=198.18.0.10
fallbackcommand="{tmp_path}/fallback.sh"

virtual={VIP}:80
	real=198.18.0.11:80 gate 3
	real=198.18.0.12:80 gate 1
	scheduler=wrr
	protocol=tcp
	checktype=connect
"""


class Mail:
    def __init__(self, path):
        self.box = mailbox.Maildir(str(path), create=True)

    def subjects(self) -> list[str]:
        out = []
        for key in list(self.box.keys()):
            raw = self.box.get_bytes(key)
            out.append(str(email.message_from_bytes(raw, policy=email.policy.default)["Subject"]))
        return sorted(out)

    def count(self, needle: str) -> int:
        return sum(needle in s for s in self.subjects())


def _lvs(c, node):
    r = ctl(c, node, "lvs", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _table(c, node) -> dict[str, int]:
    return {r["address"]: r["weight"] for s in _lvs(c, node)["services"] for r in s["reals"]}


def _spread(c, n: int) -> collections.Counter:
    got = collections.Counter()
    for _ in range(n):
        try:
            got[c.client_get(timeout=1.0).strip()] += 1
        except Exception:  # noqa: BLE001
            got["failed"] += 1
    return got


def test_alerts_once_and_maintenance_across_failover(lab, tmp_path):
    need_root("nft")
    fallback_log = tmp_path / "fallback.log"
    script = tmp_path / "fallback.sh"
    script.write_text(f"#!/bin/sh\necho \"$(ip netns identify) $*\" >> {fallback_log}\n")
    script.chmod(0o755)
    from hadirector.lab.presets import director_pair  # noqa: F401 - pair_cluster builds it
    c = pair_cluster(lab, tmp_path, auto_failback="off", extra_resources="ldirectord",
                     ldirectord_cf=ldirectord_cf(tmp_path))
    pair = c.pair
    servers = {}
    for name, addr in REALS.items():
        r = lab.host(name)
        r.connect(pair.lan, f"{addr}/24")
        r.run([sys.executable, "-m", "hadirector", "realserver", "--vip", VIP, "up"])
        servers[name] = (r, r.http_server(port=80, identity=name))
    maildir = tmp_path / "maildir"
    pair.client.spawn([sys.executable, "-m", "aiosmtpd", "-n", "-l", "198.18.0.10:25",
                       "-c", "aiosmtpd.handlers.Mailbox", str(maildir)], name="smtp")
    pair.client.wait_tcp("198.18.0.10", 25)  # ldirectord.cf smtp= takes no port
    mail = Mail(maildir)
    c.start("dir-a")
    c.start("dir-b")
    c.wait_holder("dir-a", timeout=15, stable=0.3)
    wait_until(lambda: c.client_get(timeout=0.5).strip() in REALS, 15, 0.1, "the balancer", ignore=(Exception,))

    # --- alerts once: real2 down is mailed by the holder only -----------------------------------
    r2, srv2 = servers["real2"]
    srv2.stop()
    wait_until(lambda: mail.count("198.18.0.12:80 of TCP 198.18.0.100:80 is down") >= 1, 15, 0.2,
               lambda: f"the down mail; mails: {mail.subjects()}\n" + c.log("dir-a")[-3000:])
    time.sleep(4)  # both nodes' checks saw it long ago: still one mail
    assert mail.count("198.18.0.12:80 of TCP 198.18.0.100:80 is down") == 1, mail.subjects()
    assert "balancer: active here" in c.log("dir-a") and "balancer: active here" not in c.log("dir-b")

    # --- the holder loses power: the new holder re-sends nothing already mailed -----------------
    c.power_off("dir-a")
    c.wait_holder("dir-b", timeout=10)
    wait_until(lambda: "TCP  198.18.0.100:80 wrr" in ctl(c, "dir-b", "lvs", "-n").stdout, 15, 0.1,
               "dir-b's table")
    time.sleep(3)
    assert mail.count("is down") == 1, mail.subjects()
    # it mails what changes next
    servers["real2"] = (r2, r2.http_server(port=80, identity="real2"))
    wait_until(lambda: mail.count("198.18.0.12:80 of TCP 198.18.0.100:80 is up") == 1, 15, 0.2,
               lambda: f"the up mail from dir-b; mails: {mail.subjects()}")

    # --- maintenance on the holder (dir-b); dir-a is down and does not hear it -----------------
    r = ctl(c, "dir-b", "real", "drain", f"{VIP}:80", "198.18.0.11")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "maintenance drain (by root@dir-b, set on dir-b)" in r.stdout, r.stdout
    wait_until(lambda: _table(c, "dir-b").get("198.18.0.11") == 0, 10, 0.1, "real1 at weight 0")
    got = _spread(c, 60)
    assert got == collections.Counter({"real2": 60}), got  # no new connection to the drained real
    text = ctl(c, "dir-b", "lvs", "-n", "--checks").stdout
    row = next(l for l in text.splitlines() if l.startswith("TCP") and "198.18.0.11:80" in l)
    assert " up " in row and "drain, by root@dir-b, since" in row, text
    st = ctl(c, "dir-b", "status").stdout
    assert "Maintenance:\n* real 198.18.0.11:80 of TCP 198.18.0.100:80: drain, by root@dir-b" in st, st
    assert ctl(c, "dir-b", "real", "disable", f"tcp:{VIP}:80", "198.18.0.11:80").returncode == 0
    wait_until(lambda: "198.18.0.11" not in _table(c, "dir-b"), 10, 0.1, "real1 out of the table")
    # real1 fails while in maintenance: no mail
    servers["real1"][1].stop()
    wait_until(lambda: any(x["address"] == "198.18.0.11" and x["state"] == "down"
                           for x in _lvs(c, "dir-b")["checks"]), 10, 0.1, "real1's check down")
    time.sleep(2)
    assert mail.count("198.18.0.11") == 0, mail.subjects()
    # a reload keeps the mark
    assert ctl(c, "dir-b", "reload").returncode == 0
    assert "198.18.0.11" not in _table(c, "dir-b")

    # --- dir-a comes back, learns the marks, and takes over with them ---------------------------
    c.start("dir-a")
    c.power_on_links("dir-a")
    wait_until(lambda: "Maintenance:" in ctl(c, "dir-a", "status").stdout, 15, 0.2,
               lambda: "the marks on dir-a\n" + c.log("dir-a")[-2000:])
    assert ctl(c, "dir-b", "standby").returncode == 0
    c.wait_holder("dir-a", timeout=15, stable=0.3)
    wait_until(lambda: "198.18.0.12" in _table(c, "dir-a"), 15, 0.1, "dir-a's table")
    assert "198.18.0.11" not in _table(c, "dir-a")
    assert "disabled, by root@dir-b" in ctl(c, "dir-a", "lvs", "-n", "--checks").stdout
    time.sleep(2)
    assert mail.count("198.18.0.11") == 0, mail.subjects()  # still in maintenance: not a failure

    # --- enable while it is down: that is a failure now, mailed once ----------------------------
    r = ctl(c, "dir-a", "real", "enable", f"{VIP}:80", "198.18.0.11")
    assert r.returncode == 0 and "maintenance ended" in r.stdout, r.stdout + r.stderr
    wait_until(lambda: mail.count("198.18.0.11:80 of TCP 198.18.0.100:80 is down") == 1, 15, 0.2,
               lambda: f"the down mail after enable; mails: {mail.subjects()}")
    servers["real1"] = (servers["real1"][0], servers["real1"][0].http_server(port=80, identity="real1"))
    wait_until(lambda: _table(c, "dir-a").get("198.18.0.11") == 3, 15, 0.1, "real1 back at weight 3")
    wait_until(lambda: mail.count("198.18.0.11:80 of TCP 198.18.0.100:80 is up") == 1, 15, 0.2,
               lambda: f"the up mail; mails: {mail.subjects()}")
    time.sleep(2)
    counts = collections.Counter(mail.subjects())
    assert all(n == 1 for n in counts.values()), counts
    # the map is kept on disk on both nodes
    for node in ("dir-a", "dir-b"):
        with open(os.path.join(c.state_dir(node), "maintenance.json")) as f:
            saved = json.load(f)
        assert [m["state"] for m in saved["marks"] if m["real"] == "198.18.0.11:80"] == ["enabled"]
    # the fallbackcommand ran only where the balancer was active (at each start of it there)
    lines = fallback_log.read_text().splitlines() if fallback_log.exists() else []
    assert lines and all(l.split()[0] in (c.hosts["dir-a"].netns, c.hosts["dir-b"].netns) for l in lines)
    assert all(l.split()[1] == "stop" for l in lines), lines  # a real was up every time
    assert len(lines) == 3, lines  # dir-a's start, dir-b's takeover, dir-a's takeover
