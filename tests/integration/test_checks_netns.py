"""Root: checks from a director namespace to real servers in their own namespaces (198.18.0.0/15).

Stop a real's HTTP server and it leaves the balancer's desired state within
checkinterval x failurecount + checktimeout; start it again and it comes back. Also ping (ICMP)
across the lab network."""

import asyncio
import time

from hadirector.balancer.state import build_desired
from hadirector.checks.monitor import HealthMonitor
from hadirector.checks.scheduler import check_once
from hadirector.config.model import Balancer, Real, VirtualService

INTERVAL, FAILURES, TIMEOUT = 0.5, 2, 1.0
BOUND = INTERVAL * FAILURES + TIMEOUT


def installed(balancer, health):
    d = build_desired(balancer, health)
    return {(r.address, r.port) for svc in d.services for r in svc.installed}


def scenario(bl):
    vs = VirtualService(address=bl.vip, port=80, checktype="negotiate", service="http", request="/",
                        receive="^real[0-9]", checkinterval=f"{int(INTERVAL * 1000)}ms", failurecount=FAILURES,
                        checktimeout=f"{int(TIMEOUT * 1000)}ms", negotiatetimeout=f"{int(TIMEOUT * 1000)}ms",
                        reals=[Real(address=a, port=80) for a in sorted(bl.real_addr.values())])
    bal = Balancer(virtual=(vs,))
    events = []

    async def run():
        mon = HealthMonitor(bal, on_event=events.append, startup_window=0.1)
        await mon.start()
        try:
            await asyncio.sleep(1.2)
            assert all(h.up and h.last_ok for h in mon.health().values()), mon.health()
            assert len(installed(bal, mon.health())) == 3
            bl.servers["real2"].stop()
            t0 = time.monotonic()
            while not events and time.monotonic() - t0 < BOUND + 3:
                await asyncio.sleep(0.05)
            down_after = time.monotonic() - t0
            assert events and events[0].kind == "down" and events[0].key.address == bl.real_addr["real2"]
            assert down_after <= BOUND + 0.5, down_after  # the functional deadline (plus loop slack)
            assert (bl.real_addr["real2"], 80) not in installed(bal, mon.health())
            bl.servers["real2"] = bl.real("real2").http_server(port=80, identity="real2")
            t1 = time.monotonic()
            while len(events) < 2 and time.monotonic() - t1 < INTERVAL + TIMEOUT + 3:
                await asyncio.sleep(0.05)
            assert len(events) == 2 and events[1].kind == "up"
            assert (bl.real_addr["real2"], 80) in installed(bal, mon.health())
            ping_vs = VirtualService(address=bl.vip, port=80, checktype="ping", checktimeout="1s",
                                     reals=[Real(address=bl.real_addr["real1"]), Real(address="198.18.1.99")])
            assert (await check_once(ping_vs, ping_vs.reals[0])).ok
            assert not (await check_once(ping_vs, ping_vs.reals[1])).ok
            return down_after
        finally:
            await mon.stop()

    return asyncio.run(run())


def test_real_leaves_and_returns(balancer_lab):  # noqa: F811
    bl = balancer_lab
    down_after = bl.director.worker.call(scenario, bl)
    assert down_after > 0
