"""external (and external-perl): run `checkcommand vip vport rip rport`; the exit code decides.

ldirectord `check_external` (system_timeout): the command gets the virtual address (or fwmark),
the virtual port, the real's address and the real's port; exit 0 is up, anything else down; the
command is killed (SIGTERM) after checktimeout and the real is down. external-perl scripts are
run the same way (ldirectord says they must also work as external commands).
With `external_weight` (keepalived MISC_CHECK `misc_dynamic`): exit 0 is up with the weight
unchanged, 1 is down, and 2..255 is up with weight = exit code - 2.
The command line is split like a shell would (shlex), so it may carry its own arguments.
"""

from __future__ import annotations

import asyncio
import shlex
import signal

from ..base import CheckTarget, ProbeContext, ProbeResult, register


@register("external")
async def check_external(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    try:
        argv = shlex.split(target.checkcommand)
    except ValueError as e:
        return ProbeResult(False, f"checkcommand {target.checkcommand!r}: {e}")
    if not argv:
        return ProbeResult(False, "checkcommand is empty")
    argv += [target.vip, str(target.vport), target.address, str(target.rport)]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
    except OSError as e:
        return ProbeResult(False, f"cannot run {argv[0]}: {e.strerror or e}")
    try:
        code = await proc.wait()
    except asyncio.CancelledError:
        # timed out (or stopping): end it as ldirectord does (kill -TERM), then reap it
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            await asyncio.shield(asyncio.wait_for(proc.wait(), 2))
        except (asyncio.TimeoutError, asyncio.CancelledError):
            try:
                proc.kill()
            except ProcessLookupError:
                pass
        raise
    if code == 0:
        return ProbeResult(True, "checkcommand exit 0")
    if target.external_weight and 2 <= code <= 255:
        return ProbeResult(True, f"checkcommand exit {code}: weight {code - 2}", weight=code - 2)
    if code < 0:
        return ProbeResult(False, f"checkcommand killed by signal {-code}")
    return ProbeResult(False, f"checkcommand exit {code}")
