"""`hadirector lvs` against a standalone proxy process (uvloop) serving the control socket."""

import asyncio
import json
import os
import signal
import subprocess
import sys

from hdtest import Proc, async_wait_until, start_server
from proxy_util import HttpReal, http_get

SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")


async def hadirector(*args):
    env = dict(os.environ, PYTHONPATH=SRC)
    p = await asyncio.create_subprocess_exec(sys.executable, "-m", "hadirector", *args, env=env,
                                             stdout=asyncio.subprocess.PIPE,
                                             stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(p.communicate(), 30)
    return p.returncode, out.decode(), err.decode()


async def test_lvs_shows_a_running_standalone_proxy(tmp_path):
    reals = [await HttpReal(f"r{i}", host=f"127.0.0.{i + 2}").start() for i in range(2)]
    state = str(tmp_path / "state")
    vip = "127.0.0.11"
    env = dict(os.environ, PYTHONPATH=SRC)

    def proxy(port):
        return Proc([sys.executable, "-m", "hadirector", "proxy", "--service", f"tcp:{vip}:{port}",
                     "--real", f"{reals[0].host}:{reals[0].port}:3", "--real", f"{reals[1].host}:{reals[1].port}:1",
                     "--state-dir", state], env=env, stdout=subprocess.PIPE)

    proc, (port,) = start_server(proxy, ("tcp",), host=vip)
    try:
        line = proc.p.stdout.readline()  # printed right after the listener opened
        assert b"listening on" in line, line
        await async_wait_until(lambda: os.path.exists(os.path.join(state, "control.sock")), 10,
                               what="the control socket")
        bodies = [await http_get(vip, port) for _ in range(8)]
        assert sorted(bodies) == ["r0"] * 6 + ["r1"] * 2

        rc, out, err = await hadirector("lvs", "--state-dir", state, "-n")
        assert rc == 0, err
        lines = out.splitlines()
        assert lines[0] == "IP Virtual Server version 1.2.1 (size=4096)"
        assert lines[3] == f"TCP  {vip}:{port} wrr"
        assert lines[4].split() == ["->", f"{reals[0].host}:{reals[0].port}", "Local", "3", "0", "0"]  # loopback reals are Local, as in IPVS
        assert lines[5].split() == ["->", f"{reals[1].host}:{reals[1].port}", "Local", "1", "0", "0"]

        rc, out, _ = await hadirector("lvs", "--state-dir", state, "-n", "--stats", "--exact")
        assert rc == 0
        rows = {ln.split()[1]: ln.split()[2:] for ln in out.splitlines() if ln.startswith("  -> ")}
        assert rows[f"{reals[0].host}:{reals[0].port}"][0] == "6"
        assert rows[f"{reals[1].host}:{reals[1].port}"][0] == "2"

        rc, out, _ = await hadirector("lvs", "--state-dir", state, "--json")
        assert rc == 0
        svc = json.loads(out)["services"][0]
        assert svc["stats"]["conns"] == 8 and svc["stats"]["inbytes"] > 0
    finally:
        proc.p.send_signal(signal.SIGTERM)
        assert proc.p.wait(10) == 0
        proc.p.stdout.close()
        for r in reals:
            await r.stop()
    rc, out, err = await hadirector("lvs", "--state-dir", state)
    assert rc == 1 and "no hadirector daemon is running" in err and out == ""
