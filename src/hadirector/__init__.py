"""hadirector: a high-availability load-balancer director (heartbeat + LVS + ldirectord in one)."""

__version__ = "0.1.0"
