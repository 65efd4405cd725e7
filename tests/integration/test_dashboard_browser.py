"""The dashboard in a real browser: headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright from PyPI) looks at the dashboards of a director pair in network namespaces while the
holder loses power, and drains a real with the operator token (issue 14, items 3 and 4).

The lab is the whole stack of test_failover_balancer.py: two directors running `hadirector run
--ha-dir` with `haresources: dir-a VIP ldirectord`, the balancer in the kernel (nftables, direct
routing), two real HTTP servers. Each director serves its API and dashboard on its LAN address
(`--api 198.18.0.x:8080 --api-token-file`). The browser runs in the client's namespace (its
subprocesses are forked from a thread that entered it: net/netns.py NetnsWorker), so it reaches
the directors as any client on that LAN would and nothing is added to the host's namespace.

What is asserted is read from the page's DOM (the group's holder, the node's status, the events
in the timeline, the real's state and weight), and the drain is checked on the daemon's side too
(`hadirector lvs --json`: weight 0, maintenance drain). Screenshots of each step, laptop and
phone sized, go to a temporary folder, or to the folder HADIRECTOR_SCREENSHOTS names
(`HADIRECTOR_SCREENSHOTS=docs/img` refreshes the ones docs/dashboard.md shows): a test run
leaves the checkout as it found it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from hadirector.lab.hacluster import HaCluster
from hadirector.lab.presets import director_pair
from hadirector.net.netns import NetnsWorker
from hdtest import wait_until
from test_failover_balancer import LDIRECTORD_CF  # the same stack: DR, real1 weight 3, real2 weight 1

CHROMIUM = "/usr/bin/chromium"
PORT = 8080
TOKEN = "dashboard-test-token-5f0c"
REAL1, REAL2 = "198.18.0.11:80", "198.18.0.12:80"
VIRTUAL = "TCP 198.18.0.100:80"
LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SHOTS = Path(os.environ.get("HADIRECTOR_SCREENSHOTS")
             or Path(tempfile.gettempdir()) / f"hadirector-dashboard-{os.getpid()}")



def _need_browser():
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"needs Debian's chromium ({CHROMIUM}; `make test` installs it)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("needs playwright (pip install -e '.[test]')")


class Browser:
    """Chromium driven from one thread that lives in a lab namespace: every Playwright call goes
    through `run` (Playwright's sync objects belong to the thread that made them)."""

    def __init__(self, netns: str) -> None:
        self.worker = NetnsWorker(netns)
        self.pw = self.browser = None
        self.pages: dict[str, object] = {}
        self.errors: list[str] = []

        def start():
            from playwright.sync_api import sync_playwright
            self.pw = sync_playwright().start()
            self.browser = self.pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        self.worker.call(start)

    def run(self, fn, *args):
        return self.worker.call(fn, *args)

    def open(self, name: str, url: str, viewport: dict) -> None:
        def go():
            page = self.browser.new_page(viewport=viewport)
            page.on("pageerror", lambda e: self.errors.append(f"{name}: {e}"))
            page.on("console", lambda m: self.errors.append(f"{name}: console {m.type}: {m.text}")
                    if m.type == "error" else None)
            page.goto(url, timeout=10_000)
            self.pages[name] = page
        self.run(go)

    def eval(self, name: str, js: str, arg=None):
        return self.run(lambda: self.pages[name].evaluate(js, arg))

    def wait(self, name: str, js: str, arg=None, timeout: float = 10.0) -> float:
        """Wait until `js` (a function of arg) is truthy in the page; returns the seconds waited."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
        t0 = time.monotonic()
        try:
            self.run(lambda: self.pages[name].wait_for_function(js, arg=arg, timeout=timeout * 1000,
                                                                  polling=100))
        except PlaywrightTimeout:
            raise AssertionError(f"page {name}: not true within {timeout}s: {js} ({arg!r})\n"
                                 f"--- the page shows ---\n{self.text(name)}\n--- errors ---\n"
                                 + "\n".join(self.errors[-10:])) from None
        return time.monotonic() - t0

    def text(self, name: str) -> str:
        try:
            return self.run(lambda: self.pages[name].inner_text("body", timeout=2000))[:4000]
        except Exception as exc:  # noqa: BLE001 - only for a failure's message
            return f"(cannot read the page: {exc})"

    def shot(self, name: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.run(lambda: self.pages[name].screenshot(path=str(path), full_page=True))
        assert path.stat().st_size > 10_000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path

    def close(self) -> None:
        def stop():
            for p in self.pages.values():
                try:
                    p.close()
                except Exception:  # noqa: BLE001 - a page of a dead node may be stuck
                    pass
            if self.browser is not None:
                self.browser.close()
            if self.pw is not None:
                self.pw.stop()
        try:
            self.run(stop)
        finally:
            self.worker.close()


# what the page shows, read from its DOM (data-* attributes the dashboard sets, and the text)
HOLDER = """g => { const c = document.querySelector(`tr[data-group="${g}"] .holder`);
                   return c ? c.dataset.holder : null; }"""
NODE_STATUS = """n => { const c = document.querySelector(`article.node[data-node="${n}"] .node-status`);
                        return c ? c.textContent : null; }"""
EVENTS = """() => [...document.querySelectorAll('#events li.event')].map(li => li.textContent)"""
REAL = """r => { const row = document.querySelector(`tr.real[data-real="${r}"]`);
                 return row ? {state: row.dataset.state, weight: row.querySelector('.weight').textContent,
                               text: row.textContent} : null; }"""
CONNS = """r => Number(document.querySelector(`tr.real[data-real="${r}"] td[data-label="connections"]`).textContent)"""
OPS_VISIBLE = """() => [...document.querySelectorAll('button[data-op]')].filter(b => b.offsetParent !== null).length"""


def _traffic(c: HaCluster, stop: threading.Event, limit: float = 90.0) -> threading.Thread:
    """A client fetching through the VIP ~20 times a second (bounded), so the rates and plots
    have something to show."""
    def loop():
        t_end = time.monotonic() + limit
        while not stop.is_set() and time.monotonic() < t_end:
            try:
                c.client_get(timeout=0.5)
            except Exception:  # noqa: BLE001 - refused or timed out while the VIP moves
                pass
            stop.wait(0.05)
    t = threading.Thread(target=loop, name="vip-traffic", daemon=True)
    t.start()
    return t


def _lvs(c: HaCluster, node: str) -> dict:
    p = subprocess.run([sys.executable, "-m", "hadirector", "lvs", "--json", "--state-dir",
                        c.state_dir(node)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_dashboard_shows_failover_and_drains_a_real(lab, tmp_path):
    _need_browser()
    marks = [("start", time.monotonic())]
    pair = director_pair(lab, hb_link=True)
    for i, addr in ((1, REAL1), (2, REAL2)):
        r = lab.host(f"real{i}")
        r.connect(pair.lan, f"{addr.split(':')[0]}/24")
        r.run([sys.executable, "-m", "hadirector", "realserver", "--vip", pair.vip, "up"])
        r.http_server(port=80, identity=f"real{i}")
    token_file = tmp_path / "api.token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    c = HaCluster(pair, str(tmp_path), keepalive=100, deadtime=500, auto_failback="off",
                  extra_resources="ldirectord", ldirectord_cf=LDIRECTORD_CF)
    url = {}
    for name in ("dir-a", "dir-b"):
        c.start(name, "--api", f"{pair.addr[name]}:{PORT}", "--api-token-file", str(token_file))
        url[name] = f"http://{pair.addr[name]}:{PORT}/"
    group = c.vip  # haresources names the group after its first resource
    b = Browser(pair.client.netns)  # Chromium starts while the daemons do
    marks.append(("browser", time.monotonic()))
    stop = threading.Event()
    traffic = None
    try:
        for name in ("dir-a", "dir-b"):
            pair.client.wait_tcp(pair.addr[name], PORT, timeout=15)
        # the pages open as soon as the APIs answer; all but one get the token at once (the
        # plots start sampling), dir-b-laptop first shows what a page without it does
        for name in ("dir-a", "dir-b"):
            b.open(f"{name}-laptop", url[name], LAPTOP)
            b.open(f"{name}-phone", url[name], PHONE)
        for page in ("dir-a-laptop", "dir-a-phone", "dir-b-phone"):
            b.run(lambda p=page: (b.pages[p].fill("#token-input", TOKEN), b.pages[p].click("#token-save")))
        c.wait_holder("dir-a", timeout=15, stable=0.3)
        marks.append(("pair up", time.monotonic()))
        traffic = _traffic(c, stop)
        # the token is required for every read: the page asks for it and shows nothing yet
        b.wait("dir-b-laptop", "() => document.getElementById('conn').dataset.state === 'down'")
        assert "token" in b.eval("dir-b-laptop", "() => document.getElementById('conn').textContent")
        assert b.eval("dir-b-laptop", HOLDER, group) is None
        # a wrong token is refused and gives no buttons
        b.run(lambda: (b.pages["dir-b-laptop"].fill("#token-input", "wrong"),
                       b.pages["dir-b-laptop"].click("#token-save")))
        b.wait("dir-b-laptop", "() => document.getElementById('auth-state').textContent === 'token refused'")
        assert b.eval("dir-b-laptop", OPS_VISIBLE) == 0
        # with the right token (kept in sessionStorage: this page's tab only)
        b.run(lambda: (b.pages["dir-b-laptop"].fill("#token-input", TOKEN),
                       b.pages["dir-b-laptop"].click("#token-save")))

        # before: both dashboards see dir-a holding the group, the reals up, traffic flowing
        for page in b.pages:
            b.wait(page, f"g => ({HOLDER})(g) === 'dir-a'", group)
        b.wait("dir-a-laptop", f"r => {{ const x = ({REAL})(r); return x && x.state === 'up'; }}", REAL1)
        b.wait("dir-a-laptop", "() => Number(document.querySelector('.svc-rps').textContent) > 0",
               timeout=15)
        assert b.eval("dir-b-laptop", NODE_STATUS, "dir-a") == "active"
        # the event stream (opened once the token is there) gives the recent events first
        b.wait("dir-b-laptop", "() => [...document.querySelectorAll('#events li.event')]"
               ".some(li => li.textContent.includes('owner none -> dir-a'))", timeout=5)
        # the plots have some seconds of samples to show: the oldest point of the service's
        # requests plot (300 wide, 10 s at least) is 5 s old or more
        b.wait("dir-a-laptop", "() => { const p = document.querySelector('svg.plot polyline'); "
               "return p && parseFloat(p.getAttribute('points')) < 150; }", timeout=15)
        b.shot("dir-a-laptop", SHOTS / "dashboard-before-laptop.png")
        b.shot("dir-a-phone", SHOTS / "dashboard-before-phone.png")

        # the holder loses power (kill -9 and its links down at the same instant)
        marks.append(("before", time.monotonic()))
        c.power_off("dir-a")
        t_off = time.monotonic()
        b.wait("dir-b-laptop", f"g => ({HOLDER})(g) === 'dir-b'", group, timeout=8)
        b.wait("dir-b-laptop", "() => [...document.querySelectorAll('#events li.event')]"
               ".some(li => li.textContent.includes('owner dir-a -> dir-b'))", timeout=8)
        seen = time.monotonic() - t_off
        print(f"survivor's dashboard showed the new holder and the event {seen:.2f}s after the power loss")
        assert seen < 5, f"the survivor's dashboard showed the new holder {seen:.1f}s after the power loss"
        assert b.eval("dir-b-laptop", NODE_STATUS, "dir-a") == "dead"
        c.wait_holder("dir-b", timeout=5)  # and the VIP really moved (who answers for it)
        # the dead node's own page says it does not answer
        b.wait("dir-a-laptop", "() => document.getElementById('conn').dataset.state === 'down'", timeout=10)
        assert "does not answer" in b.eval("dir-a-laptop", "() => document.getElementById('conn').textContent")
        b.wait("dir-b-laptop", f"r => {{ const x = ({REAL})(r); return x && x.weight === '1'; }}", REAL2)
        # the client's traffic through the VIP now goes through the survivor's data plane
        b.wait("dir-b-laptop", "() => Number(document.querySelector('.svc-rps').textContent) > 0",
               timeout=15)
        b.wait("dir-b-phone", f"g => ({HOLDER})(g) === 'dir-b'", group)
        b.shot("dir-b-laptop", SHOTS / "dashboard-failover-laptop.png")
        b.shot("dir-b-phone", SHOTS / "dashboard-failover-phone.png")

        # with the token the operator buttons are there; drain real2 on the survivor
        assert b.eval("dir-b-laptop", OPS_VISIBLE) > 0
        b.run(lambda: b.pages["dir-b-laptop"].click(f'tr.real[data-real="{REAL2}"] button[data-op="drain"]'))
        b.wait("dir-b-laptop", f"r => {{ const x = ({REAL})(r); return x && x.state === 'drain' "
               "&& x.weight === '0'; }", REAL2, timeout=8)
        row = b.eval("dir-b-laptop", REAL, REAL2)
        assert "by api" in row["text"], row
        assert b.eval("dir-b-laptop", REAL, REAL1)["state"] == "up"
        msg = b.eval("dir-b-laptop", "() => document.getElementById('message').textContent")
        assert "maintenance drain" in msg, msg
        # the daemon's side: weight 0 in the data plane's table, the mark in its checks
        lvs = _lvs(c, "dir-b")
        real2 = next(r for r in lvs["services"][0]["reals"] if f"{r['address']}:{r['port']}" == REAL2)
        assert real2["weight"] == 0 and real2["check"]["maintenance"]["state"] == "drain", real2
        b.wait("dir-b-laptop", "() => [...document.querySelectorAll('#events li.event')]"
               ".some(li => li.dataset.kind === 'maintenance')", timeout=5)
        # and it took effect: on the page's counters (refreshed every 2 s) real2 gets no new
        # connection for 4 s while real1 still does; undrained, real2 takes ~1 in 4 (weight 1:3)
        seen_counts: list[dict] = []

        def drained_in_kernel():
            seen_counts.append({r: b.eval("dir-b-laptop", CONNS, r) for r in (REAL1, REAL2)})
            if len(seen_counts) < 3:
                return False
            old, new = seen_counts[-3], seen_counts[-1]
            return new[REAL2] == old[REAL2] and new[REAL1] > old[REAL1]
        wait_until(drained_in_kernel, 16, 2.0, lambda: f"real2's connections to stop: {seen_counts}")
        b.wait("dir-b-phone", f"r => {{ const x = ({REAL})(r); return x && x.state === 'drain'; }}", REAL2)
        marks.append(("failover and drain", time.monotonic()))
        b.shot("dir-b-laptop", SHOTS / "dashboard-drained-laptop.png")
        b.shot("dir-b-phone", SHOTS / "dashboard-drained-phone.png")
        # standby wants a second press; with the peer dead the daemon refuses, and says why
        page = b.pages["dir-b-laptop"]
        b.run(lambda: page.click('article.node[data-node="dir-b"] button[data-op="standby"]'))
        assert b.eval("dir-b-laptop", "() => document.querySelector('button[data-op=standby]').textContent") \
            == "press again to standby"
        b.run(lambda: page.click('article.node[data-node="dir-b"] button[data-op="standby"]'))
        b.wait("dir-b-laptop", "() => { const m = document.getElementById('message'); "
               "return m.classList.contains('bad') && m.textContent.startsWith('standby'); }", timeout=8)
        print("standby with the peer dead: " + b.eval("dir-b-laptop", "() => document.getElementById('message').textContent"))
        assert b.eval("dir-b-laptop", HOLDER, group) == "dir-b"
        # no script error on the survivor's pages (failed requests while it was asked for a
        # token, and the dead node's page, log "Failed to load resource": not script errors)
        assert not [e for e in b.errors if e.startswith("dir-b") and "Failed to load resource" not in e], b.errors
        marks.append(("shots, standby", time.monotonic()))
        print("phases: " + ", ".join(f"{n} {t - marks[i][1]:.1f}s" for i, (n, t) in enumerate(marks[1:])))
    finally:
        stop.set()
        try:
            b.close()
        finally:
            if traffic is not None:
                traffic.join(5)
