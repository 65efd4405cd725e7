"""The systemd agent. It needs a running systemd to start units; where systemctl cannot reach one
(containers without systemd as PID 1) the unit test skips with that reason, and the agent's
"cannot reach systemd" error is checked instead."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from hadirector.config.model import SystemdResource
from hadirector.resources.base import AgentContext, AgentError, agent_for


def systemd_state() -> tuple[bool, str]:
    if shutil.which("systemctl") is None:
        return False, "systemctl is not installed"
    cp = subprocess.run(["systemctl", "is-system-running"], capture_output=True, text=True, timeout=20)
    state = cp.stdout.strip()
    if state in ("running", "degraded", "starting", "initializing", "maintenance"):
        return True, state
    try:
        pid1 = open("/proc/1/comm").read().strip()
    except OSError:
        pid1 = "unknown"
    detail = cp.stderr.strip().splitlines()
    return False, (f"`systemctl is-system-running` says {state or 'nothing'!r} (exit {cp.returncode})"
                   f"{': ' + detail[0] if detail else ''}; PID 1 is {pid1!r}, not systemd")


async def test_unit_start_is_active_stop():
    up, why = systemd_state()
    if not up:
        pytest.skip(f"systemctl cannot reach systemd here: {why}")
    unit = "hadirector-test-sleep.service"
    # a transient unit made by systemd-run, so nothing is installed on the host
    subprocess.run(["systemd-run", "--unit", unit, "--remain-after-exit", "--no-block", "true"],
                   check=True, capture_output=True, timeout=20)
    agent = agent_for(SystemdResource(unit=unit), AgentContext())
    try:
        await agent.start()
        assert await agent.monitor() is True
        await agent.stop()
        assert await agent.monitor() is False
    finally:
        subprocess.run(["systemctl", "stop", unit], capture_output=True, timeout=20)


async def test_without_systemd_the_error_says_so():
    up, why = systemd_state()
    if up:
        pytest.skip("systemd is running here; the unreachable case cannot be shown")
    if shutil.which("systemctl") is None:
        pytest.skip("systemctl is not installed")
    agent = agent_for(SystemdResource(unit="hadirector-none.service"), AgentContext())
    for op in (agent.monitor, agent.start, agent.stop):
        with pytest.raises(AgentError) as err:
            await op()
        assert "cannot reach systemd" in str(err.value), str(err.value)
        assert not err.value.transient
