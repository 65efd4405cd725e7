#!/usr/bin/env python3
"""A fence agent for the lab: it "powers off" a lab director the way a power switch would, and
speaks the fence-agents protocol (fence-agents doc/FenceAgentAPI.md), so hadirector drives it
exactly as it drives /usr/sbin/fence_ipmilan:

    printf 'action=off\\nplug=dir-a\\npidfile=/tmp/x/dir-a/state/hadirector.pid\\nnetns=lab-dir-a\\n' \\
        | python -m hadirector.lab.fence_agent

Arguments are `name=value` lines on standard input (FenceAgentAPI "agent input"; a line starting
with # is a comment), or `--name=value` options. It knows:

  action   off, reboot (both power off here: the lab has no power-on), on, status, monitor,
           metadata;
  plug     the node to fence (port is the older name; nodename is accepted too);
  pidfile  the target daemon's pid file: the process gets SIGKILL (a frozen one too);
  netns    the target's network namespace: every interface but lo is set down;
  fail     `yes`: fail as a device that cannot be reached would (exit 1), for tests.

Exit status as fence-agents (fencing.py EC_*): 0 success, 1 generic error, 2 bad arguments;
status: 0 on, 2 off.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

EC_OK, EC_GENERIC_ERROR, EC_BAD_ARGS = 0, 1, 2
EC_STATUS_OFF = 2  # fence-agents: status exit 2 means off

METADATA = """<?xml version="1.0" ?>
<resource-agent name="fence_hadirector_lab" shortdesc="Powers off a hadirector lab director">
<parameters>
<parameter name="action" unique="0" required="1"><content type="string" default="reboot"/></parameter>
<parameter name="plug" unique="0" required="1"><content type="string"/></parameter>
<parameter name="pidfile" unique="0" required="0"><content type="string"/></parameter>
<parameter name="netns" unique="0" required="0"><content type="string"/></parameter>
</parameters>
<actions><action name="on"/><action name="off"/><action name="reboot"/><action name="status"/>
<action name="monitor"/><action name="metadata"/></actions>
</resource-agent>
"""


def parse(lines, argv) -> dict[str, str]:
    opts: dict[str, str] = {}
    if argv:
        for a in argv:
            k, _, v = a.lstrip("-").partition("=")
            opts[k.replace("-", "_")] = v
        return opts
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        k, sep, v = line.partition("=")
        if sep:
            opts[k.strip()] = v.strip()
    return opts


def links(netns: str) -> list[str]:
    out = subprocess.run(["ip", "-n", netns, "-j", "link", "show"], capture_output=True, text=True, check=True)
    return [l["ifname"] for l in json.loads(out.stdout) if l["ifname"] != "lo"]


def is_on(opts: dict[str, str]) -> bool:
    if opts.get("netns"):
        out = subprocess.run(["ip", "-n", opts["netns"], "-j", "link", "show"], capture_output=True,
                             text=True, check=True)
        return any("UP" in l.get("flags", []) for l in json.loads(out.stdout) if l["ifname"] != "lo")
    return _pid(opts) is not None


def _pid(opts: dict[str, str]) -> int | None:
    try:
        with open(opts["pidfile"]) as f:
            pid = int(f.read().split()[0])
        os.kill(pid, 0)
        return pid
    except (KeyError, OSError, ValueError, IndexError):
        return None


def power_off(opts: dict[str, str]) -> None:
    pid = _pid(opts) if opts.get("pidfile") else None
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
    if opts.get("netns"):
        for dev in links(opts["netns"]):
            subprocess.run(["ip", "-n", opts["netns"], "link", "set", dev, "down"], check=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    opts = parse([] if argv else sys.stdin, argv)
    action = opts.get("action", "reboot").lower()
    if action in ("metadata", "meta-data"):
        sys.stdout.write(METADATA)
        return EC_OK
    target = opts.get("plug") or opts.get("port") or opts.get("nodename")
    if not target:
        print("Failed: You have to enter plug number or machine identification", file=sys.stderr)
        return EC_BAD_ARGS
    if opts.get("fail", "").lower() in ("yes", "1", "true"):
        print(f"Failed: Unable to connect/login to fencing device for {target}", file=sys.stderr)
        return EC_GENERIC_ERROR
    try:
        if action in ("status", "monitor"):
            on = is_on(opts)
            print(f"Status: {'ON' if on else 'OFF'}")
            return EC_OK if on else EC_STATUS_OFF
        if action in ("off", "reboot"):
            power_off(opts)
            print(f"Success: Powered OFF {target}")
            return EC_OK
        if action == "on":
            print("Failed: the lab cannot power a node on", file=sys.stderr)
            return EC_GENERIC_ERROR
    except (OSError, subprocess.CalledProcessError, json.JSONDecodeError) as exc:
        print(f"Failed: {exc}", file=sys.stderr)
        return EC_GENERIC_ERROR
    print(f"Failed: unknown action {action!r}", file=sys.stderr)
    return EC_BAD_ARGS


if __name__ == "__main__":
    sys.exit(main())
