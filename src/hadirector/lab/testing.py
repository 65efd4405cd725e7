"""pytest fixtures for lab tests, a pytest plugin: the project's top conftest registers it
(`pytest_plugins = [..., "hadirector.lab.testing"]`), so every test can ask for them:

    def test_something(lab):
        a = lab.host("a") ...

Each fixture skips with a reason unless root with `ip` available, and removes the lab (processes
by pid, namespaces) when the test ends, failed or not.
"""

from __future__ import annotations

import os
import shutil

import pytest

from .presets import BalancerLab, DirectorPair, balancer, director_pair
from .topology import Lab


def skip_unless_lab_possible() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces")
    if shutil.which("ip") is None:
        pytest.skip("needs ip (iproute2)")


@pytest.fixture
def lab():
    skip_unless_lab_possible()
    with Lab() as lab:
        yield lab


@pytest.fixture
def director_pair_lab(lab) -> DirectorPair:
    """client + dir-a + dir-b on one lan, plus a second heartbeat link (hb)."""
    return director_pair(lab, hb_link=True)


@pytest.fixture
def balancer_lab(lab) -> BalancerLab:
    """client, director, real1..3 (two-arm layout) with python HTTP servers answering their name."""
    return balancer(lab, layout="two-arm", reals=3, http="python")
