"""`hadirector proxy`: the userspace proxy data plane on its own (benchmarks, trying a configuration).

No cluster and no health checks: every configured real is up. Serves either the [balancer] of a
configuration (-c / --ha-dir) or one service given on the command line:

    hadirector proxy --service tcp:127.0.0.1:8080 --real 127.0.0.2:80:3 --real [2001:db8::2]:80
    hadirector proxy -c hadirector.toml --state-dir /tmp/px    # then: hadirector lvs --state-dir /tmp/px

Runs on uvloop when it is installed (--no-uvloop: the stock asyncio loop); SIGINT/SIGTERM stop it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from ..errors import HadirectorError
from . import _args
from ._common import load_or_report

PROG = "hadirector proxy"


class UsageError(HadirectorError):
    """A bad option value; the message names the option (fatal: the same options fail again)."""


def register(sub) -> None:
    p = sub.add_parser("proxy", help="run the userspace proxy data plane alone (no cluster)",
                       description="Serve virtual services with the userspace proxy data plane, "
                       "every real taken as up: the [balancer] of a configuration, or one service "
                       "from --service and --real. Prints where each service listens.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("-c", "--config", metavar="FILE", type=_args.existing_file, help="native TOML configuration: serve its [balancer]")
    src.add_argument("--ha-dir", metavar="DIR", type=_args.existing_dir, help="legacy directory: serve its ldirectord.cf")
    p.add_argument("--service", metavar="PROTO:HOST:PORT", type=_args.text("PROTO:HOST:PORT"), help="e.g. tcp:127.0.0.1:8080 or udp:[::1]:53")
    p.add_argument("--real", action="append", default=[], metavar="HOST:PORT[:WEIGHT]",
                   type=_args.text("HOST:PORT[:WEIGHT]"),
                   help="a real server of --service (repeat); IPv6 in brackets")
    p.add_argument("--scheduler", default="wrr", type=_args.text("an IPVS scheduler name"), help="IPVS scheduler of --service (default wrr)")
    p.add_argument("--persistent", type=_args.integer(0, 31 * 86400, "seconds (0 = not persistent)"), default=0, metavar="SECONDS",
                   help="persistence timeout of --service")
    p.add_argument("--proxy-protocol", choices=("v1", "v2"), default=None,
                   help="send the PROXY protocol header to the reals")
    p.add_argument("--state-dir", metavar="DIR", type=_args.dir_path,
                   help="serve `hadirector lvs --state-dir DIR` from here")
    p.add_argument("--no-uvloop", action="store_true", help="use the stock asyncio loop")
    p.set_defaults(func=run)


def _hostport(text: str, what: str) -> tuple[str, list[str]]:
    """HOST:REST or [V6]:REST -> (host, the colon-separated numbers after it)."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise UsageError(f"{what} {text!r}: expected [ADDRESS]:PORT")
        nums = rest[1:].split(":")
    else:
        host, *nums = text.split(":")
    if not host or not nums or not all(n.isdigit() for n in nums):
        raise UsageError(f"{what} {text!r}: expected HOST:PORT (IPv6 as [ADDRESS]:PORT)")
    return host, nums


def service_from_options(args) -> dict:
    """The one virtual service of --service/--real/--scheduler/--persistent, as a config dict."""
    if not args.service or not args.real:
        raise UsageError("give -c CONFIG (or --ha-dir DIR), or --service PROTO:HOST:PORT and at "
                         "least one --real HOST:PORT[:WEIGHT]")
    proto, _, rest = args.service.partition(":")
    if proto not in ("tcp", "udp"):
        raise UsageError(f"--service {args.service!r}: expected tcp:HOST:PORT or udp:HOST:PORT")
    host, nums = _hostport(rest, "--service")
    if len(nums) != 1:
        raise UsageError(f"--service {args.service!r}: expected PROTO:HOST:PORT")
    reals = []
    for text in args.real:
        rhost, rnums = _hostport(text, "--real")
        if len(rnums) > 2:
            raise UsageError(f"--real {text!r}: expected HOST:PORT[:WEIGHT]")
        weight = int(rnums[1]) if len(rnums) == 2 else 1
        reals.append({"address": rhost, "port": int(rnums[0]), "weight": weight, "method": "masq"})
    v = {"address": host, "port": int(nums[0]), "protocol": proto, "scheduler": args.scheduler,
         "reals": reals}
    if args.persistent:
        v["persistent"] = args.persistent
    return v


def desired_from_args(args):
    """The desired state to serve, or None when the configuration had errors (printed)."""
    from ..balancer.state import build_desired
    from ..config.model import Balancer

    if args.config or args.ha_dir:
        loaded = load_or_report(args, need_node=False)
        if loaded is None:
            return None
        balancer = loaded.config.balancer
        if balancer is None or not balancer.virtual:
            raise UsageError("the configuration has no virtual services")
        return build_desired(balancer)
    v = service_from_options(args)
    try:
        return build_desired(Balancer(virtual=[v]))
    except ValueError as exc:  # pydantic's ValidationError is one
        raise UsageError(_option_problems(exc, v)) from None


def _option_problems(exc: ValueError, v: dict) -> str:
    """The model's complaints about the one service, named by the option that gave the value."""
    errors = getattr(exc, "errors", None)
    if errors is None:
        return f"--service {v['protocol']}:{v['address']}:{v['port']}: {exc}"
    out = []
    for e in errors():
        loc = [str(x) for x in e.get("loc", ())][2:]  # drop ("virtual", 0)
        if loc[:1] == ["reals"] and len(loc) > 1 and loc[1].isdigit():
            where = f"--real {_real_text(v, int(loc[1]))}"
        elif loc[:1] in (["scheduler"], ["persistent"]):
            where = f"--{loc[0]}"
        else:
            where = "--service"
        out.append(f"{where}: {e.get('msg', exc)}")
    return "; ".join(out)


def _real_text(v: dict, i: int) -> str:
    r = v["reals"][i]
    host = f"[{r['address']}]" if ":" in r["address"] else r["address"]
    return f"{host}:{r['port']}:{r['weight']}"


async def serve(args, desired) -> int:
    from ..daemon.control import ControlServer
    from ..dataplane.base import DataPlaneError
    from ..dataplane.proxy import ProxyDataPlane
    from ..render.lvs import lvs_snapshot

    dp = ProxyDataPlane(proxy_protocol=args.proxy_protocol)
    control = None
    try:
        try:
            await dp.apply(desired)
        except DataPlaneError as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 1
        for key in desired.keys:
            where = dp.listen_address(key)
            print(f"proxy: {key} listening on {where}" if where else
                  f"proxy: {key} not served: {dp.unserved.get(key)}", flush=True)
        if args.state_dir:
            async def lvs(_req):
                return lvs_snapshot(dp.desired, dp.stats(), dp.name)
            control = ControlServer(args.state_dir, {"lvs": lvs})
            await control.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        return 0
    finally:
        if control is not None:
            await control.close()
        await dp.close()


def run(args) -> int:
    try:
        desired = desired_from_args(args)
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if desired is None:
        return 1
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    runner = asyncio.run
    if not args.no_uvloop:
        try:
            import uvloop
            runner = uvloop.run
        except ImportError:
            pass
    from ..daemon.control import ControlError
    try:
        return runner(serve(args, desired))
    except (OSError, ControlError) as exc:  # e.g. the state directory is not ours
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
