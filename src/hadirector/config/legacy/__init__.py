"""Legacy import: the heartbeat (ha.cf, authkeys, haresources) and ldirectord.cf files as users have
them. `read_ha_dir` returns plain data in the shape of `model.Config` plus a `locate` function that
maps a key path back to `file:line`."""

from __future__ import annotations

from pathlib import Path

from ..build import Locate
from ..errors import Collector


def read_ha_dir(ha_dir: Path, collector: Collector) -> tuple[dict | None, Locate, tuple[str, ...]]:
    raise NotImplementedError("legacy import is being written")
