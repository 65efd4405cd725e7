"""haresources: heartbeat's resource groups, one per line, read as heartbeat's ResourceManager
reads them (heartbeat lib/ResourceManager.in `ipres`, `canonname`, `resource2script`,
`resource2arg`; the IPaddr/IPaddr2 wrappers in resource.d for their argument).

How it works, as ResourceManager's sed script does: everything from `#` on a line is dropped, then a
line ending with `\\` is joined to the next one (the backslash and the line break are removed, so
`foo\\` + `bar` is `foobar`, and a `#` on the continued line is *not* a comment any more: heartbeat
would run it as a resource, so it is an error here). A line is `preferred-node resource ...`; the
node is compared in lower case. A resource is `Script::arg1::arg2`; a token that looks like an IPv4
address means IPaddr; `IPaddr::`/`IPaddr2::` and `IPv6addr::` become vip resources, their argument
split as the wrapper scripts split it (see `_ipaddr_fields`); `ldirectord` or `ldirectord::file`
becomes the built-in balancer; anything else is a resource script, found at run time in
resource.d then /etc/init.d (`hadirector check` warns when it is not there).

Each group needs a name in hadirector: it is taken from the first resource (the address of a vip,
else the script name, "ldirectord" for the balancer), made unique with -2, -3... in file order.
"""

from __future__ import annotations

import ipaddress
import re

from ..errors import Collector
from ._common import where

VIP_SCRIPTS = ("IPaddr", "IPaddr2")
# ResourceManager isip(): the shell pattern [0-9]*.[0-9]*.[0-9]*.[0-9]* (a digit first, three dots)
_ISIP = re.compile(r"^[0-9].*\.[0-9].*\.[0-9].*\.[0-9]")


def _logical_lines(lines: list[str]) -> list[list[tuple[str, int]]]:
    """ResourceManager ipres(): `s%#.*%%`, then `:a; /\\$/N; s/\\\n//; ta` (join a line ending in a
    backslash with the next, whose `#` is no longer stripped). Each logical line as (token, line of
    the token's first character)."""
    out: list[list[tuple[str, int]]] = []
    i = 0
    while i < len(lines):
        text = lines[i].split("#", 1)[0]
        owners = [i + 1] * len(text)  # physical line of each character
        while text.endswith("\\") and i + 1 < len(lines):
            text, owners = text[:-1], owners[:-1]
            i += 1
            text += lines[i]
            owners += [i + 1] * len(lines[i])
        if text.endswith("\\"):  # a backslash on the last line joins nothing
            text, owners = text[:-1], owners[:-1]
        i += 1
        toks = [(m.group(0), owners[m.start()]) for m in re.finditer(r"[^ \t]+", text)]
        if toks:
            out.append(toks)
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


def _ipaddr_fields(arg: str) -> tuple[str, str, str, str, str]:
    """The IPaddr and IPaddr2 wrappers (resource.d/IPaddr, heartbeat resources/heartbeat/IPaddr.in):
    BASEIP is up to the first `/`; then `s%^BASEIP/*%%` and `s%^NETMASK/*%%` drop the field *and
    every slash after it*, so repeated slashes collapse (`ip//8/eth0` is ip, 8, eth0; `ip//eth0` is
    ip with netmask eth0). A third field that starts with a digit is the broadcast address, not an
    interface. Returns (ip, netmask, nic, broadcast, what is left over and ignored)."""
    base = arg.split("/", 1)[0]
    rest = arg[len(base):].lstrip("/")
    netmask = nic = bcast = ""
    if rest:
        netmask = rest.split("/", 1)[0]
        rest = rest[len(netmask):].lstrip("/")
        nic = rest.split("/", 1)[0]
        if nic[:1].isdigit():
            bcast, nic = nic, ""
            rest = rest[len(bcast):]
        elif nic:
            rest = rest[len(nic):].lstrip("/")
            bcast = rest.split("/", 1)[0]
            rest = rest[len(bcast):]
        else:
            rest = ""
    return base, netmask, nic, bcast, rest.strip("/")


def _vip(arg: str, loc: str, col: Collector, script: str = "IPaddr") -> dict | None:
    """IPaddr/IPaddr2 `ip[/netmask[/nic[:label]][/broadcast]]`, or IPv6addr `ip[/prefix[/nic]]`."""
    v6 = script == "IPv6addr"
    if v6:
        parts = arg.split("/")
        ip, netmask, nic, bcast, extra = parts[0], (parts[1] if len(parts) > 1 else ""), \
            (parts[2] if len(parts) > 2 else ""), "", "/".join(parts[3:])
    else:
        ip, netmask, nic, bcast, extra = _ipaddr_fields(arg)
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        col.error(loc, f"{ip!r} is not an IP address (in {arg!r})")
        return None
    if (addr.version == 6) != v6:
        col.error(loc, f"{addr} is an IPv{addr.version} address; use "
                  f"{'IPv6addr::' if addr.version == 6 else 'IPaddr::'} for it")
        return None
    if extra:
        col.warn(loc, f"{script}::{arg}: the wrapper script ignores {extra!r} after the "
                 f"{'interface' if v6 else 'broadcast address'}, and so does hadirector")
    out: dict = {"kind": "vip", "address": str(addr)}
    if netmask:
        if v6:
            plen = int(netmask) if netmask.isdigit() and int(netmask) <= 128 else None
        else:
            plen = _prefixlen(netmask)
        if plen is None:
            hint = ("; IPaddr collapses repeated slashes, so the field after the address is always the "
                    "netmask" if "//" in arg and not v6 else "")
            col.error(loc, f"netmask {netmask!r} in {arg!r}: expected a prefix length "
                      f"(0..{128 if v6 else 32}){'' if v6 else ' or a dotted netmask'}{hint}")
            return None
        out["prefixlen"] = plen
    if nic:
        if ":" in nic and not v6:
            # IPaddr: `eth0:0` names interface eth0 and the alias label eth0:0
            out["interface"], out["label"] = nic.split(":", 1)[0], nic
        else:
            out["interface"] = nic
    if bcast:
        try:
            out["broadcast"] = str(ipaddress.IPv4Address(bcast))
        except ValueError:
            col.error(loc, f"broadcast {bcast!r} in {arg!r} is not an IPv4 address")
            return None
    return out


def parse_resource(tok: str, loc: str, col: Collector) -> tuple[dict | None, str | None]:
    """One haresources resource -> (resource data, ldirectord file or "" for a balancer)."""
    if "::" not in tok and _ISIP.match(tok):
        return _vip(tok, loc, col), None  # canonname(): an address means IPaddr::address
    name, _, rest = tok.partition("::")  # resource2script: up to the first ::
    if name == "IPv6addr":
        if not rest:
            return _missing(name, loc, col), None
        if "::" in rest:
            # resource2arg turns every :: into a space: the wrapper gets two arguments and fails
            col.warn(loc, f"heartbeat's ResourceManager splits resource arguments at '::', so IPv6addr would "
                     f"get {' '.join(rest.split('::'))!r} and fail; hadirector reads the address whole. "
                     "Heartbeat needs the address written without '::'")
        return _vip(rest, loc, col, "IPv6addr"), None
    args = rest.split("::") if rest else []  # resource2arg: the rest, split at ::
    if name in VIP_SCRIPTS:
        if ":" in rest.split("/")[0]:
            col.error(loc, f"{rest.split('/')[0]} is an IPv6 address; use IPv6addr:: for it")
            return None, None
        if len(args) != 1 or not args[0]:
            col.error(loc, f"{name} takes one argument: `{name}::10.0.0.10/24/eth0`")
            return None, None
        return _vip(args[0], loc, col, name), None
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


def parse_haresources(lines: list[str], name: str, col: Collector, smap,
                      nodes: list[str]) -> tuple[list[dict], list[tuple[str, str]]]:
    """Return (groups, balancer references as (ldirectord file or "", where))."""
    groups: list[dict] = []
    refs: list[tuple[str, str]] = []
    taken: set[str] = set()
    seen_resources: dict[str, str] = {}
    for tokens in _logical_lines(lines):
        (node_tok, node_line), res_toks = tokens[0], tokens[1:]
        loc = where(name, node_line)
        # ipres: awk tolower($1); heartbeat's own check (config.c parse_ha_resources) looks the
        # node up the same way
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
            if "#" in tok:
                col.error(rloc, f"{tok!r} on a continued line: heartbeat strips comments before it joins "
                          "lines ending in \\, so it would run this as a resource; put the comment on the "
                          "group's first line or remove it")
                continue
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
