"""`hadirector proxy`: option parsing and its errors (the serving itself is
tests/integration/test_proxy_lvs.py)."""

from __future__ import annotations

import pytest

from hadirector.cli import build_parser, main
from hadirector.commands.proxy import desired_from_args


def _desired(*argv):
    return desired_from_args(build_parser().parse_args(["proxy", *argv]))


def test_one_service_from_the_options():
    d = _desired("--service", "udp:[2001:db8::1]:53", "--real", "[2001:db8::2]:53:3",
                 "--real", "198.18.0.2:5353", "--scheduler", "sh", "--persistent", "30")
    (svc,) = d.services
    assert (svc.key, svc.scheduler, svc.persistent_ms) == ("UDP [2001:db8::1]:53", "sh", 30000)
    assert [(r.address, r.port, r.weight, r.method) for r in svc.installed] == [
        ("2001:db8::2", 53, 3, "masq"), ("198.18.0.2", 5353, 1, "masq")]


@pytest.mark.parametrize("argv, message", [
    ((), "give -c CONFIG (or --ha-dir DIR), or --service PROTO:HOST:PORT and at least one --real"),
    (("--service", "sctp:198.18.0.1:80", "--real", "198.18.0.2:80"),
     "--service 'sctp:198.18.0.1:80': expected tcp:HOST:PORT or udp:HOST:PORT"),
    (("--service", "tcp:198.18.0.1:80", "--real", "198.18.0.2"),
     "--real '198.18.0.2': expected HOST:PORT (IPv6 as [ADDRESS]:PORT)"),
    (("--service", "tcp:[2001:db8::1:80", "--real", "198.18.0.2:80"),
     "--service '[2001:db8::1:80': expected [ADDRESS]:PORT"),
    (("--service", "tcp:198.18.0.1:80", "--real", "198.18.0.2:80:1:1"),
     "--real '198.18.0.2:80:1:1': expected HOST:PORT[:WEIGHT]"),
    (("--service", "tcp:198.18.0.1:80", "--real", "198.18.0.2:80", "--scheduler", "bogus"),
     "--scheduler: Input should be 'rr', 'wrr'"),
    (("--service", "tcp:198.18.0.1:80", "--real", "198.18.0.2:80:70000"),
     "--real 198.18.0.2:80:70000: Input should be less than or equal to 65535"),
])
def test_bad_options_are_named_without_a_traceback(capsys, argv, message):
    assert main(["proxy", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hadirector proxy: ") and message in err and "Traceback" not in err


def test_a_configuration_with_errors_is_reported(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[balancer\n")
    assert main(["proxy", "-c", str(bad)]) == 1
    assert str(bad) in capsys.readouterr().err
