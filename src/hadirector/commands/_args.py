"""Argument checking for every command: one place that says what a good value is.

Each `type=` of an option is a `Value`: it parses the text or refuses it with one line that says
what was expected and what was given, e.g.

    hadirector standby: argument --wait: expected seconds from 0 to 3600, got 'nan'

`Parser` is the ArgumentParser of `hadirector` and all its commands: its errors are that one line
(exit 2, the usage status) and a pointer to `--help`, never a usage block on several lines.
A command adds an option with a Value (or `choices=`), so a bad value is refused before anything
runs; tests/unit/test_cli_errors.py finds every command and option and feeds each Value the bad
texts it lists in `bad` (placeholders like "<file>" stand for a path of that kind).
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import re
import stat
import sys
from typing import Any, Callable

from ..errors import HadirectorError

USAGE = 2  # exit status of a usage error (argparse, BSD sysexits' EX_USAGE is 64: we keep argparse's)


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line naming the argument (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        one = " ".join(message.split())
        self.exit(USAGE, f"{self.prog}: {one} (see `{self.prog} --help`)\n")


class Why(HadirectorError, ValueError):
    """Raised by a Value's parse to add a reason to "expected X, got 'y'"; other ValueErrors
    (int(), float(), ipaddress) only say what we already say."""


class Value:
    """An argparse `type`: `parse(text)` returns the value or raises ValueError with what was
    wrong; the error names the expectation (`what`) and the text given.

    `bad`: texts the value must refuse, `example`: a good one (for the tests; "<file>", "<dir>",
    "<missing>", "<socket>" in them stand for a path of that kind)."""

    def __init__(self, what: str, parse: Callable[[str], Any], bad: tuple[str, ...] = (),
                 example: str | None = None) -> None:
        self.what = what
        self.parse = parse
        self.bad = bad
        self.example = example
        self.__name__ = what  # argparse names a type by __name__ in some messages

    def __call__(self, text: str) -> Any:
        try:
            return self.parse(text)
        except ValueError as exc:
            why = f" ({exc})" if isinstance(exc, Why) and str(exc) else ""
            raise argparse.ArgumentTypeError(f"expected {self.what}, got {text!r}{why}") from None

    def __repr__(self) -> str:
        return f"Value({self.what!r})"


def _finite(text: str) -> float:
    v = float(text)  # ValueError for non-numbers
    if not math.isfinite(v):
        raise ValueError("")
    return v


def seconds(lo: float = 0.0, hi: float = 3600.0) -> Value:
    """A finite number of seconds in [lo, hi]."""
    def parse(text: str) -> float:
        v = _finite(text)
        if not lo <= v <= hi:
            raise ValueError("")
        return v
    return Value(f"seconds from {lo:g} to {hi:g}", parse, bad=("nan", "inf", "-inf", "-5", "x", "",
                                                              f"{hi * 10 + 1:g}"), example=f"{lo:g}")


def integer(lo: int, hi: int, what: str = "a whole number") -> Value:
    def parse(text: str) -> int:
        v = int(text, 10)
        if not lo <= v <= hi:
            raise ValueError("")
        return v
    return Value(f"{what} from {lo} to {hi}", parse, bad=("x", "1.5", "nan", str(lo - 1), str(hi + 1)),
                 example=str(lo))


def _ip(text: str) -> str:
    return str(ipaddress.ip_address(text))  # ValueError names nothing more than we do


ip_address = Value("an IPv4 or IPv6 address", _ip,
                   bad=("999.1.1.1", "198.18.0", "not-an-ip", "", "198.18.0.1/24"), example="198.18.0.1")


def _listen(text: str) -> str:
    from ..config.listen import format_listen, parse_listen
    try:
        return format_listen(*parse_listen(text))
    except ValueError as exc:
        raise Why(str(exc)) from None


listen_address = Value("ADDR:PORT (an IP address, [v6] in brackets, and a port 0..65535)", _listen,
                       bad=("127.0.0.1", "localhost:80", "127.0.0.1:99999", "::1:80", ":80", ""),
                       example="127.0.0.1:8080")


def _raise(msg: str = "") -> Any:
    raise ValueError(msg)


# Linux dev_valid_name() (net/core/dev.c): 1..IFNAMSIZ-1 (15) bytes, not "." or "..", no '/',
# ':' or whitespace. (':' is refused because an alias label such as eth0:0 is no device.)
_IFNAME = re.compile(r"[^/:\s]{1,15}")


def _ifname(text: str) -> str:
    if len(text.encode()) > 15 or text in (".", "..") or not _IFNAME.fullmatch(text):
        raise ValueError("")
    return text


interface = Value("a network interface name (1-15 characters, no '/', ':' or spaces)", _ifname,
                  bad=("", "eth0/1", "a-very-long-interface", "eth 0", "..", "eth0:0"), example="lo")


def _node(text: str) -> str:
    # heartbeat node names are `uname -n` (a host name, at most 255 bytes: HOST_NAME_MAX is 64 on
    # Linux but ha.cf accepts longer); no spaces or control characters, nothing that is a path
    if not text or len(text.encode()) > 255 or not text.isprintable() or any(c.isspace() for c in text) \
            or "/" in text:
        raise ValueError("")
    return text


node_name = Value("a node name (uname -n: no spaces or '/')", _node, bad=("", "two words", "a/b"),
                  example="alpha")


def _virtual(text: str) -> str:
    from ..config.names import BadName, parse_virtual
    try:
        parse_virtual(text)
    except BadName as exc:
        raise Why(str(exc)) from None
    return text


def _real(text: str) -> str:
    from ..config.names import BadName, host_port
    try:
        host_port(text, "real server", port_optional=True)
    except BadName as exc:
        raise Why(str(exc)) from None
    return text


# config/names.py: how an operator names a virtual service and a real server
virtual_service = Value("a virtual service (\"TCP 198.18.0.1:80\", tcp:ADDR:PORT, udp:ADDR:PORT, "
                        "fwm:MARK or ADDR:PORT)", _virtual,
                        bad=("", "198.18.0.1", "198.18.0.1:99999", "sctp:198.18.0.1:80", "fwm:0", "x:80"),
                        example="198.18.0.1:80")
real_server = Value("a real server (ADDR:PORT, or ADDR)", _real,
                    bad=("", "198.18.1.4:0", "not-an-ip", "198.18.1.4:http"), example="198.18.1.4:80")


def name(pattern: str, what: str, bad: tuple[str, ...], example: str) -> Value:
    rx = re.compile(pattern)
    return Value(what, lambda t: t if rx.fullmatch(t) else _raise(), bad=bad, example=example)


def text(what: str = "a non-empty text", max_len: int = 4096) -> Value:
    """Free text, for options whose meaning a later step checks: non-empty, one line."""
    def parse(t: str) -> str:
        if not t or len(t) > max_len or "\n" in t or "\0" in t:
            raise ValueError("")
        return t
    return Value(what, parse, bad=("", "two\nlines"), example="x")


# ------------------------------------------------------------------ paths

def _kind(path: str) -> str | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return "below a file"
    except OSError as exc:
        raise Why(exc.strerror or str(exc)) from None
    if stat.S_ISDIR(st.st_mode):
        return "directory"
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISSOCK(st.st_mode):
        return "socket"
    return "special file"


def _need(kind: str, may_be_missing: bool) -> Callable[[str], str]:
    def parse(path: str) -> str:
        if not path:
            raise ValueError("")
        found = _kind(path)
        if found is None:
            if may_be_missing:
                return path
            raise Why("it does not exist")
        if found != kind:
            raise Why(f"it is a {found}" if found != "below a file" else "a part of its path is a file")
        return path
    return parse


# a directory that exists (input), or may be created (the daemon's state directory)
existing_dir = Value("an existing directory", _need("directory", False), bad=("<file>", "<missing>", ""),
                     example="<dir>")
dir_path = Value("a directory", _need("directory", True), bad=("<file>", "<socket>", "<file>/below", ""),
                 example="<dir>")
existing_file = Value("an existing file", _need("file", False), bad=("<dir>", "<missing>", ""),
                      example="<file>")


def _output(path: str) -> str:
    """A file to write: not a directory, in a directory that exists."""
    if not path:
        raise ValueError("")
    found = _kind(path)
    if found not in (None, "file"):
        raise Why(f"it is a {found}")
    parent = os.path.dirname(os.path.abspath(path))
    if _kind(parent) != "directory":
        raise Why(f"{parent} is not a directory")
    return path


output_file = Value("a file to write", _output, bad=("<dir>", "<missing>/out", ""), example="<dir>/out")


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type when the message alone would not say much."""
    msg = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        return f"{exc.strerror}{': ' + str(where) if where else ''}"
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def prog_of(args: argparse.Namespace) -> str:
    cmd = getattr(args, "command", None)
    return f"hadirector {cmd}" if cmd else "hadirector"


def fail(prog: str, message: str, status: int = 1) -> int:
    """Print `prog: message` on one line to stderr and return `status` (1: the command failed)."""
    print(f"{prog}: {' '.join(message.split())}", file=sys.stderr)
    return status
