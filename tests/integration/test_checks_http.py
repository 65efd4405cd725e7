"""http/https negotiate checks against real servers: aiohttp (TLS with a self-signed certificate) and nginx."""

import asyncio
import ssl

import pytest
from aiohttp import web

from hadirector.checks.scheduler import check_once
from hadirector.config.model import Real, VirtualService

from checks_util import make_cert, vs_for
from hdtest import Proc, need, start_server


@pytest.fixture
async def app_server(tmp_path):
    """An aiohttp server on 127.0.0.1 (plain) and another with TLS; both record the Host header."""
    seen = {}

    async def index(request):
        seen["host"] = request.headers.get("Host")
        seen["method"] = request.method
        return web.Response(text="Hello, all is WELL here\n")

    async def status(request):
        return web.Response(status=int(request.match_info["code"]), text="status page")

    async def moved(request):
        raise web.HTTPFound("/index.html")

    async def slow(request):
        await asyncio.sleep(1.5)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_route("*", "/index.html", index)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/moved", moved)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    plain = web.TCPSite(runner, "127.0.0.1", 0)
    await plain.start()
    key, crt = make_cert(tmp_path)
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(crt, key)
    snis = []
    sctx.sni_callback = lambda sock, name, ctx: snis.append(name)
    tls = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=sctx)
    await tls.start()
    ports = {"http": plain._server.sockets[0].getsockname()[1], "https": tls._server.sockets[0].getsockname()[1]}
    try:
        yield ports, seen, snis, crt
    finally:
        await runner.cleanup()


def http_vs(port, service="http", **kw):
    return vs_for(port, service=service, **kw)


async def test_get_receive_and_virtualhost(app_server):
    ports, seen, _, _ = app_server
    vs = http_vs(ports["http"], request="index.html", receive="all is WELL", virtualhost="www.example.test")
    r = await check_once(vs, vs.reals[0])
    assert r.ok, r.reason
    assert seen == {"host": "www.example.test", "method": "GET"}
    vs = http_vs(ports["http"], request="index.html", receive="all is BAD")
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "does not match" in r.reason


async def test_default_host_header_is_real_address(app_server):
    ports, seen, _, _ = app_server
    vs = http_vs(ports["http"], request="/index.html")
    assert (await check_once(vs, vs.reals[0])).ok
    assert seen["host"].startswith("127.0.0.1")


async def test_head_method(app_server):
    ports, seen, _, _ = app_server
    vs = http_vs(ports["http"], request="/index.html", httpmethod="HEAD")
    assert (await check_once(vs, vs.reals[0])).ok
    assert seen["method"] == "HEAD"


async def test_status_codes(app_server):
    ports, _, _, _ = app_server
    for code, ok in ((200, True), (204, True), (404, False), (500, False), (503, False)):
        vs = http_vs(ports["http"], request=f"/status/{code}")
        r = await check_once(vs, vs.reals[0])
        assert r.ok is ok, (code, r.reason)
    vs = http_vs(ports["http"], request="/status/503", status_codes=(503,))
    assert (await check_once(vs, vs.reals[0])).ok
    vs = http_vs(ports["http"], request="/status/200", status_codes=(503,))
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "200" in r.reason


async def test_redirects_followed_like_lwp_unless_status_codes(app_server):
    ports, _, _, _ = app_server
    vs = http_vs(ports["http"], request="/moved", receive="WELL")
    assert (await check_once(vs, vs.reals[0])).ok
    vs = http_vs(ports["http"], request="/moved", status_codes=(302,))
    assert (await check_once(vs, vs.reals[0])).ok


async def test_timeout_and_refused(app_server, held_ports):
    ports, _, _, _ = app_server
    vs = http_vs(ports["http"], request="/slow", negotiatetimeout="500ms")
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "within 0.5 s" in r.reason
    vs = http_vs(held_ports.closed_tcp(), request="/")
    assert not (await check_once(vs, vs.reals[0])).ok


async def test_https_sni_and_optional_verification(app_server, monkeypatch):
    ports, _, snis, crt = app_server
    vs = http_vs(ports["https"], service="https", request="/index.html", receive="WELL", virtualhost="www.example.test")
    r = await check_once(vs, vs.reals[0])
    assert r.ok, r.reason
    assert snis[-1] == "www.example.test"
    # verification on: the self-signed certificate is not trusted ...
    vs_v = http_vs(ports["https"], service="https", request="/index.html", virtualhost="www.example.test", tls_verify=True)
    r = await check_once(vs_v, vs_v.reals[0])
    assert not r.ok and ("certificate" in r.reason.lower() or "tls" in r.reason.lower()), r.reason
    # ... until its CA is trusted; then the name must match too
    monkeypatch.setenv("SSL_CERT_FILE", crt)
    assert (await check_once(vs_v, vs_v.reals[0])).ok
    vs_bad = http_vs(ports["https"], service="https", request="/index.html", virtualhost="other.example.test", tls_verify=True)
    assert not (await check_once(vs_bad, vs_bad.reals[0])).ok
    # plain HTTP against the TLS port fails
    vs_plain = http_vs(ports["https"], service="http", request="/index.html")
    assert not (await check_once(vs_plain, vs_plain.reals[0])).ok


async def test_absolute_url_request_and_http_proxy(app_server):
    ports, _, _, _ = app_server
    url = f"http://127.0.0.1:{ports['http']}/index.html"
    vs = VirtualService(address="198.18.0.100", port=80, request=url, receive="WELL",
                        reals=[Real(address="127.0.0.1", port=1)])
    assert (await check_once(vs, vs.reals[0])).ok  # the URL overrides the real's address and port
    # http_proxy: the real is asked, as a proxy, for the absolute URL (request line in absolute form)
    vs = VirtualService(address="198.18.0.100", port=3128, service="http_proxy", receive="WELL",
                        request="http://www.example.test/index.html",
                        reals=[Real(address="127.0.0.1", port=ports["http"])])
    r = await check_once(vs, vs.reals[0])
    assert r.ok, r.reason
    vs = vs.model_copy(update={"request": "/index.html"})
    r = await check_once(vs, vs.reals[0])
    assert not r.ok and "absolute URL" in r.reason


async def test_nginx(tmp_path):
    need("nginx")
    key, crt = make_cert(tmp_path)
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "check.txt").write_text("nginx says OK\n")
    conf = tmp_path / "nginx.conf"

    def nginx(port, tport):
        conf.write_text(f"""
daemon off; master_process off; worker_processes 1; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off; client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/proxy;
  fastcgi_temp_path {tmp_path}/fcgi; uwsgi_temp_path {tmp_path}/uwsgi; scgi_temp_path {tmp_path}/scgi;
  server {{ listen 127.0.0.1:{port}; server_name www.example.test; root {tmp_path}/www; }}
  server {{ listen 127.0.0.1:{port} default_server; server_name _; return 404; }}
  server {{ listen 127.0.0.1:{tport} ssl; server_name www.example.test; ssl_certificate {crt};
           ssl_certificate_key {key}; root {tmp_path}/www; }}
}}
""")
        return Proc(["nginx", "-c", str(conf), "-p", str(tmp_path)])

    proc, (port, tport) = start_server(nginx, ("tcp", "tcp"))
    try:
        vs = http_vs(port, request="check.txt", receive="says OK", virtualhost="www.example.test")
        assert (await check_once(vs, vs.reals[0])).ok
        vs = http_vs(port, request="check.txt", receive="says OK")  # Host = address: default server, 404
        r = await check_once(vs, vs.reals[0])
        assert not r.ok and "404" in r.reason
        vs = http_vs(tport, service="https", request="check.txt", receive="says OK", virtualhost="www.example.test")
        assert (await check_once(vs, vs.reals[0])).ok
    finally:
        proc.stop()
    vs = http_vs(port, request="check.txt")
    assert not (await check_once(vs, vs.reals[0])).ok
