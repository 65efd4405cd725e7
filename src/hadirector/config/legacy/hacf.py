"""ha.cf, heartbeat 3's main configuration file, read the way heartbeat 3.0.6 reads it
(heartbeat/config.c parse_config, add_option, the set_* handlers and init_config; the HBcomm media
plugins in lib/plugins/HBcomm).

How it works, as in parse_config: leading white space is skipped, everything from `#` is a
comment, the first word is the directive (`udp` is read as `bcast`, heartbeat's
DIRTYALIASKLUDGE). Then one of three things happens:
- option directives (config.c Directives[]: node, keepalive, udpport, ...) and the option-style
  media (bcast, serial, ping, ping6) take values separated by white space or commas, and each value
  is applied in turn, as add_option() is called once per value (`keepalive 1 2` sets 2);
- whole-line media (ucast, ucast6, mcast, mcast6, ping_group) and whole-line directives
  (WLdirectives[]: respawn, failfast, apiauth, stonith, stonith_host) read the rest of the line;
- anything else is an error ("Illegal directive").
Each problem is reported as `ha.cf:LINE` and reading goes on, so one run shows them all.

Values are checked as heartbeat's handlers check them (durations as cl_get_msec reads them: seconds,
`ms` or `us`; booleans as cl_str_to_boolean), and what init_config checks after reading is checked
in `finish` or, for the timing rules, in the model (its key-path errors come back to the directive's
line through the source map). Facts about the machine that heartbeat checks when it reads the file
(an interface or serial port that must exist, a respawn user and command) are left to
`config.machine`, because `hadirector check` may run on another machine than the director.

Directives hadirector does not act on are accepted with a warning that says what it does instead.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket

from ..errors import Collector
from ._common import atoi, heartbeat_bool, heartbeat_msec, resolve_address, suggest, where

WHITESPACE = " \t\n\r\f"  # heartbeat.h WHITESPACE
_DELIMS = re.compile(r"[, \t\n\r\f]+")  # heartbeat.h DELIMS: ", \t\n\r\f"

DEFAULT_UDPPORT = 694  # heartbeat UDPPORT; /etc/services `ha-cluster`
DEFAULT_BAUD = 19200  # heartbeat Directives[] baud default
# config.c StringToBaud: the serial speeds it accepts
BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800)

# Option directives hadirector maps into the model; each has a d_<name> method.
MAPPED = ("node", "keepalive", "deadtime", "warntime", "initdead", "udpport", "baud", "watchdog",
          "auto_failback", "nice_failback", "logfile", "debugfile", "logfacility", "debug", "cluster",
          "autojoin", "crm", "pacemaker", "realtime", "rtprio")
# Media: option-style ones take one device or host per value, whole-line ones parse the line.
OPTION_MEDIA = ("bcast", "serial", "ping", "ping6")
LINE_MEDIA = ("ucast", "ucast6", "mcast", "mcast6", "ping_group")
# config.c WLdirectives[] (respawn and failfast share add_client_child_base)
WHOLE_LINE = ("respawn", "failfast", "apiauth", "stonith", "stonith_host")
# hadirector's own whole-line directives (heartbeat never had them)
OWN_WHOLE_LINE = ("quorum_device",)
QUORUM_DEVICE_USAGE = ("`quorum_device qnetd HOST[:PORT] [algorithm ffsplit|lms] [tls on|off] "
                       "[heartbeat MSEC] [ca FILE] [cert FILE] [key FILE]`")


def _bool(v: str) -> str | None:
    return None if heartbeat_bool(v) is not None else f"expected a boolean (on/off, yes/no, true/false, 1/0), got {v!r}"


def _int_range(lo: int, hi: int):
    def check(v: str) -> str | None:
        n = atoi(v)
        n = 0 if n is None else n  # atoi("x") is 0, which heartbeat then range-checks
        return None if lo <= n <= hi else f"expected a number {lo}..{hi}, got {v!r}"
    return check


def _positive_int(v: str) -> str | None:
    n = atoi(v)
    return None if n is not None and n > 0 else f"expected a number above zero, got {v!r}"


def _positive_msec(v: str) -> str | None:
    ms = heartbeat_msec(v)
    return None if ms is not None and ms > 0 else f"expected a time above zero (seconds, or N ms), got {v!r}"


def _msec(v: str) -> str | None:
    return None if heartbeat_msec(v) is not None else f"expected a time (seconds, or N ms), got {v!r}"


def _choice(*words: str, nocase: bool = False):
    def check(v: str) -> str | None:
        ok = v.lower() in words if nocase else v in words
        return None if ok else f"expected {' or '.join(words)}, got {v!r}"
    return check


def _any(_v: str) -> str | None:
    return None


def _env(v: str) -> str | None:
    # config.c set_env: the name before `=` must not be empty
    return None if v.split("=", 1)[0] else f"expected NAME=VALUE, got {v!r}"


# Directives heartbeat 3 knows that hadirector accepts without acting on them: (the check of the
# value heartbeat's handler makes, what hadirector does instead).
IGNORED: dict[str, tuple] = {
    "hopfudge": (_int_range(0, 255), "hadirector sends heartbeats straight to each peer; there are no hops to count"),
    "deadping": (_msec, "a ping node is down after `deadtime` without replies, like a cluster node"),
    "hbgenmethod": (_choice("file", "time"), "hadirector keeps its generation number in its state directory"),
    "msgfmt": (_choice("classic", "netstring"), "hadirector has its own wire format"),
    "use_logd": (_bool, "hadirector logs by itself: standard error, plus logfile, debugfile and logfacility"),
    "conn_logd_time": (_positive_msec, "hadirector does not use heartbeat's logging daemon"),
    "use_apphbd": (_bool, "hadirector does not register with apphbd"),
    "log_badpack": (_bool, "bad packets are always counted, and logged at a limited rate"),
    "syslogmsgfmt": (_bool, "log file lines have hadirector's own format"),
    "coredumps": (_bool, "core dumps follow the system's settings"),
    "coreroot": (lambda v: None if v.startswith("/") else f"expected an absolute directory, got {v!r}",
                 "core dumps follow the system's settings"),
    "compression": (_choice("zlib", "bz2"), "heartbeat messages are small and never compressed"),
    "compression_threshold": (_positive_int, "heartbeat messages are small and never compressed"),
    "traditional_compression": (_bool, "heartbeat messages are small and never compressed"),
    "max_rexmit_delay": (_positive_int, "hadirector does not retransmit heartbeat messages"),
    "memreserve": (_positive_int, "hadirector does not preallocate memory (with realtime on, all it maps is "
                   "locked as it is mapped)"),
    "uuidfrom": (_choice("file", "nodename"), "nodes are known by name, without a uuid"),
    "env": (_env, "hadirector sets no environment variables for the commands it runs"),
    "crm_daemon_dir": (_any, "Pacemaker is not used: resources come from haresources"),
    "crmd_spawns_pengine": (_bool, "Pacemaker is not used: resources come from haresources"),
    "record_config_changes": (_bool, "Pacemaker is not used: resources come from haresources"),
    "record_pengine_inputs": (_bool, "Pacemaker is not used: resources come from haresources"),
    "enable_config_writes": (_bool, "Pacemaker is not used: resources come from haresources"),
    "quorum_server": (_any, "hadirector has no quorum server; the declared nodes decide"),
}

# heartbeat media plugins hadirector has no transport for (not shipped in Debian's heartbeat 3
# either, where they are "Illegal directive").
UNSUPPORTED_MEDIA = {
    "hbaping": "Fibre Channel HBA pings",
    "rds": "RDS sockets",
    "openais": "the openais messaging layer",
    "tipc": "TIPC sockets",
}

KNOWN = set(MAPPED) | set(OPTION_MEDIA) | set(LINE_MEDIA) | set(WHOLE_LINE) | set(IGNORED) | set(UNSUPPORTED_MEDIA) \
    | set(OWN_WHOLE_LINE)

# heartbeat's own API clients: they talk to heartbeat's client API, which hadirector does not
# offer, so a `respawn` of them would fail forever. ipfail's job (move resources to the node that
# reaches more ping nodes) is done by hadirector's arbiter.
HEARTBEAT_CLIENTS = {"ipfail", "ccm", "cib", "crmd", "lrmd", "stonithd", "attrd", "pingd", "mgmtd",
                     "dopd", "hbagent"}

# heartbeat API clients whose job hadirector does itself: `respawn` of one is replaced by that
# built-in behaviour (a warning says which)
REPLACED_CLIENTS = {
    "ipfail": "its ping / ping_group connectivity score moves the groups to the node that reaches more "
              "ping nodes (ipfail's rule)",
    "dopd": "dopd keeps a silent peer's DRBD data from being used; hadirector's fencing (stonith, "
            "stonith_host, [cluster.fencing]), when configured, powers a silent peer off before taking "
            "its groups over",
    "ifcheckd": "it watches each heartbeat link of each peer and the ping nodes itself (`hadirector "
                "status` shows them)",
}

# Directives whose second value replaces the first (a repeat is worth a warning)
SINGLE = {"keepalive", "deadtime", "warntime", "initdead", "udpport", "auto_failback", "nice_failback",
          "logfile", "debugfile", "logfacility", "debug", "cluster", "autojoin", "realtime", "rtprio"}

# cl_syslogfac_str2int (clplumbing cl_syslog.c) over glibc's facilitynames: the names it takes, as
# written ("security" is auth; glibc's internal "mark" is left out: no log goes there)
FACILITIES = ("kern", "user", "mail", "daemon", "auth", "security", "syslog", "lpr", "news", "uucp", "cron",
              "authpriv", "ftp", *(f"local{i}" for i in range(8)), "none")

# config.c set_pcmk_support: the values of crm / pacemaker besides the booleans
PACEMAKER_MODES = ("minimal", "manual", "respawn", "ccm-only", "valgrind")


def _heartbeat_initdead(deadtime: int) -> int:
    """heartbeat init_config: no initdead means deadtime when deadtime > 10 s, 12 s when it is below
    6 s, else twice deadtime."""
    if deadtime > 10_000:
        return deadtime
    if deadtime < 6000:
        return 12_000
    return 2 * deadtime


def _lineno(loc: str) -> str:
    return loc.rsplit(":", 1)[1]


class _HaCf:
    def __init__(self, name: str, col: Collector, smap, local_node: str | None) -> None:
        self.name, self.col, self.smap = name, col, smap
        self.local_node = local_node
        self.cluster: dict = {}
        self.nodes: list[str] = []
        self.node_lines: list[str] = []
        self.timing: dict[str, int] = {}
        self.timing_where: dict[str, str] = {}
        self.deadping: tuple[int, str] | None = None
        self.links: list[dict] = []
        self.link_where: list[dict] = []  # per link: {(): first line, ("peers", j): line, ...}
        self.ucast_index: dict[tuple[str, int], int] = {}
        self.udpport: tuple[int, str] | None = None  # (port, line) in effect
        self.baud: tuple[int, str] | None = None
        self.baud_line: str | None = None
        # heartbeat's media plugins read udpport / baud once, when the first line of their kind is
        # read (bcast_init, ucast_init, ucast6 get_udpport, serial_init at plugin load): what each
        # kind latched, as (value, line of the setting or None, first media line of the kind)
        self.latched: dict[str, tuple[int, str | None, str]] = {}
        self.ping: list[str] = []
        self.ping_where: list[str] = []
        self.ping_groups: dict[str, dict] = {}
        self.ping_group_where: dict[str, tuple[str, list[str]]] = {}
        self.respawn: list[dict] = []
        self.fence_devices: list[dict] = []  # stonith / stonith_host lines
        self.fence_where: list[str] = []
        self.respawn_where: list[str] = []
        self.logging: dict = {}
        self.seen: dict[str, str] = {}
        self.autojoin: tuple[str, str] | None = None
        self.failback_bool = False  # heartbeat's nice_failback flag: an auto_failback on/off was read
        self.pacemaker: tuple[str, str] | None = None  # (directive, line) of crm / pacemaker
        self.pacemaker_on = False
        self.use_logd: tuple[bool, str] | None = None
        self.apiauth: dict[str, str] = {}
        self.quorum_device: tuple[dict, str] | None = None  # (cluster.quorum.device, line)
        self.realtime: dict = {}  # cluster.realtime: enabled (realtime), priority (rtprio)
        self.realtime_where: dict[str, str] = {}

    # ------------------------------------------------------------------ line dispatch

    def line(self, lineno: int, raw: str) -> None:
        text = raw.lstrip(WHITESPACE)
        text = re.split(r"[#\r\n]", text, maxsplit=1)[0]
        if not text:
            return
        loc = where(self.name, lineno)
        directive = re.match(r"[^ \t\n\r\f]*", text).group(0)
        rest = text[len(directive):]
        if directive == "udp":
            # config.c parse_config DIRTYALIASKLUDGE: "directive 'udp' replaced by 'bcast'"
            self.col.warn(loc, "`udp` is heartbeat's old name for `bcast`; read as bcast")
            directive = "bcast"
        if directive not in KNOWN:
            self.col.error(loc, f"unknown directive {directive!r}{suggest(directive, KNOWN)}")
            return
        if directive in UNSUPPORTED_MEDIA:
            self.col.error(loc, f"heartbeat medium {directive} ({UNSUPPORTED_MEDIA[directive]}) is not "
                           "supported by hadirector; use ucast, mcast, bcast or serial")
            return
        rest = rest.lstrip(", \t\n\r\f")  # parse_config skips DELIMS after the directive
        if directive in LINE_MEDIA or directive in WHOLE_LINE or directive in OWN_WHOLE_LINE:
            getattr(self, "d_" + directive)(rest.rstrip(WHITESPACE), loc)
            return
        values = [v for v in _DELIMS.split(rest) if v]
        if not values:
            # parse_config calls add_option once per value: a bare directive does nothing
            self.col.warn(loc, f"{directive} has no value; heartbeat ignores the line, and so does hadirector")
            return
        if directive in SINGLE:
            if directive in self.seen:
                self.col.warn(loc, f"{directive} is set again (first at line {_lineno(self.seen[directive])}); "
                              "the later value wins, as in heartbeat")
            elif len(values) > 1:
                self.col.warn(loc, f"{directive} has {len(values)} values; heartbeat applies each in turn, "
                              f"so the last ({values[-1]}) wins, and so does hadirector")
        self.seen.setdefault(directive, loc)
        if directive in IGNORED:
            self._ignored(directive, values, loc)
            return
        handler = getattr(self, "d_" + directive)
        for v in values:
            handler(v, loc)

    def _ignored(self, directive: str, values: list[str], loc: str) -> None:
        check, reason = IGNORED[directive]
        bad = [msg for msg in map(check, values) if msg]
        if bad:
            self.col.error(loc, f"{directive}: {bad[0]}")
            return
        if directive == "deadping":
            ms = heartbeat_msec(values[-1])
            self.deadping = (ms, loc)
        if directive == "crm_daemon_dir" and not self.pacemaker:
            # config.c set_crm_daemon_dir tests fail_if_after_pacemaker() the wrong way round: it fails
            # when no crm/pacemaker directive came before it (heartbeat 3.0.6 refuses the file)
            self.col.error(loc, "crm_daemon_dir before any crm/pacemaker directive: heartbeat 3.0.6 refuses it "
                           "there (its set_crm_daemon_dir check is inverted); it is not used by hadirector, "
                           "remove it")
            return
        if directive == "crmd_spawns_pengine" and self.pacemaker:
            self.col.error(loc, f"crmd_spawns_pengine must come before the {self.pacemaker[0]} directive "
                           f"(line {_lineno(self.pacemaker[1])}), as heartbeat requires")
            return
        if directive == "use_logd":
            self.use_logd = (bool(heartbeat_bool(values[-1])), loc)
        self.col.warn(loc, f"{directive} is accepted but not acted on: {reason}")

    # ------------------------------------------------------------------ nodes and timing

    def d_node(self, v: str, loc: str) -> None:
        # config.c add_node lower-cases node names (`uname -n` is compared the same way)
        name = v.lower()
        if name in self.nodes:
            # heartbeat adds the node again without complaint; it is one node
            self.col.warn(loc, f"node {name!r} is declared again (first at {self.node_lines[self.nodes.index(name)]}); "
                          "read once")
            return
        self.nodes.append(name)
        self.node_lines.append(loc)

    def _timing(self, key: str, v: str, loc: str, minimum: int, what: str) -> None:
        # config.c set_keepalive_ms (> 0), set_deadtime_ms and set_initial_deadtime_ms (>= 0),
        # set_warntime_ms (> 0), all through cl_get_msec
        ms = heartbeat_msec(v)
        if ms is None:
            hint = (f"; heartbeat knows seconds (`{v[:-1]}`) and milliseconds (`{v[:-1]}000ms`), not `s`"
                    if re.fullmatch(r"\d+(\.\d+)?s", v) else "")
            self.col.error(loc, f"{key}: expected a time in seconds, or N ms or N us, got {v!r}{hint}")
            return
        if ms < minimum:
            self.col.error(loc, f"{key} must be {what}, got {v}")
            return
        self.timing[key] = ms
        self.timing_where[key] = loc

    def d_keepalive(self, v: str, loc: str) -> None:
        self._timing("keepalive", v, loc, 1, "more than zero")

    def d_deadtime(self, v: str, loc: str) -> None:
        self._timing("deadtime", v, loc, 0, "zero or more")

    def d_warntime(self, v: str, loc: str) -> None:
        self._timing("warntime", v, loc, 1, "more than zero")

    def d_initdead(self, v: str, loc: str) -> None:
        self._timing("initdead", v, loc, 0, "zero or more")

    # ------------------------------------------------------------------ udpport, baud

    def d_udpport(self, v: str, loc: str) -> None:
        # config.c set_udpport: atoi(value) must be above zero; the plugins read it with %d
        port = atoi(v)
        if port is None or port <= 0:
            self.col.error(loc, f"udpport: expected a port number 1..65535, got {v!r}")
            return
        if port > 65535:
            # heartbeat would take it and send to the port modulo 65536 (ucast6 refuses it)
            self.col.error(loc, f"udpport: {port} is not a port number (1..65535)")
            return
        try:
            service = socket.getservbyport(port, "udp")
        except OSError:
            service = None
        if service and service != "ha-cluster":
            self.col.warn(loc, f"udp port {port} is reserved for service {service!r} in /etc/services")
        self.udpport = (port, loc)
        early = [(kind, first) for kind, (_p, _w, first) in self.latched.items() if kind != "serial"]
        if early:
            kinds = ", ".join(f"{kind} (first at line {_lineno(first)})" for kind, first in early)
            kept = {kind: self.latched[kind][0] for kind, _ in early}
            self.col.warn(loc, f"udpport {port} comes after media lines that use it: {kinds}. heartbeat warns "
                          "and carries on, and each kind of medium keeps the port it read at its first line: "
                          + ", ".join(f"{k} {p}" for k, p in kept.items())
                          + "; hadirector does the same. Put udpport before the media lines")

    def d_baud(self, v: str, loc: str) -> None:
        # config.c set_baudrate: once only ("Baudrate multiply specified", counted before the value
        # is checked), one of StringToBaud's rates
        if self.baud_line is not None:
            self.col.error(loc, f"baud is set twice (first at line {_lineno(self.baud_line)}); heartbeat "
                           "refuses a second baud rate")
            return
        self.baud_line = loc
        n = atoi(v)
        if n not in BAUD_RATES:
            self.col.error(loc, f"baud: expected one of {', '.join(map(str, BAUD_RATES))}, got {v!r}")
            return
        self.baud = (n, loc)
        if "serial" in self.latched:
            first = self.latched["serial"][2]
            self.col.warn(loc, f"baud {n} comes after the serial line at line {_lineno(first)}. heartbeat warns "
                          "and carries on, and its serial links keep the speed read at that first line "
                          f"({self.latched['serial'][0]}); hadirector does the same. Put baud before the "
                          "serial lines")

    def _latch(self, kind: str, loc: str) -> None:
        if kind in self.latched:
            return
        if kind == "serial":
            value, setting = self.baud if self.baud else (DEFAULT_BAUD, None)
        else:
            value, setting = self.udpport if self.udpport else (DEFAULT_UDPPORT, None)
        self.latched[kind] = (value, setting, loc)

    # ------------------------------------------------------------------ media

    def _add_link(self, link: dict, loc: str, latch: str | None) -> int:
        if latch is not None:
            self._latch(latch, loc)
            link["_latch"] = latch
        self.links.append(link)
        self.link_where.append({(): loc})
        return len(self.links) - 1

    def d_serial(self, dev: str, loc: str) -> None:
        if not dev.startswith("/"):
            # serial.c serial_new: "Serial port not full pathname"
            self.col.error(loc, f"serial port {dev!r} is not a full path name (e.g. /dev/ttyS0)")
            return
        if any(lk["kind"] == "serial" and lk["device"] == dev for lk in self.links):
            self.col.warn(loc, f"serial port {dev} is listed again; read once")
            return
        self._add_link({"kind": "serial", "device": dev}, loc, "serial")

    def d_bcast(self, dev: str, loc: str) -> None:
        if any(lk["kind"] == "bcast" and lk["interface"] == dev for lk in self.links):
            self.col.warn(loc, f"bcast on {dev} is listed again; read once")
            return
        self._add_link({"kind": "bcast", "interface": dev}, loc, "bcast")

    def _ucast(self, directive: str, rest: str, loc: str, family: int) -> None:
        # ucast.c / ucast6.c ucast_parse: `ucast DEVICE PEER`, one peer per line
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
        key = (dev, 4 if family == socket.AF_INET else 6)
        if key in self.ucast_index:
            i = self.ucast_index[key]
            self._latch(directive, loc)
            link = self.links[i]
            if peer in link["peers"]:
                self.col.warn(loc, f"{directive} {dev} {peer} repeats an earlier line; read once")
                return
            link["peers"].append(peer)
        else:
            i = self._add_link({"kind": "ucast", "interface": dev, "peers": [peer]}, loc, directive)
            self.ucast_index[key] = i
        self.link_where[i][("peers", len(self.links[i]["peers"]) - 1)] = loc

    def d_ucast(self, rest: str, loc: str) -> None:
        self._ucast("ucast", rest, loc, socket.AF_INET)

    def d_ucast6(self, rest: str, loc: str) -> None:
        self._ucast("ucast6", rest, loc, socket.AF_INET6)

    def _mcast(self, directive: str, rest: str, loc: str, family: int) -> None:
        # mcast.c / mcast6.c mcast_parse: `mcast DEVICE GROUP PORT TTL LOOP`, all five required;
        # the group is a literal multicast address (inet_addr / inet_pton: no host names), the port
        # above zero, the ttl (hops) 0..4, loop 0 or 1
        toks = rest.split()
        ttl_name = "ttl" if family == socket.AF_INET else "hops"
        if len(toks) < 5:
            self.col.error(loc, f"{directive} needs interface, group, port, {ttl_name} and loop: `{directive} eth1 "
                           f"{'239.0.0.1' if family == socket.AF_INET else 'ff02::694'} 694 1 0`")
            return
        dev, group_tok, port_s, ttl_s, loop_s = toks[:5]
        if len(toks) > 5:
            self.col.warn(loc, f"{directive}: heartbeat ignores the words after loop ({' '.join(toks[5:])}), "
                          "and so does hadirector")
        ok = True
        try:
            group = ipaddress.ip_address(group_tok)
        except ValueError:
            group = None
        if group is None or group.version != (4 if family == socket.AF_INET else 6) or not group.is_multicast:
            self.col.error(loc, f"{directive} group {group_tok} is not an IPv{4 if family == socket.AF_INET else 6} "
                           "multicast address")
            ok = False
        port = atoi(port_s)
        if port is None or not 0 < port < 65536:
            self.col.error(loc, f"{directive} port: expected 1..65535, got {port_s!r}")
            ok = False
        ttl = atoi(ttl_s)
        if ttl is None or not 0 <= ttl <= 4:
            self.col.error(loc, f"{directive} {ttl_name}: expected 0..4 (heartbeat's limit), got {ttl_s!r}")
            ok = False
        loop = atoi(loop_s)
        if loop not in (0, 1):
            self.col.error(loc, f"{directive} loop: expected 0 or 1, got {loop_s!r}")
            ok = False
        if not ok:
            return
        link = {"kind": "mcast", "interface": dev, "group": str(group), "port": port, "ttl": ttl,
                "loop": loop == 1}
        if link in self.links:
            self.col.warn(loc, f"{directive} {dev} {group} {port} repeats an earlier line; read once")
            return
        if ttl == 0:
            self.col.warn(loc, f"{directive} {ttl_name} 0 keeps the heartbeats on this host: no peer hears this link")
        self._add_link(link, loc, None)

    def d_mcast(self, rest: str, loc: str) -> None:
        self._mcast("mcast", rest, loc, socket.AF_INET)

    def d_mcast6(self, rest: str, loc: str) -> None:
        self._mcast("mcast6", rest, loc, socket.AF_INET6)

    # ------------------------------------------------------------------ ping nodes

    def _ping(self, directive: str, v: str, loc: str, family: int) -> None:
        addr = resolve_address(v, family, loc, self.col, f"{directive} node")
        if addr is None:
            return
        if addr in self.ping:
            self.col.warn(loc, f"ping node {addr} is listed again; read once")
            return
        self.ping.append(addr)
        self.ping_where.append(loc)

    def d_ping(self, v: str, loc: str) -> None:
        self._ping("ping", v, loc, socket.AF_INET)

    def d_ping6(self, v: str, loc: str) -> None:
        self._ping("ping6", v, loc, socket.AF_INET6)

    def d_ping_group(self, rest: str, loc: str) -> None:
        # ping_group.c ping_group_parse: a name and at least one host
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

    # ------------------------------------------------------------------ whole-line directives

    def _client_child(self, directive: str, rest: str, loc: str) -> tuple[str, str] | None:
        # config.c add_client_child_base: `USER /full/path [args]`. That the user exists and the
        # program is executable is checked against the machine (config.machine), as heartbeat
        # checks it when it reads the file.
        toks = rest.split(None, 1)
        if not toks:
            self.col.error(loc, f"{directive} needs a user and a command: `{directive} hacluster /usr/lib/heartbeat/ipfail`")
            return None
        user, command = toks[0], (toks[1].strip() if len(toks) > 1 else "")
        if not command.startswith("/"):
            self.col.error(loc, f"{directive} command {command.split()[0] if command else '(none)'!r} is not a "
                           "full path name (heartbeat: \"Client child command is not full pathname\")")
            return None
        return user, command

    def d_quorum_device(self, rest: str, loc: str) -> None:
        """hadirector's own: `quorum_device qnetd HOST[:PORT] [algorithm ffsplit|lms] [tls on|off]
        [heartbeat MSEC] [ca FILE] [cert FILE] [key FILE]` -> cluster.quorum.device (a
        corosync-qnetd witness; heartbeat has no such directive)."""
        words = rest.split()
        if self.quorum_device is not None:
            self.col.error(loc, f"quorum_device is given again (first at line {_lineno(self.quorum_device[1])}); "
                           "a cluster has one quorum device")
            return
        if len(words) < 2 or words[0] != "qnetd":
            self.col.error(loc, f"quorum_device needs the model `qnetd` and qnetd's address: {QUORUM_DEVICE_USAGE}")
            return
        device: dict = {"model": "net"}
        target = words[1]
        m = re.fullmatch(r"\[([^\]]+)\](?::(.*))?", target)
        host, port = (m.group(1), m.group(2)) if m else (
            target.rsplit(":", 1) if target.count(":") == 1 else (target, None))
        if not host:
            self.col.error(loc, f"quorum_device: no host in {target!r}: {QUORUM_DEVICE_USAGE}")
            return
        device["host"] = host
        if port is not None:
            if not port.isdigit() or not 1 <= int(port) <= 65535:
                self.col.error(loc, f"quorum_device: port {port!r} is not 1..65535")
                return
            device["port"] = int(port)
        options = words[2:]
        if len(options) % 2:
            self.col.error(loc, f"quorum_device: {options[-1]!r} has no value: {QUORUM_DEVICE_USAGE}")
            return
        for key, value in zip(options[::2], options[1::2]):
            if key == "algorithm":
                if value not in ("ffsplit", "lms"):
                    self.col.error(loc, f"quorum_device: algorithm {value!r} is not ffsplit or lms")
                    return
                device["algorithm"] = value
            elif key == "tls":
                b = heartbeat_bool(value)
                if b is None:
                    self.col.error(loc, f"quorum_device: tls {value!r} is not on or off")
                    return
                device["tls"] = b
            elif key == "heartbeat":
                err = _positive_msec(value)
                if err:
                    self.col.error(loc, f"quorum_device: heartbeat: {err}")
                    return
                device["heartbeat_interval"] = f"{heartbeat_msec(value)}ms"
            elif key in ("ca", "cert", "key"):
                if not value.startswith("/"):
                    self.col.error(loc, f"quorum_device: {key} {value!r} is not an absolute path")
                    return
                device[f"{key}_file"] = value
            else:
                self.col.error(loc, f"quorum_device: unknown option {key!r}{suggest(key, ('algorithm', 'tls', 'heartbeat', 'ca', 'cert', 'key'))}: "
                               f"{QUORUM_DEVICE_USAGE}")
                return
        self.quorum_device = (device, loc)

    def d_respawn(self, rest: str, loc: str) -> None:
        got = self._client_child("respawn", rest, loc)
        if got is None:
            return
        user, command = got
        prog = os.path.basename(command.split()[0])
        if prog in REPLACED_CLIENTS:
            self.col.warn(loc, f"respawn of {prog}: not run; hadirector does its job itself: {REPLACED_CLIENTS[prog]}")
            return
        if prog in HEARTBEAT_CLIENTS:
            self.col.warn(loc, f"respawn of {prog}: it is a client of heartbeat's API, which hadirector does "
                          "not provide, so it is not respawned")
            return
        self.respawn.append({"user": user, "command": command})
        self.respawn_where.append(loc)

    def d_failfast(self, rest: str, loc: str) -> None:
        if self._client_child("failfast", rest, loc) is None:
            return
        self.col.warn(loc, "failfast is accepted but not acted on: hadirector does not run the command, nor "
                      "reboot the node when it exits")
        self.col.note(loc, "failfast", rest)

    def d_apiauth(self, rest: str, loc: str) -> None:
        # config.c set_api_authorization: `apiauth CLIENT [uid=LIST] [gid=LIST]`, one of them at
        # least, each once; one apiauth per client
        toks = rest.split()
        client, ok = (toks[0] if toks else ""), bool(toks)
        seen: set[str] = set()
        for t in toks[1:]:
            kind = t[:4]
            if kind not in ("uid=", "gid=") or kind in seen:
                ok = False
                break
            seen.add(kind)
        if not ok or not seen:
            self.col.error(loc, f"invalid apiauth {rest!r}: expected `apiauth CLIENT uid=USER,... gid=GROUP,...` "
                           "with uid= or gid= (or both)")
            return
        if client in self.apiauth:
            self.col.error(loc, f"apiauth for {client} is given twice (first at {self.apiauth[client]}); "
                           "heartbeat refuses a second one")
            return
        self.apiauth[client] = loc
        self.col.warn(loc, "apiauth is accepted but not acted on: hadirector has no heartbeat client API "
                      "(its control socket is root-only)")

    def d_stonith(self, rest: str, loc: str) -> None:
        # config.c set_stonith_info: `stonith TYPE CONFIGFILE`
        toks = rest.split(None, 1)
        if len(toks) < 2:
            self.col.error(loc, "stonith needs a device type and its configuration file: "
                           "`stonith baytech /etc/ha.d/conf/stonith.baytech`")
            return
        self._fencing(loc, "stonith", rest)

    def d_stonith_host(self, rest: str, loc: str) -> None:
        # config.c set_stonith_host_info: `stonith_host HOST|* TYPE PARAMS...`; heartbeat reads
        # only the lines for its own node (or *)
        toks = rest.split(None, 2)
        if len(toks) < 2:
            self.col.error(loc, "stonith_host needs a host (or *), a device type and its parameters: "
                           "`stonith_host * external/ipmi node2 10.0.0.2 admin secret lan`")
            return
        self._fencing(loc, "stonith_host", rest)

    def _fencing(self, loc: str, directive: str, rest: str) -> None:
        # a fence device run through cluster-glue's `stonith` command (daemon/fencing.py);
        # heartbeat resets the node (stonith.h ST_GENERIC_RESET): action reboot, `-T reset`
        if directive == "stonith":
            typ, cfile = rest.split(None, 1)
            dev = {"kind": "stonith", "type": typ, "config_file": cfile.strip()}
        else:
            host, typ, *params = rest.split(None, 2)
            dev = {"kind": "stonith", "type": typ, "param_text": params[0].strip() if params else ""}
            if host != "*":
                dev["runs_on"] = [host]
        self.fence_devices.append(dev)
        self.fence_where.append(loc)

    # ------------------------------------------------------------------ the rest

    def d_auto_failback(self, v: str, loc: str) -> None:
        # config.c set_auto_failback: a boolean, or legacy (any case)
        b = heartbeat_bool(v)
        if b is None and v.lower() != "legacy":
            self.col.error(loc, f"auto_failback: expected on, off or legacy, got {v!r}")
            return
        self.cluster["auto_failback"] = "legacy" if b is None else ("on" if b else "off")
        self.failback_bool = b is not None
        self.smap.set(("cluster", "auto_failback"), loc)

    def d_nice_failback(self, v: str, loc: str) -> None:
        # config.c set_nice_failback: any boolean value becomes `auto_failback off` when an
        # auto_failback on/off came before it (heartbeat looks at its nice_failback flag, not at
        # the value given), else `auto_failback legacy`
        if heartbeat_bool(v) is None:
            self.col.error(loc, f"nice_failback: expected on or off, got {v!r}")
            return
        value = "off" if self.failback_bool else "legacy"
        self.col.warn(loc, f"nice_failback is obsolete: heartbeat 3 reads `nice_failback {v}` here as "
                      f"`auto_failback {value}`, and so does hadirector; write auto_failback on or off instead")
        self.cluster["auto_failback"] = value
        self.smap.set(("cluster", "auto_failback"), loc)

    def d_realtime(self, v: str, loc: str) -> None:
        # config.c set_realtime: cl_str_to_boolean; on (the default) lets heartbeat.c's
        # cl_make_realtime calls act, off makes them no-ops (cl_disable_realtime)
        b = heartbeat_bool(v)
        if b is None:
            self.col.error(loc, f"realtime: {_bool(v)}")
            return
        self.realtime["enabled"] = b
        self.realtime_where["enabled"] = loc

    def d_rtprio(self, v: str, loc: str) -> None:
        # config.c set_realtime_prio: atoi(value) within sched_get_priority_min..max(SCHED_FIFO);
        # the master control process runs at it (heartbeat.c cl_make_realtime(-1, hb_realtime_prio,
        # ...)), its child processes one below. hadirector is one process: it runs at rtprio.
        bad = _int_range(1, 99)(v)
        if bad:
            self.col.error(loc, f"rtprio: {bad}")
            return
        self.realtime["priority"] = atoi(v)
        self.realtime_where["priority"] = loc

    def d_watchdog(self, v: str, loc: str) -> None:
        if "watchdog" in self.cluster:
            # config.c set_watchdogdev: "Watchdog device multiply specified"
            self.col.error(loc, "watchdog is set twice; heartbeat takes one watchdog device")
            return
        if not v.startswith("/"):
            self.col.error(loc, f"watchdog: expected a device path such as /dev/watchdog, got {v!r}")
            return
        self.cluster["watchdog"] = v
        self.smap.set(("cluster", "watchdog"), loc)

    def _logging(self, key: str, v: str, loc: str) -> None:
        self.logging[key] = v
        self.smap.set(("cluster", "logging", key), loc)

    def d_logfile(self, v: str, loc: str) -> None:
        self._logging("logfile", v, loc)

    def d_debugfile(self, v: str, loc: str) -> None:
        self._logging("debugfile", v, loc)

    def d_logfacility(self, v: str, loc: str) -> None:
        # config.c set_facility -> cl_syslogfac_str2int: lower-case names only
        if v not in FACILITIES:
            self.col.error(loc, f"logfacility {v!r} is not a syslog facility{suggest(v, FACILITIES)}; "
                           f"expected one of {', '.join(FACILITIES)}")
            return
        self._logging("facility", "auth" if v == "security" else v, loc)

    def d_debug(self, v: str, loc: str) -> None:
        # config.c set_debuglevel: atoi(value) in 0..255
        n = atoi(v)
        n = 0 if n is None else n
        if not 0 <= n <= 255:
            self.col.error(loc, f"debug: expected a level 0..255, got {v!r}")
            return
        self.logging["debug"] = n
        self.smap.set(("cluster", "logging", "debug"), loc)

    def d_cluster(self, v: str, loc: str) -> None:
        self.cluster["name"] = v
        self.smap.set(("cluster", "name"), loc)

    def d_autojoin(self, v: str, loc: str) -> None:
        # config.c set_autojoin: none, other or any (any case)
        if v.lower() not in ("none", "other", "any"):
            self.col.error(loc, f"autojoin: expected none, other or any, got {v!r}")
            return
        self.autojoin = (v.lower(), loc)

    def _pacemaker(self, directive: str, v: str, loc: str) -> None:
        # config.c set_pcmk_support (crm is its alias): once only; a boolean or a mode
        if self.pacemaker is not None:
            self.col.error(loc, f"{directive} is given again (first at line {_lineno(self.pacemaker[1])}); "
                           "heartbeat refuses a second crm/pacemaker directive")
            return
        b = heartbeat_bool(v)
        if b is None and v.lower() not in PACEMAKER_MODES:
            self.col.error(loc, f"{directive}: expected on, off or one of {', '.join(PACEMAKER_MODES)}, got {v!r}")
            return
        self.pacemaker = (directive, loc)
        if b is False:
            return  # heartbeat's default, and hadirector's way: haresources manages resources
        self.pacemaker_on = True
        self.col.warn(loc, f"`{directive} {v}`: heartbeat would manage resources with Pacemaker (cib.xml) and "
                      "ignore haresources; hadirector does not read cib.xml and runs the groups in haresources")

    def d_crm(self, v: str, loc: str) -> None:
        self._pacemaker("crm", v, loc)

    def d_pacemaker(self, v: str, loc: str) -> None:
        self._pacemaker("pacemaker", v, loc)

    # ------------------------------------------------------------------ result (init_config)

    def finish(self) -> dict:
        smap, name, col = self.smap, self.name, self.col
        self._autojoin()
        if not self.nodes:
            col.error(name, "no `node` directive: declare every cluster node, e.g. `node "
                      "primarylb` and `node backuplb` (names as `uname -n` prints them)")
        if not self.links:
            col.error(name, "no heartbeat media: add at least one ucast, mcast, bcast or serial line")
        if (self.use_logd is not None and not self.use_logd[0]
                and not any(k in self.logging for k in ("logfile", "debugfile", "facility"))):
            # config.c check_logd_usage
            col.error(self.use_logd[1], "use_logd is off and there is no logfile, debugfile or logfacility: "
                      "heartbeat refuses a configuration that logs nowhere")
        out = dict(self.cluster)
        out["nodes"] = list(self.nodes)
        if self.nodes:
            smap.set(("cluster", "nodes"), self.node_lines[0])
        for i, loc in enumerate(self.node_lines):
            smap.set(("cluster", "nodes", i), loc)

        for i, link in enumerate(self.links):
            kind = link.pop("_latch", None)
            if kind is not None:
                value, setting, _first = self.latched[kind]
                link["baud" if kind == "serial" else "port"] = value
                if setting:
                    smap.set(("cluster", "links", i, "baud" if kind == "serial" else "port"), setting)
            for sub, loc in self.link_where[i].items():
                smap.set(("cluster", "links", i, *sub), loc)
        out["links"] = self.links

        timing = dict(self.timing)
        tw = self.timing_where
        for k, loc in tw.items():
            smap.set(("cluster", "timing", k), loc)
        keepalive = timing.get("keepalive", 1000)
        deadtime = timing.get("deadtime", 30_000)
        if "initdead" not in timing:
            timing["initdead"] = _heartbeat_initdead(deadtime)
        if deadtime <= timing["initdead"] < 10_000:
            col.warn(tw.get("initdead") or tw.get("deadtime") or name,
                     f"initdead is {timing['initdead']} ms: heartbeat warns that it may be too small; it allows "
                     "for a slow network start-up and should be 10 s or more")
        if self.deadping is not None and self.deadping[0] <= 2 * keepalive:
            # init_config: "Ping dead time is too small compared to keeplive"
            col.error(self.deadping[1], f"deadping ({self.deadping[0]} ms) must be more than twice keepalive "
                      f"({keepalive} ms)")
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
        if self.quorum_device is not None:
            device, loc = self.quorum_device
            out["quorum"] = {"device": device}
            smap.set(("cluster", "quorum"), loc)
            smap.set(("cluster", "quorum", "device"), loc)
            for k in device:
                smap.set(("cluster", "quorum", "device", k), loc)
        out["respawn"] = self.respawn
        if self.fence_devices:
            out["fencing"] = {"devices": self.fence_devices}
            for i, loc in enumerate(self.fence_where):
                smap.set(("cluster", "fencing", "devices", i), loc)
                for key in ("type", "config_file", "param_text", "runs_on"):
                    smap.set(("cluster", "fencing", "devices", i, key), loc)
        for i, loc in enumerate(self.respawn_where):
            smap.set(("cluster", "respawn", i), loc)
        if self.logging:
            out["logging"] = self.logging
        if self.realtime:
            # no `realtime` line: heartbeat's default, on (config.c Directives[] KEY_REALTIME "true"),
            # which is the model's default too
            out["realtime"] = dict(self.realtime)
            for key, loc in self.realtime_where.items():
                smap.set(("cluster", "realtime", key), loc)
            smap.set(("cluster", "realtime"), next(iter(self.realtime_where.values())))
            if self.realtime.get("enabled") is False and "priority" in self.realtime:
                col.warn(self.realtime_where["priority"], "rtprio has no effect with `realtime off` "
                         f"(line {_lineno(self.realtime_where['enabled'])}), in heartbeat as in hadirector")
        return out

    def _autojoin(self) -> None:
        """config.c init_config and r1_style_valid: autojoin other/any conflicts with haresources
        resource management (heartbeat refuses it unless crm/pacemaker is on); with `any` and this
        node not declared, heartbeat adds this node ("Current node added to configuration")."""
        if self.autojoin is None or self.autojoin[0] == "none":
            return
        mode, loc = self.autojoin
        if not self.pacemaker_on:
            self.col.error(loc, f"autojoin {mode}: heartbeat refuses autojoin with haresources resource "
                           "management (\"R1 style resource management conflicts with autojoin set\"); "
                           "remove it and declare every node with `node`")
            return
        if mode == "any" and self.local_node and self.local_node.lower() not in self.nodes:
            self.nodes.append(self.local_node.lower())
            self.node_lines.append(loc)
            added = f"; this node ({self.local_node.lower()}) is added to the nodes, as heartbeat adds it"
        else:
            added = ""
        self.col.warn(loc, f"autojoin {mode} is accepted but nodes do not join at run time: hadirector's "
                      "cluster is the nodes declared with `node`, and a node that is not declared is ignored "
                      f"even when it sends with a valid key{added}; declare every node with `node`")


def parse_hacf(lines: list[str], name: str, col: Collector, smap, local_node: str | None = None) -> dict:
    """Parse ha.cf lines into the `cluster` table (without `auth`, which comes from authkeys).
    `local_node` is this node's name (for `autojoin any`, which adds it as heartbeat does)."""
    p = _HaCf(name, col, smap, local_node)
    for lineno, raw in enumerate(lines, 1):
        p.line(lineno, raw)
    return p.finish()
