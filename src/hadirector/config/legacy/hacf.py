"""ha.cf, heartbeat 3's main configuration file, read the way heartbeat reads it
(heartbeat/config.c parse_config and the HBcomm media plugins).

How it works: each line is `directive value...`; leading white space is skipped and everything from
`#` to the end of the line is a comment. Option directives (node, keepalive, bcast, serial, ping,
...) take values separated by white space or commas; the media and "whole line" directives (ucast,
mcast, ping_group, respawn, apiauth, stonith...) read the rest of the line. Every problem is
reported as `ha.cf:LINE` and parsing goes on, so one run shows them all.

What heartbeat checks at read time is checked here too (udpport/baud before the media that use
them, one watchdog, valid baud rates); the timing rules (deadtime > 2 x keepalive, initdead >=
deadtime, warntime) live in the model and come back to the directive's line through the source map.
Directives hadirector does not act on are accepted with a warning; an unknown directive is an error.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import re
import socket

from ..durations import parse_duration_ms
from ..errors import Collector
from ._common import heartbeat_bool, resolve_address, suggest, where

# The media, option and whole-line directives hadirector maps into the model.
MAPPED = {
    "node", "keepalive", "deadtime", "warntime", "initdead", "udpport", "baud",
    "serial", "bcast", "udp", "ucast", "ucast6", "mcast", "mcast6",
    "auto_failback", "nice_failback", "ping", "ping6", "ping_group", "respawn", "watchdog",
    "logfile", "debugfile", "logfacility", "debug", "cluster",
}

# Directives heartbeat 3 knows (config.c Directives[] and WLdirectives[]) that hadirector accepts
# but does not act on, with the reason given in the warning.
IGNORED = {
    "hopfudge": "hop counting belongs to heartbeat's ring protocol",
    "deadping": "ping nodes share the node deadtime in hadirector",
    "rtprio": "hadirector does not ask for a real-time scheduling priority",
    "realtime": "hadirector does not ask for real-time scheduling",
    "hbgenmethod": "heartbeat's generation numbers are not used",
    "normalpoll": "heartbeat's poll(2) replacement is not used",
    "msgfmt": "hadirector has its own wire format",
    "use_logd": "hadirector logs by itself (logfile, debugfile, logfacility)",
    "conn_logd_time": "hadirector does not use heartbeat's logging daemon",
    "use_apphbd": "hadirector does not register with apphbd",
    "log_badpack": "bad packets are always counted and logged rate-limited",
    "syslogmsgfmt": "log file lines have hadirector's own format",
    "coredumps": "core dumps follow the system's settings",
    "coreroot": "core dumps follow the system's settings",
    "compression": "heartbeat messages are never large enough to compress",
    "compression_threshold": "heartbeat messages are never large enough to compress",
    "traditional_compression": "heartbeat messages are never large enough to compress",
    "max_rexmit_delay": "hadirector does not retransmit heartbeat messages",
    "memreserve": "hadirector does not preallocate memory",
    "autojoin": "nodes are the ones declared with `node`",
    "uuidfrom": "nodes are known by name",
    "env": "respawned commands get hadirector's environment",
    "crm": "resources come from haresources",
    "pacemaker": "resources come from haresources",
    "crm_daemon_dir": "Pacemaker is not used",
    "crmd_spawns_pengine": "Pacemaker is not used",
    "record_config_changes": "Pacemaker is not used",
    "record_pengine_inputs": "Pacemaker is not used",
    "enable_config_writes": "Pacemaker is not used",
    "quorum_server": "quorum comes from the declared nodes",
    "apiauth": "hadirector has no heartbeat client API (its control socket is root-only)",
    "stonith": "hadirector does not fence nodes (no STONITH)",
    "stonith_host": "hadirector does not fence nodes (no STONITH)",
    "failfast": "hadirector does not reboot the node when a child exits",
}

# heartbeat media plugins that exist in heartbeat's sources but have no hadirector transport
UNSUPPORTED_MEDIA = {
    "hbaping": "Fibre Channel HBA pings",
    "rds": "RDS sockets",
    "openais": "the openais messaging layer",
}

KNOWN = MAPPED | set(IGNORED) | set(UNSUPPORTED_MEDIA)

# heartbeat StringToBaud (config.c): the serial speeds it accepts
BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800)

# heartbeat's own API clients: they talk to heartbeat's client API, which hadirector does not
# offer, so a `respawn` of them would fail forever. ipfail's job (move resources to the node that
# reaches more ping nodes) is done by hadirector's arbiter.
HEARTBEAT_CLIENTS = {"ipfail", "ccm", "cib", "crmd", "lrmd", "stonithd", "attrd", "pingd", "mgmtd",
                     "dopd", "hbagent"}

SINGLE = {"keepalive", "deadtime", "warntime", "initdead", "udpport", "baud", "auto_failback",
          "nice_failback", "logfile", "debugfile", "logfacility", "debug", "cluster"}  # watchdog: twice is an error

DEFAULT_UDPPORT = 694  # heartbeat UDPPORT; /etc/services `ha-cluster`

_OPTION_SPLIT = re.compile(r"[,\s]+")  # heartbeat DELIMS: ", \t\n\r\f"


def _heartbeat_initdead(deadtime: int) -> int:
    """heartbeat init_config: no initdead means deadtime when deadtime > 10 s, 12 s when it is below
    6 s, else twice deadtime."""
    if deadtime > 10_000:
        return deadtime
    if deadtime < 6000:
        return 12_000
    return 2 * deadtime


class _HaCf:
    def __init__(self, name: str, col: Collector, smap) -> None:
        self.name, self.col, self.smap = name, col, smap
        self.cluster: dict = {}
        self.nodes: list[str] = []
        self.node_lines: list[str] = []
        self.timing: dict[str, int] = {}
        self.timing_where: dict[str, str] = {}
        self.links: list[dict] = []
        self.link_where: list[dict] = []  # per link: {"": first line, ("peers", j): line, ...}
        self.ucast_index: dict[tuple[str, int], int] = {}
        self.udpport: int | None = None
        self.udpport_where: str | None = None
        self.baud: int | None = None
        self.baud_where: str | None = None
        self.first_udp_media: str | None = None  # first ucast/bcast line: they use udpport
        self.first_serial: str | None = None  # first serial line: it uses baud
        self.ping: list[str] = []
        self.ping_where: list[str] = []
        self.ping_groups: dict[str, dict] = {}
        self.ping_group_where: dict[str, tuple[str, list[str]]] = {}
        self.respawn: list[dict] = []
        self.respawn_where: list[str] = []
        self.logging: dict = {}
        self.seen: dict[str, str] = {}

    # ------------------------------------------------------------------ line dispatch

    def line(self, lineno: int, raw: str) -> None:
        text = raw.lstrip(" \t\f\v")
        text = text.split("#", 1)[0].rstrip()
        if not text:
            return
        loc = where(self.name, lineno)
        m = re.match(r"(\S+)\s*(.*)$", text)
        directive, rest = m.group(1), m.group(2).strip()
        if directive == "udp":
            # heartbeat config.c DIRTYALIASKLUDGE
            self.col.warn(loc, "`udp` is heartbeat's old name for `bcast`; read as bcast")
            directive = "bcast"
        if directive not in KNOWN:
            self.col.error(loc, f"unknown directive {directive!r}{suggest(directive, KNOWN)}")
            return
        if directive in UNSUPPORTED_MEDIA:
            self.col.error(loc, f"heartbeat medium {directive} ({UNSUPPORTED_MEDIA[directive]}) is not "
                           "supported by hadirector; use ucast, mcast, bcast or serial")
            return
        if directive in IGNORED:
            self._ignored(directive, rest, loc)
            return
        if directive in SINGLE and directive in self.seen:
            self.col.warn(loc, f"{directive} is set again (first at line {self.seen[directive].rsplit(':', 1)[1]}); "
                          "the later value wins, as in heartbeat")
        self.seen.setdefault(directive, loc)
        getattr(self, "d_" + directive)(rest, loc)

    def _values(self, rest: str) -> list[str]:
        return [v for v in _OPTION_SPLIT.split(rest) if v]

    def _one(self, directive: str, rest: str, loc: str) -> str | None:
        vals = self._values(rest)
        if not vals:
            self.col.error(loc, f"{directive} needs a value")
            return None
        if len(vals) > 1:
            self.col.error(loc, f"{directive} takes one value, got {len(vals)}: {' '.join(vals)}")
            return None
        return vals[0]

    def _ignored(self, directive: str, rest: str, loc: str) -> None:
        if directive in ("crm", "pacemaker"):
            v = heartbeat_bool(rest.split()[0]) if rest.split() else None
            if v is False:
                return  # heartbeat's default, and hadirector's way: haresources manages resources
            self.col.warn(loc, f"`{directive} {rest}`: heartbeat would manage resources with the CRM "
                          "(cib.xml) and ignore haresources; hadirector does not read cib.xml and uses "
                          "haresources")
            return
        self.col.warn(loc, f"{directive} is accepted but not acted on: {IGNORED[directive]}")

    # ------------------------------------------------------------------ nodes and timing

    def d_node(self, rest: str, loc: str) -> None:
        vals = self._values(rest)
        if not vals:
            self.col.error(loc, "node needs at least one node name")
        for v in vals:
            # heartbeat add_node lower-cases node names (`uname -n` is compared the same way)
            name = v.lower()
            if name in self.nodes:
                self.col.error(loc, f"node {name!r} is declared twice (first at "
                               f"{self.node_lines[self.nodes.index(name)]})")
                continue
            self.nodes.append(name)
            self.node_lines.append(loc)

    def _timing(self, key: str, rest: str, loc: str, positive: bool) -> None:
        v = self._one(key, rest, loc)
        if v is None:
            return
        try:
            ms = parse_duration_ms(v)
        except ValueError as exc:
            self.col.error(loc, f"{key}: {exc}")
            return
        if positive and ms <= 0:
            self.col.error(loc, f"{key} must be more than zero, got {v}")
            return
        self.timing[key] = ms
        self.timing_where[key] = loc

    def d_keepalive(self, rest: str, loc: str) -> None:
        self._timing("keepalive", rest, loc, positive=True)

    def d_deadtime(self, rest: str, loc: str) -> None:
        self._timing("deadtime", rest, loc, positive=True)

    def d_warntime(self, rest: str, loc: str) -> None:
        self._timing("warntime", rest, loc, positive=True)

    def d_initdead(self, rest: str, loc: str) -> None:
        self._timing("initdead", rest, loc, positive=False)

    # ------------------------------------------------------------------ media

    def d_udpport(self, rest: str, loc: str) -> None:
        v = self._one("udpport", rest, loc)
        if v is None:
            return
        if not v.isdigit() or not 0 < int(v) < 65536:
            self.col.error(loc, f"udpport: expected a port number 1..65535, got {v!r}")
            return
        port = int(v)
        if self.first_udp_media is not None:
            self.col.error(loc, f"udpport must precede the media lines that use it (ucast/bcast at "
                           f"{self.first_udp_media}), as heartbeat requires")
        try:
            service = socket.getservbyport(port, "udp")
        except OSError:
            service = None
        if service and service != "ha-cluster":
            self.col.warn(loc, f"udp port {port} is reserved for service {service!r} in /etc/services")
        self.udpport, self.udpport_where = port, loc

    def d_baud(self, rest: str, loc: str) -> None:
        v = self._one("baud", rest, loc)
        if v is None:
            return
        if not v.isdigit() or int(v) not in BAUD_RATES:
            self.col.error(loc, f"baud: expected one of {', '.join(map(str, BAUD_RATES))}, got {v!r}")
            return
        if self.first_serial is not None:
            self.col.error(loc, f"baud must precede the serial lines that use it (serial at "
                           f"{self.first_serial}), as heartbeat requires")
        self.baud, self.baud_where = int(v), loc

    def _add_link(self, link: dict, loc: str) -> int:
        self.links.append(link)
        self.link_where.append({(): loc})
        return len(self.links) - 1

    def d_serial(self, rest: str, loc: str) -> None:
        vals = self._values(rest)
        if not vals:
            self.col.error(loc, "serial needs a device such as /dev/ttyS0")
        for dev in vals:
            if not dev.startswith("/"):
                # heartbeat serial.c: "Serial port not full pathname"
                self.col.error(loc, f"serial port {dev!r} is not a full path name (e.g. /dev/ttyS0)")
                continue
            if any(lk["kind"] == "serial" and lk["device"] == dev for lk in self.links):
                self.col.error(loc, f"serial port {dev} is listed twice")
                continue
            self.first_serial = self.first_serial or loc
            self._add_link({"kind": "serial", "device": dev}, loc)

    def d_bcast(self, rest: str, loc: str) -> None:
        vals = self._values(rest)
        if not vals:
            self.col.error(loc, "bcast needs an interface name such as eth1")
        for dev in vals:
            if any(lk["kind"] == "bcast" and lk["interface"] == dev for lk in self.links):
                self.col.error(loc, f"bcast on {dev} is listed twice")
                continue
            self.first_udp_media = self.first_udp_media or loc
            self._add_link({"kind": "bcast", "interface": dev}, loc)

    def _ucast(self, directive: str, rest: str, loc: str, family: int) -> None:
        # heartbeat ucast.c / ucast6.c ucast_parse: `ucast DEVICE PEER`, one peer per line
        toks = rest.split()
        if len(toks) < 2:
            self.col.error(loc, f"{directive} needs an interface and a peer address: "
                           f"`{directive} eth1 {'10.0.0.2' if family == socket.AF_INET else 'fd00::2'}`")
            return
        dev, peer_tok = toks[0], toks[1]
        if len(toks) > 2:
            self.col.warn(loc, f"{directive} takes one peer per line; heartbeat ignores the rest "
                          f"({' '.join(toks[2:])}), and so does hadirector")
        peer = resolve_address(peer_tok, family, loc, self.col, f"{directive} peer")
        if peer is None:
            return
        self.first_udp_media = self.first_udp_media or loc
        key = (dev, 4 if family == socket.AF_INET else 6)
        if key in self.ucast_index:
            i = self.ucast_index[key]
            link = self.links[i]
            if peer in link["peers"]:
                self.col.warn(loc, f"{directive} {dev} {peer} repeats an earlier line; read once")
                return
            link["peers"].append(peer)
        else:
            i = self._add_link({"kind": "ucast", "interface": dev, "peers": [peer]}, loc)
            self.ucast_index[key] = i
        self.link_where[i][("peers", len(self.links[i]["peers"]) - 1)] = loc

    def d_ucast(self, rest: str, loc: str) -> None:
        self._ucast("ucast", rest, loc, socket.AF_INET)

    def d_ucast6(self, rest: str, loc: str) -> None:
        self._ucast("ucast6", rest, loc, socket.AF_INET6)

    def _mcast(self, directive: str, rest: str, loc: str, family: int) -> None:
        # heartbeat mcast.c / mcast6.c: `mcast DEVICE GROUP PORT TTL LOOP`, all five required
        toks = rest.split()
        if len(toks) < 5:
            self.col.error(loc, f"{directive} needs interface, group, port, {'ttl' if family == socket.AF_INET else 'hops'}"
                           f" and loop: `{directive} eth1 "
                           f"{'239.0.0.1' if family == socket.AF_INET else 'ff02::694'} 694 1 0`")
            return
        dev, group_tok, port_s, ttl_s, loop_s = toks[:5]
        if len(toks) > 5:
            self.col.warn(loc, f"{directive}: extra words ignored: {' '.join(toks[5:])}")
        ok = True
        group = resolve_address(group_tok, family, loc, self.col, f"{directive} group")
        if group is None:
            ok = False
        elif not ipaddress.ip_address(group).is_multicast:
            self.col.error(loc, f"{directive} group {group} is not a multicast address")
            ok = False
        if not port_s.isdigit() or not 0 < int(port_s) < 65536:
            self.col.error(loc, f"{directive} port: expected 1..65535, got {port_s!r}")
            ok = False
        if not ttl_s.isdigit() or not 1 <= int(ttl_s) <= 255:
            self.col.error(loc, f"{directive} {'ttl' if family == socket.AF_INET else 'hops'}: "
                           f"expected 1..255, got {ttl_s!r}")
            ok = False
        if loop_s not in ("0", "1"):
            self.col.error(loc, f"{directive} loop: expected 0 or 1, got {loop_s!r}")
            ok = False
        if ok:
            self._add_link({"kind": "mcast", "interface": dev, "group": group, "port": int(port_s),
                            "ttl": int(ttl_s), "loop": loop_s == "1"}, loc)

    def d_mcast(self, rest: str, loc: str) -> None:
        self._mcast("mcast", rest, loc, socket.AF_INET)

    def d_mcast6(self, rest: str, loc: str) -> None:
        self._mcast("mcast6", rest, loc, socket.AF_INET6)

    # ------------------------------------------------------------------ the rest

    def d_auto_failback(self, rest: str, loc: str) -> None:
        v = self._one("auto_failback", rest, loc)
        if v is None:
            return
        b = heartbeat_bool(v)
        if b is None and v.lower() != "legacy":
            self.col.error(loc, f"auto_failback: expected on, off or legacy, got {v!r}")
            return
        self.cluster["auto_failback"] = "legacy" if b is None else ("on" if b else "off")
        self.smap.set(("cluster", "auto_failback"), loc)

    def d_nice_failback(self, rest: str, loc: str) -> None:
        # heartbeat set_nice_failback: `nice_failback on` became `auto_failback off`, off became legacy
        v = self._one("nice_failback", rest, loc)
        if v is None:
            return
        b = heartbeat_bool(v)
        if b is None:
            self.col.error(loc, f"nice_failback: expected on or off, got {v!r}")
            return
        value = "off" if b else "legacy"
        self.col.warn(loc, f"nice_failback is obsolete: read as `auto_failback {value}` as heartbeat "
                      "does; write auto_failback on/off instead")
        self.cluster["auto_failback"] = value
        self.smap.set(("cluster", "auto_failback"), loc)

    def _ping(self, directive: str, rest: str, loc: str, family: int) -> None:
        vals = self._values(rest)
        if not vals:
            self.col.error(loc, f"{directive} needs at least one address")
        for v in vals:
            addr = resolve_address(v, family, loc, self.col, f"{directive} node")
            if addr is None:
                continue
            if addr in self.ping:
                self.col.warn(loc, f"ping node {addr} is listed twice; read once")
                continue
            self.ping.append(addr)
            self.ping_where.append(loc)

    def d_ping(self, rest: str, loc: str) -> None:
        self._ping("ping", rest, loc, socket.AF_INET)

    def d_ping6(self, rest: str, loc: str) -> None:
        self._ping("ping6", rest, loc, socket.AF_INET6)

    def d_ping_group(self, rest: str, loc: str) -> None:
        toks = rest.split()
        if len(toks) < 2:
            self.col.error(loc, "ping_group needs a name and at least one address: "
                           "`ping_group gateways 10.0.0.1 10.0.0.254`")
            return
        gname, addrs = toks[0], []
        for t in toks[1:]:
            a = resolve_address(t, socket.AF_INET, loc, self.col, "ping_group member")
            if a is not None:
                addrs.append(a)
        if not addrs:
            return
        if gname in self.ping_groups:
            first = self.ping_group_where[gname][0]
            self.col.warn(loc, f"ping_group {gname} is declared again (first at {first}); heartbeat "
                          "keeps one ping node of that name, so hadirector merges the addresses into "
                          "one group, up while any member answers")
            group = self.ping_groups[gname]
            for a in addrs:
                if a not in group["addresses"]:
                    group["addresses"].append(a)
                    self.ping_group_where[gname][1].append(loc)
            return
        self.ping_groups[gname] = {"name": gname, "addresses": addrs}
        self.ping_group_where[gname] = (loc, [loc] * len(addrs))

    def d_respawn(self, rest: str, loc: str) -> None:
        # heartbeat add_client_child: `respawn USER /full/path [args]`
        toks = rest.split(None, 1)
        if len(toks) < 2:
            self.col.error(loc, "respawn needs a user and a command: `respawn hacluster /usr/lib/heartbeat/ipfail`")
            return
        user, command = toks[0], toks[1].strip()
        if not command.startswith("/"):
            self.col.error(loc, f"respawn command {command.split()[0]!r} is not a full path name")
            return
        prog = command.split()[0]
        if os.path.basename(prog) in HEARTBEAT_CLIENTS:
            self.col.warn(loc, f"respawn of {os.path.basename(prog)}: it is a client of heartbeat's API, "
                          "which hadirector does not provide, so it is not respawned"
                          + ("; hadirector's ping nodes and arbiter do ipfail's job"
                             if os.path.basename(prog) == "ipfail" else ""))
            return
        try:
            pwd.getpwnam(user)
        except KeyError:
            self.col.warn(loc, f"respawn user {user!r} does not exist on this machine")
        if not os.access(prog, os.X_OK):
            self.col.warn(loc, f"respawn command {prog} is not an executable file on this machine")
        self.respawn.append({"user": user, "command": command})
        self.respawn_where.append(loc)

    def d_watchdog(self, rest: str, loc: str) -> None:
        if "watchdog" in self.cluster:
            # heartbeat set_watchdogdev: "Watchdog device multiply specified"
            self.col.error(loc, "watchdog is set twice; heartbeat takes one watchdog device")
            return
        v = self._one("watchdog", rest, loc)
        if v is None:
            return
        if not v.startswith("/"):
            self.col.error(loc, f"watchdog: expected a device path such as /dev/watchdog, got {v!r}")
            return
        self.cluster["watchdog"] = v
        self.smap.set(("cluster", "watchdog"), loc)

    def _logging(self, directive: str, key: str, rest: str, loc: str) -> None:
        v = self._one(directive, rest, loc)
        if v is None:
            return
        self.logging[key] = v
        self.smap.set(("cluster", "logging", key), loc)

    def d_logfile(self, rest: str, loc: str) -> None:
        self._logging("logfile", "logfile", rest, loc)

    def d_debugfile(self, rest: str, loc: str) -> None:
        self._logging("debugfile", "debugfile", rest, loc)

    def d_logfacility(self, rest: str, loc: str) -> None:
        self._logging("logfacility", "facility", rest, loc)

    def d_debug(self, rest: str, loc: str) -> None:
        v = self._one("debug", rest, loc)
        if v is None:
            return
        if not v.isdigit() or int(v) > 255:
            self.col.error(loc, f"debug: expected a level 0..255, got {v!r}")
            return
        self.logging["debug"] = int(v)
        self.smap.set(("cluster", "logging", "debug"), loc)

    def d_cluster(self, rest: str, loc: str) -> None:
        v = self._one("cluster", rest, loc)
        if v is not None:
            self.cluster["name"] = v
            self.smap.set(("cluster", "name"), loc)

    # ------------------------------------------------------------------ result

    def finish(self) -> dict:
        smap, name = self.smap, self.name
        if not self.nodes:
            self.col.error(name, "no `node` directive: declare every cluster node, e.g. `node "
                           "primarylb` and `node backuplb` (names as `uname -n` prints them)")
        if not self.links:
            self.col.error(name, "no heartbeat media: add at least one ucast, mcast, bcast or serial line")
        out = dict(self.cluster)
        out["nodes"] = list(self.nodes)
        if self.nodes:
            smap.set(("cluster", "nodes"), self.node_lines[0])
        for i, loc in enumerate(self.node_lines):
            smap.set(("cluster", "nodes", i), loc)

        port = self.udpport if self.udpport is not None else DEFAULT_UDPPORT
        baud = self.baud if self.baud is not None else 19200
        for i, link in enumerate(self.links):
            if link["kind"] in ("ucast", "bcast"):
                link["port"] = port
                if self.udpport_where:
                    smap.set(("cluster", "links", i, "port"), self.udpport_where)
            if link["kind"] == "serial":
                link["baud"] = baud
                if self.baud_where:
                    smap.set(("cluster", "links", i, "baud"), self.baud_where)
            for sub, loc in self.link_where[i].items():
                smap.set(("cluster", "links", i, *sub), loc)
        out["links"] = self.links

        timing = dict(self.timing)
        tw = self.timing_where
        for k, loc in tw.items():
            smap.set(("cluster", "timing", k), loc)
        deadtime = timing.get("deadtime", 30_000)
        if "initdead" not in timing:
            timing["initdead"] = _heartbeat_initdead(deadtime)
        # a derived or default value is located at the directive it derives from
        anchor = tw.get("deadtime") or tw.get("keepalive")
        if anchor:
            for k in ("deadtime", "warntime", "initdead"):
                smap.setdefault(("cluster", "timing", k), anchor)
        if timing:
            # the model reads a bare number as seconds: hand it exact milliseconds
            out["timing"] = {k: f"{v}ms" for k, v in timing.items()}

        out["ping"] = list(self.ping)
        for i, loc in enumerate(self.ping_where):
            smap.set(("cluster", "ping", i), loc)
        out["ping_groups"] = list(self.ping_groups.values())
        for i, gname in enumerate(self.ping_groups):
            first, member_lines = self.ping_group_where[gname]
            smap.set(("cluster", "ping_groups", i), first)
            for j, loc in enumerate(member_lines):
                smap.set(("cluster", "ping_groups", i, "addresses", j), loc)
        out["respawn"] = self.respawn
        for i, loc in enumerate(self.respawn_where):
            smap.set(("cluster", "respawn", i), loc)
        if self.logging:
            out["logging"] = self.logging
        return out


def parse_hacf(text: str, name: str, col: Collector, smap) -> dict:
    """Parse ha.cf text into the `cluster` table (without `auth`, which comes from authkeys)."""
    p = _HaCf(name, col, smap)
    for lineno, raw in enumerate(text.splitlines(), 1):
        p.line(lineno, raw)
    return p.finish()
