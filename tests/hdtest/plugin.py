"""pytest fixtures shared by every test (registered through the top conftest.py pytest_plugins)."""

from __future__ import annotations

import pytest

from .ports import ClosedPorts


@pytest.fixture
def closed_ports():
    """Kernel-picked ports nobody answers on, held until the test ends: `closed_ports.tcp()`
    (connect refused), `closed_ports.udp()` (ICMP port unreachable)."""
    held = ClosedPorts()
    try:
        yield held
    finally:
        held.close()
