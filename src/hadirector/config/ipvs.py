"""The IPVS values of a virtual service, and the rules that refuse a wrong one: pure.

Each rule is ipvsadm's or the kernel's, so a value that `ipvsadm` or IP_VS would refuse when the
balancer starts is refused when the configuration is read instead (the model's validators call
these functions; `hadirector check` reports them with `file:line` or the key path). The balancer
(schedulers, persistence) and the data planes use the parsed values and never re-check them.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable

# ipvsadm -b / the kernel's IP_VS_SVC_F_SCHED1..3 bits, and their names for sh and mh
SCHED_FLAG_NAMES = ("flag-1", "flag-2", "flag-3", "sh-fallback", "sh-port", "mh-fallback", "mh-port")
_FLAG_BITS = {"flag-1": 1, "flag-2": 2, "flag-3": 4, "sh-fallback": 1, "sh-port": 2,
              "mh-fallback": 1, "mh-port": 2}

# ipvsadm.c: `-p` is parse_timeout(optarg, 1, MAX_TIMEOUT), MAX_TIMEOUT = 86400 * 31 seconds
PERSISTENT_MAX_MS = 86400 * 31 * 1000
# ipvsadm.c: `-x`/`-y` are string_to_number(optarg, 0, INT_MAX)
THRESHOLD_MAX = 2**31 - 1


def sched_flag_bits(flags: Iterable[str]) -> int:
    """IP_VS_SVC_F_SCHED1..3 as bits 1, 2, 4 (ipvsadm's -b names; sh-/mh-fallback = flag-1,
    sh-/mh-port = flag-2, as include/uapi/linux/ip_vs.h defines them)."""
    bits = 0
    for f in flags:
        try:
            bits |= _FLAG_BITS[f]
        except KeyError:
            raise ValueError(f"unknown scheduler flag {f!r}; expected one of "
                             f"{', '.join(SCHED_FLAG_NAMES)}") from None
    return bits


def check_sched_flags(scheduler: str, flags: Iterable[str]) -> None:
    """ipvsadm parse_sched_flags: an unknown name is "invalid scheduler flag"; sh-fallback and
    sh-port with another scheduler than sh are "incompatible scheduler flag" (mh-* likewise need
    mh, as ipvsadm 1.30+ has them)."""
    for f in flags:
        sched_flag_bits((f,))
        owner = f.split("-", 1)[0]
        if owner in ("sh", "mh") and scheduler != owner:
            raise ValueError(f"scheduler flag {f!r} needs scheduler {owner}, not {scheduler} "
                             "(ipvsadm: incompatible scheduler flag)")


def netmask_prefix(netmask: str | int | None, ipv6: bool) -> int:
    """ldirectord/ipvsadm -M: a dotted quad for IPv4, a prefix length for IPv6 (ldirectord's
    parser: "a prefix length between 1 and 128 is required"). A contiguous mask is required
    here: persistence groups clients by a network prefix."""
    full = 128 if ipv6 else 32
    if netmask is None:
        return full
    if isinstance(netmask, int):
        prefix = netmask
    elif ipv6 or str(netmask).isdigit():
        try:
            prefix = int(netmask)
        except ValueError:
            raise ValueError(f"netmask {netmask!r}: expected a prefix length 0..{full}") from None
    else:
        try:
            prefix = ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen
        except ValueError:
            raise ValueError(f"netmask {netmask!r}: expected a contiguous dotted-quad mask "
                             "such as 255.255.255.0") from None
    if not 0 <= prefix <= full:
        raise ValueError(f"netmask {netmask!r}: expected a prefix length 0..{full}")
    return prefix


def check_persistent(ms: int) -> None:
    """ipvsadm -p: 1 second .. 31 days (parse_timeout(optarg, 1, MAX_TIMEOUT))."""
    if not 1000 <= ms <= PERSISTENT_MAX_MS:
        raise ValueError(f"persistent: expected 1 s .. 31 days (ipvsadm -p), got {ms} ms")


def check_thresholds(lower: int, upper: int) -> None:
    """The kernel refuses a destination whose lower connection threshold is above its upper one
    (ip_vs_ctl.c ip_vs_add_dest/ip_vs_edit_dest: "lower threshold is higher than upper
    threshold", -ERANGE), whatever the upper one is, 0 (no limit) included."""
    if lower > upper:
        raise ValueError(f"lower_threshold {lower} is above upper_threshold {upper} "
                         "(IPVS refuses it: ip_vs_add_dest)")
