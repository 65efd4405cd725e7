"""Start a program as systemd would start a service logging to the journal, with a real
systemd-journald, all inside a private mount namespace (run this under `unshare -m`):

    unshare -m python journal_launch.py WORKDIR -- PROGRAM ARGS...

It mounts fresh tmpfs on /run/systemd, /run/log and /var/log/journal (so nothing reaches the
machine's own journal directories), and the cgroup file system when /sys has none (inside
`ip netns exec`), starts /lib/systemd/systemd-journald (its pid in
WORKDIR/journald.pid), connects to journald's stdout stream socket as systemd does for
StandardError=journal (the stream header: identifier, unit, priority, level prefix, forwarding
flags), makes that stream the program's standard output and error, sets JOURNAL_STREAM to its
device:inode, and execs PROGRAM (its pid is this process's). Read the entries with
`nsenter --mount=/proc/PID/ns/mnt journalctl -D /run/log/journal -o json`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time


def main() -> int:
    work, sep, *argv = sys.argv[1:]
    assert sep == "--" and argv, __doc__
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    for d in ("/run/systemd", "/run/log", "/var/log/journal"):
        os.makedirs(d, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", d], check=True)
    if not os.path.ismount("/sys/fs/cgroup"):
        # `ip netns exec` mounts a fresh /sys without it, and journald will not start without one
        subprocess.run(["mount", "-t", "cgroup2", "cgroup2", "/sys/fs/cgroup"], check=True)
    log = open(os.path.join(work, "journald.out"), "wb")
    jd = subprocess.Popen(["/lib/systemd/systemd-journald"], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                          start_new_session=True)
    with open(os.path.join(work, "journald.pid"), "w") as f:
        f.write(f"{jd.pid}\n")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    for attempt in range(200):  # journald binds, then listens: refused or absent until it is up
        try:
            s.connect("/run/systemd/journal/stdout")
            break
        except (FileNotFoundError, ConnectionRefusedError):
            if attempt == 199:
                raise
            time.sleep(0.05)
    s.shutdown(socket.SHUT_RD)
    # identifier, unit id, priority, level prefix, forward to syslog, kmsg, console
    s.sendall(b"hadirector\n\n6\n0\n0\n0\n0\n")
    st = os.fstat(s.fileno())
    os.dup2(s.fileno(), 1)
    os.dup2(s.fileno(), 2)
    s.close()
    os.environ["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    os.execvp(argv[0], argv)
    return 1


if __name__ == "__main__":
    sys.exit(main())
