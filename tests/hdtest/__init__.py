"""Shared test support, registered by the top conftest.py (`pytest_plugins`): waiting, ports the
kernel picked and we keep, external processes, skips. Import what you need from here:

    from hdtest import wait_until, need_root, start_server, Proc

Fixtures (from hdtest.plugin, available to every test): `held_ports`, and the lab fixtures
of hadirector.lab.testing (`lab`, `balancer_lab`, `director_pair_lab`).
"""

from .ports import HeldPort, HeldPorts, bound, listening, port_of
from .procs import Proc, need, need_root, pick_port, start_server
from .wait import async_wait_until, wait_until

__all__ = ["HeldPort", "HeldPorts", "Proc", "async_wait_until", "bound", "listening", "need", "need_root",
           "pick_port", "port_of", "start_server", "wait_until"]
