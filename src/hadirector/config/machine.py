"""What `run` would refuse on this machine: the facts of a configuration that only the director
can check (interfaces, serial ports, users, programs, resource scripts).

`hadirector check` may run anywhere (a laptop, CI), so these are not load-time rules. It calls
`machine_problems(loaded, machine, on_director)` with the facts of the machine it runs on. On the
director (`on_director`: this machine is the node the configuration was loaded for) a fact that
makes `run` fail, or heartbeat refuse the file, is an error; elsewhere it is a warning saying it
was not checked as an error. A few facts are warnings everywhere: a resource script that cannot be
found (heartbeat only looks for it at takeover) and the lines hadirector does not act on yet.

The rules and their sources:
- a link's interface must exist: `run` cannot open the link (net/transports `_open_udp`);
  heartbeat refuses a bcast or mcast line naming a missing interface when it reads ha.cf
  (bcast.c bcast_new "IP interface does not exist", mcast.c is_valid_dev);
- a serial link's device must exist and be a character device (serial.c serial_new);
- a vip's interface must exist, and a vip without one needs an interface whose subnet holds it
  (resources/vip.py, as heartbeat's findif);
- respawn and failfast: the user must exist and the program be executable (config.c
  add_client_child_base refuses the line); for failfast a warning, as hadirector does not run it;
- a script resource must be in the resource directories (ResourceManager scriptpath: the first
  executable `dir/name`), warned at its haresources line;
- a fence device this node may run: its program (a fence agent, or cluster-glue's `stonith`)
  must be executable, else every fence fails and a silent peer is never taken over;
- conntrackd (config/sync.py): NAT on several directors without it is warned about (open
  connections die at a failover); when it is on, a missing program is an error if
  `[balancer.conntrackd] enabled = true` asked for it (run refuses), else a warning, and the
  sync interface must exist;
- ldirectord opens `monitorfile` for appending when it reads the file (ld_read_config); a warning,
  as hadirector does not write it yet;
- a quorum device with TLS needs its CA, certificate and key files readable (daemon/qdevice.py
  loads them at every connect).
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import stat
from dataclasses import dataclass, field

from .errors import Problem
from .load import Loaded
from .model import ScriptResource, VipResource, program_candidates


# where a daemon's program is looked for beyond PATH (root's PATH has them; a login shell's may
# not): check and run (dataplane/conntrackd.py find_program) look in the same places
SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")


@dataclass(frozen=True)
class Machine:
    """The facts of one machine. `interfaces` and `addresses` ("ip/prefixlen" per interface) come
    from the caller (netlink); users and files are looked up on demand."""

    hostname: str
    interfaces: frozenset[str]
    addresses: tuple[tuple[str, str], ...] = ()
    resource_dirs: tuple[str, ...] = ("/etc/ha.d/resource.d", "/etc/init.d")
    root: str = ""  # prefix for every path looked up (tests point it at a directory)

    def _path(self, path: str) -> str:
        return self.root + path if self.root else path

    def user_exists(self, name: str) -> bool:
        try:
            pwd.getpwnam(name)
        except (KeyError, ValueError):
            return False
        return True

    def executable(self, path: str) -> bool:
        p = self._path(path)
        try:
            return os.path.isfile(p) and os.access(p, os.X_OK)
        except ValueError:  # an embedded NUL
            return False

    def char_device(self, path: str) -> bool | None:
        """True for a character device, False for something else, None when it does not exist."""
        try:
            return stat.S_ISCHR(os.stat(self._path(path)).st_mode)
        except (OSError, ValueError):
            return None

    def find_script(self, name: str) -> str | None:
        for d in self.resource_dirs:
            if self.executable(os.path.join(d, name)):
                return os.path.join(d, name)
        return None

    def readable(self, path: str) -> bool:
        p = self._path(path)
        try:
            return os.path.isfile(p) and os.access(p, os.R_OK)
        except ValueError:
            return False

    def program(self, name: str) -> str | None:
        """A program found on PATH or in the sbin directories (daemons such as conntrackd)."""
        dirs = os.environ.get("PATH", "").split(os.pathsep) + list(SBIN_DIRS)
        for d in dict.fromkeys(d for d in dirs if d):
            if self.executable(os.path.join(d, name)):
                return os.path.join(d, name)
        return None

    def can_append(self, path: str) -> bool:
        p = self._path(path)
        if os.path.exists(p):
            return os.access(p, os.W_OK)
        return os.access(os.path.dirname(p) or ".", os.W_OK)


@dataclass
class _Out:
    on_director: bool
    why_not: str
    problems: list[Problem] = field(default_factory=list)

    def fatal(self, where: str, message: str) -> None:
        """A fact that makes `run` fail on the director (or heartbeat refuse the file)."""
        if self.on_director:
            self.problems.append(Problem(where, message))
        else:
            self.problems.append(Problem(where, f"{message} (a warning here: {self.why_not})", warning=True))

    def warn(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message, warning=True))


def on_director(loaded: Loaded, hostname: str) -> bool:
    """Is this machine the node the configuration was loaded for? (`uname -n`, compared without
    case as heartbeat compares it; `--node` naming another node means no.)"""
    return loaded.node is not None and loaded.node.lower() == hostname.lower()


def machine_problems(loaded: Loaded, machine: Machine, director: bool) -> list[Problem]:
    """Every problem of `loaded` on `machine`, located at file:line (legacy) or the key path."""
    where = loaded.locate
    why = (f"this machine is {machine.hostname}, not {loaded.node}" if loaded.node
           else f"this machine ({machine.hostname}) is not one of the cluster's nodes")
    out = _Out(director, why)
    c = loaded.config.cluster

    for i, link in enumerate(c.links):
        loc = where(("cluster", "links", i))
        if link.kind == "serial":
            dev = machine.char_device(link.device)
            if dev is None:
                out.fatal(loc, f"serial port {link.device} does not exist on this machine")
            elif not dev:
                out.fatal(loc, f"serial port {link.device} is not a character device")
        elif link.interface not in machine.interfaces:
            out.fatal(loc, f"interface {link.interface} does not exist on this machine: run cannot open "
                      f"link {link.name}" + _have(machine))

    nets = []
    for ifname, cidr in machine.addresses:
        try:
            nets.append((ifname, ipaddress.ip_interface(cidr).network))
        except ValueError:
            continue
    for gi, g in enumerate(loaded.config.groups):
        for ri, r in enumerate(g.resources):
            loc = where(("groups", gi, "resources", ri))
            if isinstance(r, VipResource):
                if r.interface is not None:
                    if r.interface not in machine.interfaces:
                        out.fatal(loc, f"vip {r.address}: interface {r.interface} does not exist on this "
                                  f"machine, so group {g.name} cannot start here" + _have(machine))
                elif not any(ipaddress.ip_address(r.address) in net for _n, net in nets):
                    out.fatal(loc, f"vip {r.address}: no interface on this machine has an address whose subnet "
                              f"holds it, so group {g.name} cannot start here; name the interface "
                              f"({r.address}/24/eth0)")
            elif isinstance(r, ScriptResource) and machine.find_script(r.name) is None:
                out.warn(loc, f"resource script {r.name} is not in {' or '.join(machine.resource_dirs)} on this "
                         f"machine: group {g.name} would fail to start here (heartbeat: \"Cannot locate "
                         f"resource script {r.name}\")")

    for i, rs in enumerate(c.respawn):
        _client_child(out, machine, where(("cluster", "respawn", i)), "respawn", rs.user, rs.command)
    for u in loaded.unused:
        if u.directive == "failfast":
            user, _, command = u.text.partition(" ")
            _client_child(out, machine, u.where, "failfast", user, command.strip())
    if c.fencing is not None and loaded.node is not None:
        for i, dev in enumerate(c.fencing.devices):
            if loaded.node not in (dev.runs_on or c.nodes):
                continue
            prog = dev.agent if dev.kind == "agent" else "stonith"
            if not any(machine.executable(p) for p in program_candidates(prog)):
                what = "fence agent" if dev.kind == "agent" else "cluster-glue's stonith command"
                pkg = "fence-agents" if dev.kind == "agent" else "cluster-glue"
                out.fatal(where(("cluster", "fencing", "devices", i)),
                          f"{what} {prog} is not an executable file on this machine "
                          f"(looked in {', '.join(program_candidates(prog))}; Debian package {pkg}): "
                          f"fencing would fail, and a silent peer's groups would never be taken over")
    if c.watchdog is not None and machine.char_device(c.watchdog) is None:
        out.warn(where(("cluster", "watchdog")), f"watchdog device {c.watchdog} does not exist on this machine")

    dev = c.quorum.device
    if dev is not None and dev.tls:
        # the qdevice driver loads these at every TLS connect (daemon/qdevice.py client_ssl_context);
        # a missing one means no witness vote, ever
        for key in ("ca_file", "cert_file", "key_file"):
            path = getattr(dev, key)
            if path is not None and not machine.readable(path):
                out.fatal(where(("cluster", "quorum", "device", key)),
                          f"quorum device tls {key} {path} cannot be read on this machine: the witness "
                          "would never give its vote (see docs/cluster.md, the witness: TLS)")

    _conntrackd(out, machine, loaded)

    if loaded.config.balancer is not None:
        for i, vs in enumerate(loaded.config.balancer.virtual):
            if vs.monitorfile and not machine.can_append(vs.monitorfile):
                out.warn(where(("balancer", "virtual", i, "monitorfile")),
                         f"monitorfile {vs.monitorfile} cannot be opened for appending on this machine "
                         "(ldirectord refuses the file then)")
    return out.problems


def _conntrackd(out: _Out, machine: Machine, loaded: Loaded) -> None:
    # NAT connections live in the kernel's conntrack table: without conntrackd they die at a
    # failover (config/sync.py); `run` refuses a missing conntrackd asked for by name
    # (daemon/balancer.py _start_conntrackd) and warns when it was only the default
    from .sync import conntrackd_plan, nat_without_sync
    cfg = loaded.config
    where = loaded.locate(("balancer", "conntrackd"))
    if nat_without_sync(cfg):
        out.warn(where, "NAT (masq) services on several directors without conntrackd: open "
                 "connections will not survive a failover")
    plan = conntrackd_plan(cfg)
    if plan is None:
        return
    if machine.program("conntrackd") is None:
        msg = ("conntrackd is not installed (Debian package conntrackd): open NAT connections "
               "will not survive a failover")
        if plan.explicit:
            out.fatal(where, msg + "; run refuses to start the balancer without it")
        else:
            out.warn(where, msg)
    if plan.interface not in machine.interfaces:
        out.fatal(loaded.locate(("balancer", "conntrackd", "interface")),
                  f"conntrackd's sync interface {plan.interface} does not exist on this machine" + _have(machine))


def _client_child(out: _Out, machine: Machine, loc: str, directive: str, user: str, command: str) -> None:
    # config.c add_client_child_base: "Invalid uid specified for client child", "Client child
    # command is not executable"; respawn is run (daemon/respawn.py), so an error on the
    # director; failfast is not run, so only a warning
    report = out.fatal if directive == "respawn" else out.warn
    if not machine.user_exists(user):
        report(loc, f"{directive} user {user!r} does not exist on this machine (heartbeat refuses the line)")
    prog = command.split()[0] if command.split() else command
    if prog and not machine.executable(prog):
        report(loc, f"{directive} command {prog} is not an executable file on this machine (heartbeat refuses "
               "the line)")


def _have(machine: Machine) -> str:
    names = sorted(machine.interfaces - {"lo"})
    return f" (interfaces here: {', '.join(names)})" if names else ""
