"""none / on / off: checks that never touch the network.

- service `none` (a negotiate check of a service ldirectord does not know): always up
  (ldirectord `check_none`).
- checktype `on`: real servers are always up, never checked.
- checktype `off`: no checking; real servers are never activated (ldirectord: "Off means no
  checking will take place and no real ... servers will be activated").
"""

from __future__ import annotations

from ..base import CheckTarget, ProbeContext, ProbeResult, register

_NONE = ProbeResult(True, "service none: not checked")
_ON = ProbeResult(True, "checktype on: not checked")
_OFF = ProbeResult(False, "checktype off: never activated")


@register("none", services=("none",))
async def check_none(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    return _NONE


@register("on")
async def check_on(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    return _ON


@register("off")
async def check_off(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    return _OFF
