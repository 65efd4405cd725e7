"""The fence device driver (daemon/fencing.py) against the real programs: cluster-glue's
`stonith` (Debian cluster-glue; its `null` device resets nothing and says so) and fence-agents'
`fence_dummy` (Debian fence-agents; `type=file` keeps the power state in a file, `type=fail`
fails), and the lab agent (lab/fence_agent.py) speaking the same stdin protocol."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

import hadirector.lab.fence_agent as lab_agent
from hadirector.config.model import Config
from hadirector.cluster.sim import cluster_config
from hadirector.daemon.fencing import FenceRunner, agent_input, stonith_argv
from hdtest import need

log = logging.getLogger("test")


def _config(*devices: dict, alerts: dict | None = None) -> Config:
    base = cluster_config(nodes=("alpha", "beta"), groups={"web": "alpha"}).model_dump(mode="json")
    base["cluster"]["fencing"] = {"devices": list(devices), "delay": "0ms", "alerts": alerts}
    return Config.model_validate(base)


def test_the_stdin_and_argv_we_give():
    cfg = _config({"agent": "fence_ipmilan", "params": {"ip": "198.18.5.1", "username": "admin"},
                   "plugs": {"beta": "blade-2"}, "action": "off"},
                  {"kind": "stonith", "type": "external/ipmi", "param_text": "beta 198.18.5.2 admin pw lan"},
                  {"kind": "stonith", "type": "baytech", "config_file": "/etc/ha.d/conf/stonith.baytech"})
    a, s, f = cfg.cluster.fencing.devices
    assert agent_input(a, "beta") == "action=off\nport=blade-2\nnodename=beta\nip=198.18.5.1\nusername=admin\n"
    assert stonith_argv(s, "beta") == ["stonith", "-t", "external/ipmi", "-p", "beta 198.18.5.2 admin pw lan",
                                       "-T", "reset", "beta"]
    assert stonith_argv(f, "beta") == ["stonith", "-t", "baytech", "-F", "/etc/ha.d/conf/stonith.baytech",
                                       "-T", "reset", "beta"]


async def test_cluster_glue_stonith_null_device():
    need("/usr/sbin/stonith")
    ok = FenceRunner(_config({"kind": "stonith", "type": "null", "param_text": "alpha beta"}), "alpha", log)
    assert (await ok.fence("beta"))[:1] == (True,)
    bad = FenceRunner(_config({"kind": "stonith", "type": "no-such-device", "param_text": "beta"}), "alpha", log)
    done, detail, device, _ = await bad.fence("beta")
    assert not done and detail.startswith("stonith no-such-device: exit ") and device == "stonith no-such-device"


async def test_fence_dummy_file_and_fail_and_the_order_of_devices(tmp_path):
    need("/usr/sbin/fence_dummy")
    state = tmp_path / "power"
    state.write_text("on")
    runner = FenceRunner(_config(
        {"agent": "fence_dummy", "name": "broken", "action": "off", "params": {"type": "fail", "power_timeout": "1"}},
        {"agent": "fence_dummy", "name": "file", "action": "off",
         "params": {"type": "file", "status_file": str(state)}}), "alpha", log)
    ok, detail, device, took = await runner.fence("beta")
    assert ok and device == "file" and "Powered OFF" in detail, detail  # the first failed, the second worked
    assert state.read_text() == "off"  # the agent really switched it
    assert took > 0


def test_lab_agent_protocol(tmp_path):
    meta = subprocess.run([sys.executable, lab_agent.__file__], input="action=metadata\n", capture_output=True,
                          text=True)
    assert meta.returncode == 0 and "<resource-agent" in meta.stdout
    missing = subprocess.run([sys.executable, lab_agent.__file__], input="action=off\n", capture_output=True, text=True)
    assert missing.returncode == 2 and "plug" in missing.stderr
    p = subprocess.Popen(["sleep", "30"])
    pidfile = tmp_path / "pid"
    pidfile.write_text(f"{p.pid}\n")
    try:
        st = subprocess.run([lab_agent.__file__], input=f"action=status\nplug=x\npidfile={pidfile}\n",
                            capture_output=True, text=True)
        assert st.returncode == 0 and "ON" in st.stdout
        off = subprocess.run([lab_agent.__file__], input=f"action=off\nplug=x\npidfile={pidfile}\n",
                             capture_output=True, text=True)
        assert off.returncode == 0 and "Powered OFF" in off.stdout
        assert p.wait(5) == -9
    finally:
        if p.poll() is None:
            p.kill()


class _Inbox:
    def __init__(self):
        self.mails = []

    async def handle_DATA(self, server, session, envelope):
        self.mails.append((tuple(envelope.rcpt_tos), envelope.content.decode("utf-8", "replace")))
        return "250 OK"


async def test_a_failed_fence_mails_through_the_alert_path():
    import asyncio

    from aiosmtpd.smtp import SMTP

    from hadirector.checks.alerts import Notifier
    from hdtest import listening, port_of

    inbox = _Inbox()
    sock = listening()
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(inbox, hostname="127.0.0.1"), sock=sock)
    try:
        cfg = _config({"agent": lab_agent.__file__, "name": "lab", "params": {"fail": "yes"}},
                      alerts={"to": ["ops@example.test"], "smtp": f"127.0.0.1:{port_of(sock)}"})
        runner = FenceRunner(cfg, "alpha", log)
        ok, detail, device, _ = await runner.fence("beta")
        assert not ok and device == "lab" and "exit 1" in detail and "Unable to connect" in detail, detail
        mail = runner.failure_mail("beta", detail, 1, 2000)
        assert await Notifier().send(mail)
        (rcpt, content), = inbox.mails
        assert rcpt == ("ops@example.test",)
        assert "fencing of beta FAILED" in content and "Next attempt in 2 s" in content and "exit 1" in content
    finally:
        server.close()
        await server.wait_closed()
