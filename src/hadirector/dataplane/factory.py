"""Which data plane to build, and building it: `[balancer] dataplane` -> a `DataPlane`.

`nft` (kernel, needs root and libnftables), `proxy` (userspace, no root), or `auto`: nft when
running as root with libnftables present, else proxy. The daemon's balancer driver
(daemon/balancer.py) calls these; nothing here starts or supervises anything.

`capabilities(kind)` says what a kind of data plane can install (base.Capabilities) without
making one: the configuration loader can read it to refuse, when the configuration is read, what
the chosen data plane could not install at failover time.
"""

from __future__ import annotations

import ctypes.util
import os
from typing import Any

from .base import Capabilities, DataPlane

KINDS = ("nft", "proxy")


def choose_dataplane(setting: str) -> str:
    """`[balancer] dataplane` -> "nft" or "proxy" ("auto": nft when root with libnftables)."""
    if setting in ("nft", "proxy"):
        return setting
    if setting != "auto":
        raise ValueError(f"balancer.dataplane: expected auto, nft or proxy, got {setting!r}")
    if os.geteuid() == 0 and ctypes.util.find_library("nftables"):
        return "nft"
    return "proxy"


def make_dataplane(kind: str, **options: Any) -> DataPlane:
    if kind == "proxy":
        from .proxy import ProxyDataPlane
        return ProxyDataPlane(**options)
    if kind == "nft":
        from .nft import NftDataPlane
        return NftDataPlane(**options)
    raise ValueError(f"unknown data plane {kind!r}; expected nft or proxy")


def capabilities(kind: str) -> Capabilities:
    """What data plane `kind` ("nft", "proxy") can install; see base.Capabilities."""
    if kind == "nft":
        from .nft_render import CAPABILITIES
    elif kind == "proxy":
        from .proxy.plane import CAPABILITIES
    else:
        raise ValueError(f"unknown data plane {kind!r}; expected one of {', '.join(KINDS)}")
    return CAPABILITIES
