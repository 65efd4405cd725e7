"""What the [api] table's files must be, checked when the configuration is read (`hadirector
check` predicts what `run` does): the token file as heartbeat checks authkeys (not readable by
group or others: config/legacy/authkeys.py `check_mode`, heartbeat parse_authfile), holding one
non-empty token; the TLS certificate and key loadable as a pair (what the server does at start,
ssl.SSLContext.load_cert_chain)."""

from __future__ import annotations

import ssl
from pathlib import Path

from .build import Locate, dotted
from .errors import Collector
from .legacy.authkeys import check_mode
from .model import Api

MAX_TOKEN = 4096


def read_token(path: str) -> str:
    """The bearer token in `path`: its first line, without surrounding white space. OSError or
    ValueError saying what is wrong."""
    with open(path, encoding="utf-8") as f:
        text = f.read(MAX_TOKEN + 1)
    token = text.strip().split("\n", 1)[0].strip() if text.strip() else ""
    if not token:
        raise ValueError("empty: put one token on the first line")
    if len(text) > MAX_TOKEN:
        raise ValueError(f"longer than {MAX_TOKEN} bytes: expected one token")
    if any(c.isspace() or not c.isprintable() for c in token):
        raise ValueError("the token has spaces or control characters")
    return token


def api_problems(api: Api, col: Collector, locate: Locate = dotted) -> None:
    """Add an error for each [api] file that cannot work."""
    if api.token_file is not None:
        label = f"{locate(('api', 'token_file'))} ({api.token_file})"
        if check_mode(Path(api.token_file), label, col):
            try:
                read_token(api.token_file)
            except OSError as exc:
                col.error(label, f"cannot read: {exc.strerror}")
            except (ValueError, UnicodeDecodeError) as exc:
                col.error(label, str(exc))
    if api.cert_file is not None and api.key_file is not None:
        missing = False
        for key in ("cert_file", "key_file"):
            path = getattr(api, key)
            if not Path(path).is_file():
                col.error(f"{locate(('api', key))} ({path})", "no such file")
                missing = True
        if not missing:
            try:
                ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(api.cert_file, api.key_file)
            except (ssl.SSLError, OSError) as exc:
                col.error(locate(("api", "cert_file")),
                          f"{api.cert_file} and {api.key_file} do not load as a TLS certificate and its key: "
                          f"{getattr(exc, 'reason', None) or exc}")
