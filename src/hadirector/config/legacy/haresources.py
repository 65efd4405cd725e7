"""haresources: heartbeat's resource groups, one per line (heartbeat v1 resource management:
ResourceManager and the resource.d scripts).

How it works: a line is `preferred-node resource resource ...`; a `\\` at the end of a line
continues it on the next; `#` starts a comment. A resource is `Script::arg1::arg2`; a bare IP
address means IPaddr; `IPaddr::`/`IPaddr2::` (`ip[/cidr[/iface[/broadcast]]]`, an iface such as
`eth0:0` meaning interface eth0 with label eth0:0) and `IPv6addr::` become vip resources;
`ldirectord` or `ldirectord::file` becomes the built-in balancer; anything else is a resource script.

Each group needs a name in hadirector: it is taken from the first resource (the address of a vip,
else the script name, "ldirectord" for the balancer), made unique with -2, -3... in file order.
"""

from __future__ import annotations

import ipaddress
import re

from ..errors import Collector
from ._common import where

VIP_SCRIPTS = ("IPaddr", "IPaddr2")
_BARE_IPV4 = re.compile(r"^\d+\.\d+\.\d+\.\d+(/|$)")


def _logical_lines(text: str) -> list[list[tuple[str, int]]]:
    """Join `\\` continuations; return each logical line as (token, physical line) pairs."""
    out: list[list[tuple[str, int]]] = []
    cur: list[tuple[str, int]] | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r\n")
        cont = line.endswith("\\")
        if cont:
            line = line[:-1]
        if cur is None:
            cur = []
            if line.lstrip().startswith("#"):
                line = ""
        toks: list[tuple[str, int]] = []
        for tok in line.split():
            if tok.startswith("#"):
                break  # the rest of this physical line is a comment
            toks.append((tok, lineno))
        cur.extend(toks)
        if not cont:
            if cur:
                out.append(cur)
            cur = None
    if cur:
        out.append(cur)
    return out


def _prefixlen(text: str) -> int | None:
    """IPaddr's netmask field: bits (24) or a dotted netmask (255.255.255.0)."""
    if text.isdigit():
        n = int(text)
        return n if 0 <= n <= 32 else None
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{text}").prefixlen
    except ValueError:
        return None


def _vip(arg: str, loc: str, col: Collector, v6: bool = False) -> dict | None:
    """`ip[/cidr[/iface[/broadcast]]]` (IPaddr) or `ip[/prefix[/iface]]` (IPv6addr)."""
    parts = arg.split("/")
    if len(parts) > (3 if v6 else 4):
        col.error(loc, f"too many fields in {arg!r}: expected ip[/cidr[/interface[/broadcast]]]")
        return None
    try:
        addr = ipaddress.ip_address(parts[0])
    except ValueError:
        col.error(loc, f"{parts[0]!r} is not an IP address (in {arg!r})")
        return None
    if (addr.version == 6) != v6:
        col.error(loc, f"{addr} is an IPv{addr.version} address; use "
                  f"{'IPv6addr::' if addr.version == 6 else 'IPaddr::'} for it")
        return None
    out: dict = {"kind": "vip", "address": str(addr)}
    if len(parts) > 1 and parts[1]:
        if v6:
            plen = int(parts[1]) if parts[1].isdigit() and int(parts[1]) <= 128 else None
        else:
            plen = _prefixlen(parts[1])
        if plen is None:
            col.error(loc, f"netmask {parts[1]!r} in {arg!r}: expected a prefix length "
                      f"(0..{128 if v6 else 32}){'' if v6 else ' or a dotted netmask'}")
            return None
        out["prefixlen"] = plen
    if len(parts) > 2 and parts[2]:
        iface = parts[2]
        if ":" in iface:
            # IPaddr: `eth0:0` names interface eth0 and the alias label eth0:0
            out["interface"], out["label"] = iface.split(":", 1)[0], iface
        else:
            out["interface"] = iface
    if len(parts) > 3 and parts[3]:
        try:
            out["broadcast"] = str(ipaddress.IPv4Address(parts[3]))
        except ValueError:
            col.error(loc, f"broadcast {parts[3]!r} in {arg!r} is not an IPv4 address")
            return None
    return out


def parse_resource(tok: str, loc: str, col: Collector) -> tuple[dict | None, str | None]:
    """One haresources resource -> (resource data, ldirectord file or "" for a balancer)."""
    if "::" not in tok and _BARE_IPV4.match(tok):
        return _vip(tok, loc, col), None  # a bare address means IPaddr
    name, _, rest = tok.partition("::")
    if name == "IPv6addr":
        # IPv6 addresses contain "::", so IPv6addr takes the whole rest as its one argument
        return (_vip(rest, loc, col, v6=True) if rest else _missing(name, loc, col)), None
    args = rest.split("::") if rest else []
    if name in VIP_SCRIPTS:
        if ":" in rest.split("/")[0]:
            col.error(loc, f"{rest.split('/')[0]} is an IPv6 address; use IPv6addr:: for it")
            return None, None
        if len(args) != 1 or not args[0]:
            col.error(loc, f"{name} takes one argument: `{name}::10.0.0.10/24/eth0`")
            return None, None
        return _vip(args[0], loc, col), None
    if name == "ldirectord":
        if len(args) > 1:
            col.error(loc, "ldirectord takes at most one argument, its configuration file")
            return None, None
        return {"kind": "balancer"}, (args[0] if args else "")
    if not name:
        col.error(loc, f"resource {tok!r} has no script name before '::'")
        return None, None
    if "/" in name:
        col.error(loc, f"resource script {name!r}: name a script in resource.d or /etc/init.d, not a path")
        return None, None
    return {"kind": "script", "name": name, "args": args}, None


def _missing(name: str, loc: str, col: Collector) -> None:
    col.error(loc, f"{name} needs an address: `{name}::2001:db8::10/64/eth0`")
    return None


def _group_name(first: dict) -> str:
    if first["kind"] == "vip":
        return first["address"]
    if first["kind"] == "balancer":
        return "ldirectord"
    return first["name"]


def parse_haresources(text: str, name: str, col: Collector, smap,
                      nodes: list[str]) -> tuple[list[dict], list[tuple[str, str]]]:
    """Return (groups, balancer references as (ldirectord file or "", where))."""
    groups: list[dict] = []
    refs: list[tuple[str, str]] = []
    taken: set[str] = set()
    seen_resources: dict[str, str] = {}
    for tokens in _logical_lines(text):
        (node_tok, node_line), res_toks = tokens[0], tokens[1:]
        loc = where(name, node_line)
        # heartbeat compares node names case-insensitively (it lower-cases them)
        node = node_tok.lower()
        if nodes and node not in nodes:
            col.error(loc, f"{node_tok!r} is not a node declared in ha.cf; nodes are {', '.join(nodes)}")
        if not res_toks:
            col.error(loc, f"node {node_tok} has no resources: expected `{node_tok} resource ...`")
            continue
        resources: list[dict] = []
        res_lines: list[str] = []
        for tok, lineno in res_toks:
            rloc = where(name, lineno)
            res, ref = parse_resource(tok, rloc, col)
            if res is None:
                continue
            key = tok if res["kind"] != "vip" else res["address"]
            if key in seen_resources:
                col.warn(rloc, f"resource {tok} also appears at {seen_resources[key]}: two groups would "
                         "fight over it")
            seen_resources.setdefault(key, rloc)
            if ref is not None:
                refs.append((ref, rloc))
            resources.append(res)
            res_lines.append(rloc)
        if not resources:
            continue
        base = _group_name(resources[0])
        gname, n = base, 1
        while gname in taken:
            n += 1
            gname = f"{base}-{n}"
        taken.add(gname)
        i = len(groups)
        groups.append({"name": gname, "preferred_node": node, "resources": resources})
        smap.set(("groups", i), loc)
        smap.set(("groups", i, "name"), loc)
        smap.set(("groups", i, "preferred_node"), loc)
        for j, rloc in enumerate(res_lines):
            smap.set(("groups", i, "resources", j), rloc)
    return groups, refs
