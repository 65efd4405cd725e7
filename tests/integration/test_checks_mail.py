"""pop, pops, imap and imaps checks against a real Dovecot (plain and TLS with a self-signed certificate)."""

import os
import shutil
import tempfile

import pytest

from hadirector.checks.scheduler import check_once

from checks_util import make_cert, vs_for
from hdtest import Proc, need, start_server


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory):
    need("/usr/sbin/dovecot")
    if os.geteuid() != 0:
        pytest.skip("Dovecot drops privileges to its users: needs root")
    base = tempfile.mkdtemp(prefix="hdt-dove-", dir="/tmp")
    os.chmod(base, 0o755)
    key, crt = make_cert(tmp_path_factory.mktemp("cert"))
    home = os.path.join(base, "home", "checker")
    os.makedirs(home)
    os.chown(home, 65534, 65534)
    with open(os.path.join(base, "passwd"), "w") as f:
        f.write("checker:{PLAIN}s3cret\n")
    conf = os.path.join(base, "dovecot.conf")
    names = ("imap", "imaps", "pop3", "pop3s")

    def dovecot(*numbers):
        ports = dict(zip(names, numbers))
        with open(conf, "w") as f:
            f.write(f"""
base_dir = {base}/run
state_dir = {base}/state
protocols = imap pop3
listen = 127.0.0.1
log_path = {base}/dovecot.log
ssl = yes
ssl_cert = <{crt}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
default_login_user = dovenull
default_internal_user = dovecot
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/passwd
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={base}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    port = {ports['imap']}
  }}
  inet_listener imaps {{
    port = {ports['imaps']}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {ports['pop3']}
  }}
  inet_listener pop3s {{
    port = {ports['pop3s']}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
""")
        return Proc(["/usr/sbin/dovecot", "-F", "-c", conf])

    proc = None
    try:
        proc, numbers = start_server(dovecot, ("tcp",) * len(names))
        yield dict(zip(names, numbers))
    finally:
        if proc is not None:
            proc.stop()
        shutil.rmtree(base, ignore_errors=True)


async def test_imap_greeting_and_login(dovecot):
    vs = vs_for(dovecot["imap"], service="imap")
    r = await check_once(vs, vs.reals[0])
    assert r.ok, r.reason
    vs = vs_for(dovecot["imap"], service="imap", login="checker", passwd="s3cret")
    r = await check_once(vs, vs.reals[0])
    assert r.ok and "logged in" in r.reason, r.reason


async def test_imaps(dovecot):
    vs = vs_for(dovecot["imaps"], service="imaps", login="checker", passwd="s3cret")
    r = await check_once(vs, vs.reals[0])
    assert r.ok, r.reason
    vs = vs_for(dovecot["imaps"], service="imap", negotiatetimeout="1s")  # plain IMAP on the TLS port: no greeting
    assert not (await check_once(vs, vs.reals[0])).ok


async def test_pop_greeting_and_login(dovecot):
    vs = vs_for(dovecot["pop3"], service="pop")
    r = await check_once(vs, vs.reals[0])
    assert r.ok, r.reason
    vs = vs_for(dovecot["pop3"], service="pop", login="checker", passwd="s3cret")
    r = await check_once(vs, vs.reals[0])
    assert r.ok and "logged in" in r.reason, r.reason


async def test_pops(dovecot):
    vs = vs_for(dovecot["pop3s"], service="pops", login="checker", passwd="s3cret")
    r = await check_once(vs, vs.reals[0])
    assert r.ok, r.reason




async def test_wrong_passwords(dovecot):
    # last: Dovecot delays the next logins from an address after failures (anvil auth penalty)
    vs = vs_for(dovecot["imap"], service="imap", login="checker", passwd="wrong")
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "login" in r.reason, r.reason
    vs = vs_for(dovecot["pop3"], service="pop", login="checker", passwd="nope")
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "login" in r.reason, r.reason
