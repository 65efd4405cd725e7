"""`hadirector demo`: two directors, three reals, failover and health checks on loopback."""


def register(sub) -> None:
    p = sub.add_parser("demo", help="run a two-director demo on loopback (no root needed)",
                       description="Start two directors and three real HTTP servers on 127.0.0.0/8, "
                       "show balancing, a health check removing and re-adding a real, and a "
                       "failover after the active director is killed; then stop everything.")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..lab.demo import main  # the lab is only loaded for this command
    return main()
