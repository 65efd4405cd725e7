/* hadirector dashboard (docs/dashboard.md).
 *
 * Reads the daemon's HTTP API of the node that served this page:
 *   GET  /api/v1/status   what `hadirector status --json` prints (nodes, links, groups, checks,
 *                         maintenance marks, quorum when the cluster has one)
 *   GET  /api/v1/lvs      what `hadirector lvs --json` prints (services, installed reals, counters
 *                         and rates of the data plane, each real's check)
 *   GET  /api/v1/events   server-sent events: recent ones first, then live
 *   GET  /api/v1/auth     {"token_required": bool, "authorized": bool} for the token we send
 *   POST /api/v1/standby, /api/v1/takeover, /api/v1/reals/{virtual}/{real}/{drain|disable|enable}
 *
 * status and lvs are fetched every REFRESH_MS and at once after each event. The event stream is
 * read with fetch() rather than EventSource because EventSource cannot send the Authorization
 * header a token-protected API needs (the API also takes ?token=, but a token in a URL ends up in
 * logs and history); the stream is parsed as the HTML standard's event-stream format says
 * (fields `event`, `data`, `id`, a blank line ends an event). When it is reopened the daemon sends
 * its recent events again; they are told apart by id and time (a restarted daemon numbers from 1
 * again, so `?since=ID` could hide its new events) and shown once.
 *
 * Every string from the API reaches the page through textContent or an attribute value set with
 * setAttribute, never as markup: see el() and svg() below, the only places nodes are made.
 */
"use strict";
(function () {
  const API = "/api/v1";
  const REFRESH_MS = 2000;
  const CALL_TIMEOUT_MS = 4000;
  const HISTORY_S = 300;          // the plots show the last five minutes
  const MAX_EVENTS = 200;
  const TOKEN_KEY = "hadirector.token";

  const S = {
    token: sessionStorage.getItem(TOKEN_KEY) || "",
    auth: null,                   // the last /api/v1/auth answer
    status: null,
    lvs: null,
    lvsError: null,
    skew: 0,                      // server wall clock - ours, seconds
    lastOk: 0,
    failing: null,                // why the last refresh failed
    history: new Map(),           // "virtual|real" or "virtual" -> [{t, rps, bps}]
    prev: new Map(),              // same keys -> last counters, for rates when none are served
    events: [],
    eventKeys: new Set(),
    streamUp: false,
    armed: null,                  // {name, until}: a standby/takeover button waiting for a 2nd press
  };

  // ------------------------------------------------------------------ building nodes safely

  function append(node, kids) {
    for (const k of kids) {
      if (k === null || k === undefined || k === false) continue;
      if (Array.isArray(k)) append(node, k);
      else if (k instanceof Node) node.appendChild(k);
      else node.appendChild(document.createTextNode(String(k)));
    }
    return node;
  }

  function setAttrs(node, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
  }

  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    return append(node, kids);
  }

  function svg(tag, attrs, ...kids) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    setAttrs(node, attrs);
    return append(node, kids);
  }

  function fill(id, ...kids) {
    const node = document.getElementById(id);
    node.replaceChildren();
    return append(node, kids);
  }

  // ------------------------------------------------------------------ numbers and times

  function serverNow() { return Date.now() / 1000 + S.skew; }

  function ago(t) {
    if (t === null || t === undefined) return "-";
    const s = Math.max(0, serverNow() - t);
    if (s < 60) return `${Math.round(s)} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor(s % 3600 / 60)} min ago`;
    return `${Math.floor(s / 86400)} d ago`;
  }

  function clock(t) {
    if (t === null || t === undefined) return "-";
    const d = new Date(t * 1000);
    return d.toLocaleTimeString([], { hour12: false });
  }

  function stamp(t) {
    if (t === null || t === undefined) return "-";
    return new Date(t * 1000).toLocaleString([], { hour12: false });
  }

  function since(t) {
    return el("time", { datetime: t ? new Date(t * 1000).toISOString() : null, title: stamp(t) },
      t ? `${clock(t)} (${ago(t)})` : "-");
  }

  function num(n) {
    if (n === null || n === undefined || Number.isNaN(n)) return "-";
    const a = Math.abs(n);
    if (a >= 1e9) return (n / 1e9).toFixed(1) + "G";
    if (a >= 1e6) return (n / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (n / 1e3).toFixed(1) + "k";
    return Number.isInteger(n) ? String(n) : n.toFixed(1);
  }

  function bytes(n) {
    if (n === null || n === undefined || Number.isNaN(n)) return "-";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(Math.round(n))) + " " + units[i];
  }

  function tone(word) {
    const w = String(word || "").toLowerCase();
    if (/^(up|active|held|running|ok|enabled|quorate|yes|true|live|vote)/.test(w)) return "ok";
    if (/(dead|down|fail|error|lost|disabled|no quorum|no vote|refused|false|unreachable)/.test(w)) return "bad";
    return "warn";
  }

  function badge(word, extra) {
    return el("span", Object.assign({ class: "badge " + tone(word) }, extra || {}), word ?? "-");
  }

  // ------------------------------------------------------------------ talking to the API

  class ApiError extends Error {
    constructor(status, reason) { super(reason); this.status = status; }
  }

  function headers(extra) {
    const h = Object.assign({ Accept: "application/json" }, extra || {});
    if (S.token) h.Authorization = "Bearer " + S.token;
    return h;
  }

  async function call(method, path, body, timeoutMs) {
    const init = { method, headers: headers(body !== undefined ? { "Content-Type": "application/json" } : {}),
                   cache: "no-store" };
    if (body !== undefined) init.body = JSON.stringify(body);
    // a node that lost power answers nothing, not even a reset: give up after CALL_TIMEOUT_MS
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs || CALL_TIMEOUT_MS);
    init.signal = abort.signal;
    let r, data = null;
    try {
      r = await fetch(API + path, init);
      try { data = await r.json(); } catch (e) { data = null; }
    } catch (e) {
      throw new ApiError(0, "this node does not answer");
    } finally {
      clearTimeout(timer);
    }
    if (!r.ok) throw new ApiError(r.status, (data && data.error) || `${r.status} ${r.statusText}`);
    return data;
  }

  function canOperate() {
    return Boolean(S.token && S.auth && S.auth.authorized);
  }

  async function checkAuth() {
    try {
      S.auth = await call("GET", "/auth");
    } catch (e) {
      S.auth = null;
      fill("auth-state", `auth: ${e.message}`);
      return;
    }
    const state = document.getElementById("auth-state");
    if (S.token && !S.auth.token_required) {
      // daemon/api.py: without a token_file, reading is open and every change is refused
      state.textContent = "this node has no token set: read only";
      state.className = "bad-text";
    } else if (S.token && !S.auth.authorized) {
      state.textContent = "token refused";
      state.className = "bad-text";
    } else if (canOperate()) {
      state.textContent = "operator";
      state.className = "ok-text";
    } else {
      state.textContent = S.auth.token_required ? "a token is required" : "read only";
      state.className = "muted";
    }
    document.getElementById("token-clear").hidden = !S.token;
    document.body.classList.toggle("operator", canOperate());
  }

  function say(text, bad) {
    const m = document.getElementById("message");
    m.hidden = !text;
    m.textContent = text || "";
    m.className = "message " + (bad ? "bad" : "ok");
    clearTimeout(say.timer);
    if (text) say.timer = setTimeout(() => { m.hidden = true; }, 15000);
  }

  async function operate(label, path, body) {
    say(`${label}...`);
    try {
      // standby/takeover wait up to body.wait seconds for the groups to move
      const reply = await call("POST", path, body, CALL_TIMEOUT_MS + 1000 * ((body && body.wait) || 0) + 5000);
      const lines = (reply && (reply.messages || (reply.message ? [reply.message] : []))) || [];
      const text = lines.length ? lines.join("; ") : "done";
      say(text.startsWith(label) ? text : `${label}: ${text}`);
    } catch (e) {
      say(e.message.startsWith(label) ? e.message : `${label}: ${e.message}`, true);
    }
    refresh();
  }

  // ------------------------------------------------------------------ refreshing

  let refreshing = null;
  let again = false;

  async function refresh() {
    if (refreshing) { again = true; return refreshing; }
    refreshing = (async () => {
      try {
        const st = await call("GET", "/status");
        S.status = st;
        if (typeof st.now === "number") S.skew = st.now - Date.now() / 1000;
        try {
          S.lvs = await call("GET", "/lvs");
          S.lvsError = null;
          sample(S.lvs);
        } catch (e) {
          if (e.status === 0) throw e;
          S.lvs = null;
          S.lvsError = e.message;
        }
        S.lastOk = Date.now() / 1000;
        S.failing = null;
      } catch (e) {
        S.failing = e.status === 401 || e.status === 403
          ? `${e.message} (enter the token)` : e.message;
      }
      render();
    })();
    try { await refreshing; } finally {
      refreshing = null;
      if (again) { again = false; refresh(); }
    }
  }

  let soon = null;
  function refreshSoon() {
    if (soon) return;
    soon = setTimeout(() => { soon = null; refresh(); }, 150);
  }

  // ------------------------------------------------------------------ rates and their history

  function realName(r) {
    return r.address.includes(":") ? `[${r.address}]:${r.port}` : `${r.address}:${r.port}`;
  }

  function pushRate(key, t, rps, bps) {
    let h = S.history.get(key);
    if (!h) { h = []; S.history.set(key, h); }
    h.push({ t, rps, bps });
    while (h.length && h[0].t < t - HISTORY_S) h.shift();
  }

  // requests (new connections) and bytes per second: the data plane's rates when it serves
  // them, else the difference of its counters since the previous sample
  function rateOf(key, t, stats, rate) {
    const prev = S.prev.get(key);
    const conns = stats ? stats.conns : null;
    const b = stats ? (stats.inbytes || 0) + (stats.outbytes || 0) : null;
    S.prev.set(key, { t, conns, b });
    if (rate && typeof rate.cps === "number") {
      return { rps: rate.cps, bps: (rate.inbps || 0) + (rate.outbps || 0) };
    }
    if (!prev || conns === null || t <= prev.t) return { rps: null, bps: null };
    const dt = t - prev.t;
    return { rps: Math.max(0, (conns - prev.conns) / dt), bps: Math.max(0, (b - prev.b) / dt) };
  }

  function sample(lvs) {
    const t = Date.now() / 1000;
    for (const s of (lvs && lvs.services) || []) {
      const sr = rateOf(s.key, t, s.stats, s.rate);
      pushRate(s.key, t, sr.rps, sr.bps);
      for (const r of s.reals || []) {
        const k = `${s.key}|${realName(r)}`;
        const rr = rateOf(k, t, r.stats, r.rate);
        pushRate(k, t, rr.rps, rr.bps);
      }
    }
  }

  // the time the plots span: what has been sampled since the page opened, from 10 s up to
  // HISTORY_S, so a page opened a moment ago does not squeeze its samples into one edge
  function plotSpan() {
    let first = Infinity;
    for (const h of S.history.values()) if (h.length) first = Math.min(first, h[0].t);
    const span = Number.isFinite(first) ? Date.now() / 1000 - first : 0;
    return Math.min(HISTORY_S, Math.max(10, Math.ceil(span / 5) * 5));
  }

  function spanText(span) {
    return span >= 120 ? `last ${Math.round(span / 60)} min` : `last ${span} s`;
  }

  // an inline SVG plot of one or two series over the last plotSpan() seconds
  function plot(key, opts) {
    const w = opts.width, h = opts.height;
    const now = Date.now() / 1000;
    const span = plotSpan();
    const data = (S.history.get(key) || []).filter(p => p.t >= now - span);
    const series = opts.series;
    const root = svg("svg", { class: "plot " + (opts.cls || ""), viewBox: `0 0 ${w} ${h}`,
                              preserveAspectRatio: "none", role: "img",
                              "aria-label": opts.label });
    const tip = [];
    for (const [i, s] of series.entries()) {
      const vals = data.map(p => p[s.field]).filter(v => typeof v === "number");
      const max = Math.max(1e-9, ...vals) * 1.2;  // headroom: a steady rate is not drawn on the edge
      const pts = data.filter(p => typeof p[s.field] === "number").map(p => {
        const x = w - (now - p.t) / span * w;
        const y = h - 2 - (p[s.field] / max) * (h - 4);
        return `${x.toFixed(1)},${y.toFixed(1)}`;
      });
      if (pts.length > 1) {
        root.appendChild(svg("polyline", { points: pts.join(" "), class: "line s" + i }));
      }
      const last = vals.length ? vals[vals.length - 1] : null;
      tip.push(`${s.name}: ${s.fmt(last)} now, ${s.fmt(vals.length ? Math.max(...vals) : null)} peak`);
    }
    root.appendChild(svg("title", {}, `${opts.label}, ${spanText(span)}: ${tip.join("; ")}`));
    return root;
  }

  // ------------------------------------------------------------------ the sections

  function render() {
    const st = S.status;
    const conn = document.getElementById("conn");
    document.body.classList.toggle("stale", Boolean(S.failing && S.status));
    if (S.failing) {
      conn.dataset.state = "down";
      conn.textContent = S.lastOk ? `${S.failing} (last answer ${clock(S.lastOk)})` : S.failing;
    } else {
      conn.dataset.state = S.streamUp ? "live" : "polling";
      conn.textContent = S.streamUp ? "live" : "polling";
    }
    document.getElementById("updated").textContent =
      S.lastOk ? `updated ${new Date(S.lastOk * 1000).toLocaleTimeString([], { hour12: false })}` : "";
    if (!st) return;
    document.getElementById("cluster-name").textContent = `cluster ${st.cluster}`;
    document.getElementById("node-name").textContent =
      `seen from ${st.node}, ${st.phase || "running"}, generation ${st.generation}`;
    document.title = `${st.node} - hadirector ${st.cluster}`;
    renderNodes(st);
    renderGroups(st);
    renderQuorum(st);
    renderServices(st);
  }

  // drawn at the size it is shown (text stays legible on a phone): this node on the left, each
  // peer on the right, one line per heartbeat link
  function renderTopology(st) {
    const local = st.nodes.find(n => n.local) || st.nodes[0];
    const peers = st.nodes.filter(n => n !== local);
    const root = document.getElementById("topology");
    const w = Math.round(Math.min(640, Math.max(300, root.getBoundingClientRect().width || 480)));
    const narrow = w < 420;
    const half = narrow ? 50 : 65;
    const rowH = 70, h = Math.max(1, peers.length) * rowH + 10;
    root.replaceChildren();
    root.setAttribute("viewBox", `0 0 ${w} ${h}`);
    root.style.maxHeight = `${h}px`;
    const box = (x, y, n) => svg("g", { class: "tnode " + tone(n.status), "data-node": n.name },
      svg("rect", { x: x - half, y: y - 20, width: 2 * half, height: 40, rx: 8 }),
      svg("text", { x, y: y - 2, "text-anchor": "middle", class: "tname" }, n.name),
      svg("text", { x, y: y + 13, "text-anchor": "middle", class: "tstatus" }, n.status));
    const ly = h / 2, x1 = 2 * half + 14, x2 = w - 2 * half - 14;
    peers.forEach((p, i) => {
      const py = 5 + rowH * i + rowH / 2;
      const links = p.links || [];
      links.forEach((l, j) => {
        const off = (j - (links.length - 1) / 2) * 10;
        root.appendChild(svg("line", { x1, y1: ly + off, x2, y2: py + off,
                                       class: "tlink " + tone(l.status), "data-link": l.name },
          svg("title", {}, `${l.name} to ${p.name}: ${l.status}` + (l.since ? `, since ${stamp(l.since)}` : ""))));
      });
      const up = links.filter(l => l.status === "up").length;
      const mid = !links.length ? "no link"
        : narrow ? `${up} of ${links.length} links up`
        : links.map(l => `${l.name} ${l.status}`).join(", ");
      root.appendChild(svg("text", { x: w / 2, y: (ly + py) / 2 - 10, "text-anchor": "middle",
                                     class: "tlabel" }, mid));
      root.appendChild(box(w - half - 4, py, p));
    });
    root.appendChild(box(half + 4, ly, local));
  }

  function renderNodes(st) {
    renderTopology(st);
    const cards = st.nodes.map(n => {
      const links = (n.links || []).map(l => el("li", { class: "link", "data-link": l.name },
        badge(l.status), " ", l.name, l.since ? el("span", { class: "muted" }, " ", ago(l.since)) : null));
      const score = n.score === null || n.score === undefined ? "-"
        : (n.score_max ? `${n.score}/${n.score_max}` : String(n.score));
      const ops = n.local ? el("div", { class: "ops operator-only" },
        armButton("standby", "give this node's groups to the peer", "/standby"),
        armButton("takeover", "take the groups here", "/takeover")) : null;
      return el("article", { class: "node " + tone(n.status), "data-node": n.name },
        el("h3", {}, n.name, n.local ? el("span", { class: "muted" }, " (this node)") : null),
        el("p", {}, badge(n.status, { class: "badge node-status " + tone(n.status) }), " since ", since(n.since)),
        el("p", { class: "muted" }, `score ${score}, generation ${n.generation ?? "-"}`,
          n.silent_ms === undefined || n.silent_ms === null ? ""
            : n.silent_ms < 2000 ? `, heard ${n.silent_ms} ms ago` : `, silent for ${(n.silent_ms / 1000).toFixed(1)} s`),
        (n.failed_groups && n.failed_groups.length)
          ? el("p", { class: "bad-text" }, `failed groups: ${n.failed_groups.join(", ")}`) : null,
        el("ul", { class: "links" }, links),
        ops);
    });
    const dropped = Object.entries(st.dropped || {}).filter(([, v]) => v);
    fill("nodes", cards,
      dropped.length ? el("p", { class: "bad-text" },
        "dropped packets: " + dropped.map(([k, v]) => `${k} ${v}`).join(", ")) : null);
  }

  function armButton(name, title, path) {
    const armed = S.armed && S.armed.name === name && S.armed.until > Date.now();
    return el("button", {
      type: "button", class: "op" + (armed ? " armed" : ""), title, "data-op": name,
      on: { click: () => {
        if (S.armed && S.armed.name === name && S.armed.until > Date.now()) {
          S.armed = null;
          operate(name, path, { which: "all", wait: 5 });
        } else {
          S.armed = { name, until: Date.now() + 4000 };
          setTimeout(render, 4100);
        }
        render();
      } } }, armed ? `press again to ${name}` : name);
  }

  function renderGroups(st) {
    const rows = (st.groups || []).map(g => el("tr", { "data-group": g.name },
      el("td", { "data-label": "group" }, el("strong", {}, g.name)),
      el("td", { "data-label": "held by", class: "holder", "data-holder": (g.holders || []).join(",") },
        (g.holders && g.holders.length) ? g.holders.join(", ") : el("span", { class: "bad-text" }, "nobody")),
      el("td", { "data-label": "state" }, badge(g.state)),
      el("td", { "data-label": "since" }, since(g.since)),
      el("td", { "data-label": "preferred" }, g.preferred || "-"),
      el("td", { "data-label": "resources", class: "wrap" }, (g.resources || []).join(", ") || "-")));
    const failed = (st.failed_actions || []).slice().reverse().map(f => el("li", { class: "bad-text" },
      `group ${f.group}: ${f.resource} ${f.action} on ${f.node} failed ${ago(f.time)}: ${f.reason}`));
    fill("groups",
      rows.length ? el("table", { class: "rows" },
        el("thead", {}, el("tr", {}, ["group", "held by", "state", "since", "preferred", "resources"]
          .map(h => el("th", {}, h)))),
        el("tbody", {}, rows)) : el("p", { class: "muted" }, "no resource groups"),
      failed.length ? el("ul", { class: "failed" }, failed) : null);
  }

  function renderQuorum(st) {
    const q = st.quorum;
    const section = document.getElementById("quorum-section");
    section.hidden = q === undefined || q === null;
    if (section.hidden) return;
    const items = [];
    const rest = Object.assign({}, typeof q === "object" ? q : { quorum: q });
    // the votequorum picture first (cluster/quorum.py snapshot), the other fields as given
    if (typeof q === "object" && "quorate" in q) {
      const at = typeof q.since === "number" ? q.since
        : typeof q.since_age_ms === "number" ? serverNow() - q.since_age_ms / 1000 : null;
      items.push(el("dt", {}, "state"), el("dd", { class: "quorate", "data-quorate": String(q.quorate) },
        badge(q.quorate ? "quorate" : "no quorum"), at ? [" since ", since(at)] : null));
      if ("votes" in q) {
        items.push(el("dt", {}, "votes"), el("dd", {},
          `${q.votes} of ${q.expected ?? "?"}` + (q.needed !== undefined ? `, ${q.needed} needed` : "")));
      }
      if ("witness" in q) {
        const w = q.witness === true ? "vote" : q.witness === false ? "no vote"
          : q.witness === null ? "unknown" : q.witness;
        items.push(el("dt", {}, "witness"), el("dd", {}, badge(w)));
      }
      for (const k of ["quorate", "votes", "expected", "needed", "witness", "since", "since_age_ms"]) delete rest[k];
    }
    const add = (k, v) => {
      if (v !== null && typeof v === "object" && !Array.isArray(v)) {
        for (const [k2, v2] of Object.entries(v)) add(`${k} ${k2}`, v2);
        return;
      }
      items.push(el("dt", {}, k), el("dd", {}, typeof v === "boolean" ? (v ? "yes" : "no")
        : Array.isArray(v) ? v.map(x => typeof x === "object" ? JSON.stringify(x) : String(x)).join(", ")
        : String(v)));
    };
    for (const [k, v] of Object.entries(rest)) add(k.replace(/_/g, " "), v);
    fill("quorum", items);
  }

  function checksOf(st) {
    // every real's check, by virtual service, from the status reply (there on every node)
    const by = new Map();
    for (const c of Object.values(st.checks || {})) {
      const name = realName(c);
      if (!by.has(c.virtual)) by.set(c.virtual, new Map());
      by.get(c.virtual).set(name, c);
    }
    return by;
  }

  function renderServices(st) {
    const lvs = S.lvs;
    const note = document.getElementById("balancer-note");
    const checks = checksOf(st);
    const marks = new Map((st.maintenance || []).map(m => [`${m.virtual}|${m.real}`, m]));
    let services = [];
    if (lvs && lvs.active !== false) {
      note.textContent = `balancer active on ${st.node}` + (st.balancer && st.balancer.dataplane
        ? ` (${st.balancer.dataplane} data plane)` : "");
      services = lvs.services.map(s => ({ key: s.key, svc: s }));
    } else {
      const held = lvs && lvs.held_by && lvs.held_by.length ? lvs.held_by.join(", ") : "no node";
      note.textContent = lvs ? `balancer not active on ${st.node} (held by ${held}): its health checks`
        : (S.lvsError ? `no balancer table: ${S.lvsError}` : "");
    }
    for (const v of checks.keys()) if (!services.some(s => s.key === v)) services.push({ key: v, svc: null });
    const out = services.map(({ key, svc }) => renderService(key, svc, checks.get(key) || new Map(), marks));
    fill("services", out.length ? out : el("p", { class: "muted" }, "no virtual services"));
  }

  function renderService(key, svc, checks, marks) {
    const installed = new Map(((svc && svc.reals) || []).map(r => [realName(r), r]));
    const names = [...new Set([...installed.keys(), ...checks.keys()])];
    const rows = names.map(name => realRow(key, name, installed.get(name), checks.get(name),
                                            marks.get(`${key}|${name}`)));
    const head = el("header", { class: "svc-head" },
      el("h3", {}, key),
      svc ? el("span", { class: "muted" }, [svc.scheduler, ...(svc.flags || []),
        svc.persistent ? `persistent ${svc.persistent} s` : null].filter(Boolean).join(" ")) : null);
    let summary = null;
    if (svc) {
      const h = S.history.get(key) || [];
      const last = h.length ? h[h.length - 1] : {};
      summary = el("div", { class: "svc-summary" },
        el("div", { class: "figures" },
          el("span", {}, el("b", { class: "svc-rps" }, num(last.rps)), " req/s"),
          el("span", {}, el("b", {}, bytes(last.bps)), "/s"),
          el("span", {}, el("b", {}, num(svc.stats && svc.stats.conns)), " connections in all")),
        el("div", { class: "plots" },
          el("figure", {},
            plot(key, { width: 300, height: 60, cls: "big", label: `${key} requests per second`,
                        series: [{ field: "rps", name: "requests/s", fmt: num }] }),
            el("figcaption", { class: "muted" }, el("span", { class: "key s0" }),
               ` requests/s, ${spanText(plotSpan())}`)),
          el("figure", {},
            plot(key, { width: 300, height: 60, cls: "big s1only", label: `${key} bytes per second`,
                        series: [{ field: "bps", name: "bytes/s", fmt: v => bytes(v) + "/s" }] }),
            el("figcaption", { class: "muted" }, el("span", { class: "key s1" }),
               ` bytes/s, ${spanText(plotSpan())}`))));
    }
    return el("article", { class: "service", "data-virtual": key }, head, summary,
      el("table", { class: "rows reals" },
        el("thead", {}, el("tr", {}, ["real", "state", "weight", "active / inactive", "connections",
          "req/s", "bytes/s", "last check", "req/s, " + spanText(plotSpan()).replace("last ", ""), ""]
          .map(h => el("th", {}, h)))),
        el("tbody", {}, rows)));
  }

  function realRow(vkey, name, r, c, mark) {
    const m = mark || (c && c.maintenance) || null;
    const state = m && m.state !== "enabled" ? m.state
      : r ? (r.fallback ? "fallback" : r.status) : (c ? c.state : "-");
    const h = S.history.get(`${vkey}|${name}`) || [];
    const last = h.length ? h[h.length - 1] : {};
    let check = "-";
    if (c) {
      const lat = c.latency_ms ?? c.duration_ms ?? (typeof c.duration === "number" ? c.duration * 1000 : null);
      check = el("span", { title: `${c.checktype || "check"}: ${c.reason || ""}; state changed ${stamp(c.last_change)}` },
        badge(c.last_result || c.state), " ", c.checktype || "", " ", ago(c.last_check),
        lat !== null && lat !== undefined ? ` in ${Number(lat).toFixed(1)} ms` : "",
        c.reason && c.reason !== c.last_result ? el("span", { class: "muted" }, ` (${c.reason})`) : null);
    }
    // the two changes that make sense from here (HAProxy's stats page offers the same three)
    const offer = state === "drain" ? ["enable", "disable"] : state === "disabled" ? ["enable", "drain"]
      : ["drain", "disable"];
    const ops = el("span", { class: "ops operator-only" }, offer.map(a =>
      el("button", { type: "button", class: "op", "data-op": a,
                     title: `${a} ${name} of ${vkey}`,
                     on: { click: () => operate(`${a} ${name}`, `/reals/${urlVirtual(vkey)}/${encodeURIComponent(name)}/${a}`) } },
        a)));
    return el("tr", { class: "real", "data-real": name, "data-state": state },
      el("td", { "data-label": "real" }, el("strong", {}, name), r ? el("span", { class: "muted" }, " ", r.forward) : null),
      el("td", { "data-label": "state" }, badge(state, { class: "badge real-state " + tone(state) }),
        m && m.state !== "enabled" ? el("span", { class: "muted" }, ` by ${m.by || "?"} ${ago(m.since)}`) : null),
      el("td", { "data-label": "weight", class: "weight" }, r ? String(r.weight) : "-"),
      el("td", { "data-label": "active / inactive" }, r ? `${r.active} / ${r.inactive}` : "-"),
      el("td", { "data-label": "connections" }, r && r.stats ? num(r.stats.conns) : "-"),
      el("td", { "data-label": "req/s" }, num(last.rps)),
      el("td", { "data-label": "bytes/s" }, last.bps === null || last.bps === undefined ? "-" : bytes(last.bps) + "/s"),
      el("td", { "data-label": "last check" }, check),
      el("td", { "data-label": "req/s plot" }, plot(`${vkey}|${name}`, { width: 120, height: 24,
        label: `${name} requests per second`, series: [{ field: "rps", name: "requests/s", fmt: num }] })),
      el("td", { class: "ops-cell" }, ops));
  }

  // "TCP 198.18.0.100:80" -> "tcp:198.18.0.100:80" (config/names.py reads both; no space in a URL)
  function urlVirtual(key) {
    return encodeURIComponent(key.replace(/^(TCP|UDP|FWM)\s+/i, (_, p) => p.toLowerCase() + ":"));
  }

  // ------------------------------------------------------------------ events

  function eventKey(ev, id) {
    return `${ev.id ?? id ?? ""}|${ev.time}|${ev.kind}|${ev.text}`;
  }

  function addEvent(kind, data, id) {
    let ev;
    try { ev = JSON.parse(data); } catch (e) { ev = { text: data }; }
    if (!ev || typeof ev !== "object") ev = { text: String(ev) };
    ev.kind = ev.kind || kind || "message";
    const k = eventKey(ev, id);
    if (S.eventKeys.has(k)) return;
    S.eventKeys.add(k);
    S.events.push(ev);
    S.events.sort((a, b) => (a.time || 0) - (b.time || 0));
    while (S.events.length > MAX_EVENTS) {
      const old = S.events.shift();
      S.eventKeys.delete(eventKey(old));
    }
    renderEvents();
    refreshSoon();
  }

  function renderEvents() {
    const items = S.events.slice().reverse().map(ev => {
      const about = ["group", "node", "link", "virtual", "real"].filter(f => ev[f] && !(ev.text || "").includes(ev[f]))
        .map(f => `${f} ${ev[f]}`).join(", ");
      const level = ev.level === "error" || ev.level === "critical" || ev.level === "warning" ? "bad"
        : ev.level === "notice" ? "warn" : ev.level ? "ok" : tone(ev.text);
      return el("li", { class: "event " + level, "data-kind": ev.kind, "data-event": ev.event || null,
                        title: [ev.event, ev.director ? `reported by ${ev.director}` : null].filter(Boolean).join(", ") },
        el("time", { title: stamp(ev.time) }, clock(ev.time)), " ",
        el("span", { class: "kind" }, ev.kind), " ",
        el("span", { class: "text" }, ev.text || ""),
        about ? el("span", { class: "muted about" }, ` (${about})`) : null);
    });
    fill("events", items.length ? items : el("li", { class: "muted" }, "no events yet"));
  }

  let wakeStream = null;  // ends the wait before the stream is reopened (a new token)

  // read /api/v1/events as the HTML standard's event-stream format (no EventSource: see above)
  async function stream() {
    for (;;) {
      try {
        const r = await fetch(API + "/events", { headers: headers({ Accept: "text/event-stream" }),
                                                 cache: "no-store" });
        if (!r.ok || !r.body) throw new Error(`events: ${r.status}`);
        S.streamUp = true;
        render();
        const reader = r.body.getReader();
        const dec = new TextDecoder();
        let buf = "", kind = "", data = [], id = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let nl;
          while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + (buf.startsWith("\r\n", nl) ? 2 : 1));
            if (line === "") {
              if (data.length) addEvent(kind, data.join("\n"), id);
              kind = ""; data = []; id = "";
              continue;
            }
            if (line.startsWith(":")) continue;
            const c = line.indexOf(":");
            const field = c < 0 ? line : line.slice(0, c);
            let val = c < 0 ? "" : line.slice(c + 1);
            if (val.startsWith(" ")) val = val.slice(1);
            if (field === "event") kind = val;
            else if (field === "data") data.push(val);
            else if (field === "id") id = val;
          }
        }
      } catch (e) {
        // the node went away or refused: the periodic refresh says so; retry below
      }
      S.streamUp = false;
      render();
      await new Promise(res => { wakeStream = res; setTimeout(res, 2000); });
      wakeStream = null;
    }
  }

  // ------------------------------------------------------------------ start

  document.getElementById("token-form").addEventListener("submit", ev => {
    ev.preventDefault();
    const input = document.getElementById("token-input");
    S.token = input.value.trim();
    input.value = "";
    if (S.token) sessionStorage.setItem(TOKEN_KEY, S.token);
    else sessionStorage.removeItem(TOKEN_KEY);
    if (wakeStream) wakeStream();
    checkAuth().then(refresh);
  });
  document.getElementById("token-clear").addEventListener("click", () => {
    S.token = "";
    sessionStorage.removeItem(TOKEN_KEY);
    checkAuth().then(refresh);
  });

  renderEvents();
  checkAuth().then(refresh);
  setInterval(refresh, REFRESH_MS);
  setInterval(() => { if (!S.auth || S.failing) checkAuth(); }, 10000);
  stream();
})();
