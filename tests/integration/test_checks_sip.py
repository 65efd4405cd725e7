"""sip checks (OPTIONS over UDP and TCP) against a real Kamailio answering OPTIONS itself."""

import os
import shutil
import tempfile

import pytest

from hadirector.checks.scheduler import check_once

from checks_util import vs_for
from hdtest import Proc, need, start_server

MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"


@pytest.fixture(scope="module")
def kamailio():
    need("kamailio", MODULES + "sl.so")
    base = tempfile.mkdtemp(prefix="hdt-sip-", dir="/tmp")
    conf = os.path.join(base, "kamailio.cfg")

    def kamailio(port):
        with open(conf, "w") as f:
            f.write(f"""#!KAMAILIO
debug=1
log_stderror=yes
children=1
tcp_children=1
listen=127.0.0.1:{port}
mpath="{MODULES}"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
request_route {{
    if (is_method("OPTIONS")) {{
        if ($rU == "blocked") {{
            sl_send_reply("404", "Not Found");
            exit;
        }}
        sl_send_reply("200", "OK");
        exit;
    }}
    sl_send_reply("403", "Forbidden");
}}
""")
        with open(f"{base}/log", "w") as log:
            return Proc(["kamailio", "-f", conf, "-DD", "-E", "-P", f"{base}/kamailio.pid", "-Y", base, "-w", base],
                        stderr=log)

    proc = None
    try:
        proc, (port,) = start_server(kamailio, ("tcp+udp",))
        yield port
    finally:
        if proc is not None:
            proc.stop()
        shutil.rmtree(base, ignore_errors=True)


async def test_sip_options_udp(kamailio):
    vs = vs_for(kamailio, service="sip", protocol="udp")
    r = await check_once(vs, vs.reals[0])
    assert r.ok and r.reason.startswith("SIP/2.0 200"), r.reason
    vs = vs_for(kamailio, service="sip", protocol="udp", login="blocked@example.test")
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "404" in r.reason, r.reason


async def test_sip_options_tcp(kamailio):
    vs = vs_for(kamailio, service="sip", protocol="tcp", login="checker@example.test")
    r = await check_once(vs, vs.reals[0])
    assert r.ok, r.reason


async def test_sip_no_server(held_ports):
    vs = vs_for(held_ports.closed_udp(), service="sip", protocol="udp")
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "unreachable" in r.reason
