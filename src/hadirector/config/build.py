"""Validate plain data into a `Config`, turning every problem into a located `Problem`.

Both loaders end here. `locate` maps a key path (a tuple such as ("cluster", "timing", "deadtime"))
to what the user should look at: the same path for TOML, `file:line` for legacy files.
"""

from __future__ import annotations

from typing import Callable

from pydantic import ValidationError

from .errors import Collector
from .model import Config, semantic_problems

KeyPath = tuple[str | int, ...]
Locate = Callable[[KeyPath], str]

_UNION_TAGS = {"vip", "script", "systemd", "ocf", "balancer"}


def dotted(path: KeyPath) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _clean_loc(loc: tuple) -> KeyPath:
    out: list[str | int] = []
    for i, part in enumerate(loc):
        if isinstance(part, str) and ("[" in part or (part in _UNION_TAGS and i and isinstance(loc[i - 1], int))):
            continue  # pydantic's validator names and discriminated-union tags are not user keys
        out.append(part)
    return tuple(out)


def _message(err: dict) -> str:
    kind, msg = err.get("type", ""), err.get("msg", "")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "missing required key"
    if kind == "union_tag_invalid":
        return f"unknown kind {err.get('input', {}).get('kind')!r}; expected vip, script, systemd, ocf or balancer"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix):]
    if kind == "literal_error":
        return f"{msg.replace('Input should be', 'expected')}, got {err.get('input')!r}"
    return f"{msg}, got {err.get('input')!r}" if "input" in err and not isinstance(err["input"], dict) else msg


def build_config(data: dict, collector: Collector, locate: Locate = dotted) -> Config | None:
    """Return the Config, or None with every error added to `collector`."""
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        errs = [(_clean_loc(e["loc"]), e) for e in exc.errors()]
        for path, err in errs:
            # a list whose items failed also reports "too short": the item errors say it all
            if err.get("type") == "too_short" and any(len(p) > len(path) and p[:len(path)] == path
                                                      for p, _ in errs):
                continue
            collector.error(locate(path), _message(err))
        return None
    problems = semantic_problems(cfg)
    for path, message in problems:
        key: KeyPath = tuple(int(p) if p.isdigit() else p for p in path.split("."))
        collector.error(locate(key), message)
    return None if problems else cfg
