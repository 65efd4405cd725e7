"""The daemon's state directory: the control socket and the boot generation counter.

The generation is heartbeat's "hbgeneration": a counter bumped at every start and kept on disk,
so peers tell a restarted node from a replay of its old packets. Peers drop packets of a lower
generation than they saw last, so the counter must never go back: heartbeat keeps it in
/var/lib/heartbeat/hb_generation and, when that file is missing, starts from the time of day
(heartbeat.c IncrGeneration, GetTimeBasedGeneration). We do both: `run --lib-dir` (the systemd
unit's StateDirectory, /var/lib/hadirector) keeps it across reboots, and a missing counter
starts at the current Unix time, so a state directory on tmpfs (/run) still counts upwards after
a reboot."""

from __future__ import annotations

import os
import stat
import time

GENERATION_FILE = "generation"


def prepare(state_dir: str) -> None:
    """Create the directory (0700) or check an existing one: it must be a real directory owned
    by us that nobody else can write, or another user could replace the control socket or the
    generation file."""
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    st = os.lstat(state_dir)
    if not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"state directory {state_dir} is not a directory (a symlink?)")
    if st.st_uid != os.geteuid():
        raise ValueError(f"state directory {state_dir} belongs to uid {st.st_uid}, not to us ({os.geteuid()})")
    if st.st_mode & 0o022:
        raise ValueError(f"state directory {state_dir} is writable by group or others "
                         f"(mode {stat.S_IMODE(st.st_mode):04o}); chmod 700 it")


def next_generation(state_dir: str) -> int:
    """Read, increment and durably write the generation counter; returns the new value."""
    path = os.path.join(state_dir, GENERATION_FILE)
    try:
        with open(path, encoding="ascii") as f:
            current = int(f.read().strip() or 0)
    except FileNotFoundError:
        current = int(time.time())  # heartbeat GetTimeBasedGeneration
    except ValueError:
        raise ValueError(f"{path}: expected a number (the boot generation counter)") from None
    new = current + 1
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{new}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return new
