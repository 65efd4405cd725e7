"""Network-namespace labs for `hadirector lab`, the demo and the integration tests.

    from hadirector.lab import Lab, balancer, director_pair

    with Lab() as lab:
        bl = balancer(lab, layout="one-arm")          # client, director, real1..3 with HTTP servers
        print(bl.client.http_get(bl.real_addr["real1"]))

pytest: `from hadirector.lab.testing import lab, balancer_lab, director_pair_lab`.
"""

from ..net.netns import NetnsWorker, setns
from .presets import VIP, BalancerLab, DirectorPair, balancer, director_pair
from .topology import Host, Iface, Lab, LabError, LabProcess, Switch, run_prefix

__all__ = ["Lab", "Host", "Iface", "Switch", "LabProcess", "LabError", "NetnsWorker", "setns",
           "run_prefix", "balancer", "director_pair", "BalancerLab", "DirectorPair", "VIP"]
