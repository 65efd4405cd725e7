"""The fencing, watchdog and respawn part of `hadirector status` (render/safety.py)."""

from hadirector.render.cluster import render_status

NOW = 1_700_000_000.0


def _status(**extra):
    return {"cluster": "c", "node": "alpha", "generation": 1, "now": NOW, "nodes": [], "groups": [], **extra}


def test_fencing_watchdog_respawn_lines():
    text = render_status(_status(
        fencing={"delay_ms": 5000, "delayed": ["beta"],
                 "peers": {"beta": {"state": "failed", "failed_attempts": 2, "next_attempt_in_ms": 4000}},
                 "history": [{"target": "beta", "ok": False, "time": NOW - 3, "took_ms": 1400,
                              "device": "ipmi", "detail": "exit 1: Failed: Unable to connect"}]},
        watchdog={"device": "/dev/watchdog", "state": "armed", "timeout_s": 31, "timeout_set": True,
                  "feeds": 12, "skipped": 1, "last_feed_age_ms": 300, "error": None},
        respawn=[{"user": "nobody", "command": "/usr/bin/x --y", "pid": 42, "state": "running", "restarts": 3,
                  "last_exit": "exit 1", "last_exit_at": NOW - 10, "next_start_in_ms": None}]))
    assert "Fencing: takeover waits for fencing of beta (failed, next try in 4 s) (delay for fencing beta: 5000 ms)" in text
    assert "FAILED" in text and "ipmi" in text and "exit 1: Failed: Unable to connect" in text
    assert "watchdog /dev/watchdog: armed, timeout 31 s, fed 12 times, last 300 ms ago, 1 feeds skipped" in text
    assert "* /usr/bin/x --y (as nobody): running, pid 42, 3 restarts, last exit 1" in text


def test_nothing_shown_without_them():
    text = render_status(_status())
    assert "Fencing" not in text and "watchdog" not in text and "Respawned" not in text


def test_realtime_line():
    rt = {"enabled": True, "policy": "SCHED_RR", "priority": 1, "threads": 1, "lock_memory": True,
          "locked": True, "locked_kib": 58000, "problems": []}
    assert "\nrealtime: SCHED_RR priority 1, memory locked (58000 KiB at start)\n" in render_status(_status(realtime=rt))
    off = {**rt, "enabled": False, "policy": None, "locked": False}
    assert "realtime: off (normal scheduling, memory not locked)" in render_status(_status(realtime=off))
    assert "realtime" not in render_status(_status(realtime=None))
