"""radius checks against a real FreeRADIUS 3 (a copy of Debian's config with one virtual server and one user)."""

import os
import re
import shutil
import tempfile

import pytest

from hadirector.checks.scheduler import check_once

from checks_util import vs_for
from hdtest import Proc, need, start_server

CONF = "/etc/freeradius/3.0"


@pytest.fixture(scope="module")
def freeradius():
    need("freeradius", CONF)
    if os.geteuid() != 0:
        pytest.skip("FreeRADIUS switches to user freerad: needs root")
    base = tempfile.mkdtemp(prefix="hdt-rad-", dir="/tmp")
    d = os.path.join(base, "raddb")
    shutil.copytree(CONF, d, symlinks=True)
    for name in os.listdir(f"{d}/sites-enabled"):
        os.unlink(f"{d}/sites-enabled/{name}")
    os.unlink(f"{d}/mods-enabled/eap")  # EAP needs the inner-tunnel site and certificates: not used here

    def site(port):
        with open(f"{d}/sites-enabled/check", "w") as f:
            f.write(f"""server default {{
\tlisten {{
\t\ttype = auth
\t\tipaddr = 127.0.0.1
\t\tport = {port}
\t}}
\tauthorize {{
\t\tfiles
\t\tpap
\t}}
\tauthenticate {{
\t\tAuth-Type PAP {{
\t\t\tpap
\t\t}}
\t}}
\tpost-auth {{
\t}}
}}
""")

    users = f"{d}/mods-config/files/authorize"
    with open(users) as f:
        rest = f.read()
    os.unlink(users)
    with open(users, "w") as f:
        f.write('checker Cleartext-Password := "s3cret"\n' + rest)
    with open(f"{d}/radiusd.conf") as f:
        conf = re.sub(r"reject_delay = \S+", "reject_delay = 0", f.read())
    with open(f"{d}/radiusd.conf", "w") as f:
        f.write(conf)
    for root, dirs, files in os.walk(base):
        for n in dirs + files:
            p = os.path.join(root, n)
            if not os.path.islink(p):
                os.chmod(p, os.stat(p).st_mode | (0o005 if n in dirs else 0o004))
    os.chmod(base, 0o755)

    def freeradius(port):
        site(port)
        return Proc(["freeradius", "-f", "-d", d, "-l", "stdout"])

    proc = None
    try:
        proc, (port,) = start_server(freeradius, ("udp",))
        yield port
    finally:
        if proc is not None:
            proc.stop()
        shutil.rmtree(base, ignore_errors=True)


async def test_radius_accept(freeradius):
    vs = vs_for(freeradius, service="radius", protocol="udp", login="checker", passwd="s3cret", secret="testing123")
    r = await check_once(vs, vs.reals[0])
    assert r.ok and "Access-Accept" in r.reason, r.reason


async def test_radius_reject_and_wrong_secret(freeradius):
    vs = vs_for(freeradius, service="radius", protocol="udp", login="checker", passwd="wrong", secret="testing123")
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "Access-Reject" in r.reason, r.reason
    vs = vs_for(freeradius, service="radius", protocol="udp", login="checker", passwd="s3cret", secret="not-the-secret",
                checktimeout="1500ms")
    r = await check_once(vs, vs.reals[0])
    # FreeRADIUS answers a request with a bad Message-Authenticator with silence (RFC 3579 3.2)
    assert not r.ok, r.reason


async def test_radius_no_server(held_ports):
    vs = vs_for(held_ports.closed_udp(), service="radius", protocol="udp", login="checker", passwd="s3cret",
                secret="testing123")
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "unreachable" in r.reason
