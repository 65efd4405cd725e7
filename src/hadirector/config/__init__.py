"""Configuration: parse once (native TOML or legacy heartbeat/ldirectord files) into a frozen model."""

from .errors import ConfigError, Problem
from .load import Loaded, load_config
from .model import Config

__all__ = ["Config", "ConfigError", "Loaded", "Problem", "load_config"]
