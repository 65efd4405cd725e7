"""`tls on` against a real corosync-qnetd with TLS (NSS): its CA and server certificate made by
Debian's own corosync-qnetd-certutil (run on a copy pointed at a temporary directory instead of
/etc/corosync/qnetd), our client certificate signed by it (`-s`), as docs/cluster.md tells an
operator. qnetd with -c on (its default) checks that the certificate names the cluster."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from hadirector.cluster import qdevice as q
from hadirector.daemon.qdevice import QdeviceDriver, TlsFiles
from hadirector.lab import qnetd as lab_qnetd
from hdtest import async_wait_until, need

CERTUTIL_SCRIPT = "/usr/bin/corosync-qnetd-certutil"


def _run(argv, **kw):
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)
    assert cp.returncode == 0, f"{argv}: {cp.stdout}{cp.stderr}"
    return cp


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    need(lab_qnetd.QNETD, "certutil", "openssl", CERTUTIL_SCRIPT)
    d = tmp_path_factory.mktemp("qnetd-pki")
    script = d / "certutil.sh"
    text = open(CERTUTIL_SCRIPT).read()
    assert 'CONFIG_DIR="/etc/corosync/qnetd"' in text
    script.write_text(text.replace('CONFIG_DIR="/etc/corosync/qnetd"', f'CONFIG_DIR="{d / "qnetd"}"'))
    script.chmod(0o700)
    (d / "qnetd").mkdir()
    _run([str(script), "-i"])
    nssdb = d / "qnetd" / "nssdb"
    ca = _run(["certutil", "-L", "-d", str(nssdb), "-n", "QNet CA", "-a"]).stdout
    (d / "ca.pem").write_text(ca)
    for cluster in ("qtls", "othercluster"):
        _run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / f"{cluster}.key"),
              "-subj", f"/CN={cluster}", "-outform", "DER", "-out", str(d / f"{cluster}.csr")])
        _run([str(script), "-s", "-c", str(d / f"{cluster}.csr"), "-n", cluster])
        _run(["openssl", "x509", "-inform", "DER", "-in", str(nssdb / f"cluster-{cluster}.crt"),
              "-out", str(d / f"{cluster}.pem")])
    return d


@pytest.fixture
def tls_qnetd(pki, tmp_path):
    srv = lab_qnetd.QnetdServer(str(tmp_path / "qnetd"), tls="on",
                                extra_settings={"nss_db_dir": str(pki / "qnetd" / "nssdb")}).start()
    try:
        yield srv
    finally:
        srv.stop()


def _driver(port, files, tls=True):
    votes = []
    core = q.QdeviceClient(q.Settings("qtls", 1, (1, 2), heartbeat_interval=300, tls=tls, retry_min=200))
    d = QdeviceDriver(core, "127.0.0.1", port, lambda v, det, members: votes.append((v, det)), tls=files)
    return d, votes


def _files(pki, cluster="qtls", **kw):
    return TlsFiles(str(pki / "ca.pem"), str(pki / f"{cluster}.pem"), str(pki / f"{cluster}.key"), **kw)


async def test_tls_session_gets_the_vote(pki, tls_qnetd):
    d, votes = _driver(tls_qnetd.port, _files(pki))
    d.start()
    try:
        await async_wait_until(lambda: d.core.vote is True, 5, what=lambda: f"ACK over TLS; {votes} {d.last_close}")
        out = await asyncio.to_thread(tls_qnetd._tool, "-l", "-v")
        assert "TLS active:\t\tYes (client certificate verified)" in out.stdout, out.stdout
    finally:
        await d.stop()


async def test_a_certificate_for_another_cluster_is_refused_by_qnetd(pki, tls_qnetd):
    d, votes = _driver(tls_qnetd.port, _files(pki, "othercluster"))
    d.start()
    try:
        await async_wait_until(lambda: d.core.counters["connects"] >= 2, 5, what="a refused session and a retry")
        assert d.core.vote is None and not any(v for v, _ in votes)
        assert "valid CN" in tls_qnetd.output()  # qnetd: "Client doesn't sent certificate with valid CN"
    finally:
        await d.stop()


async def test_a_server_name_mismatch_is_refused_here(pki, tls_qnetd):
    d, votes = _driver(tls_qnetd.port, _files(pki, server_name="Some Other Server"))
    d.start()
    try:
        await async_wait_until(lambda: d.last_close and "expected 'Some Other Server'" in d.last_close, 5,
                               what=lambda: f"refusal; last close {d.last_close}")
        assert d.core.vote is None and "Qnetd Server" in d.last_close
    finally:
        await d.stop()


async def test_tls_on_refuses_a_clear_text_qnetd(tmp_path, pki):
    need(lab_qnetd.QNETD)
    with lab_qnetd.QnetdServer(str(tmp_path / "plain"), tls="off") as srv:
        d, votes = _driver(srv.port, _files(pki))
        d.start()
        try:
            await async_wait_until(lambda: d.core.last_error and "clear-text" in d.core.last_error, 5,
                                   what=lambda: f"refusal; {d.core.last_error}")
            assert d.core.vote is None
        finally:
            await d.stop()


async def test_missing_tls_files_are_named(tmp_path, tls_qnetd):
    d, votes = _driver(tls_qnetd.port, TlsFiles(str(tmp_path / "nope.pem"), None, None))
    d.start()
    try:
        await async_wait_until(lambda: d.last_close and "nope.pem" in d.last_close, 5,
                               what=lambda: f"the file named; {d.last_close}")
    finally:
        await d.stop()
