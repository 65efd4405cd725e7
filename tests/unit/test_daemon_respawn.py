"""The pure parts of respawn (daemon/respawn.py): the back-off and the argv heartbeat's
start_a_child_client would use; and the watchdog's timeout rule (daemon/watchdog.py)."""

import os
import pwd

from hadirector.daemon.respawn import FIRST_PAUSE, MAX_PAUSE, SHORT_RUN, Backoff, argv_for, describe_exit
from hadirector.daemon.watchdog import timeout_seconds


def test_backoff_grows_on_short_runs_and_resets_after_a_long_one():
    b = Backoff()
    assert b.after_exit(0, 100) == FIRST_PAUSE == 1000
    assert b.after_exit(2000, 2100) == 2000
    assert b.after_exit(5000, 5100) == 4000
    for _ in range(10):
        pause = b.after_exit(0, 10)
    assert pause == MAX_PAUSE
    assert b.after_exit(0, SHORT_RUN) == 0 and b.short_runs == 0  # a 30 s run: at once, as heartbeat


def test_argv_as_heartbeat_runs_it():
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert argv_for(me, "/bin/x --y", None) == (["/bin/sh", "-c", "exec /bin/x --y"], {})
    nobody = pwd.getpwnam("nobody")
    argv, kw = argv_for("nobody", "/bin/x", None, me=0)
    assert argv == ["/bin/sh", "-c", "exec /bin/x"] and kw["user"] == nobody.pw_uid and kw["group"] == nobody.pw_gid
    argv, kw = argv_for("nobody", "/bin/x", "lab-a", me=0)
    assert argv == ["ip", "netns", "exec", "lab-a", "setpriv", f"--reuid={nobody.pw_uid}",
                    f"--regid={nobody.pw_gid}", "--init-groups", "/bin/sh", "-c", "exec /bin/x"] and kw == {}


def test_exit_words():
    assert describe_exit(1) == "exit 1" and describe_exit(-9) == "signal SIGKILL"


def test_watchdog_timeout_is_heartbeats():
    # heartbeat.c hb_init_watchdog_interval: (deadtime + 10 ms + 999) / 1000
    assert timeout_seconds(30_000) == 31 and timeout_seconds(1000) == 2 and timeout_seconds(500) == 1
