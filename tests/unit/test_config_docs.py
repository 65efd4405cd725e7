"""docs/configuration.md names every key of the model and every legacy directive we read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hadirector.config import model
from hadirector.config.legacy import hacf, ldirectord

DOC = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
CODE = set(re.findall(r"`([^`]+)`", DOC))
WORDS = {w for c in CODE for w in re.findall(r"[A-Za-z_][A-Za-z0-9_\-]*", c)}

MODELS = [model.Config, model.Cluster, model.Link, model.Timing, model.Auth, model.PingGroup, model.Respawn,
          model.Logging, model.Group, model.VipResource, model.ScriptResource, model.SystemdResource,
          model.OcfResource, model.BalancerResource, model.Balancer, model.FlowSync, model.Alerts, model.Fallback,
          model.VirtualService, model.Real, model.Api,
          model.Fencing, model.FenceDevice,
          model.Quorum, model.QuorumDevice, model.Realtime]


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_every_model_key_is_documented(cls):
    missing = [f for f in cls.model_fields if f not in WORDS]
    assert not missing, f"document {cls.__name__} keys {missing} in docs/configuration.md"


def test_every_legacy_directive_is_documented():
    directives = hacf.KNOWN | set(ldirectord.GLOBAL_KEYS) | set(ldirectord.VIRTUAL_KEYS)
    missing = sorted(d for d in directives if d not in WORDS)
    assert not missing, f"document legacy directives {missing} in docs/configuration.md"
