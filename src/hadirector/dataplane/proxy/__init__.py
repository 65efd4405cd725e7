"""The userspace proxy data plane: TCP and UDP virtual services relayed by asyncio, no root needed.

How it works: for every virtual service of the desired state the proxy listens on the service's
address and port (or on an address given in `listen`), schedules each new client connection (TCP)
or flow (UDP, keyed by client address and port) with the service's IPVS scheduler
(balancer/schedulers.py) and relays bytes between the client and the chosen real server. TCP is
relayed on non-blocking sockets in one private epoll set watched by the event loop (tcp.py: a
third less CPU per short connection than a transport per socket); UDP uses asyncio datagram
transports (udp.py). It keeps the kernel's bookkeeping so `hadirector lvs` reads like
`ipvsadm -L -n`:

- A connection counts as inactive until its upstream connection is established, active while both
  directions are open, inactive again after the first FIN (ip_vs_proto_tcp.c: only ESTABLISHED is
  active). UDP flows always count as inactive, as in IPVS. Closed connections leave the counts at
  once (the proxy has no TIME_WAIT entries).
- Weight 0 (quiescent) stops new connections; open ones go on. A real removed from the table keeps
  its open connections unless `expire_nodest_conn` is set (the IPVS sysctl), which closes them.
  Re-adding a removed real that still has connections revives it, as IPVS's dest trash does.
- Persistence (ipvsadm -p/-M) uses balancer/persistence.py templates.
- Timeouts as `ipvsadm --set tcp tcpfin udp`: an established TCP connection idle for `tcp`
  seconds, a half-closed one for `tcpfin` seconds, a UDP flow idle for `udp` seconds is closed.
- Backpressure: what cannot be written to one side at once waits in that side's buffer; while it
  holds `buffer_high` bytes or more the proxy stops reading from the other side, and reads again
  once it has drained. Memory per connection is bounded (buffer_high plus one read per direction).
- A FIN from one side is passed on with shutdown(SHUT_WR) once what came before it is written;
  when both directions are finished the connection is closed. Timeouts close gracefully;
  `expire_nodest_conn` and a refused connection reset.
- PROXY protocol v1 or v2 (haproxy's proxy-protocol.txt) can be sent to the reals first on each
  connection (v2 also per UDP datagram).
- Counters: conns, packets (one per read or datagram: a proxy sees reads, not packets) and bytes,
  in (client -> real) and out (real -> client); rates estimated as ip_vs_est.c does.

Limits (`CAPABILITIES`, as data): fwmark services cannot be proxied (they are skipped and
reported in `unserved` as UNSUPPORTED); the reals see connections from the proxy's address (use the
PROXY protocol to pass the client's); `gate`/`ipip` forwarding methods are relayed like `masq`.

The package: table.py (the in-memory IPVS table: services, reals, scheduling, persistence use),
tcp.py (the epoll TCP relay), udp.py (UDP flows), proxy_protocol.py (PROXY protocol headers),
plane.py (`ProxyDataPlane`, which ties them to the desired state). Run it alone with
`hadirector proxy` (commands/proxy.py).
"""

from .plane import CAPABILITIES, ProxyDataPlane
from .proxy_protocol import proxy_header
from .table import Timeouts

__all__ = ["CAPABILITIES", "ProxyDataPlane", "Timeouts", "proxy_header"]
