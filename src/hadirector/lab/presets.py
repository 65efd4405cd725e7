"""Ready-made topologies.

director pair (heartbeat/failover tests)::

    client 198.18.0.10 ─┐
    dir-a  198.18.0.2  ─┼─ lan (br-lan)          VIP suggestion: 198.18.0.100
    dir-b  198.18.0.3  ─┘
    dir-a  198.18.1.2  ─┬─ hb  (br-hb, optional second heartbeat link, eth1)
    dir-b  198.18.1.3  ─┘

director trio (quorum tests): the pair plus dir-c, 198.18.0.4 on lan and 198.18.1.4 on hb.

balancer, layout "one-arm" (direct routing; NAT with masquerade)::

    client 198.18.0.10, director 198.18.0.2 (+ VIP 198.18.0.100), real1..N 198.18.0.11.. on lan

balancer, layout "two-arm" (classic LVS-NAT: reals answer through the director)::

    client 198.18.0.10 ── front ── 198.18.0.2 director 198.18.1.1 ── back ── real1..N 198.18.1.11..
    reals route 198.18.0.0/24 via 198.18.1.1; the client routes 198.18.1.0/24 via 198.18.0.2 (so
    it can also reach a real directly, for benchmarks); the director forwards.

Each real can run an HTTP server answering its own name (python httpd or nginx).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .topology import Host, Lab, LabProcess, Switch

VIP = "198.18.0.100"


@dataclass
class DirectorPair:
    lab: Lab
    lan: Switch
    client: Host
    a: Host
    b: Host
    hb: Switch | None = None
    vip: str = VIP
    lan_prefix: int = 24
    addr: dict[str, str] = field(default_factory=dict)  # host name -> lan address
    hb_addr: dict[str, str] = field(default_factory=dict)  # host name -> hb address

    @property
    def directors(self) -> tuple[Host, Host]:
        return (self.a, self.b)

    def holders(self, address: str | None = None) -> list[str]:
        """Names of the directors that currently hold `address` (default: the VIP)."""
        address = address or self.vip
        return [h.name for h in self.directors if h.has_address(address)]


def director_pair(lab: Lab, hb_link: bool = False, names: tuple[str, str, str] = ("client", "dir-a", "dir-b"),
                  client: bool = True) -> DirectorPair:
    """Two directors (eth0 on the lan, eth1 on an optional heartbeat-only link) and a client."""
    lan = lab.switch("lan")
    cname, aname, bname = names
    c = lab.host(cname) if client else None
    a, b = lab.host(aname), lab.host(bname)
    addr = {aname: "198.18.0.2", bname: "198.18.0.3"}
    if c is not None:
        addr[cname] = "198.18.0.10"
        c.connect(lan, "198.18.0.10/24")
    a.connect(lan, "198.18.0.2/24")
    b.connect(lan, "198.18.0.3/24")
    hb = None
    hb_addr: dict[str, str] = {}
    if hb_link:
        hb = lab.switch("hb")
        a.connect(hb, "198.18.1.2/24")
        b.connect(hb, "198.18.1.3/24")
        hb_addr = {aname: "198.18.1.2", bname: "198.18.1.3"}
    return DirectorPair(lab, lan, c, a, b, hb=hb, addr=addr, hb_addr=hb_addr)  # type: ignore[arg-type]


@dataclass
class DirectorTrio(DirectorPair):
    """A director pair plus a third director, dir-c (198.18.0.4 on lan, 198.18.1.4 on hb): the
    smallest cluster with a majority quorum."""

    c3: Host | None = None

    @property
    def directors(self) -> tuple[Host, ...]:  # type: ignore[override]
        return (self.a, self.b, self.c3)  # type: ignore[return-value]


def director_trio(lab: Lab, hb_link: bool = False,
                  names: tuple[str, str, str, str] = ("client", "dir-a", "dir-b", "dir-c")) -> DirectorTrio:
    """Three directors (eth0 on the lan, eth1 on an optional heartbeat-only link) and a client."""
    pair = director_pair(lab, hb_link, names[:3])
    third = lab.host(names[3])
    third.connect(pair.lan, "198.18.0.4/24")
    addr = {**pair.addr, names[3]: "198.18.0.4"}
    hb_addr = dict(pair.hb_addr)
    if pair.hb is not None:
        third.connect(pair.hb, "198.18.1.4/24")
        hb_addr[names[3]] = "198.18.1.4"
    return DirectorTrio(lab, pair.lan, pair.client, pair.a, pair.b, hb=pair.hb, addr=addr,
                        hb_addr=hb_addr, c3=third)


@dataclass
class BalancerLab:
    lab: Lab
    layout: str
    client: Host
    director: Host
    reals: list[Host]
    front: Switch
    back: Switch  # the same switch as front in the one-arm layout
    vip: str = VIP
    director_front: str = "eth0"  # the director's interface toward clients (VIP lives here)
    director_back: str = "eth0"  # toward the reals
    real_addr: dict[str, str] = field(default_factory=dict)
    servers: dict[str, LabProcess] = field(default_factory=dict)
    client_addr: str = "198.18.0.10"
    director_addr: str = "198.18.0.2"

    def start_http(self, kind: str = "python", port: int = 80) -> None:
        """Start (or restart) an HTTP server on every real, answering the real's name."""
        for r in self.reals:
            if r.name in self.servers:
                self.servers[r.name].stop()
            self.servers[r.name] = r.http_server(port=port, identity=r.name, kind=kind)

    def real(self, name: str) -> Host:
        for r in self.reals:
            if r.name == name:
                return r
        raise KeyError(name)


def balancer(lab: Lab, layout: str = "two-arm", reals: int = 3, http: str | None = "python",
             port: int = 80, add_vip: bool = True) -> BalancerLab:
    """A client, a director (forwarding on) and `reals` real servers named real1..realN."""
    if layout not in ("one-arm", "two-arm"):
        raise ValueError(f"layout {layout!r}: expected one-arm or two-arm")
    front = lab.switch("front" if layout == "two-arm" else "lan")
    client = lab.host("client")
    director = lab.host("director")
    client.connect(front, "198.18.0.10/24")
    director.connect(front, "198.18.0.2/24")
    director.enable_forwarding()
    hosts = [lab.host(f"real{i + 1}") for i in range(reals)]
    real_addr: dict[str, str] = {}
    if layout == "two-arm":
        back = lab.switch("back")
        director.connect(back, "198.18.1.1/24")
        for i, r in enumerate(hosts):
            a = f"198.18.1.{11 + i}"
            r.connect(back, f"{a}/24")
            r.route("198.18.0.0/24", via="198.18.1.1")
            real_addr[r.name] = a
        client.route("198.18.1.0/24", via="198.18.0.2")
        back_dev = "eth1"
    else:
        back = front
        for i, r in enumerate(hosts):
            a = f"198.18.0.{11 + i}"
            r.connect(front, f"{a}/24")
            real_addr[r.name] = a
        back_dev = "eth0"
    if add_vip:
        director.add_address(f"{VIP}/32", "eth0")
    bl = BalancerLab(lab, layout, client, director, hosts, front, back, director_back=back_dev,
                     real_addr=real_addr)
    if http:
        bl.start_http(http, port)
    return bl
