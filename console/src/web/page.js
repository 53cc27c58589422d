// The fleet console's page: plain JavaScript over the REST API, no build step, no
// third-party code. Every view is drawn from the API's answers; nothing is cached.
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
};
let me = null; // {user, role, csrf}
let current = "fleet";
let openGateway = null;
let fleetRows = [];
let sortKey = "site";
let sortDir = 1;
let oldest = null;
let events = null;

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && me) headers["x-csrf-token"] = me.csrf;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  let data = null;
  const text = await r.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  return { status: r.status, data };
}

function toast(msg) {
  const t = $("#toast");
  t.textContent = msg;
  t.classList.remove("hidden");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.add("hidden"), 4000);
}

const when = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "—");
const ago = (ms) => {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 90 ? `${s} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
};
const num = (v, unit = "") => (v === null || v === undefined ? "—" : `${Math.round(v * 10) / 10}${unit}`);
const pct = (v) => (v === null || v === undefined ? "—" : `${Math.round(v * 1000) / 10} %`);
const uptime = (s) => (s === null || s === undefined ? "—" : s < 3600 ? `${Math.round(s / 60)} min` : s < 172800 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86400)} d`);
const pill = (state) => el("span", { class: `pill ${state}` }, state);

// ---- signing in ----
async function start() {
  const s = await api("GET", "/api/session");
  if (s.status === 200) return enter(s.data);
  const st = await api("GET", "/api/state");
  $(st.data && st.data.set_up ? "#login" : "#setup").classList.remove("hidden");
}

function enter(session) {
  me = session;
  $("#setup").classList.add("hidden");
  $("#login").classList.add("hidden");
  $("#nav").classList.remove("hidden");
  $("#who").textContent = `${me.user} (${me.role})`;
  document.querySelectorAll(".admin-only").forEach((e) => e.classList.toggle("hidden", me.role !== "admin"));
  show("fleet");
  setInterval(() => { if (current === "fleet") loadFleet(); if (current === "gateway" && openGateway) loadGateway(openGateway, true); }, 5000);
  listen();
}

$("#setup-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const r = await api("POST", "/api/setup", { code: $("#setup-code").value, password: $("#setup-password").value });
  if (r.status === 204) {
    $("#setup").classList.add("hidden");
    $("#login").classList.remove("hidden");
    $("#login-password").value = $("#setup-password").value;
  } else $("#setup-error").textContent = (r.data && r.data.error) || `error ${r.status}`;
});

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const r = await api("POST", "/api/login", { user: $("#login-user").value, password: $("#login-password").value });
  if (r.status === 200) enter(r.data);
  else $("#login-error").textContent = (r.data && r.data.error) || `error ${r.status}`;
});

$("#logout").addEventListener("click", async () => {
  await api("POST", "/api/logout");
  location.reload();
});

// ---- views ----
function show(view) {
  current = view;
  document.querySelectorAll(".view").forEach((v) => v.classList.add("hidden"));
  $(`#view-${view}`).classList.remove("hidden");
  document.querySelectorAll("#nav button").forEach((b) => b.classList.toggle("on", b.dataset.view === view));
  ({ fleet: loadFleet, alerts: loadAlerts, alarms: loadAlarms, rollouts: loadRollouts, audit: loadAudit, admin: loadAdmin, gateway: () => {} })[view]();
}
document.querySelectorAll("#nav button").forEach((b) => b.addEventListener("click", () => show(b.dataset.view)));
$("#back").addEventListener("click", () => { openGateway = null; show("fleet"); });

// ---- fleet ----
async function loadFleet() {
  const [g, s] = await Promise.all([api("GET", "/api/gateways"), api("GET", "/api/sites")]);
  if (g.status !== 200) return toast((g.data && g.data.error) || `fleet: error ${g.status}`);
  fleetRows = g.data;
  const sel = $("#f-site");
  const chosen = sel.value;
  sel.replaceChildren(el("option", { value: "" }, "every site"), ...(s.data || []).map((x) => el("option", { value: x.site }, x.site || "(no site)")));
  sel.value = chosen;
  $("#sites").replaceChildren(...(s.data || []).map((x) => el("span", {}, `${x.site || "(no site)"}: ${x.online}/${x.gateways} online${x.with_problems ? `, ${x.with_problems} with problems` : ""}  ·  `)));
  drawFleet();
}

function drawFleet() {
  const site = $("#f-site").value, state = $("#f-state").value, problem = $("#f-problem").value, text = $("#f-text").value.toLowerCase();
  const key = (g) => (sortKey === "last_seen" ? g.health_ms || g.status_ms || 0 : g[sortKey] ?? "");
  const rows = fleetRows
    .filter((g) => (!site || g.site === site) && (!state || g.state === state) && (!problem || g.problems.includes(problem)) && (!text || g.device.toLowerCase().includes(text) || g.tags.some((t) => t.includes(text))))
    .sort((a, b) => (key(a) > key(b) ? sortDir : key(a) < key(b) ? -sortDir : 0));
  $("#fleet-table tbody").replaceChildren(...rows.map((g) => el("tr", { class: "gw", "data-device": g.device, onclick: () => openGw(g.device) },
    el("td", {}, el("strong", {}, g.device), g.tags.length ? el("div", { class: "mute" }, g.tags.join(" · ")) : null), el("td", {}, pill(g.state)), el("td", { class: "wide" }, g.site),
    el("td", {}, g.cameras_total === null ? "—" : `${g.cameras_up}/${g.cameras_total}`),
    el("td", { class: "wide" }, ago(g.health_ms || g.status_ms)), el("td", { class: "wide" }, g.version || "—"),
    el("td", { class: "wide" }, uptime(g.uptime_s)), el("td", { class: "wide" }, num(g.inference_ms, " ms")),
    el("td", { class: "wide" }, num(g.outbox_pending)), el("td", { class: "wide" }, num(g.dead_letters)),
    el("td", { class: "wide" }, num(g.events_24h)), el("td", { class: "wide" }, pct(g.delivery_success_rate)),
    el("td", { class: "wide" }, num(g.delivery_latency_p95_ms, " ms")),
    el("td", {}, ...g.problems.map((p) => el("span", { class: "pill problem" }, p))))));
  $("#fleet-empty").textContent = rows.length ? "" : fleetRows.length ? "No gateway matches the filters." : "No gateway has reported yet. Add one under Admin, then start it.";
}
["#f-site", "#f-state", "#f-problem"].forEach((s) => $(s).addEventListener("change", drawFleet));
$("#f-text").addEventListener("input", drawFleet);
document.querySelectorAll("#fleet-table th[data-sort]").forEach((th) => th.addEventListener("click", () => {
  sortDir = sortKey === th.dataset.sort ? -sortDir : 1;
  sortKey = th.dataset.sort;
  drawFleet();
}));

// ---- one gateway ----
function openGw(device) {
  openGateway = device;
  $("#gw-push-result").textContent = "";
  $("#cmd-result").textContent = "";
  $("#snapshot-img").classList.add("hidden");
  show("gateway");
  loadGateway(device, false);
}

function chart(title, points, key, unit) {
  const vals = points.map((p) => p[key]).filter((v) => v !== null && v !== undefined);
  const box = el("div", { class: "chart" }, el("div", { class: "mute" }, `${title}: ${vals.length ? num(vals[vals.length - 1], unit) : "—"}`));
  if (vals.length < 2) { box.append(el("div", { class: "mute" }, "not enough history yet")); return box; }
  const t0 = points[0].at_ms, t1 = points[points.length - 1].at_ms || t0 + 1;
  const max = Math.max(...vals, 1), min = Math.min(...vals, 0);
  const d = points.filter((p) => p[key] !== null && p[key] !== undefined)
    .map((p) => `${(((p.at_ms - t0) / (t1 - t0 || 1)) * 300).toFixed(1)},${(55 - ((p[key] - min) / (max - min || 1)) * 50).toFixed(1)}`).join(" ");
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 300 60");
  svg.setAttribute("preserveAspectRatio", "none");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", d);
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#1f5fbf");
  line.setAttribute("stroke-width", "2");
  line.setAttribute("vector-effect", "non-scaling-stroke");
  svg.append(line);
  box.append(svg, el("div", { class: "mute" }, `max ${num(max, unit)}`));
  return box;
}

function alertCard(a) {
  const img = a.has_snapshot ? el("img", { src: `/api/alerts/${encodeURIComponent(a.alert_id)}/snapshot`, alt: `snapshot of ${a.camera || ""}`, loading: "lazy" }) : el("img", { alt: "no snapshot" });
  return el("div", { class: `alert sev-${a.severity || "none"}`, "data-alert": a.alert_id }, img,
    el("div", { class: "what" },
      el("div", {}, el("strong", {}, a.rule || a.kind), " · ", a.label || "", a.confidence ? ` ${Math.round(a.confidence * 100)} %` : ""),
      el("div", { class: "mute" }, `${when(a.at_ms)} · ${a.site} / ${a.device} / ${a.camera || "—"} · ${a.severity || ""} · ${a.kind}`)));
}

async function loadGateway(device, quiet) {
  const [g, h, a] = await Promise.all([
    api("GET", `/api/gateways/${encodeURIComponent(device)}`),
    api("GET", `/api/gateways/${encodeURIComponent(device)}/history?hours=24`),
    api("GET", `/api/alerts?device=${encodeURIComponent(device)}&limit=12`),
  ]);
  if (g.status !== 200) return toast((g.data && g.data.error) || `error ${g.status}`);
  if (openGateway !== device) return;
  const gw = g.data;
  $("#gw-title").replaceChildren(`${gw.device} `, pill(gw.state));
  $("#gw-summary").replaceChildren(el("p", { class: "mute" },
    `site ${gw.site || "—"} · version ${gw.version || "—"} · up ${uptime(gw.uptime_s)} · last seen ${ago(gw.health_ms || gw.status_ms)} · outbox ${num(gw.outbox_pending)} · dead letters ${num(gw.dead_letters)} · delivered ${pct(gw.delivery_success_rate)}`),
    el("div", {}, ...gw.problems.map((p) => el("span", { class: "pill problem" }, p))));
  const cams = (gw.health && gw.health.cameras) || [];
  $("#gw-cams").replaceChildren(...cams.map((c) => el("div", { class: "cam", "data-camera": c.name },
    el("div", {}, el("strong", {}, c.name), " ", el("span", { class: `pill ${c.state === "streaming" ? "online" : "offline"}` }, c.state)),
    el("div", { class: "mute" }, `${num(c.fps)} fps · ${num(c.frames_detected)} frames detected`),
    c.last_error ? el("div", { class: "error" }, c.last_error) : null)));
  const sel = $("#cmd-camera");
  const chosen = sel.value;
  sel.replaceChildren(...cams.map((c) => el("option", { value: c.name }, c.name)));
  if (chosen) sel.value = chosen;
  const pts = h.data || [];
  $("#gw-charts").replaceChildren(chart("Outbox depth", pts, "outbox_pending", ""), chart("Inference", pts, "inference_ms", " ms"), chart("Cameras up", pts, "cameras_up", ""), chart("Dead letters", pts, "dead_letters", ""));
  $("#gw-alerts").replaceChildren(...(a.data || []).map(alertCard));
  if (!(a.data || []).length) $("#gw-alerts").append(el("p", { class: "mute" }, "No alerts stored from this gateway."));
  $("#gw-version").textContent = gw.config_version ? `version ${gw.config_version}` : "";
  // Never overwrite what the user is editing.
  if (!quiet || document.activeElement !== $("#gw-config")) {
    if (!quiet || !$("#gw-config").dataset.dirty) $("#gw-config").value = gw.config_toml || "";
  }
}
$("#gw-config").addEventListener("input", () => { $("#gw-config").dataset.dirty = "1"; });

$("#gw-push").addEventListener("click", async () => {
  const out = $("#gw-push-result");
  out.className = "";
  out.textContent = "sending…";
  const r = await api("POST", `/api/gateways/${encodeURIComponent(openGateway)}/config`, { toml: $("#gw-config").value, wait_s: 15 });
  if (r.status !== 200) { out.className = "error"; out.textContent = (r.data && r.data.error) || `error ${r.status}`; return; }
  const q = r.data;
  if (q.outcome === "applied") {
    out.className = "okmsg";
    const v = q.result && q.result.applied && q.result.applied.version;
    out.textContent = `applied${v ? `, version ${v}` : ""}`;
    delete $("#gw-config").dataset.dirty;
  } else if (q.outcome === "refused") {
    out.className = "error";
    const errs = (q.result && q.result.errors) || [];
    out.textContent = `refused: ${(q.result && q.result.error) || ""}${errs.length ? "\n" + errs.join("\n") : ""}`;
  } else {
    out.className = "error";
    out.textContent = `no answer yet (${q.outcome}); see the audit log`;
  }
});

async function command(name, args) {
  const out = $("#cmd-result");
  out.className = "";
  out.textContent = `${name}: sending…`;
  const r = await api("POST", `/api/gateways/${encodeURIComponent(openGateway)}/commands/${name}`, { args, wait_s: 15 });
  if (r.status !== 200) { out.className = "error"; out.textContent = (r.data && r.data.error) || `error ${r.status}`; return null; }
  const q = r.data;
  out.className = q.outcome === "applied" ? "okmsg" : "error";
  out.textContent = `${name}: ${q.outcome}${q.result && q.result.error ? ` — ${q.result.error}` : ""}`;
  return q;
}
$("#cmd-snapshot").addEventListener("click", async () => {
  const q = await command("snapshot", { camera: $("#cmd-camera").value });
  const b64 = q && q.result && q.result.result && q.result.result.jpeg_base64;
  if (b64) { $("#snapshot-img").src = `data:image/jpeg;base64,${b64}`; $("#snapshot-img").classList.remove("hidden"); }
});
$("#cmd-restart").addEventListener("click", () => command("restart-camera", { camera: $("#cmd-camera").value }));
$("#cmd-replay").addEventListener("click", () => command("replay-dead-letters", {}));

// ---- alerts ----
function alertQuery(before) {
  const q = new URLSearchParams({ limit: "50" });
  for (const k of ["site", "device", "camera", "rule", "severity"]) { const v = $(`#a-${k}`).value.trim(); if (v) q.set(k, v); }
  if (before) q.set("before_ms", before);
  return q;
}
async function loadAlerts(more) {
  const r = await api("GET", `/api/alerts?${alertQuery(more ? oldest : null)}`);
  if (r.status !== 200) return toast((r.data && r.data.error) || `error ${r.status}`);
  const list = $("#alert-list");
  if (!more) list.replaceChildren();
  list.append(...r.data.map(alertCard));
  if (r.data.length) oldest = r.data[r.data.length - 1].at_ms;
  if (!list.children.length) list.append(el("p", { class: "mute" }, "No alerts match."));
}
["#a-site", "#a-device", "#a-camera", "#a-rule"].forEach((s) => $(s).addEventListener("change", () => loadAlerts(false)));
$("#a-severity").addEventListener("change", () => loadAlerts(false));
$("#alerts-more").addEventListener("click", () => loadAlerts(true));

function listen() {
  events = new EventSource("/api/alerts/stream");
  events.addEventListener("open", () => { $("#live-state").textContent = "· live"; });
  events.addEventListener("error", () => { $("#live-state").textContent = "· reconnecting"; });
  events.addEventListener("alert", (ev) => {
    const a = JSON.parse(ev.data);
    if (current !== "alerts") return;
    const q = alertQuery(null);
    for (const k of ["site", "device", "camera", "rule", "severity"]) if (q.get(k) && a[k] !== q.get(k)) return;
    $("#alert-list").prepend(alertCard(a));
  });
}

// ---- alarms, rollouts, audit ----
async function loadAlarms() {
  const r = await api("GET", "/api/alarms?limit=200");
  $("#alarm-table tbody").replaceChildren(...(r.data || []).map((a) => el("tr", {},
    el("td", {}, when(a.raised_ms)), el("td", {}, `${a.site} / ${a.device}`), el("td", {}, `${a.kind}${a.subject ? ` (${a.subject})` : ""}: ${a.detail}`),
    el("td", {}, a.resolved_ms ? el("span", { class: "pill online" }, `resolved ${when(a.resolved_ms)}`) : el("span", { class: "pill offline" }, "active")))));
}

async function loadRollouts() {
  const [r, g] = await Promise.all([api("GET", "/api/rollouts"), api("GET", "/api/sites")]);
  $("#r-site").replaceChildren(el("option", { value: "" }, "(use the list)"), ...(g.data || []).map((s) => el("option", { value: s.site }, s.site)));
  const rows = await Promise.all((r.data || []).slice(0, 20).map((x) => api("GET", `/api/rollouts/${x.id}`)));
  $("#rollout-table tbody").replaceChildren(...rows.filter((x) => x.status === 200).map(({ data: v }) => el("tr", { "data-rollout": v.id, onclick: () => rolloutDetail(v) },
    el("td", {}, when(v.created_ms)), el("td", {}, v.who), el("td", {}, v.target), el("td", {}, v.targeted),
    el("td", {}, v.applied), el("td", {}, v.failed), el("td", {}, v.no_answer + (v.waiting ? ` (+${v.waiting} waiting)` : "")))));
}
function rolloutDetail(v) {
  $("#rollout-detail").replaceChildren(el("h3", {}, `Rollout ${v.id}`), el("pre", {}, v.what),
    ...v.requests.map((q) => el("div", {}, el("strong", {}, q.device), ` ${q.outcome} `,
      q.result && (q.result.error || (q.result.errors || []).join("; ")) ? el("span", { class: "error" }, `${q.result.error || ""} ${(q.result.errors || []).join("; ")}`) : "")));
}
$("#rollout-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const site = $("#r-site").value, tag = $("#r-tag").value.trim(), devices = $("#r-devices").value.split(",").map((d) => d.trim()).filter(Boolean);
  const body = { merge: $("#r-merge").value, timeout_s: Number($("#r-timeout").value) || 60 };
  if ([site, tag, devices.length].filter(Boolean).length !== 1) return ($("#rollout-error").textContent = "choose one: a site, a tag or a list of gateways");
  if (site) body.site = site; else if (tag) body.tag = tag; else body.devices = devices;
  const r = await api("POST", "/api/rollouts", body);
  if (r.status !== 202) return ($("#rollout-error").textContent = (r.data && r.data.error) || `error ${r.status}`);
  $("#rollout-error").textContent = "";
  toast(`pushed to ${r.data.targeted} gateways`);
  setTimeout(loadRollouts, 1500);
  loadRollouts();
});

async function loadAudit() {
  const r = await api("GET", "/api/audit?limit=200");
  $("#audit-table tbody").replaceChildren(...(r.data || []).map((q) => el("tr", {},
    el("td", {}, when(q.sent_ms)), el("td", {}, q.who), el("td", {}, q.device), el("td", {}, el("div", {}, q.kind), el("pre", {}, q.what)),
    el("td", {}, q.outcome, q.result && q.result.error ? el("div", { class: "error" }, q.result.error) : ""))));
}

// ---- admin ----
async function loadAdmin() {
  const r = await api("GET", "/api/users");
  $("#users").replaceChildren(...(r.data || []).map((u) => el("li", {}, `${u.name} — ${u.role}`)));
}
$("#enrol-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const r = await api("POST", "/api/gateways", { device: $("#enrol-device").value.trim() });
  if (r.status !== 201) { $("#enrol-error").textContent = (r.data && r.data.error) || `error ${r.status}`; return; }
  $("#enrol-error").textContent = "";
  $("#enrol-config").textContent = r.data.config;
  $("#enrol-result").classList.remove("hidden");
});
$("#user-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const r = await api("POST", "/api/users", { name: $("#user-name").value.trim(), role: $("#user-role").value, password: $("#user-password").value });
  if (r.status !== 201) { $("#user-error").textContent = (r.data && r.data.error) || `error ${r.status}`; return; }
  $("#user-error").textContent = "";
  $("#user-password").value = "";
  toast("account added");
  loadAdmin();
});

start();
