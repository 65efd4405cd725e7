"""The script agent with real shell scripts in temporary resource.d / init.d directories."""

from __future__ import annotations

import os
import time

import pytest

from hadirector.config.model import ScriptResource
from hadirector.resources.base import AgentContext, AgentError, agent_for, call_with_timeout

# A heartbeat-style resource script: logs each call, keeps its state in a file, prints LSB-ish status.
SERVICE = """#!/bin/sh
echo "$*" >> "{dir}/calls"
for action; do :; done
case "$action" in
  start)  touch "{dir}/state-{name}"; exit 0;;
  stop)   rm -f "{dir}/state-{name}"; exit 0;;
  status) if [ -e "{dir}/state-{name}" ]; then echo "{name} is running"; else echo "{name} is not running"; fi; exit 0;;
  *)      echo "usage: $0 {{start|stop|status}}"; exit 2;;
esac
"""


def write_script(path, body, mode=0o755):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(body)
    os.chmod(path, mode)
    return path


@pytest.fixture
def dirs(tmp_path):
    rd, initd = tmp_path / "resource.d", tmp_path / "init.d"
    rd.mkdir()
    initd.mkdir()
    return tmp_path, str(rd), str(initd)


def make(dirs, name, *args, body=None, where="rd"):
    tmp, rd, initd = dirs
    write_script(os.path.join(rd if where == "rd" else initd, name),
                 body if body is not None else SERVICE.format(dir=tmp, name=name))
    return agent_for(ScriptResource(name=name, args=args), AgentContext(resource_dirs=(rd, initd)))


def calls(dirs):
    p = dirs[0] / "calls"
    return p.read_text().splitlines() if p.exists() else []


async def test_start_monitor_stop_with_args_before_the_action(dirs):
    agent = make(dirs, "svc", "198.18.0.1", "extra")
    assert agent.name == "script svc::198.18.0.1::extra"
    assert await agent.monitor() is False
    await agent.start()
    assert await agent.monitor() is True
    await agent.stop()
    assert await agent.monitor() is False
    # heartbeat's doscript: `$spath $arg "$2"`: the :: arguments come before the action
    assert calls(dirs) == ["198.18.0.1 extra status", "198.18.0.1 extra status",
                           "198.18.0.1 extra start", "198.18.0.1 extra status",
                           "198.18.0.1 extra stop", "198.18.0.1 extra status"]


async def test_start_is_skipped_when_status_says_running(dirs):
    agent = make(dirs, "svc")
    (dirs[0] / "state-svc").touch()
    await agent.start()
    assert calls(dirs) == ["status"]  # acquireresourcegroup: we_own_resource || doscript start


async def test_lookup_resource_d_first_then_init_d(dirs):
    tmp, rd, initd = dirs
    write_script(os.path.join(initd, "both"), "#!/bin/sh\necho init.d OK\n")
    write_script(os.path.join(rd, "both"), "#!/bin/sh\necho resource.d OK\n")
    write_script(os.path.join(initd, "only-init"), "#!/bin/sh\necho init OK\n")
    write_script(os.path.join(rd, "noexec"), "#!/bin/sh\necho rd OK\n", mode=0o644)
    write_script(os.path.join(initd, "noexec"), "#!/bin/sh\necho initd OK\n")
    ctx = AgentContext(resource_dirs=(rd, initd))
    both = agent_for(ScriptResource(name="both"), ctx)
    assert await both.monitor() is True and both.last_status_output == "resource.d OK\n"
    only = agent_for(ScriptResource(name="only-init"), ctx)
    assert await only.monitor() is True and only.last_status_output == "init OK\n"
    noexec = agent_for(ScriptResource(name="noexec"), ctx)
    assert await noexec.monitor() is True and noexec.last_status_output == "initd OK\n"
    missing = agent_for(ScriptResource(name="nosuch"), ctx)
    with pytest.raises(AgentError) as err:
        await missing.start()
    assert "cannot locate resource script nosuch" in str(err.value) and rd in str(err.value)
    assert not err.value.transient
    with pytest.raises(AgentError):
        await agent_for(ScriptResource(name="../init.d/both"), ctx).monitor()


@pytest.mark.parametrize("output, rc, running", [
    ("httpd (pid 42) is running...", 0, True),
    ("Running OK", 0, True),
    ("OK", 3, True),  # heartbeat looks at the text only
    ("httpd is not running", 0, False),
    ("Not currently running", 0, False),
    ("stopped", 0, False),  # text that says neither: stopped, as heartbeat decides
    ("", 0, True),  # silent status: the LSB exit code decides
    ("", 3, False),
    ("", 1, False),
])
async def test_status_rule(dirs, output, rc, running):
    body = f"#!/bin/sh\nprintf '%s' '{output}'\nexit {rc}\n"
    agent = make(dirs, "st", body=body)
    assert await agent.monitor() is running


async def test_start_exit_codes_are_named_and_sorted(dirs):
    agent = make(dirs, "bad", body="#!/bin/sh\n[ \"$1\" = start ] && { echo 'no config' >&2; exit 6; }\nexit 0\n")
    with pytest.raises(AgentError) as err:
        await agent.start()
    assert "exited 6 (program is not configured): no config" in str(err.value)
    assert not err.value.transient and err.value.code == 6
    flaky = make(dirs, "flaky", body="#!/bin/sh\n[ \"$1\" = start ] && exit 1\nexit 0\n")
    with pytest.raises(AgentError) as err:
        await flaky.start()
    assert "generic" in str(err.value) and err.value.transient


async def test_stop_failure_of_a_stopped_resource_is_forgiven(dirs):
    # stop exits 1 but status says not running: heartbeat's "probably not LSB-compliant" case
    agent = make(dirs, "sloppy", body="#!/bin/sh\ncase $1 in stop) exit 1;; status) echo 'not running';; esac\n")
    await agent.stop()
    stuck = make(dirs, "stuck", body="#!/bin/sh\ncase $1 in stop) exit 1;; status) echo running;; esac\n")
    with pytest.raises(AgentError) as err:
        await stuck.stop()
    assert "stop exited 1" in str(err.value)


async def test_a_hanging_script_is_killed_on_timeout(dirs):
    tmp = dirs[0]
    agent = make(dirs, "hang", body=f"#!/bin/sh\necho $$ > {tmp}/pid\nexec sleep 30\n")
    t0 = time.monotonic()
    with pytest.raises(AgentError) as err:
        await call_with_timeout("hang start", agent.start(), 500)
    assert err.value.timeout and "timed out after 500 ms" in str(err.value)
    assert time.monotonic() - t0 < 10
    pid = int((tmp / "pid").read_text())
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


async def test_a_daemon_keeping_stdout_open_does_not_block_start(dirs):
    tmp = dirs[0]
    # start leaves a background child holding stdout/stderr; we must not wait for it
    body = (f"#!/bin/sh\ncase $1 in start) sleep 30 & echo $! > {tmp}/child; echo started;; "
            f"status) exit 3;; esac\nexit 0\n")
    agent = make(dirs, "daemonish", body=body)
    try:
        await call_with_timeout("daemonish start", agent.start(), 5000)
    finally:
        if (tmp / "child").exists():
            os.kill(int((tmp / "child").read_text()), 9)  # the sleep this test started

