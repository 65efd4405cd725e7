"""Logs (issue 13 item 2): logfile and debugfile follow logrotate (mv, then SIGHUP: new lines in a
new file), and under systemd the daemon writes the journal's native protocol with its fields, to
a real systemd-journald (in a private mount namespace, so the machine's journal is untouched).

Found in issue 13: after `mv ha.log ha.log.1; kill -HUP` the daemon kept writing to ha.log.1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from daemon_util import SOLO_CLUSTER, Solo
from hdtest import need, wait_until

GROUP = """
[[groups]]
name = "web"
preferred_node = "solo"
[[groups.resources]]
kind = "vip"
address = "198.18.5.1"
prefixlen = 32
interface = "lo"
garp_count = 0
"""


def _logging(tmp_path, **keys) -> str:
    body = "".join(f'{k} = "{v}"\n' for k, v in keys.items())
    return "[cluster.logging]\n" + body


def test_mv_then_sighup_writes_a_new_logfile(lab, tmp_path):
    logfile, debugfile = tmp_path / "ha.log", tmp_path / "ha-debug.log"
    solo = Solo(lab, tmp_path, SOLO_CLUSTER + _logging(tmp_path, logfile=logfile, debugfile=debugfile) + GROUP)
    proc = solo.start()
    solo.wait_ready()
    wait_until(lambda: "group web: owner none -> solo (start)" in logfile.read_text(), 10, 0.05,
               lambda: "the owner line in ha.log\n" + solo.log()[-2000:])
    before = logfile.read_text()
    assert "node solo starting" in before
    os.rename(logfile, tmp_path / "ha.log.1")
    os.rename(debugfile, tmp_path / "ha-debug.log.1")
    os.kill(proc.pid, signal.SIGHUP)
    wait_until(logfile.exists, 10, 0.05, "a new ha.log")
    wait_until(lambda: "SIGHUP: log files reopened" in logfile.read_text(), 10, 0.05, "the reopen line")
    os.kill(proc.pid, signal.SIGUSR1)
    wait_until(lambda: "debug level 0 -> 1 (SIGUSR1)" in logfile.read_text(), 10, 0.05, "a later line")
    assert solo.ctl("status").returncode == 0
    wait_until(lambda: "control: status requested" in debugfile.read_text(), 10, 0.05,
               "a debug line in the new debug file")
    old = (tmp_path / "ha.log.1").read_text()
    assert old == before or old.startswith(before)
    assert "reopened" not in old and "SIGUSR1" not in old
    assert "control: status requested" not in logfile.read_text(), "a debug line went to logfile"


def test_under_systemd_the_journal_gets_native_entries_with_fields(lab, tmp_path):
    need("/lib/systemd/systemd-journald", "journalctl", "nsenter", "unshare")
    solo = Solo(lab, tmp_path, SOLO_CLUSTER + _logging(tmp_path, facility="local3") + GROUP)
    launcher = os.path.join(os.path.dirname(__file__), "..", "hdtest", "journal_launch.py")
    argv = ["unshare", "-m", sys.executable, launcher, str(tmp_path), "--", sys.executable, "-m", "hadirector",
            "run", "-c", str(solo.cfg), "--node", "solo", "--state-dir", solo.state]
    proc = solo.host.spawn(argv, name="hadirector")
    solo.proc = proc
    try:
        solo.wait_ready()

        def entries() -> list[dict]:
            r = subprocess.run(["nsenter", f"--mount=/proc/{proc.pid}/ns/mnt", "journalctl", "-D",
                                "/run/log/journal", "-o", "json", "--no-pager"],
                               capture_output=True, text=True, timeout=30)
            return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]

        def owner_entry():
            return next((e for e in entries() if e.get("EVENT") == "owner-changed"), None)
        e = wait_until(owner_entry, 15, 0.2, lambda: f"the owner-changed entry; journal: {entries()[-5:]}")
        assert e["MESSAGE"] == "group web: owner none -> solo (start)"
        assert e["_TRANSPORT"] == "journal" and e["SYSLOG_IDENTIFIER"] == "hadirector"
        assert e["NODE"] == "solo" and e["GROUP"] == "web" and e["PRIORITY"] == "5"
        assert e["SYSLOG_FACILITY"] == "19"  # local3
        all_entries = entries()
        starting = [x for x in all_entries if "node solo starting" in str(x.get("MESSAGE"))]
        assert len(starting) == 1 and starting[0]["_TRANSPORT"] == "journal", starting
        # nothing of ours came through the stdout stream as well (no line twice)
        assert not [x for x in all_entries if x.get("_TRANSPORT") == "stdout"], \
            [x["MESSAGE"] for x in all_entries if x.get("_TRANSPORT") == "stdout"][:5]
    finally:
        proc.stop(10)
        try:
            with open(tmp_path / "journald.pid") as f:
                os.kill(int(f.read()), signal.SIGTERM)
        except (OSError, ValueError):
            pass
