"""Issue 13 item 8: every command answers a bad argument with one line naming it (exit 2), a
failure with one line (exit 1), never a traceback.

The commands and their options are discovered from the parser (which registers every module of
hadirector/commands/), so a new command or option is covered without touching this file: each
option must be checked by a `commands._args.Value` (or `choices`), and each Value lists the texts
it must refuse. Bad arguments are parsed only (`parse_args` stops at the error, so nothing runs);
a few are also given to the real console program, and every command that talks to the daemon is
run with no daemon and with a stale control socket.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading

import pytest

from hadirector import cli
from hadirector.commands import _args

PLAIN = (argparse._HelpAction, argparse._VersionAction, argparse._StoreTrueAction, argparse._StoreFalseAction,
         argparse._CountAction, argparse._StoreConstAction, argparse._AppendConstAction)


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


COMMANDS = _commands()


def _valued(p: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in p._actions if not isinstance(a, PLAIN) and a.help is not argparse.SUPPRESS]


def _name(a: argparse.Action) -> str:
    """How argparse names the argument in its error messages."""
    return "/".join(a.option_strings) if a.option_strings else (a.metavar or a.dest)


class Paths:
    """The placeholders of Value.bad/example, made real below tmp_path."""

    def __init__(self, tmp) -> None:
        self.tmp = tmp
        (tmp / "a-file").write_text("x\n")
        (tmp / "a-dir").mkdir()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(tmp / "a-socket"))

    def resolve(self, text: str) -> str:
        return (text.replace("<file>", str(self.tmp / "a-file")).replace("<dir>", str(self.tmp / "a-dir"))
                .replace("<missing>", str(self.tmp / "missing")).replace("<socket>", str(self.tmp / "a-socket")))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def paths(tmp_path):
    p = Paths(tmp_path)
    yield p
    p.close()


def _good(a: argparse.Action, paths: Paths) -> list[str]:
    if a.choices:
        v = str(next(iter(a.choices)))
    elif isinstance(a.type, _args.Value) and a.type.example is not None:
        v = paths.resolve(a.type.example)
    else:
        raise AssertionError(f"{_name(a)} has neither choices nor a Value with an example")
    return [a.option_strings[0], v] if a.option_strings else [v]


def _required_except(p: argparse.ArgumentParser, skip: argparse.Action, paths: Paths) -> list[str]:
    """A good value for every required argument but `skip` (one member of a required group)."""
    argv: list[str] = []
    grouped = set()
    for g in p._mutually_exclusive_groups:
        grouped.update(g._group_actions)
        if g.required and skip not in g._group_actions:
            argv += _good(g._group_actions[0], paths)
    for a in _valued(p):
        if a is skip or a in grouped:
            continue
        if a.required or (not a.option_strings and a.nargs not in ("?", "*")):
            argv += _good(a, paths)
    return argv


def _cases():
    for cmd, p in sorted(COMMANDS.items()):
        for a in _valued(p):
            bad = []
            if isinstance(a.type, _args.Value):
                bad += list(a.type.bad)
            if a.choices:
                bad.append("no-such-choice")
            for text in bad:
                yield pytest.param(cmd, a.dest, text, id=f"{cmd}-{_name(a)}={text!r}")


def test_every_option_is_checked():
    """A new option gets a Value (commands/_args.py) or choices, so it is refused with a clear
    line and appears in the table below."""
    loose = [f"{cmd} {_name(a)}" for cmd, p in sorted(COMMANDS.items()) for a in _valued(p)
             if not a.choices and not isinstance(a.type, _args.Value)]
    assert not loose, f"options without a commands._args.Value or choices: {loose}"
    for cmd, p in COMMANDS.items():
        for a in _valued(p):
            if isinstance(a.type, _args.Value):
                assert a.type.bad, f"{cmd} {_name(a)}: its Value lists no bad texts"


def test_every_command_module_is_discovered():
    from hadirector import commands
    import pkgutil
    modules = {m.name.replace("_", "-") for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")}
    assert modules <= set(COMMANDS), f"modules without a command: {modules - set(COMMANDS)}"


def _one_line(err: str, *names: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    assert "Traceback" not in err
    for n in names:
        assert n in lines[0], f"{n!r} not named in: {lines[0]}"
    return lines[0]


@pytest.mark.parametrize("cmd,dest,text", list(_cases()))
def test_bad_argument_is_one_line_exit_2(cmd, dest, text, paths, capsys):
    p = COMMANDS[cmd]
    a = next(x for x in _valued(p) if x.dest == dest)
    value = paths.resolve(text)
    if a.option_strings:
        # --opt=VALUE: a value such as -inf must not read as an option
        argv = [cmd] + _required_except(p, a, paths) + [f"{a.option_strings[-1]}={value}"]
    else:
        # a positional: the others keep their places (`real drain VIRTUAL REAL`), after "--"
        positionals = [x for x in _valued(p) if not x.option_strings and (x is a or x.nargs not in ("?", "*"))]
        options = _required_except(p, a, paths)
        for x in positionals:
            if x is not a:
                options.remove(_good(x, paths)[0])
        argv = [cmd] + options + ["--"] + [value if x is a else _good(x, paths)[0] for x in positionals]
    with pytest.raises(SystemExit) as e:
        cli.build_parser().parse_args(argv)  # parse only: nothing runs
    assert e.value.code == 2, argv
    line = _one_line(capsys.readouterr().err, f"hadirector {cmd}:", _name(a).split("/")[-1] if a.option_strings
                     else _name(a))
    assert value in line or repr(value) in line or "invalid choice" in line, line


@pytest.mark.parametrize("cmd", sorted(COMMANDS))
def test_option_without_its_value_and_unknown_option(cmd, paths, capsys):
    p = COMMANDS[cmd]
    for a in [x for x in _valued(p) if x.option_strings][:1]:
        argv = [cmd] + _required_except(p, a, paths) + [a.option_strings[-1]]
        with pytest.raises(SystemExit) as e:
            cli.build_parser().parse_args(argv)
        assert e.value.code == 2
        _one_line(capsys.readouterr().err, a.option_strings[-1], "expected one argument")
    with pytest.raises(SystemExit) as e:
        cli.build_parser().parse_args([cmd] + _required_except(p, None, paths) + ["--no-such-option"])
    assert e.value.code == 2
    _one_line(capsys.readouterr().err, "--no-such-option")
    if _required_except(p, None, paths):  # a command with required arguments, given none
        with pytest.raises(SystemExit) as e:
            cli.build_parser().parse_args([cmd])
        assert e.value.code == 2
        _one_line(capsys.readouterr().err, f"hadirector {cmd}:", "required")


def _cli(*argv: str, env: dict | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    full = dict(os.environ, **(env or {}))
    full.pop("NOTIFY_SOCKET", None)
    return subprocess.run([sys.executable, "-m", "hadirector", *argv], capture_output=True, text=True,
                          timeout=timeout, env=full)


@pytest.mark.parametrize("argv,names", [
    (["standby", "--wait", "nan"], ["--wait", "'nan'", "seconds"]),
    (["standby", "--wait", "inf"], ["--wait", "'inf'"]),
    (["takeover", "--wait", "-5"], ["--wait", "'-5'"]),
    (["status", "--state-dir", "<file>"], ["--state-dir", "it is a file"]),
    (["lvs", "--state-dir", "<file>"], ["--state-dir", "it is a file"]),
    (["standby", "--state-dir", "<file>/x"], ["--state-dir", "a part of its path is a file"]),
    (["check", "-c", "<dir>"], ["--config", "it is a directory"]),
    (["check", "--ha-dir", "<missing>"], ["--ha-dir", "does not exist"]),
    (["realserver", "--vip", "999.1.1.1", "status"], ["--vip", "IPv4 or IPv6"]),
    (["realserver", "--vip", "198.18.0.1", "--dev", "eth0/x", "status"], ["--dev"]),
    (["run", "-c", "<file>", "--resource-dir", "<missing>"], ["--resource-dir"]),
    (["lab", "up", "--reals", "0"], ["--reals"]),
])
def test_console_program_bad_arguments(argv, names, paths):
    p = _cli(*[paths.resolve(x) for x in argv])
    assert p.returncode == 2, p
    assert p.stdout == ""
    _one_line(p.stderr, f"hadirector {argv[0]}:", *names)


def _clients() -> list[str]:
    return sorted(c for c, p in COMMANDS.items() if p.get_default("control_client"))


def test_control_clients_are_found():
    assert {"status", "lvs", "standby", "takeover"} <= set(_clients())


@pytest.mark.parametrize("cmd", _clients())
def test_no_daemon_and_stale_socket(cmd, tmp_path, paths):
    p = COMMANDS[cmd]
    state = tmp_path / "state"
    state.mkdir()
    argv = [cmd, "--state-dir", str(state)] + _required_except(p, next(a for a in _valued(p) if a.dest == "state_dir"),
                                                                 paths)
    r = _cli(*argv)
    assert r.returncode == 1, r
    _one_line(r.stderr, f"hadirector {cmd}:", "no hadirector daemon is running", str(state))
    # a crash leaves the socket file behind with nobody listening: connection refused
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(state / "control.sock"))
    s.close()
    assert (state / "control.sock").exists()
    r = _cli(*argv)
    assert r.returncode == 1, r
    _one_line(r.stderr, f"hadirector {cmd}:", "no hadirector daemon is running")


def test_a_socket_answering_garbage(tmp_path):
    """Something else listens on control.sock: a clear line, not a JSONDecodeError."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(tmp_path / "control.sock"))
    srv.listen(4)
    served = []

    def serve():
        for _ in range(1):
            c, _a = srv.accept()
            c.recv(65536)
            c.sendall(b"HTTP/1.0 400 nonsense\n")
            c.close()
            served.append(1)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        r = _cli("status", "--state-dir", str(tmp_path))
    finally:
        t.join(10)
        srv.close()
    assert served, "the fake server was never asked"
    assert r.returncode == 1, r
    _one_line(r.stderr, "hadirector status:", "not a JSON object")


def test_unexpected_error_is_one_line_with_a_hint(monkeypatch, capsys, tmp_path):
    from hadirector.commands import status

    def boom(args):
        raise KeyError("the bug")

    monkeypatch.setattr(status, "run", boom)
    assert cli.main(["status", "--state-dir", str(tmp_path)]) == 1
    line = _one_line(capsys.readouterr().err, "hadirector status: internal error: KeyError", "--debug")
    assert "'the bug'" in line
    # --debug, before or after the command, shows the traceback
    for argv in (["--debug", "status"], ["status", "--debug"]):
        assert cli.main(argv + ["--state-dir", str(tmp_path)]) == 1
        err = capsys.readouterr().err
        assert "Traceback" in err and "KeyError: 'the bug'" in err
        assert err.splitlines()[-1].startswith("hadirector status: internal error: KeyError")


def test_no_command_prints_help_exit_2():
    r = _cli()
    assert r.returncode == 2 and "COMMAND" in r.stderr and "Traceback" not in r.stderr
