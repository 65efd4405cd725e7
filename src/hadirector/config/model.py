"""The configuration model: frozen, validated objects that runtime code receives.

Every loader (native TOML, legacy heartbeat/ldirectord files) produces plain data in the shape of
`Config` and validates it here, so the rules live in one place. Shape and type errors come from
pydantic with their key path; rules that relate several fields are in `semantic_problems()`, which
also reports a key path. Legacy loaders map key paths back to `file:line`.

Durations are whole milliseconds (`Duration`): TOML may write `2` (seconds), `1.5` or `"2000ms"`.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, ClassVar, Literal, NamedTuple, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from . import ipvs
from .durations import format_duration_ms, parse_duration_ms

Duration = Annotated[
    int,
    BeforeValidator(parse_duration_ms),
    PlainSerializer(format_duration_ms, return_type=str, when_used="json"),
]
# ldirectord: checktimeout, negotiatetimeout and checkinterval must be above 0 ("invalid check
# interval value"); a 0 would also stop the check plan (checks/plan.py)
PositiveDuration = Annotated[Duration, Field(gt=0)]
Port = Annotated[int, Field(ge=0, le=65535)]
Weight = Annotated[int, Field(ge=0, le=65535)]


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"expected an IP address, got {value!r}") from None


IPAddress = Annotated[str, BeforeValidator(lambda v: _ip(str(v)))]


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- cluster (ha.cf)

class Link(Model):
    """One heartbeat path. ha.cf media lines (ucast/mcast/bcast/serial) map one-to-one, except that
    several `ucast` lines on one interface become one link with several peers."""

    kind: Literal["ucast", "mcast", "bcast", "serial"]
    interface: str | None = None  # ucast, mcast, bcast
    peers: tuple[IPAddress, ...] = ()  # ucast: every peer address; local ones are skipped at run time
    source: IPAddress | None = None  # ucast: send from and listen on this address only; then only
    # it counts as this node's own (keepalived unicast_src_ip; lets several nodes share one host)
    group: IPAddress | None = None  # mcast group address
    port: Port = 694  # ha.cf udpport
    ttl: Annotated[int, Field(ge=0, le=255)] = 1  # mcast (0: the host only; ha.cf allows 0..4)
    loop: bool = False  # mcast loopback
    device: str | None = None  # serial: /dev/ttyS0
    baud: int = 19200  # ha.cf baud

    @model_validator(mode="after")
    def _fields_for_kind(self) -> "Link":
        need = {"ucast": ("interface", "peers"), "mcast": ("interface", "group"),
                "bcast": ("interface",), "serial": ("device",)}[self.kind]
        missing = [f for f in need if not getattr(self, f)]
        if missing:
            raise ValueError(f"a {self.kind} link needs {' and '.join(missing)}")
        if self.kind == "mcast" and not ipaddress.ip_address(self.group).is_multicast:
            raise ValueError(f"mcast group {self.group} is not a multicast address")
        return self

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.device if self.kind == 'serial' else self.interface}"

    def remote_peers(self, local_addresses) -> tuple[str, ...]:
        """The ucast peers this node sends to: a peer that is one of the node's own addresses is
        dropped (in heartbeat such a line only loops the node's packets back to itself), so one
        ha.cf listing every node's address serves all nodes. `local_addresses`: this node's IPs."""
        local = {self.source} if self.source else {str(ipaddress.ip_address(a)) for a in local_addresses}
        return tuple(p for p in self.peers if p not in local)


class Timing(Model):
    """ha.cf keepalive/warntime/deadtime/initdead in milliseconds. Heartbeat's defaults: keepalive
    1 s, deadtime 30 s; warntime defaults to deadtime/2; initdead defaults (heartbeat config.c
    init_config) to deadtime when deadtime > 10 s, to 12 s when deadtime < 6 s, else 2 x deadtime.
    The rules across them are heartbeat's (`semantic_problems`): deadtime > 2 x keepalive,
    initdead >= deadtime; warntime may be anything above zero."""

    keepalive: Duration = 1000
    deadtime: Duration = 30_000
    warntime: Duration | None = None
    initdead: Duration | None = None

    @model_validator(mode="after")
    def _defaults(self) -> "Timing":
        if self.warntime is None:
            object.__setattr__(self, "warntime", self.deadtime // 2)
        if self.initdead is None:
            d = self.deadtime
            object.__setattr__(self, "initdead", d if d > 10_000 else 12_000 if d < 6000 else 2 * d)
        return self


class Auth(Model):
    """authkeys: the active key. crc authenticates nothing (integrity only)."""

    method: Literal["crc", "md5", "sha1", "sha256"] = "sha256"
    key: str = ""
    index: Annotated[int, Field(ge=0, le=15)] = 1  # authkeys `auth N` (heartbeat MAXAUTH: 0..15)

    @model_validator(mode="after")
    def _key_for_method(self) -> "Auth":
        if self.method != "crc" and not self.key:
            raise ValueError(f"method {self.method} needs a key")
        return self


class PingGroup(Model):
    """ha.cf ping_group: the group counts as one ping node, up while any member answers."""

    name: str
    addresses: tuple[IPAddress, ...] = Field(min_length=1)


class Respawn(Model):
    """ha.cf respawn: a process run as `user`, restarted when it exits."""

    user: str
    command: str


class FenceDevice(Model):
    """One fence device (cluster/fencing.py, daemon/fencing.py). kind `agent`: a fence-agents
    program (`agent`, e.g. fence_ipmilan, a name in /usr/sbin or a full path) given `params`
    and `action`, `port` (the plug), `nodename` on its standard input as key=value lines (fence-agents' FenceAgentAPI);
    kind `stonith`: cluster-glue's `stonith -t TYPE -p PARAMS` (or `-F config_file`)
    `-T reset|off NODE` (heartbeat's stonith / stonith_host lines)."""

    kind: Literal["agent", "stonith"] = "agent"
    name: str | None = None  # for logs and status (default: the agent or the stonith type)
    agent: str | None = None  # kind agent
    type: str | None = None  # kind stonith: the cluster-glue device type (external/ipmi, null, ...)
    params: dict[str, str] = {}  # agent: key=value lines; stonith: name=value arguments
    param_text: str | None = None  # stonith: `-p` text (stonith_host's parameters, in order)
    config_file: str | None = None  # stonith: `-F` file (ha.cf `stonith TYPE FILE`)
    nodes: tuple[str, ...] = ()  # the nodes it can fence (default: every node)
    runs_on: tuple[str, ...] = ()  # the nodes that may run it (default: every node; stonith_host HOST)
    plugs: dict[str, str] = {}  # node -> plug/port name on the device (Pacemaker's pcmk_host_map)
    action: Literal["off", "reboot"] = "reboot"  # Pacemaker's stonith-action default: reboot
    timeout: PositiveDuration = 60_000  # Pacemaker's stonith-timeout default: 60 s

    @model_validator(mode="after")
    def _kind(self) -> "FenceDevice":
        if self.kind == "agent" and not self.agent:
            raise ValueError("a fence device of kind agent needs `agent` (a fence-agents program, e.g. fence_ipmilan)")
        if self.kind == "stonith" and not self.type:
            raise ValueError("a fence device of kind stonith needs `type` (a cluster-glue device type, e.g. external/ipmi)")
        if self.kind == "stonith" and self.param_text is not None and self.config_file is not None:
            raise ValueError("a stonith device takes param_text or config_file, not both")
        return self

    @property
    def label(self) -> str:
        return self.name or self.agent or f"stonith {self.type}"


class Fencing(Model):
    """Fence a silent peer before taking over from it (cluster/fencing.py). `delay`: the fencing
    of a peer that ranks above this node (held more groups, or as many and is listed first in
    `nodes`) waits this long, so that of two nodes that lost each other only one fences."""

    devices: tuple[FenceDevice, ...] = Field(min_length=1)
    delay: Duration = 5_000
    # mail on a failed fence (to, sender, smtp as ldirectord's emailalert); empty `to`: the
    # [balancer]'s emailalert addresses, if any
    alerts: Alerts | None = None


class Logging(Model):
    logfile: str | None = None
    debugfile: str | None = None
    facility: str | None = None  # syslog facility (ha.cf logfacility); None = no syslog
    debug: Annotated[int, Field(ge=0, le=255)] = 0

    @field_validator("facility")
    @classmethod
    def _facility(cls, v: str | None) -> str | None:
        if v is None or v == "none":
            return None
        ok = {"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
              "authpriv", "ftp"} | {f"local{i}" for i in range(8)}
        if v not in ok:
            raise ValueError(f"unknown syslog facility {v!r}; expected one of {', '.join(sorted(ok))}")
        return v


class Realtime(Model):
    """[cluster.realtime]: the daemon as a soft realtime process (ha.cf `realtime`, `rtprio`;
    daemon/realtime.py does it). The defaults are heartbeat 3's: `realtime` is on unless ha.cf
    says off (config.c Directives[]: KEY_REALTIME default "true"), the policy SCHED_RR
    (clplumbing/realtime.h DEFAULT_REALTIME_POLICY) and, without `rtprio`, the lowest priority of
    that policy, 1 (heartbeat.c hb_realtime_prio = -1, which cl_make_realtime replaces with
    sched_get_priority_min), and the memory locked (cl_make_realtime's mlockall)."""

    enabled: bool = True
    policy: Literal["rr", "fifo"] = "rr"  # SCHED_RR or SCHED_FIFO
    priority: int = 1  # ha.cf rtprio: 1..99 (config.c set_realtime_prio: SCHED_FIFO's min..max)
    lock_memory: bool = True  # mlockall(MCL_CURRENT | MCL_FUTURE), as cl_make_realtime does

    PRIORITY_MIN: ClassVar[int] = 1  # sched_get_priority_min/max(SCHED_RR or SCHED_FIFO) on Linux
    PRIORITY_MAX: ClassVar[int] = 99

    @field_validator("priority", mode="before")
    @classmethod
    def _priority(cls, v: object) -> object:
        lo, hi = cls.PRIORITY_MIN, cls.PRIORITY_MAX
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ValueError(f"expected a whole number {lo}..{hi} (the realtime priorities of SCHED_RR "
                             f"and SCHED_FIFO on Linux), got {v!r}")
        return v


class QuorumDevice(Model):
    """A quorum device: corosync-qnetd, the witness that gives its one vote to one side of a
    partition (corosync-qdevice's `model: net`, its host, port 5403, ffsplit or lms, TLS)."""

    model: Literal["net"] = "net"
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 5403  # corosync-qnetd's default port
    algorithm: Literal["ffsplit", "lms"] = "ffsplit"
    tls: bool = True
    # hadirector's qdevice-net client (cluster/qdevice.py): the echo (heartbeat) interval it asks
    # qnetd for; qnetd accepts 1000..120000 ms unless started with -S heartbeat_interval_min=...
    heartbeat_interval: Annotated[Duration, Field(ge=100, le=120_000)] = 2000
    # TLS files, PEM (docs/cluster.md: how to make them from qnetd's NSS database)
    ca_file: str = "/etc/hadirector/qdevice/qnetd-cacert.pem"  # the CA that signed qnetd's certificate
    cert_file: str | None = "/etc/hadirector/qdevice/cluster.pem"  # ours, subject CN = the cluster name
    key_file: str | None = "/etc/hadirector/qdevice/cluster.key"
    server_name: str = "Qnetd Server"  # the CN qnetd's certificate must carry (corosync-qnetd-certutil)
    # after a membership change, how long to wait for the witness's vote on the new membership
    # before counting it as lost (votequorum qdevice_sync_timeout, VOTEQUORUM_QDEVICE_DEFAULT_SYNC_TIMEOUT)
    sync_timeout: Annotated[Duration, Field(gt=0)] = 30_000


class Quorum(Model):
    """Who may hold groups when the cluster is split (cluster/quorum.py). Names and meanings are
    votequorum(5)'s (votes, expected_votes, wait_for_all) and Pacemaker's no-quorum-policy."""

    no_quorum_policy: Literal["stop", "freeze", "ignore"] = "stop"
    wait_for_all: bool = False
    expected_votes: Annotated[int, Field(ge=1)] | None = None  # None: the sum of the votes
    votes: dict[str, Annotated[int, Field(ge=0, le=255)]] = {}  # node -> votes; unlisted: 1
    device: QuorumDevice | None = None

    DEVICE_VOTES: ClassVar[int] = 1  # the qnetd device's votes (corosync-qdevice quorum.device.votes)

    def node_votes(self, nodes) -> dict[str, int]:
        return {n: self.votes.get(n, 1) for n in nodes}

    def two_node(self, nodes) -> bool:
        """votequorum's two_node: exactly two nodes, no device, no votes or expected_votes set;
        then one vote is quorum (cluster/quorum.py)."""
        return len(tuple(nodes)) == 2 and self.device is None and not self.votes \
            and self.expected_votes is None

    def expected(self, nodes) -> int:
        """expected_votes, else every node's votes plus the device's."""
        return self.expected_votes or (sum(self.node_votes(nodes).values())
                                       + (self.DEVICE_VOTES if self.device else 0))


class Cluster(Model):
    name: str = "hadirector"
    nodes: tuple[str, ...] = Field(min_length=1)
    links: tuple[Link, ...] = Field(min_length=1)
    timing: Timing = Timing()
    auth: Auth
    auto_failback: Literal["on", "off", "legacy"] = "legacy"
    ping: tuple[IPAddress, ...] = ()
    ping_groups: tuple[PingGroup, ...] = ()
    respawn: tuple[Respawn, ...] = ()
    watchdog: str | None = None
    fencing: Fencing | None = None
    logging: Logging = Logging()
    quorum: Quorum = Quorum()
    realtime: Realtime = Realtime()

    @field_validator("auto_failback", mode="before")
    @classmethod
    def _failback_words(cls, v: object) -> object:
        # heartbeat accepts the boolean spellings for on/off (ha.cf auto_failback)
        if isinstance(v, bool):
            return "on" if v else "off"
        if isinstance(v, str) and v.lower() in {"yes", "true", "y", "1"}:
            return "on"
        if isinstance(v, str) and v.lower() in {"no", "false", "n", "0"}:
            return "off"
        return v


# --------------------------------------------------------------------------- resource groups

class VipResource(Model):
    """A virtual IP (heartbeat IPaddr/IPaddr2): added with a label, announced by gratuitous ARP."""

    kind: Literal["vip"] = "vip"
    address: IPAddress
    prefixlen: Annotated[int, Field(ge=0, le=128)] | None = None  # None: from the interface's subnet, else /32
    interface: str | None = None  # None: the interface whose subnet holds the address
    label: str | None = None  # e.g. eth0:0
    broadcast: IPAddress | None = None
    garp_count: Annotated[int, Field(ge=0, le=1000)] = 5
    garp_interval: Duration = 200
    garp_refresh: Duration = 0  # 0: no periodic refresh
    # on a planned release (standby, takeover, failback, shutdown): refuse new connections and let
    # those in flight finish for at most this long before the address goes (0: no draining)
    drain: Annotated[Duration, Field(ge=0)] = 500


class ScriptResource(Model):
    """A heartbeat resource script (resource.d, then /etc/init.d) with `::` arguments."""

    kind: Literal["script"] = "script"
    name: str
    args: tuple[str, ...] = ()


class SystemdResource(Model):
    kind: Literal["systemd"] = "systemd"
    unit: str


class OcfResource(Model):
    """An OCF resource agent: $OCF_ROOT/resource.d/<provider>/<agent>, params as OCF_RESKEY_*."""

    kind: Literal["ocf"] = "ocf"
    provider: str = "heartbeat"
    agent: str
    params: dict[str, str] = {}


class BalancerResource(Model):
    """The built-in balancer (what haresources' `ldirectord` starts): the config's [balancer]."""

    kind: Literal["balancer"] = "balancer"
    source: str | None = None  # the ldirectord.cf it was read from, for messages only


Resource = Annotated[
    Union[VipResource, ScriptResource, SystemdResource, OcfResource, BalancerResource],
    Field(discriminator="kind"),
]


class Group(Model):
    """A resource group (one haresources line): started in order, stopped in reverse."""

    name: str
    preferred_node: str
    resources: tuple[Resource, ...] = Field(min_length=1)
    monitor_interval: Duration = 10_000
    start_timeout: Duration = 60_000
    stop_timeout: Duration = 60_000
    retries: Annotated[int, Field(ge=0, le=100)] = 2  # failed start/monitor retries before release
    notify: str | None = None  # keepalived notify: run as `cmd GROUP <name> <MASTER|BACKUP|FAULT> <priority>`


# --------------------------------------------------------------------------- balancer (ldirectord.cf)

Scheduler = Literal["rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "dh", "mh", "lblc", "lblcr", "fo", "ovf"]
Method = Literal["gate", "masq", "ipip"]
Service = Literal["dns", "ftp", "http", "https", "http_proxy", "imap", "imaps", "ldap", "ldaps", "nntp",
                  "mysql", "none", "oracle", "pop", "pops", "radius", "pgsql", "sip", "smtp",
                  "submission", "simpletcp"]
CheckType = Literal["connect", "negotiate", "combined", "ping", "off", "on", "external", "external-perl"]
AlertStatus = Literal["all", "none", "starting", "running", "stopping", "reloading"]

# ldirectord ld_port_to_service: the service a port implies when `service` is not set
PORT_SERVICES = {21: "ftp", 25: "smtp", 53: "dns", 80: "http", 110: "pop", 119: "nntp", 143: "imap",
                 389: "ldap", 443: "https", 587: "submission", 636: "ldaps", 995: "pops", 993: "imaps",
                 1521: "oracle", 1812: "radius", 3128: "http_proxy", 3306: "mysql", 5060: "sip",
                 5432: "pgsql"}


class Real(Model):
    """ldirectord `real = ip[:port] gate|masq|ipip [weight] ["request" "receive"]`."""

    address: IPAddress
    port: Port | None = None  # None: the virtual service's port
    method: Method = "gate"
    weight: Weight = 1
    request: str | None = None  # per-real override of the virtual's request
    receive: str | None = None
    upper_threshold: Annotated[int, Field(ge=0, le=ipvs.THRESHOLD_MAX)] = 0  # ipvsadm -x: 0 = no limit
    lower_threshold: Annotated[int, Field(ge=0, le=ipvs.THRESHOLD_MAX)] = 0  # ipvsadm -y

    @field_validator("lower_threshold")
    @classmethod
    def _thresholds(cls, v: int, info) -> int:
        if "upper_threshold" in info.data:
            ipvs.check_thresholds(v, info.data["upper_threshold"])
        return v


class RealKey(NamedTuple):
    """Names one real server of one virtual service: (`TCP 198.18.0.100:80`, `198.18.1.11`, 80).
    The one key of a real everywhere: its health, its check, its place in the desired state."""

    virtual: str
    address: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port} of {self.virtual}"


class Fallback(Model):
    """The sorry server used while no real server is available (ldirectord fallback=)."""

    address: IPAddress
    port: Port | None = None
    method: Method = "masq"


class Alerts(Model):
    """ldirectord emailalert*: mail to `to` on real server state changes."""

    to: tuple[str, ...] = ()
    freq: Annotated[int, Field(ge=0)] = 0  # seconds between repeats while a real is down; 0 = once
    status: tuple[AlertStatus, ...] = ("all",)
    sender: str | None = None  # emailalertfrom
    smtp: str | None = None  # host[:port]; None: local sendmail-like delivery to localhost:25


# Keys that a [[balancer.virtual]] inherits from [balancer] when it does not set them itself,
# as ldirectord's global directives do.
INHERITED_KEYS = ("checktimeout", "negotiatetimeout", "checkinterval", "failurecount", "fallback",
                  "fallbackcommand", "quiescent", "cleanstop", "alerts", "rise", "alpha")


class VirtualService(Model):
    """One ldirectord `virtual=` block, with its global defaults already applied."""

    address: IPAddress | None = None
    port: Port | None = None
    fwmark: Annotated[int, Field(ge=1)] | None = None
    ipv6: bool = False  # virtual6 / fwmark services of family inet6
    protocol: Literal["tcp", "udp", "fwm"] = "tcp"
    scheduler: Scheduler = "wrr"
    schedflags: tuple[str, ...] = ()
    persistent: Duration | None = None  # ipvsadm -p timeout; None = not persistent
    netmask: str | None = None  # persistence granularity: dotted quad (v4) or prefix length (v6)
    ops: bool = False  # one-packet scheduling (UDP)
    reals: tuple[Real, ...] = ()
    # health check (ldirectord names)
    checktype: CheckType = "negotiate"
    num_connects: Annotated[int, Field(ge=0)] = 0  # checktype = N: N connects, then one negotiate
    service: Service | None = None  # None: from the port (ldirectord ld_port_to_service)
    checkport: Port | None = None
    request: str = "/"
    receive: str = ""
    virtualhost: str | None = None
    httpmethod: Literal["GET", "HEAD"] = "GET"
    checkcommand: str = "/bin/true"
    login: str = ""
    passwd: str = ""
    database: str = ""
    secret: str = ""
    checktimeout: PositiveDuration | None = None  # None: ldirectord's default (negotiatetimeout, else 5 s)
    negotiatetimeout: PositiveDuration | None = None  # None: checktimeout, else 30 s
    checkinterval: PositiveDuration = 10_000
    failurecount: Annotated[int, Field(ge=1)] = 1
    rise: Annotated[int, Field(ge=1)] = 1  # successes to mark a failed real up again
    alpha: bool = False  # reals start down until their first success (keepalived alpha)
    status_codes: tuple[Annotated[int, Field(ge=100, le=599)], ...] = ()  # () = any 2xx
    tls_verify: bool = False
    external_weight: bool = False  # external check exit 2..255 sets weight (keepalived misc_dynamic)
    quorum: Annotated[int, Field(ge=0)] = 0  # keepalived quorum: total weight needed; 0 = off
    hysteresis: Annotated[int, Field(ge=0)] = 0
    quorum_up: str | None = None  # keepalived virtual_server quorum_up: command run when quorum is gained
    quorum_down: str | None = None  # keepalived quorum_down: command run when quorum is lost
    notify_up: str | None = None  # keepalived real_server notify_up: run when a real comes up
    notify_down: str | None = None  # keepalived real_server notify_down: run when a real goes down
    # behaviour on failure
    fallback: Fallback | None = None
    fallbackcommand: str | None = None
    quiescent: bool = False
    cleanstop: bool = True
    alerts: Alerts = Alerts()
    monitorfile: str | None = None
    servicename: str | None = None
    comment: str | None = None

    @field_validator("schedflags")
    @classmethod
    def _schedflags(cls, v: tuple[str, ...], info) -> tuple[str, ...]:
        ipvs.check_sched_flags(info.data.get("scheduler", "wrr"), v)
        return v

    @field_validator("persistent")
    @classmethod
    def _persistent(cls, v: int | None) -> int | None:
        if v is not None:
            ipvs.check_persistent(v)
        return v

    @field_validator("netmask")
    @classmethod
    def _netmask(cls, v: str | None, info) -> str | None:
        # ldirectord uses netmask only with persistent (ld_setup builds -M only after -p)
        if v is not None and info.data.get("persistent") is not None:
            ipvs.netmask_prefix(v, _is_v6(info.data))
        return v

    @model_validator(mode="after")
    def _address_or_fwmark(self) -> "VirtualService":
        if self.fwmark is None:
            if self.address is None or self.port is None:
                raise ValueError("a virtual service needs address and port, or fwmark")
            if self.protocol == "fwm":
                raise ValueError("protocol fwm needs a fwmark service")
            if ipaddress.ip_address(self.address).version == 6 and not self.ipv6:
                object.__setattr__(self, "ipv6", True)
        else:
            if self.address is not None or self.port is not None:
                raise ValueError("a fwmark service has no address or port")
            if self.protocol != "fwm":
                object.__setattr__(self, "protocol", "fwm")
        if self.service is None:
            svc = "none" if self.fwmark is not None else PORT_SERVICES.get(self.port or 0, "none")
            object.__setattr__(self, "service", svc)
        return self

    @property
    def name(self) -> str:
        """ipvsadm's way of naming a service: TCP 192.0.2.1:80, FWM 5."""
        if self.fwmark is not None:
            return f"FWM {self.fwmark}" + (" IPv6" if self.ipv6 else "")
        host = f"[{self.address}]" if self.ipv6 else self.address
        return f"{self.protocol.upper()} {host}:{self.port}"

    def real_port(self, real: Real | Fallback) -> int:
        """A real's port: its own, else the virtual's, else 0 (a fwmark service's real without a
        port), as ipvsadm copies the virtual port to a destination given without one."""
        if real.port is not None:
            return real.port
        return self.port if self.port is not None else 0

    def real_key(self, real: Real | Fallback) -> RealKey:
        return RealKey(self.name, real.address, self.real_port(real))

    @property
    def netmask_prefix(self) -> int | None:
        """The persistence granularity as a prefix length; None when not persistent or no
        netmask (ldirectord ignores netmask without persistent)."""
        if self.persistent is None or self.netmask is None:
            return None
        return ipvs.netmask_prefix(self.netmask, self.ipv6)

    def effective_checktimeout(self) -> int:
        """ldirectord ld_setup: checktimeout falls back to negotiatetimeout, then 5 s."""
        return self.checktimeout or self.negotiatetimeout or 5000

    def effective_negotiatetimeout(self) -> int:
        return self.negotiatetimeout or self.checktimeout or 30_000


class Conntrackd(Model):
    """[balancer.conntrackd]: open NAT connections follow the VIP (docs/balancer.md). conntrackd
    (conntrack-tools, FTFW mode) on every director keeps the others' conntrack tables;
    config/sync.py resolves these keys into what conntrackd is given."""

    enabled: bool | None = None  # None: on when a service has masq reals and there are 2+ nodes
    interface: str | None = None  # the sync link; None: the first cluster link with an interface
    peers: tuple[IPAddress, ...] = ()  # every director's address on it, own one skipped at run time;
    # () = that link's ucast peers, or multicast (225.0.0.50) when it has none
    port: Port = 3780  # conntrackd's UDP port (multicast: its Group)


class FlowSync(Model):
    """[balancer.flow_sync]: the active director's DR flow memory and persistence templates to
    the backups (daemon/flowsync.py, docs/balancer.md "What survives a failover")."""

    enabled: bool = True
    port: Port = 8848  # UDP; IPVS's sync daemon default (ip_vs_sync.c IP_VS_SYNC_PORT)
    peers: tuple[IPAddress, ...] = ()  # () = the peers of the first ucast link (ha.cf ucast lines)
    source: IPAddress | None = None  # bind to this address only (a dedicated sync link)
    interval: PositiveDuration = 20  # batch new entries for at most this long
    max_batch: Annotated[int, Field(ge=1, le=4096)] = 256  # ... or until this many wait
    max_entries: Annotated[int, Field(ge=1)] = 262144  # a backup keeps at most this many
    snapshot_interval: PositiveDuration = 60_000  # full snapshot to every backup this often
    nflog_group: Annotated[int, Field(ge=1, le=65535)] = 8848


class Balancer(Model):
    """ldirectord.cf: global directives and the virtual services."""

    # global defaults, inherited by each virtual that does not set them (INHERITED_KEYS)
    checktimeout: PositiveDuration | None = None
    negotiatetimeout: PositiveDuration | None = None
    checkinterval: PositiveDuration = 10_000
    failurecount: Annotated[int, Field(ge=1)] = 1
    rise: Annotated[int, Field(ge=1)] = 1
    alpha: bool = False
    fallback: Fallback | None = None
    fallback6: Fallback | None = None
    fallbackcommand: str | None = None
    quiescent: bool = False
    readdquiescent: bool = False
    cleanstop: bool = True
    alerts: Alerts = Alerts()
    # global only
    autoreload: bool = False
    callback: str | None = None
    logfile: str | None = None
    maintenancedir: str | None = None
    fork: bool = False
    supervised: bool = False
    execute: tuple[str, ...] = ()
    dataplane: Literal["auto", "nft", "proxy"] = "auto"
    flow_sync: FlowSync = FlowSync()
    conntrackd: Conntrackd = Conntrackd()
    virtual: tuple[VirtualService, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _inherit(cls, data: object) -> object:
        """Fill each virtual's unset keys from the globals, as ldirectord does."""
        if not isinstance(data, dict) or not isinstance(data.get("virtual"), (list, tuple)):
            return data
        out = []
        for v in data["virtual"]:
            if isinstance(v, dict):
                v = dict(v)
                for key in INHERITED_KEYS:
                    if key not in v:
                        # ldirectord fallback_find: an IPv6 service falls back to fallback6
                        src = "fallback6" if key == "fallback" and _is_v6(v) else key
                        if src in data:
                            v[key] = data[src]
            out.append(v)
        return {**data, "virtual": out}


def _is_v6(v) -> bool:
    if v.get("ipv6"):
        return True
    try:
        return ipaddress.ip_address(str(v.get("address"))).version == 6
    except ValueError:
        return False


# --------------------------------------------------------------------------- [api] (HTTP API)

class Api(Model):
    """The daemon's HTTP API, metrics and dashboard (daemon/api.py, docs/api.md); off without
    this table. The files are checked when the configuration is read (config/api_rules.py)."""

    listen: str  # ADDR:PORT (config/listen.py); port 0: the kernel picks one
    token_file: str | None = None  # bearer token: every request needs it; changes always do
    cert_file: str | None = None  # TLS: both or neither
    key_file: str | None = None
    max_connections: Annotated[int, Field(ge=1, le=10_000)] = 64
    max_body: Annotated[int, Field(ge=1024, le=1 << 24)] = 65536  # bytes of a request body

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        from .listen import format_listen, parse_listen
        return format_listen(*parse_listen(v))

    @model_validator(mode="after")
    def _tls_pair(self) -> "Api":
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("TLS needs both cert_file and key_file")
        return self


# --------------------------------------------------------------------------- the whole

class Config(Model):
    cluster: Cluster
    groups: tuple[Group, ...] = ()
    balancer: Balancer | None = None
    api: Api | None = None  # [api]: the HTTP API (off without it)

    def group(self, name: str) -> Group:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(name)


def _fencing_problems(f: Fencing, nodes: tuple[str, ...]) -> list[tuple[str, str]]:
    """Fence devices name cluster nodes only (a typo would leave a node unfenceable)."""
    out: list[tuple[str, str]] = []
    for i, d in enumerate(f.devices):
        for key, names in (("nodes", d.nodes), ("runs_on", d.runs_on), ("plugs", tuple(d.plugs))):
            for n in names:
                if n not in nodes:
                    out.append((f"cluster.fencing.devices.{i}.{key}",
                                f"{n!r} is not a cluster node; nodes are {', '.join(nodes)}"))
    return out


# where a fence agent named without a path is looked for (Debian's fence-agents: /usr/sbin),
# and cluster-glue's stonith command (Debian cluster-glue: /usr/sbin/stonith)
FENCE_AGENT_DIRS = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")


def program_candidates(name: str) -> tuple[str, ...]:
    """The paths a fence program name stands for, in lookup order."""
    return (name,) if "/" in name else tuple(f"{d}/{name}" for d in FENCE_AGENT_DIRS)


def fence_devices_for(f: Fencing | None, local: str, target: str, nodes: tuple[str, ...]) -> list[FenceDevice]:
    """The devices `local` may run to fence `target`, in configuration order."""
    if f is None:
        return []
    return [d for d in f.devices if target in (d.nodes or nodes) and local in (d.runs_on or nodes)
            and target != local]


def semantic_problems(cfg: Config) -> list[tuple[str, str]]:
    """Rules across fields, as (key path, message). Heartbeat's and ldirectord's own rules first."""
    out: list[tuple[str, str]] = []
    t = cfg.cluster.timing
    if t.deadtime <= 2 * t.keepalive:
        out.append(("cluster.timing.deadtime",
                    f"deadtime ({t.deadtime} ms) must be more than twice keepalive ({t.keepalive} ms)"))
    # heartbeat init_config compares warntime with nothing (set_warntime_ms only wants it above 0)
    if t.warntime <= 0:
        out.append(("cluster.timing.warntime", f"warntime must be more than zero, got {t.warntime} ms"))
    if t.initdead < t.deadtime:
        out.append(("cluster.timing.initdead",
                    f"initdead ({t.initdead} ms) must not be below deadtime ({t.deadtime} ms)"))
    seen: set[str] = set()
    for i, n in enumerate(cfg.cluster.nodes):
        if n in seen:
            out.append((f"cluster.nodes.{i}", f"node {n!r} is listed twice"))
        seen.add(n)
    if cfg.cluster.fencing is not None:
        out += _fencing_problems(cfg.cluster.fencing, cfg.cluster.nodes)
    q = cfg.cluster.quorum
    for n in q.votes:
        if n not in cfg.cluster.nodes:
            out.append((f"cluster.quorum.votes.{n}",
                        f"{n!r} is not a cluster node; nodes are {', '.join(cfg.cluster.nodes)}"))
    if sum(q.votes.get(n, 1) for n in cfg.cluster.nodes) == 0:
        out.append(("cluster.quorum.votes", "every node has 0 votes: the cluster could never be quorate"))
    elif q.expected_votes is not None:
        total = sum(q.node_votes(cfg.cluster.nodes).values()) + (q.DEVICE_VOTES if q.device else 0)
        # two disjoint partitions must not both reach expected // 2 + 1 votes
        if 2 * (q.expected_votes // 2 + 1) <= total:
            least = next(e for e in range(1, 2 * total + 2) if 2 * (e // 2 + 1) > total)
            out.append(("cluster.quorum.expected_votes",
                        f"expected_votes {q.expected_votes} lets two partitions be quorate at once "
                        f"({q.expected_votes // 2 + 1} of the {total} votes each); use at least {least}"))
    names: set[str] = set()
    for i, pg in enumerate(cfg.cluster.ping_groups):
        if pg.name in names:
            out.append((f"cluster.ping_groups.{i}.name", f"ping group {pg.name!r} is defined twice"))
        names.add(pg.name)
    gnames: set[str] = set()
    for i, g in enumerate(cfg.groups):
        if g.name in gnames:
            out.append((f"groups.{i}.name", f"group name {g.name!r} is used twice"))
        gnames.add(g.name)
        if g.preferred_node not in cfg.cluster.nodes:
            out.append((f"groups.{i}.preferred_node",
                        f"{g.preferred_node!r} is not a cluster node; nodes are {', '.join(cfg.cluster.nodes)}"))
        for j, r in enumerate(g.resources):
            if isinstance(r, BalancerResource) and cfg.balancer is None:
                out.append((f"groups.{i}.resources.{j}", "a balancer resource needs a [balancer] section"))
            # the drain runs inside the VIP's stop, which stop_timeout bounds
            if isinstance(r, VipResource) and r.drain and r.drain >= g.stop_timeout:
                out.append((f"groups.{i}.resources.{j}.drain",
                            f"drain ({r.drain} ms) must be shorter than the group's stop_timeout "
                            f"({g.stop_timeout} ms)"))
    if cfg.balancer is not None:
        seen_vs: set[str] = set()
        for i, vs in enumerate(cfg.balancer.virtual):
            if vs.name in seen_vs:
                out.append((f"balancer.virtual.{i}", f"duplicate virtual service {vs.name}"))
            seen_vs.add(vs.name)
            if vs.fwmark is None:
                for j, r in enumerate(vs.reals):
                    if ipaddress.ip_address(r.address).version != (6 if vs.ipv6 else 4):
                        out.append((f"balancer.virtual.{i}.reals.{j}.address",
                                    f"real {r.address} is not of the virtual service's address family"))
            if vs.netmask is not None and vs.persistent is None:
                out.append((f"balancer.virtual.{i}.netmask", "netmask needs persistent"))
        from .sync import sync_problems
        out += sync_problems(cfg)
        from .check_rules import check_problems
        from .dataplane_rules import dataplane_problems
        out += check_problems(cfg.balancer)
        out += dataplane_problems(cfg.balancer)
    return out
