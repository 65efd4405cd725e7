"""mysql and pgsql checks against real servers: a throwaway PostgreSQL 15 cluster and MariaDB."""

import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

from hadirector.checks.scheduler import check_once

from checks_util import vs_for
from hdtest import Proc, need, start_server

PG_BIN = "/usr/lib/postgresql/15/bin"


def _own_tmpdir(user: str, prefix: str) -> str:
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, 0o755)
    pw = pwd.getpwnam(user)
    os.chown(d, pw.pw_uid, pw.pw_gid)
    return d


def _as(user: str, argv, **kw):
    if os.geteuid() == 0:
        argv = ["runuser", "-u", user, "--"] + list(argv)
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60, **kw)


@pytest.fixture(scope="module")
def postgres():
    need(f"{PG_BIN}/initdb", f"{PG_BIN}/postgres")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("needs the postgres user (Debian package postgresql)")
    if os.geteuid() != 0:
        pytest.skip("starts PostgreSQL as user postgres: needs root")
    base = _own_tmpdir("postgres", "hdt-pg-")
    data = os.path.join(base, "data")
    proc = None
    try:
        _as("postgres", [f"{PG_BIN}/initdb", "-D", data, "-U", "postgres", "--auth-local=trust",
                         "--auth-host=scram-sha-256", "-E", "UTF8"])
        with open(os.path.join(data, "pg_hba.conf"), "w") as f:
            f.write("local all all trust\n"
                    "host all md5user 127.0.0.1/32 md5\n"
                    "host all trustuser 127.0.0.1/32 trust\n"
                    "host all all 127.0.0.1/32 scram-sha-256\n")
        proc, (port,) = start_server(lambda port: Proc(
            ["runuser", "-u", "postgres", "--", f"{PG_BIN}/postgres", "-D", data, "-k", base,
             "-p", str(port), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]), ("tcp",))
        sql = ("CREATE USER checker PASSWORD 's3cret';"
               "SET password_encryption = 'md5'; CREATE USER md5user PASSWORD 'md5pass';"
               "CREATE USER trustuser;")
        _as("postgres", [f"{PG_BIN}/psql", "-h", base, "-p", str(port), "-U", "postgres", "-d", "postgres",
                         "-v", "ON_ERROR_STOP=1", "-c", sql, "-c", "CREATE DATABASE hc OWNER checker"])
        _as("postgres", [f"{PG_BIN}/psql", "-h", base, "-p", str(port), "-U", "checker", "-d", "hc",
                         "-v", "ON_ERROR_STOP=1", "-c",
                         "CREATE TABLE pool(name text, enabled bool); INSERT INTO pool VALUES ('a', true);"])
        yield port, proc
    finally:
        if proc is not None:
            proc.stop()
        shutil.rmtree(base, ignore_errors=True)


async def test_pgsql_greeting_without_login(postgres):
    port, _ = postgres
    vs = vs_for(port, service="pgsql")
    r = await check_once(vs, vs.reals[0])
    assert r.ok and "SSLRequest" in r.reason


async def test_pgsql_scram_login_and_query(postgres):
    port, _ = postgres
    vs = vs_for(port, service="pgsql", login="checker", passwd="s3cret", database="hc")
    r = await check_once(vs, vs.reals[0])
    assert r.ok and "login" in r.reason, r.reason
    vs = vs_for(port, service="pgsql", login="checker", passwd="s3cret", database="hc",
                request="SELECT name FROM pool WHERE enabled")
    r = await check_once(vs, vs.reals[0])
    assert r.ok and "1 row" in r.reason, r.reason
    vs = vs_for(port, service="pgsql", login="checker", passwd="s3cret", database="hc",
                request="SELECT name FROM pool WHERE NOT enabled")
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "no rows" in r.reason  # ldirectord: rows > 0 or down
    vs = vs_for(port, service="pgsql", login="checker", passwd="s3cret", database="hc", request="SELECT * FROM nope")
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "nope" in r.reason


async def test_pgsql_bad_password_md5_and_trust(postgres):
    port, _ = postgres
    vs = vs_for(port, service="pgsql", login="checker", passwd="wrong", database="hc")
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "password" in r.reason.lower(), r.reason
    vs = vs_for(port, service="pgsql", login="md5user", passwd="md5pass", database="postgres", request="SELECT 1")
    r = await check_once(vs, vs.reals[0])
    assert r.ok, r.reason
    vs = vs_for(port, service="pgsql", login="trustuser", database="postgres")
    assert (await check_once(vs, vs.reals[0])).ok


async def test_pgsql_port_default_from_service():
    vs = vs_for(5432, service="pgsql")
    assert vs.service == "pgsql"
    # default service from the port, as ldirectord ld_port_to_service
    from hadirector.config.model import Real, VirtualService
    assert VirtualService(address="198.18.0.100", port=5432, reals=[Real(address="127.0.0.1")]).service == "pgsql"
    assert VirtualService(address="198.18.0.100", port=3306, reals=[Real(address="127.0.0.1")]).service == "mysql"


@pytest.fixture(scope="module")
def mariadb():
    need("mariadbd", "mariadb-install-db", "mariadb")
    if os.geteuid() != 0:
        pytest.skip("starts MariaDB as user mysql: needs root")
    base = _own_tmpdir("mysql", "hdt-my-")
    data = os.path.join(base, "data")
    sock = os.path.join(base, "sock")
    proc = None
    try:
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=mysql",
                        "--auth-root-authentication-method=socket", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120)
        proc, (port,) = start_server(lambda port: Proc(
            ["mariadbd", "--no-defaults", f"--datadir={data}", f"--socket={sock}", f"--port={port}",
             "--bind-address=127.0.0.1", "--user=mysql", "--skip-name-resolve",
             f"--pid-file={base}/mariadb.pid", "--innodb-buffer-pool-size=16M", "--skip-log-bin"]),
            ("tcp",), timeout=60)
        sql = ("CREATE USER 'checker'@'127.0.0.1' IDENTIFIED BY 's3cret';"
               "CREATE DATABASE hc; CREATE TABLE hc.pool(name varchar(20), enabled int);"
               "INSERT INTO hc.pool VALUES ('a', 1); GRANT SELECT ON hc.* TO 'checker'@'127.0.0.1';")
        subprocess.run(["mariadb", "--no-defaults", "-S", sock, "-u", "root", "-e", sql], check=True,
                       capture_output=True, timeout=60)
        yield port, proc
    finally:
        if proc is not None:
            proc.stop()
        shutil.rmtree(base, ignore_errors=True)


async def test_mysql_greeting_login_and_query(mariadb):
    port, _ = mariadb
    vs = vs_for(port, service="mysql")
    r = await check_once(vs, vs.reals[0])
    assert r.ok and "MariaDB" in r.reason, r.reason
    vs = vs_for(port, service="mysql", login="checker", passwd="s3cret", database="hc")
    r = await check_once(vs, vs.reals[0])
    assert r.ok and "login" in r.reason, r.reason
    vs = vs_for(port, service="mysql", login="checker", passwd="s3cret", database="hc",
                request="SELECT name FROM pool WHERE enabled = 1")
    r = await check_once(vs, vs.reals[0])
    assert r.ok and "1 row" in r.reason, r.reason
    vs = vs_for(port, service="mysql", login="checker", passwd="s3cret", database="hc",
                request="SELECT name FROM pool WHERE enabled = 0")
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "no rows" in r.reason
    vs = vs_for(port, service="mysql", login="checker", passwd="wrong", database="hc")
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "1045" in r.reason, r.reason  # ER_ACCESS_DENIED_ERROR
