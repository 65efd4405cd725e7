"""The native format: one TOML file whose tables mirror `model.Config` key for key
(docs/configuration.md). Loading validates through `build.build_config`; dumping writes the same
shape back, so dump -> load gives an equal model.
"""

from __future__ import annotations

import tomllib

import tomli_w

from .build import build_config
from .errors import Collector, ConfigError
from .model import Config


def load_toml_text(text: str, name: str = "<config>", collector: Collector | None = None) -> Config:
    col = collector or Collector()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib says "... (at line 3, column 7)"; keep its words, name the file
        col.error(name, f"not valid TOML: {exc}")
        raise ConfigError(col.problems) from None
    cfg = build_config(data, col)
    if cfg is None:
        raise ConfigError(col.problems)
    return cfg


def _prune(value):
    """TOML has no null: drop None values and empty tables/arrays left by defaults."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            v = _prune(v)
            if v is None:
                continue
            out[k] = v
        return out
    if isinstance(value, (list, tuple)):
        return [_prune(v) for v in value]
    return value


def dump_toml(cfg: Config, header: str = "") -> str:
    data = _prune(cfg.model_dump(mode="json", exclude_defaults=False))
    text = tomli_w.dumps(data)
    return (header + "\n" if header else "") + text
