"""pytest fixtures shared by every test (registered through the top conftest.py pytest_plugins)."""

from __future__ import annotations

import pytest

from .ports import HeldPorts


@pytest.fixture
def held_ports():
    """Kernel-picked ports held until the test ends: `held_ports.closed_tcp()` (connect refused),
    `held_ports.closed_udp()` (ICMP port unreachable), `held_ports.reserve()` (a HeldPort)."""
    held = HeldPorts()
    try:
        yield held
    finally:
        held.close()
