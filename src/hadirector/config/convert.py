"""Legacy configuration -> the native TOML a person would write (`hadirector convert`).

How it works: `minimal_data(cfg)` keeps only what differs from what loading would give anyway: a
key at its default, or one derived from others (warntime from deadtime, a service from its port,
ipv6 from the address), is left out, and a virtual service leaves out what it inherits from the
[balancer] globals (ldirectord's global directives stay global). `to_toml` writes that data with
a comment on each block naming the legacy line it came from. Loading the text back gives a model
equal to `cfg`; `convert_text` checks it, and falls back to the complete dump should a rule ever
be missed (so a conversion can be verbose, never wrong).
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable

import tomli_w
from pydantic import BaseModel

from .model import INHERITED_KEYS, Balancer, Config, VirtualService
from .errors import ConfigError
from .native import dump_toml, load_toml_text

Locate = Callable[[tuple], str]

# tables written as [section] / [[array of tables]]; every other table or list is written inline
_SECTIONS = {("cluster",), ("cluster", "timing"), ("cluster", "auth"), ("cluster", "logging"),
             ("cluster", "realtime"), ("balancer",),
             ("balancer", "alerts"), ("balancer", "virtual", "alerts")}
_ARRAYS = {("groups",), ("balancer", "virtual")}
# inline lists of tables written one item a line, each with a comment naming its line
_ITEM_COMMENTS = {("cluster", "links"), ("cluster", "ping_groups"), ("cluster", "respawn"), ("groups", "resources"),
                  ("balancer", "virtual", "reals")}
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


# --------------------------------------------------------------------------- minimal data

def _json(m: BaseModel, name: str) -> Any:
    return m.model_dump(mode="json", include={name})[name]


def _minimal_value(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return minimal_model(value)
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], BaseModel):
        return [minimal_model(v) for v in value]
    return None  # a plain value: the caller takes its JSON form


def minimal_model(m: BaseModel, fixed: dict[str, Any] | None = None, emit: dict[str, Any] | None = None) -> dict:
    """The fields of `m` that loading would not give by themselves. `fixed` holds fields the caller
    decides (the inherited keys of a virtual service, in full JSON form): they are not minimized
    here but take part in every trial validation; `emit` is what the caller writes for them."""
    fixed, emit = fixed or {}, emit or {}
    cls = type(m)
    data: dict[str, Any] = {}
    for name, field in cls.model_fields.items():
        if name in fixed:
            continue
        value = getattr(m, name)
        if name == "kind":  # the tag of a union: always written
            data[name] = value
            continue
        if value == field.get_default(call_default_factory=True):
            continue
        sub = _minimal_value(value)
        data[name] = sub if sub is not None else _json(m, name)
    # a key whose value the others imply (a default computed by a validator) is left out too
    for name in [n for n in data if n != "kind"]:
        trial = {k: v for k, v in data.items() if k != name}
        try:
            if cls.model_validate({**trial, **fixed}) == m:
                data = trial
        except ValueError:
            pass
    return {**data, **emit}


def _virtual(vs: VirtualService, b: Balancer, bdata: dict) -> dict:
    """A virtual service without what it inherits: Balancer._inherit gives a virtual that leaves a
    key out the global's value (fallback6 for an IPv6 service) when the global is written, else
    the virtual's default."""
    fixed: dict[str, Any] = {}
    emit: dict[str, Any] = {}
    for key in INHERITED_KEYS:
        src = "fallback6" if key == "fallback" and vs.ipv6 else key
        default = VirtualService.model_fields[key].get_default(call_default_factory=True)
        inherited = getattr(b, src) if src in bdata else default
        value = getattr(vs, key)
        fixed[key] = _json(vs, key)
        if value != inherited:
            sub = _minimal_value(value)
            emit[key] = sub if sub is not None else fixed[key]
    return minimal_model(vs, fixed, emit)


def minimal_data(cfg: Config) -> dict:
    out: dict[str, Any] = {"cluster": minimal_model(cfg.cluster)}
    if cfg.groups:
        out["groups"] = [minimal_model(g) for g in cfg.groups]
    if cfg.balancer is not None:
        b = cfg.balancer
        bdata = minimal_model(b.model_copy(update={"virtual": ()}))
        bdata.pop("virtual", None)
        if b.virtual:
            bdata["virtual"] = [_virtual(vs, b, bdata) for vs in b.virtual]
        out["balancer"] = bdata
    return out


# --------------------------------------------------------------------------- TOML text

def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else tomli_w.dumps({k: 0}).split(" = ")[0]


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return tomli_w.dumps({"x": v})[len("x = "):-1]


def _inline(v: Any) -> str:
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_inline(x)}" for k, x in v.items()) + " }" if v else "{}"
    if isinstance(v, list):
        return "[" + ", ".join(_inline(x) for x in v) + "]"
    return _scalar(v)


class _Writer:
    def __init__(self, locate: Locate | None) -> None:
        self.locate = locate
        self.lines: list[str] = []

    def _from(self, *paths: tuple) -> str:
        """`  # ha.cf:3,5`: the file and lines the values at `paths` came from."""
        if self.locate is None:
            return ""
        files: dict[str, set[int]] = {}
        for path in paths:
            where = self.locate(path)
            m = re.match(r"^(.*):(\d+)$", where)
            file, line = (m.group(1), int(m.group(2))) if m else (where, None)
            lines = files.setdefault(os.path.basename(file), set())
            if line is not None:
                lines.add(line)
        text = "; ".join(f"{f}:{','.join(map(str, sorted(ls)))}" if ls else f for f, ls in files.items())
        return f"  # {text}"

    def table(self, path: tuple, data: dict, header: str | None, kpath: tuple) -> None:
        """`path` has the list indices (for locate), `kpath` the keys only (for the layout)."""
        simple, lists, later = [], [], []
        for k, v in data.items():
            sub = (*kpath, k)
            if isinstance(v, dict) and sub in _SECTIONS or (isinstance(v, list) and sub in _ARRAYS):
                later.append((k, v))
            elif isinstance(v, list) and v and isinstance(v[0], dict) and (
                    sub in _ITEM_COMMENTS or len(_inline(v)) > 80):
                lists.append((k, v))
            else:
                simple.append((k, v))
        if header is not None:
            if self.lines:
                self.lines.append("")
            own = [(*path, k) for k, _v in simple] or [path]
            self.lines.append(header + self._from(*own))
        for k, v in simple:
            self.lines.append(f"{_key(k)} = {_inline(v)}")
        for k, v in lists:
            self.lines.append(f"{_key(k)} = [")
            for i, item in enumerate(v):
                note = self._from((*path, k, i)) if (*kpath, k) in _ITEM_COMMENTS else ""
                self.lines.append(f"    {_inline(item)},{note}")
            self.lines.append("]")
        for k, v in later:
            name = ".".join(_key(x) for x in (*kpath, k))
            if isinstance(v, list):
                for i, item in enumerate(v):
                    self.table((*path, k, i), item, f"[[{name}]]", (*kpath, k))
            else:
                self.table((*path, k), v, f"[{name}]", (*kpath, k))


def to_toml(data: dict, locate: Locate | None = None, header: str = "") -> str:
    w = _Writer(locate)
    top = [(k, v) for k, v in data.items()]
    for k, v in top:
        if isinstance(v, list):
            for i, item in enumerate(v):
                w.table((k, i), item, f"[[{k}]]", (k,))
        else:
            w.table((k,), v, f"[{k}]", (k,))
    return (header + "\n" if header else "") + "\n".join(w.lines) + "\n"


def convert_text(cfg: Config, locate: Locate | None = None, header: str = "") -> str:
    """The TOML text of `cfg`, minimal and commented; it loads back equal to `cfg`."""
    text = to_toml(minimal_data(cfg), locate, header)
    try:
        same = load_toml_text(text, "<converted>") == cfg
    except (ConfigError, ValueError):
        same = False
    if same:
        return text
    note = "# (every key is written: the short form did not load back equal, please report it)"
    return dump_toml(cfg, (header + "\n" if header else "") + note)
