"""The daemon's state directory: the lock, the control socket and the boot generation counter.

The lock makes one daemon per state directory: `lock(dir)` takes an exclusive fcntl (POSIX
record) lock on `<dir>/hadirector.pid` and writes our pid into it; it is held while the process
lives (the kernel drops it when the process dies, kill -9 included, so a crash leaves nothing to
clean: the next start takes it and overwrites the pid). A second daemon fails at once with
`AlreadyRunning` naming the holder's pid. The file is never removed: unlinking a lock file lets a
third process lock a fresh inode while the second still holds the old one. A POSIX lock is not
inherited by children (fork) and the descriptor is close-on-exec, so a resource script that
lingers after a crash cannot keep it. heartbeat (heartbeat.c make_daemon) reads its pid file and
asks whether that pid is alive (cluster-glue cl_read_pidfile), says "already running [pid N]" and
exits 0; a recycled pid fools that test, the kernel's lock cannot be fooled. We exit 1: a second
start of a running node is an operator's mistake to report.

The generation is heartbeat's "hbgeneration": a counter bumped at every start and kept on disk,
so peers tell a restarted node from a replay of its old packets. Peers drop packets of a lower
generation than they saw last, so the counter must never go back: heartbeat keeps it in
/var/lib/heartbeat/hb_generation and, when that file is missing, starts from the time of day
(heartbeat.c IncrGeneration, GetTimeBasedGeneration). We do both: `run --lib-dir` (the systemd
unit's StateDirectory, /var/lib/hadirector) keeps it across reboots, and a missing counter
starts at the current Unix time, so a state directory on tmpfs (/run) still counts upwards after
a reboot."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time

from ..errors import HadirectorError

GENERATION_FILE = "generation"
LOCK_FILE = "hadirector.pid"
MAINTENANCE_FILE = "maintenance.json"  # the maintenance map (cluster/maintenance.py)


class AlreadyRunning(HadirectorError):
    """Another daemon holds the state directory's lock."""

    def __init__(self, path: str, pid: int | None):
        who = f"pid {pid}" if pid else "pid unknown"
        super().__init__(f"already running ({who}): {path} is locked by another hadirector daemon "
                         f"for this state directory")
        self.pid = pid


class Lock:
    """The held lock of one state directory (see the module text). `release()` at exit."""

    def __init__(self, path: str, fd: int):
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the POSIX lock
            self._fd = None


def read_pid(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def lock(state_dir: str) -> Lock:
    """Take the state directory's lock for this process, or raise AlreadyRunning."""
    path = os.path.join(state_dir, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            raise AlreadyRunning(path, read_pid(path)) from None
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return Lock(path, fd)


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


def load_maintenance(state_dir: str):
    """The maintenance map saved by the last run (empty when there is none). ValueError names
    the file and what is wrong with it."""
    import json

    from ..cluster.maintenance import MaintenanceMap
    path = os.path.join(state_dir, MAINTENANCE_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return MaintenanceMap.from_json(data)
    except FileNotFoundError:
        return MaintenanceMap()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a maintenance map ({exc}); the peers have a copy: move the "
                         f"file away to start with theirs") from None


def save_maintenance(state_dir: str, maintenance) -> None:
    """Write the map durably (a new file renamed over the old)."""
    import json
    path = os.path.join(state_dir, MAINTENANCE_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(maintenance.to_json(), f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
