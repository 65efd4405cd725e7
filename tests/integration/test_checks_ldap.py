"""ldap and ldaps checks against a real OpenLDAP slapd (mdb database, TLS with a self-signed certificate)."""

import os
import shutil
import subprocess
import tempfile

import pytest

from hadirector.checks.scheduler import check_once

from checks_util import make_cert, vs_for
from hdtest import Proc, need, start_server

SUFFIX = "dc=example,dc=test"


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    need("/usr/sbin/slapd", "ldapadd")
    base = tempfile.mkdtemp(prefix="hdt-ldap-", dir="/tmp")
    key, crt = make_cert(tmp_path_factory.mktemp("cert"))
    os.makedirs(f"{base}/db")
    conf = f"{base}/slapd.conf"
    with open(conf, "w") as f:
        f.write(f"""include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile {base}/slapd.pid
argsfile {base}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile {crt}
TLSCertificateKeyFile {key}
database mdb
maxsize 10485760
suffix "{SUFFIX}"
rootdn "cn=admin,{SUFFIX}"
rootpw admin-secret
directory {base}/db
access to attrs=userPassword by anonymous auth by * none
access to * by * read
""")
    def slapd(port, sport):
        return Proc(["/usr/sbin/slapd", "-f", conf, "-h", f"ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{sport}/",
                     "-d", "0"])

    proc = None
    try:
        proc, (port, sport) = start_server(slapd, ("tcp", "tcp"))
        ldif = (f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n"
                f"dn: cn=checker,{SUFFIX}\nobjectClass: inetOrgPerson\ncn: checker\nsn: Checker\nuserPassword: s3cret\n")
        subprocess.run(["ldapadd", "-x", "-H", f"ldap://127.0.0.1:{port}", "-D", f"cn=admin,{SUFFIX}", "-w", "admin-secret"],
                       input=ldif, text=True, check=True, capture_output=True, timeout=30)
        yield port, sport
    finally:
        if proc is not None:
            proc.stop()
        shutil.rmtree(base, ignore_errors=True)


async def test_ldap_root_dse_anonymous(slapd):
    port, _ = slapd
    vs = vs_for(port, service="ldap")  # request "/" : base "" (the root DSE)
    r = await check_once(vs, vs.reals[0])
    assert r.ok, r.reason


async def test_ldap_bind_and_base_search(slapd):
    port, _ = slapd
    vs = vs_for(port, service="ldap", login=f"cn=checker,{SUFFIX}", passwd="s3cret", request=f"/{SUFFIX}",
                receive="example")
    r = await check_once(vs, vs.reals[0])
    assert r.ok and SUFFIX in r.reason, r.reason
    vs = vs_for(port, service="ldap", request=f"/{SUFFIX}", receive="^cn=")
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "does not match" in r.reason
    vs = vs_for(port, service="ldap", request=f"/ou=missing,{SUFFIX}")
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "noSuchObject" in r.reason, r.reason
    vs = vs_for(port, service="ldap", login=f"cn=checker,{SUFFIX}", passwd="wrong")
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "invalidCredentials" in r.reason, r.reason


async def test_ldaps(slapd):
    _, sport = slapd
    vs = vs_for(sport, service="ldaps", request=f"/{SUFFIX}")
    r = await check_once(vs, vs.reals[0])
    assert r.ok, r.reason
