"""One entry point for every configuration source: `load_config(path=... | ha_dir=...)`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .build import Locate, build_config, dotted
from .errors import Collector, ConfigError, Problem, Unused
from .model import Config


@dataclass(frozen=True)
class Loaded:
    config: Config
    node: str | None  # this node's name, when it is one of the cluster's nodes
    source: str  # the TOML file or the legacy directory
    legacy: bool
    warnings: list[Problem] = field(default_factory=list)
    files: tuple[str, ...] = ()  # every file read, for autoreload
    locate: Locate = dotted  # key path -> where it came from ("ha.cf:5" or the dotted path)
    unused: tuple[Unused, ...] = ()  # legacy lines accepted but not acted on, not in the model


def load_config(path: str | os.PathLike | None = None, ha_dir: str | os.PathLike | None = None,
                node: str | None = None, need_node: bool = False) -> Loaded:
    """Load and validate. Raises ConfigError carrying every problem found.

    `node` overrides `uname -n`. When `need_node` is set (the daemon), this node must be one of the
    configured nodes; otherwise an explicit --node that is not a node is still an error, and a
    `uname -n` that is not one is only a warning."""
    col = Collector()
    if (path is None) == (ha_dir is None):
        raise ValueError("give exactly one of path and ha_dir")
    if path is not None:
        from .native import load_toml_text
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([Problem(str(p), f"cannot read: {exc.strerror}")]) from None
        try:
            cfg = load_toml_text(text, str(p), col)
        except ConfigError:
            raise ConfigError(col.problems) from None
        locate: Locate = dotted
        files: tuple[str, ...] = (str(p),)
        source, legacy = str(p), False
    else:
        from .legacy import read_ha_dir
        data, locate, files = read_ha_dir(Path(ha_dir), col, node)
        cfg = build_config(data, col, locate) if data is not None and not col.errors else None
        if cfg is None:
            raise ConfigError(col.problems)
        source, legacy = str(ha_dir), True
    me = _node_name(cfg, node, need_node, locate, col)
    if cfg.api is not None:  # the token, certificate and key files ([api], config/api_rules.py)
        from .api_rules import api_problems
        api_problems(cfg.api, col, locate)
    col.raise_if_errors()
    return Loaded(cfg, me, source, legacy, col.warnings, files, locate, tuple(col.unused))


def _node_name(cfg: Config, node: str | None, need_node: bool, locate: Locate, col: Collector) -> str | None:
    nodes = cfg.cluster.nodes
    explicit = node is not None
    name = node if explicit else os.uname().nodename
    if name in nodes:
        return name
    # heartbeat compares `uname -n` case-insensitively
    for n in nodes:
        if n.lower() == name.lower():
            return n
    msg = (f"this node's name {name!r} ({'--node' if explicit else 'uname -n'}) is not one of the "
           f"cluster's nodes: {', '.join(nodes)}")
    if explicit or need_node:
        col.error(locate(("cluster", "nodes")), msg)
    else:
        col.warn(locate(("cluster", "nodes")), msg + " (pass --node NAME)")
    return None
