"""ldirectord.cf, read with the syntax and meaning ldirectord 4.x gives it (ldirectord read_config,
parse_fallback, _ld_read_config_real_resolve, read_emailalert, parse_emailalertstatus).

How it works, as in ldirectord:
- A global directive starts in column 0 (`checktimeout=3`); blank lines and lines whose first
  non-blank character is `#` are skipped. Global lines get no comment stripping.
- `virtual=ip:port`, `virtual=host:service`, `virtual=FWMARK` (and `virtual6=[ip]:port`) start a
  block. The block is the following lines indented by four or more spaces (a tab counts as four);
  in them `#` starts a comment. The first line that is not indented - an empty line too - ends the
  block and is read again as a global line.
- `real=ip[->ip][:port] gate|masq|ipip [weight] ["request", "receive"] [l:N] [u:N]`; a port or
  service name after `:`; `ip->ip` expands an IPv4 range.
- Ports and addresses are resolved once the block is read, because the protocol (tcp, or udp for
  port 53) decides how a service name such as `:http` maps to a port.
- `checktype=N` means N connect checks then a negotiate check ("combined"); `connecttimeout` and
  `timeout` are refused as ldirectord refuses them.
Values not given are left out, so the model's defaults and its global -> virtual inheritance
(`model.INHERITED_KEYS`, as ldirectord's ld_setup does) apply.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket

from ..errors import Collector
from ..model import INHERITED_KEYS
from ._common import resolve_address, suggest, where

SERVICES = ("dns", "ftp", "http", "https", "http_proxy", "imap", "imaps", "ldap", "ldaps", "nntp",
            "mysql", "none", "oracle", "pop", "pops", "radius", "pgsql", "sip", "smtp", "submission",
            "simpletcp")
CHECKTYPES = ("connect", "negotiate", "ping", "off", "on", "external", "external-perl")
ALERT_STATUSES = ("all", "none", "starting", "running", "stopping", "reloading")
METHODS = ("gate", "masq", "ipip")

GLOBAL_KEYS = ("checktimeout", "connecttimeout", "negotiatetimeout", "checkinterval", "checkcount",
               "failurecount", "fallback", "fallback6", "fallbackcommand", "autoreload", "callback",
               "logfile", "execute", "fork", "supervised", "quiescent", "readdquiescent", "emailalert",
               "emailalertfreq", "emailalertstatus", "emailalertfrom", "cleanstop", "smtp",
               "maintenancedir", "virtual", "virtual6")
VIRTUAL_KEYS = ("real", "real6", "request", "receive", "checktype", "checkcommand", "checktimeout",
                "negotiatetimeout", "checkcount", "failurecount", "checkinterval", "checkport", "login",
                "passwd", "database", "secret", "load", "scheduler", "persistent", "schedflags",
                "netmask", "protocol", "ops", "service", "httpmethod", "virtualhost", "fallback",
                "fallback6", "fallbackcommand", "quiescent", "emailalert", "emailalertfreq",
                "emailalertstatus", "monitorfile", "cleanstop", "smtp", "servicename", "comment")

_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)")
_PORT = r"(\d+|[A-Za-z0-9\-_]+)"
_HOST = r"(\d+\.\d+\.\d+\.\d+|[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\])"
# ldirectord _ld_read_config_real_resolve
_REAL = re.compile(rf"^{_HOST}(->{_HOST})?(:{_PORT})?\s+(.*)$")


_CLEANSTOP_NO = ("cleanstop=no is not acted on: hadirector removes its virtual services whenever the balancer "
                 "stops, as with cleanstop=yes (the node giving the group up must not keep forwarding)")


def _yes_no(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


class _Ld:
    def __init__(self, name: str, col: Collector, smap) -> None:
        self.name, self.col, self.smap = name, col, smap
        self.glob: dict = {}
        self.glob_where: dict[str, str] = {}
        self.alerts: dict = {}
        self.alerts_where: dict[str, str] = {}
        self.fork = False
        self.virtuals: list[dict] = []
        self.v_where: list[dict] = []
        self.v_alerts: list[dict] = []
        self.v_checkinterval: list[str] = []
        self.checkcount: tuple[int, str] | None = None
        self.virtual_ids: dict[tuple, str] = {}  # ldirectord get_virtual_id_str -> virtual= line

    # ------------------------------------------------------------------ global lines

    def parse(self, lines: list[str]) -> dict:
        i = 0
        while i < len(lines):
            line = lines[i]
            m = re.match(r"^virtual(6)?\s*=\s*(.*)$", line)
            if m:
                i = self.virtual(lines, i, m.group(1) is not None, m.group(2))
                continue
            i += 1
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            self.global_line(line, where(self.name, i))
        return self.finish()

    def _set(self, key: str, value, loc: str) -> None:
        self.glob[key] = value
        self.glob_where[key] = loc

    def _comment_hint(self, value: str) -> str:
        return (" (ldirectord allows no comment after a global directive)"
                if "#" in value else "")

    def global_line(self, line: str, loc: str) -> None:
        col = self.col
        m = re.match(r"^([A-Za-z_0-9]+)\s*(=\s*(.*))?$", line.rstrip("\r\n"))
        key = m.group(1) if m else None
        value = (m.group(3) or "") if m and m.group(2) is not None else None
        if line[:1].isspace():
            col.error(loc, "indented line outside a virtual= block (an empty line ends a block in "
                      "ldirectord; indent every line of a block, without empty lines)")
            return
        if key == "supervised" and value is None:
            col.warn(loc, "a bare `supervised` means supervised=yes; write supervised=yes")
            self._set("supervised", True, loc)
            return
        if key is None or value is None:
            col.error(loc, f"unknown directive {line.strip()!r}: expected key=value"
                      f"{suggest(key, GLOBAL_KEYS) if key else ''}")
            return
        hint = self._comment_hint(value)
        if key == "checktimeout" or key == "negotiatetimeout":
            n = re.search(r"(\d+)", value)
            if not n or int(n.group(1)) <= 0:
                col.error(loc, f"{key}: expected a number of seconds above zero, got {value!r}{hint}")
                return
            self._set(key, int(n.group(1)), loc)
        elif key == "connecttimeout":
            col.error(loc, "connecttimeout is no longer accepted (ldirectord replaced it with "
                      "negotiatetimeout); use negotiatetimeout")
        elif key == "timeout":
            col.error(loc, "timeout is no longer accepted (ldirectord replaced it with checktimeout "
                      "and negotiatetimeout); use those")
        elif key in ("checkinterval", "failurecount"):
            n = re.search(r"(\d+)", value)
            if not n or int(n.group(1)) == 0:
                col.error(loc, f"{key}: expected a number above zero, got {value!r}{hint}")
                return
            self._set(key, int(n.group(1)), loc)
        elif key == "checkcount":
            n = re.search(r"(\d+)", value)
            if not n or int(n.group(1)) == 0:
                col.error(loc, f"checkcount: expected a number above zero, got {value!r}{hint}")
                return
            col.warn(loc, "checkcount is deprecated in ldirectord; read as failurecount (consecutive "
                     "failed checks before a real server is taken out)")
            self.checkcount = (int(n.group(1)), loc)
        elif key in ("fallback", "fallback6"):
            fb = self.fallback(value, loc, key == "fallback6", virtual_port=None, protocols=("tcp", "udp"))
            if fb is not None:
                self._set(key, fb, loc)
        elif key == "fallbackcommand":
            if not value:
                col.error(loc, "fallbackcommand: no command given")
                return
            self._set("fallbackcommand", value, loc)
        elif key in ("autoreload", "fork", "supervised", "quiescent", "readdquiescent", "cleanstop"):
            b = _yes_no(value)
            if b is None:
                col.error(loc, f"{key} must be 'yes' or 'no', got {value!r}{hint}")
                return
            if key == "fork":
                self.fork = b
            if key == "supervised" and not b:
                col.warn(loc, "supervised=no is not acted on: hadirector's daemon always stays in the foreground "
                         "(run it from systemd or another supervisor)")
            if key == "cleanstop" and not b:
                col.warn(loc, _CLEANSTOP_NO)
            self._set(key, b, loc)
        elif key in ("callback", "logfile"):
            q = re.match(r'^"(.*)"', value)
            if not q:
                col.error(loc, f"{key} must be quoted, as ldirectord requires: {key}=\"{value}\"")
                return
            if key == "logfile":
                col.warn(loc, "logfile is accepted but not acted on: the balancer's events go to hadirector's "
                         "own log (ha.cf logfile, debugfile and logfacility)")
            self._set(key, q.group(1), loc)
        elif key == "execute":
            # ld_read_config: $LD_INSTANCE{$1} = 1, any value
            col.warn(loc, f"execute={value} is accepted but not acted on: hadirector runs one balancer and "
                     "starts no other ldirectord configuration; merge its virtual services into this file")
            if value:
                self.glob.setdefault("execute", []).append(value)
                self.glob_where.setdefault("execute", loc)
        elif key == "maintenancedir":
            if not value:
                col.error(loc, "maintenancedir: no directory given")
                return
            if not os.path.isdir(value):
                col.warn(loc, f"maintenance directory {value} does not exist on this machine")
            self._set("maintenancedir", value, loc)
        elif key in ("emailalert", "emailalertfreq", "emailalertstatus", "emailalertfrom", "smtp"):
            self.alert_directive(key, value, loc, self.alerts, self.alerts_where, hint)
        elif key in VIRTUAL_KEYS:
            col.error(loc, f"{key} belongs in a virtual= block (indent it under the virtual= line)")
        else:
            col.error(loc, f"unknown directive {key!r}{suggest(key, GLOBAL_KEYS)}")

    def alert_directive(self, key: str, value: str, loc: str, alerts: dict, alerts_where: dict,
                        hint: str = "") -> None:
        col = self.col
        if key == "emailalert":
            addr = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
            if not addr:
                col.error(loc, "emailalert: no email address given")
                return
            alerts["to"] = [a.strip() for a in addr.split(",") if a.strip()]
            alerts_where["to"] = loc
        elif key == "emailalertfreq":
            if not re.match(r"^\d+", value):
                col.error(loc, f"emailalertfreq: expected a number of seconds, got {value!r}{hint}")
                return
            alerts["freq"] = int(re.match(r"^\d+", value).group(0))
            alerts_where["freq"] = loc
        elif key == "emailalertstatus":
            words = [w for w in re.split(r"\s*,\s*", value.strip()) if w != ""]
            if not words:
                # parse_emailalertstatus: no state at all is status 0, mail in no state
                alerts["status"], alerts_where["status"] = ["none"], loc
                return
            bad = [w for w in words if w not in ALERT_STATUSES]
            if bad:
                col.error(loc, f"emailalertstatus: {bad[0] if bad else value!r} is not one of "
                          f"{', '.join(ALERT_STATUSES)}{hint}")
                return
            if "none" in words and len(set(words)) > 1:
                col.error(loc, "emailalertstatus: none cannot be combined with other states")
                return
            alerts["status"] = list(dict.fromkeys(words))
            alerts_where["status"] = loc
        elif key == "emailalertfrom":
            if not value:
                col.error(loc, "emailalertfrom: no address given")
                return
            alerts["sender"] = value
            alerts_where["sender"] = loc
        elif key == "smtp":
            m = re.match(r"^([0-9A-Za-z._+\-]+)", value)
            if not m:
                col.error(loc, f"smtp: expected a mail server host name or address, got {value!r}")
                return
            alerts["smtp"] = m.group(1)
            alerts_where["smtp"] = loc

    # ------------------------------------------------------------------ fallback

    def fallback(self, value: str, loc: str, v6: bool, virtual_port, protocols) -> dict | None:
        """ldirectord parse_fallback: `host[:port|:service] [gate|masq|ipip]`, method gate by default."""
        col = self.col
        m = re.match(r"^(\S+)(?:\s+(\S+))?\s*$", value.strip())
        if not m:
            col.error(loc, f"invalid fallback server {value!r}: expected ip[:port] [gate|masq|ipip]")
            return None
        hostport, fwd = m.group(1), m.group(2)
        pm = re.search(rf":{_PORT}$", hostport)
        port_s = pm.group(1) if pm else None
        host = hostport[:pm.start()] if pm else hostport
        if fwd and fwd not in METHODS:
            col.error(loc, f"fallback forwarding method must be gate, masq or ipip, got {fwd!r}")
            return None
        addr = resolve_address(host, socket.AF_INET6 if v6 else socket.AF_INET, loc, col,
                               "fallback server")
        if addr is None:
            return None
        out: dict = {"address": addr, "method": fwd or "gate"}
        if port_s is not None:
            port = None
            for proto in protocols:
                port = self.port(port_s, proto, loc, "fallback server")
                if port is None:
                    return None
            out["port"] = port
        elif virtual_port is not None:
            out["port"] = virtual_port
        return out

    def port(self, text: str, protocol: str, loc: str, what: str) -> int | None:
        """ldirectord ld_getservbyname: a number 0..65535 or a service name from /etc/services."""
        if text.isdigit():
            if int(text) < 65536:
                return int(text)
            self.col.error(loc, f"invalid port {text} for {what}: expected 0..65535")
            return None
        try:
            return socket.getservbyname(text, protocol) if protocol else socket.getservbyname(text)
        except OSError:
            self.col.error(loc, f"invalid port {text!r} for {what}: not a number and not a "
                           f"{protocol + ' ' if protocol else ''}service in /etc/services")
            return None

    # ------------------------------------------------------------------ virtual blocks

    def virtual(self, lines: list[str], i: int, v6: bool, vattr: str) -> int:
        col = self.col
        vline = where(self.name, i + 1)
        kind = "virtual6" if v6 else "virtual"
        host = port_s = None
        fwmark = None
        m4 = re.match(r"^(\d+\.\d+\.\d+\.\d+):([0-9A-Za-z\-_]+)", vattr)
        mh = re.match(r"^([0-9A-Za-z._+\-]+):([0-9A-Za-z\-_]+)", vattr)
        mf = re.match(r"^(\d+)", vattr)
        m6 = re.match(r"^\[([0-9A-Fa-f:]+)\]:([0-9A-Za-z\-_]+)", vattr)
        ok = True
        if m4 and not v6:
            host, port_s = m4.group(1), m4.group(2)
        elif mh:
            host, port_s = mh.group(1), mh.group(2)
        elif mf:
            fwmark = int(mf.group(1))
            if fwmark == 0:
                col.error(vline, "fwmark 0 cannot mark a virtual service: use 1 or more")
                ok = False
            elif vattr.strip() != mf.group(1):
                # ld_read_config tries ip:port, then a bare number: `virtual=10.0.0.1` is fwmark 10
                col.warn(vline, f"virtual={vattr.strip()} is read as firewall mark {fwmark}, as ldirectord reads "
                         "it; write virtual=IP:PORT for an address")
        elif m6 and not v6:
            col.error(vline, "an IPv6 address needs virtual6= (not virtual=)")
            ok = False
        elif m6:
            host, port_s = m6.group(1), m6.group(2)
        else:
            col.error(vline, f"invalid address for virtual server {vattr!r}: expected ip:port, "
                      "host:service or a fwmark number")
            ok = False

        vs: dict = {}
        vw: dict = {(): vline}
        v_alerts: dict = {}
        v_alerts_where: dict = {}
        reals_todo: list[tuple[str, str]] = []
        fallback_todo: tuple[str, str, bool] | None = None
        checkcount: tuple[int, str] | None = None
        protocol = "fwm" if fwmark is not None else ("udp" if port_s in ("53", "domain") else "tcp")
        ci_loc: str | None = None

        j = i + 1
        while j < len(lines):
            raw = lines[j]
            if re.match(r"^\s*#", raw):
                j += 1
                continue
            body = raw.split("#", 1)[0].replace("\t", "    ")
            bm = re.match(r"^ {4,}(.+)$", body)
            if not bm:
                break
            j += 1
            loc = where(self.name, j)
            rcmd = bm.group(1)
            if not rcmd.strip():
                col.error(loc, "a line of only spaces inside a virtual= block: ldirectord rejects it; "
                          "make it empty (which ends the block) or delete it")
                continue
            km = re.match(r"^([A-Za-z_0-9]+)\s*=\s*(.*)$", rcmd)
            if not km:
                col.error(loc, f"unknown directive {rcmd.strip()!r} in a virtual= block: expected key=value")
                continue
            key, value = km.group(1), km.group(2)
            value_s = value.strip()
            if key in ("real", "real6"):
                if (key == "real6") != v6:
                    col.error(loc, f"{key}= cannot be used in a {kind}= block; use "
                              f"{'real6' if v6 else 'real'}=")
                    continue
                reals_todo.append((value, loc))
            elif key in ("request", "receive"):
                q = re.match(r'^"(.*)"', value)
                if not q:
                    col.error(loc, f"{key} must be quoted, as ldirectord requires: {key}=\"{value_s}\"")
                    continue
                if not q.group(1):
                    col.error(loc, f"{key}: empty string")
                    continue
                s = q.group(1)
                if key == "request" and not s.startswith("/"):
                    s = "/" + s  # ldirectord prefixes a request without a leading slash
                vs[key], vw[(key,)] = s, loc
            elif key == "checktype":
                n = re.search(r"(\d+)", value)
                w = re.match(r"^([\w\-]+)", value)
                if n:
                    vs["checktype"], vs["num_connects"] = "combined", int(n.group(1))
                    vw[("checktype",)] = vw[("num_connects",)] = loc
                elif w and w.group(1) in CHECKTYPES:
                    vs["checktype"], vw[("checktype",)] = w.group(1), loc
                else:
                    col.error(loc, f"checktype must be {', '.join(CHECKTYPES)} or a number, got "
                              f"{value_s!r}{suggest(value_s, CHECKTYPES)}")
            elif key in ("checkcommand", "fallbackcommand"):
                q = re.match(r'^"(.*)"', value)
                s = q.group(1) if q else value
                if not s:
                    col.error(loc, f"{key}: no command given")
                    continue
                vs[key], vw[(key,)] = s, loc
            elif key in ("checktimeout", "negotiatetimeout", "failurecount", "checkinterval"):
                n = re.search(r"(\d+)", value)
                if not n or int(n.group(1)) == 0:
                    col.error(loc, f"{key}: expected a number above zero, got {value_s!r}")
                    continue
                vs[key], vw[(key,)] = int(n.group(1)), loc
                if key == "checkinterval":
                    ci_loc = loc
            elif key == "checkcount":
                n = re.search(r"(\d+)", value)
                if not n or int(n.group(1)) == 0:
                    col.error(loc, f"checkcount: expected a number above zero, got {value_s!r}")
                    continue
                col.warn(loc, "checkcount is deprecated in ldirectord; read as failurecount")
                checkcount = (int(n.group(1)), loc)
            elif key == "connecttimeout":
                col.error(loc, "connecttimeout is no longer accepted (ldirectord replaced it with "
                          "negotiatetimeout); use negotiatetimeout")
            elif key == "checkport":
                n = re.search(r"(\d+)", value)
                if not n:
                    col.error(loc, f"checkport: expected a port number, got {value_s!r}")
                elif not 0 < int(n.group(1)) < 65536:
                    col.error(loc, f"checkport must be in 1..65535, got {n.group(1)}")
                else:
                    vs["checkport"], vw[("checkport",)] = int(n.group(1)), loc
            elif key in ("login", "passwd", "database", "secret", "load"):
                q = re.match(r'^"(.*)"', value)
                if not q:
                    col.error(loc, f"{key} must be quoted, as ldirectord requires: {key}=\"{value_s}\"")
                    continue
                if not q.group(1):
                    col.error(loc, f"{key}: empty string")
                    continue
                if key == "load":
                    col.warn(loc, "load is accepted but not acted on: hadirector does not query "
                             "real servers' load")
                    continue
                vs[key], vw[(key,)] = q.group(1), loc
            elif key == "scheduler":
                s = re.search(r"([a-z]+)", value)  # ld_read_config: /([a-z]+)/, unanchored
                if not s:
                    col.error(loc, "invalid scheduler: expected lower-case letters, e.g. wrr")
                    continue
                vs["scheduler"], vw[("scheduler",)] = s.group(1), loc
            elif key == "persistent":
                n = re.search(r"(\d+)", value)
                if not n:
                    col.error(loc, f"persistent: expected a timeout in seconds, got {value_s!r}")
                    continue
                vs["persistent"], vw[("persistent",)] = int(n.group(1)), loc
            elif key == "schedflags":
                s = re.match(r"^(\S+)", value)
                if not s:
                    col.error(loc, "schedflags: no flags given")
                    continue
                vs["schedflags"] = [f for f in s.group(1).split(",") if f]
                vw[("schedflags",)] = loc
            elif key == "netmask":
                if v6:
                    if not value_s.isdigit() or not 1 <= int(value_s) <= 128:
                        col.error(loc, "netmask in a virtual6= block: expected a prefix length 1..128")
                        continue
                elif not re.match(r"^\d+\.\d+\.\d+\.\d+$", value_s):
                    col.error(loc, "netmask: expected dotted quad notation such as 255.255.255.0")
                    continue
                vs["netmask"], vw[("netmask",)] = value_s, loc
            elif key == "protocol":
                p = re.match(r"^(\w+)", value)
                if not p:
                    col.error(loc, "invalid protocol")
                elif fwmark is not None and p.group(1) != "fwm":
                    col.error(loc, "protocol must be fwm for a fwmark virtual service")
                elif fwmark is None and p.group(1) not in ("tcp", "udp"):
                    col.error(loc, f"protocol must be tcp or udp for an address:port virtual service, "
                              f"got {p.group(1)!r}")
                else:
                    protocol = p.group(1)
                    vw[("protocol",)] = loc
            elif key == "ops":
                b = _yes_no(value)
                if b is None:
                    col.error(loc, f"ops must be 'yes' or 'no', got {value_s!r}")
                    continue
                vs["ops"], vw[("ops",)] = b, loc
            elif key == "service":
                s = re.search(r"(\w+)", value)
                if not s or s.group(1) not in SERVICES:
                    col.error(loc, f"service must be one of {', '.join(SERVICES)}, got {value_s!r}"
                              f"{suggest(value_s, SERVICES)}")
                    continue
                vs["service"], vw[("service",)] = s.group(1), loc
            elif key == "httpmethod":
                s = re.search(r"(\w+)", value)
                if not s or s.group(1).upper() not in ("GET", "HEAD"):
                    col.error(loc, f"httpmethod must be GET or HEAD, got {value_s!r}")
                    continue
                vs["httpmethod"], vw[("httpmethod",)] = s.group(1).upper(), loc
            elif key == "virtualhost":
                s = re.match(r'^"?([^"]*)"?', value)
                vs["virtualhost"], vw[("virtualhost",)] = s.group(1).strip(), loc
            elif key in ("fallback", "fallback6"):
                if (key == "fallback6") != v6:
                    col.error(loc, f"{key}= cannot be used in a {kind}= block; use "
                              f"{'fallback6' if v6 else 'fallback'}=")
                    continue
                fallback_todo = (value, loc, v6)
            elif key in ("quiescent", "cleanstop"):
                b = _yes_no(value)
                if b is None:
                    col.error(loc, f"{key} must be 'yes' or 'no', got {value_s!r}")
                    continue
                if key == "cleanstop" and not b:
                    col.warn(loc, _CLEANSTOP_NO)
                vs[key], vw[(key,)] = b, loc
            elif key in ("emailalert", "emailalertfreq", "emailalertstatus", "smtp"):
                self.alert_directive(key, value.rstrip(), loc, v_alerts, v_alerts_where)
            elif key == "monitorfile":
                q = re.match(r'^"(.*)"', value)
                s = q.group(1) if q else value
                # ldirectord opens it for appending here (config.machine checks that on the director)
                col.warn(loc, f"monitorfile is accepted but not yet acted on: check results are not written "
                         f"to {s}")
                vs["monitorfile"], vw[("monitorfile",)] = s, loc
            elif key in ("servicename", "comment"):
                vs[key], vw[(key,)] = value_s, loc
            elif key in GLOBAL_KEYS:
                col.error(loc, f"{key} is a global directive: write it in column 0, outside virtual= blocks")
            else:
                col.error(loc, f"unknown directive {key!r} in a virtual= block{suggest(key, VIRTUAL_KEYS)}")

        if not ok:
            return j

        # ---- resolve once the block is read: the protocol decides what a service name means
        vport: int | None = None
        if fwmark is not None:
            vs["fwmark"] = fwmark
            vw[("fwmark",)] = vline
            if v6:
                vs["ipv6"] = True
        else:
            addr = resolve_address(host, socket.AF_INET6 if v6 else socket.AF_INET, vline, col,
                                   "virtual server address")
            vport = self.port(port_s, protocol, vline, "virtual server")
            if addr is None or vport is None:
                return j
            vs["address"], vs["port"] = addr, vport
            vw[("address",)] = vw[("port",)] = vline
            if v6:
                vs["ipv6"] = True
        if protocol != "tcp" or ("protocol",) in vw:
            vs["protocol"] = protocol
        if fallback_todo is not None:
            fb = self.fallback(fallback_todo[0], fallback_todo[1], fallback_todo[2],
                               virtual_port=vport, protocols=(protocol if protocol != "fwm" else "tcp",))
            if fb is not None:
                vs["fallback"], vw[("fallback",)] = fb, fallback_todo[1]
        reals: list[dict] = []
        for value, loc in reals_todo:
            for r in self.real(value, loc, v6):
                key = (r["address"], r.get("port"))
                if any((x["address"], x.get("port")) == key for x in reals):
                    col.warn(loc, f"real server {r['address']}{':' + str(r['port']) if r.get('port') else ''} "
                             "is listed twice in this virtual service; read once")
                    continue
                vw[("reals", len(reals))] = loc
                reals.append(r)
        vs["reals"] = reals
        if checkcount is not None and "failurecount" not in vs:
            vs["failurecount"], vw[("failurecount",)] = checkcount
        if "netmask" in vs and "persistent" not in vs:
            # ld_setup: `-M netmask` is added only inside `if (defined $$v{persistent})`
            col.warn(vw[("netmask",)], "netmask without persistent is ignored, as ldirectord ignores it "
                     "(it is the granularity of persistence)")
            del vs["netmask"], vw[("netmask",)]
        if vs.get("ops") and protocol != "udp":
            # ld_setup: `-o` only when the protocol is udp
            col.warn(vw[("ops",)], f"ops=yes applies to UDP services only; ignored for this {protocol} "
                     "service, as ldirectord ignores it")
            del vs["ops"], vw[("ops",)]
        # ld_read_config: "duplicate virtual server", checked once the block is resolved and reported at
        # the line that ended the block (the last line at the end of the file)
        vid = ("fwm6" if v6 else "fwm", fwmark) if fwmark is not None else (protocol, vs["address"], vs["port"])
        end_line = where(self.name, j + 1 if j < len(lines) else len(lines))
        if vid in self.virtual_ids:
            first = self.virtual_ids[vid]
            name = (f"FWM {fwmark}" if fwmark is not None
                    else f"{protocol.upper()} {'[%s]' % vs['address'] if v6 else vs['address']}:{vs['port']}")
            col.error(end_line, f"duplicate virtual service {name}: the virtual= block at line "
                      f"{vline.rsplit(':', 1)[1]} repeats the one at line {first.rsplit(':', 1)[1]} "
                      "(ldirectord reports it here, where the block ends)")
            return j
        self.virtual_ids[vid] = vline
        if ci_loc is not None:
            self.v_checkinterval.append(ci_loc)
        self.virtuals.append(vs)
        self.v_where.append(vw)
        self.v_alerts.append((v_alerts, v_alerts_where))
        return j

    def real(self, value: str, loc: str, v6: bool) -> list[dict]:
        """ldirectord _ld_read_config_real_resolve + add_real_server(_range)."""
        col = self.col
        m = _REAL.match(value.strip() + (" " if not re.search(r"\s", value.strip()) else ""))
        if not m:
            col.error(loc, f"invalid address for real server {value.strip()!r}: expected "
                      "ip[:port] gate|masq|ipip [weight]")
            return []
        ip1, ip2, port_s, flags = m.group(1), m.group(3), m.group(5), m.group(6)
        family = socket.AF_INET6 if v6 else socket.AF_INET
        a1 = resolve_address(ip1, family, loc, col, "real server")
        if a1 is None:
            return []
        port = None
        if port_s is not None:
            port = self.port(port_s, "", loc, "real server")
            if port is None:
                return []
        fm = re.match(r"^(\w+)(.*)$", flags)
        if not fm or fm.group(1) not in METHODS:
            col.error(loc, f"forwarding method must be gate, masq or ipip, got {flags.split()[0] if flags.split() else 'nothing'!r}"
                      f"{suggest(fm.group(1), METHODS) if fm else ''}")
            return []
        method, flags = fm.group(1), fm.group(2)
        base: dict = {"method": method}
        if port:  # ldirectord reads a missing port as 0: the virtual service's port
            base["port"] = port
        wm = re.match(r"^\s+(\d+)(.*)$", flags)
        if wm:
            base["weight"], flags = int(wm.group(1)), wm.group(2)
        rm = re.match(r'^\s+"(.*)"[, ]\s*"(.*)"(.*)$', flags)
        if rm:
            req = rm.group(1)
            base["request"] = req if req.startswith("/") else "/" + req
            base["receive"], flags = rm.group(2), rm.group(3)
        lm = re.match(r"^\s+l:(\d+)(.*)$", flags)
        if lm:
            base["lower_threshold"], flags = int(lm.group(1)), lm.group(2)
        um = re.match(r"^\s+u:(\d+)(.*)$", flags)
        if um:
            base["upper_threshold"], flags = int(um.group(1)), um.group(2)
        if flags.strip():
            col.error(loc, f"invalid real server line, around {flags.strip()!r}: expected "
                      "[weight] [\"request\", \"receive\"] [l:N] [u:N] after the method")
            return []
        if ip2 is None:
            return [{"address": a1, **base}]
        a2 = resolve_address(ip2, family, loc, col, "real server range end")
        if a2 is None:
            return []
        if v6:
            col.error(loc, "an address range is not supported for IPv6 real servers (nor by ldirectord)")
            return []
        first, last = int(ipaddress.IPv4Address(a1)), int(ipaddress.IPv4Address(a2))
        if first > last:
            col.error(loc, f"invalid range {a1}->{a2}: the first address must not be above the last")
            return []
        if last - first >= 4096:
            col.error(loc, f"range {a1}->{a2} holds {last - first + 1} addresses; at most 4096")
            return []
        return [{"address": str(ipaddress.IPv4Address(n)), **base} for n in range(first, last + 1)]

    # ------------------------------------------------------------------ result

    def finish(self) -> dict:
        smap, col = self.smap, self.col
        out = dict(self.glob)
        for key, loc in self.glob_where.items():
            smap.set(("balancer", key), loc)
        if self.checkcount is not None and "failurecount" not in out:
            out["failurecount"] = self.checkcount[0]
            smap.set(("balancer", "failurecount"), self.checkcount[1])
        if self.alerts:
            out["alerts"] = dict(self.alerts)
            for key, loc in self.alerts_where.items():
                smap.set(("balancer", "alerts", key), loc)
        if not self.fork:
            for loc in self.v_checkinterval:
                col.warn(loc, "ldirectord ignores a virtual service's checkinterval unless fork=yes; "
                         "hadirector checks each virtual service on its own schedule and honours it")
        for i, (vs, vw) in enumerate(zip(self.virtuals, self.v_where)):
            for sub, loc in vw.items():
                smap.set(("balancer", "virtual", i, *sub), loc)
            v_alerts, v_alerts_where = self.v_alerts[i]
            if v_alerts:
                # ldirectord ld_setup fills each alert setting a virtual leaves out from the globals
                vs["alerts"] = {**self.alerts, **v_alerts}
                for key, loc in {**self.alerts_where, **v_alerts_where}.items():
                    smap.set(("balancer", "virtual", i, "alerts", key), loc)
            # a value a virtual inherits is located at the global line that set it
            for key in INHERITED_KEYS:
                if key not in vs:
                    src = "fallback6" if key == "fallback" and vs.get("ipv6") else key
                    if key == "alerts":
                        loc = next(iter(self.alerts_where.values()), None)
                    else:
                        loc = self.glob_where.get(src)
                    if loc:
                        smap.set(("balancer", "virtual", i, key), loc)
        out["virtual"] = self.virtuals
        return out


def parse_ldirectord(lines: list[str], name: str, col: Collector, smap) -> dict:
    """Parse ldirectord.cf lines into the `balancer` table."""
    return _Ld(name, col, smap).parse(lines)
