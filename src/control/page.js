// The local page's script, served as /page.js so the page's CSP allows no inline script.
"use strict";
let csrf = null, events = null, zones = [], zoneCam = null, points = [];
// Lines: their config items, their live counts, and the editor's mode and "in" side.
let lines = [], lineCounts = [], drawMode = "zone", lineIn = "left-to-right", ruleItems = [];
// The zone or line being edited in the editor (null: drawing a new one).
let editingShape = null;
// Which rules use a zone (by name) or a line (`crosses`), in words for the lists.
const usedBy = (key, name) => { const r = ruleItems.filter((x) => x[key] === name).map((x) => x.name); return r.length ? `used by ${r.join(", ")}` : "used by no rule"; };
// The config version the items on screen were read at (ETag); every edit sends it back as
// If-Match, so an edit made from an old view is refused instead of undoing someone else's.
let configTag = null;
// Delete buttons clicked once, by "section/name", until when the second click counts.
const armed = {};
const $ = (id) => document.getElementById(id);
const show = (id, on) => $(id).classList.toggle("hidden", !on);
const el = (tag, { dataset, ...props } = {}, ...kids) => {
  const e = Object.assign(document.createElement(tag), props);
  Object.assign(e.dataset, dataset || {}); e.append(...kids); return e;
};
async function api(path, opts = {}) {
  const headers = Object.assign({ "Content-Type": "application/json" }, opts.headers || {});
  if (csrf && opts.method && opts.method !== "GET") headers["X-CSRF-Token"] = csrf;
  const r = await fetch(path, Object.assign({}, opts, { headers, credentials: "same-origin" }));
  const text = await r.text();
  let body = null; try { body = text ? JSON.parse(text) : null; } catch (_) { body = text; }
  return { status: r.status, body, etag: r.headers.get("ETag") };
}
const WORDS = { 401: "you are signed out; sign in again", 403: "not allowed (sign in again)", 404: "not found", 409: "that name is taken",
                412: "changed by someone else meanwhile", 413: "too large", 422: "not valid", 500: "the gateway failed; see its log" };
const errorOf = (r) => (r.body && r.body.error) || WORDS[r.status] || ("the gateway answered " + r.status);
const ifMatch = () => (configTag ? { "If-Match": configTag } : {});
const describeApplied = (a) => `applied, version ${a.version}` + (a.restart_needed.length ? ` (restart needed for: ${a.restart_needed.join(", ")})` : "");

// ---- the item editor (cameras, rules, sinks) ------------------------------------------
const SPECS = {
  // Placeholders are the config's real defaults; a select's default is its 4th entry and
  // stays unwritten unless the user picks a value.
  camera: [["name", "text"], ["url", "text", "rtsp://user:password@192.168.1.20/stream1"], ["detect_fps", "number", "5 (default)"],
           ["transport", "select", ["tcp", "udp", "auto"], "tcp"], ["keyframes_only", "checkbox", false], ["enabled", "checkbox", true]],
  rule: [["name", "text"], ["labels", "list", "person, forklift"], ["min_confidence", "number", "0.5 (default)"], ["zone", "zone"],
         ["cameras", "list", "all cameras"], ["dwell_seconds", "number", "0 (default)"], ["cooldown_seconds", "number", "60 (default)"],
         ["severity", "select", ["info", "low", "medium", "high", "critical"], "medium"], ["enabled", "checkbox", true]],
  sink: [["name", "text"], ["kind", "select", ["webhook", "mqtt", "slack", "pagerduty", "email"]], ["url", "text", "https://receiver.example/hook"],
         ["secret", "secret", "whsec_… (Standard Webhooks)"], ["topic", "text", "watchpost/{device}/alerts/{camera} (default)"],
         ["routing_key", "secret", "the service's integration key"], ["from", "text", "watchpost@site.example"],
         ["to", "list", "ops@site.example, oncall@site.example"], ["username", "text", ""], ["password", "secret", ""],
         ["enabled", "checkbox", true]],
};
const DEFAULTS = { camera: {}, rule: { labels: ["person"] }, sink: { kind: "webhook" } };
// A sink form shows only its kind's fields, with that kind's example URL.
const SINK_FIELDS = {
  webhook: ["url", "secret"], mqtt: ["url", "topic", "username", "password"], slack: ["url"],
  pagerduty: ["routing_key", "url"], email: ["url", "from", "to", "username", "password"],
};
const SINK_URL = { webhook: "https://receiver.example/hook", mqtt: "mqtts://broker.example:8883", slack: "https://hooks.slack.com/services/…",
                   pagerduty: "https://events.pagerduty.com/v2/enqueue (default)", email: "smtp://mail.example:587" };
const sinkKind = () => ($("edit-form").elements.kind || {}).value;
function showKindFields() {
  if (!editing || editing.section !== "sink") return;
  const kind = sinkKind(), want = SINK_FIELDS[kind] || [];
  for (const [key] of SPECS.sink) {
    if (["name", "kind", "enabled"].includes(key)) continue;
    const on = want.includes(key);
    $("edit-form").querySelector(`[data-field="${key}"]`).classList.toggle("hidden", !on);
    $(`err-${key}`).classList.toggle("hidden", !on);
  }
  $("edit-form").elements.url.placeholder = SINK_URL[kind] || "";
}
let editing = null;
function openEditor(section, item) {
  editing = { section, original: item, name: item ? item.name : null };
  $("edit-title").textContent = (item ? `Edit ${section} "${item.name}"` : `Add a ${section}`);
  const form = $("edit-form"); form.replaceChildren();
  const v = item || DEFAULTS[section];
  for (const [key, type, extra, fallback] of SPECS[section]) {
    let input;
    if (type === "select" || type === "zone") {
      const opts = type === "zone" ? ["", ...zones.map((z) => z.name)] : fallback ? ["", ...extra] : extra;
      const blank = type === "zone" ? "(whole frame)" : `(default: ${fallback})`;
      input = el("select", { name: key }, ...opts.map((o) => el("option", { value: o, textContent: o || blank })));
      input.value = v[key] == null ? (type === "zone" || fallback ? "" : extra[0]) : (typeof v[key] === "string" ? v[key] : "");
    } else if (type === "checkbox") {
      // Unset fields show the config's default (the third SPECS entry).
      input = el("input", { type: "checkbox", name: key, checked: v[key] == null ? extra : v[key] === true });
    } else {
      input = el("input", { name: key, type: type === "secret" ? "password" : "text", inputMode: type === "number" ? "decimal" : "text",
                            placeholder: extra || "", autocomplete: "off" });
      if (type === "list") input.value = (v[key] || []).join(", ");
      else if (type === "secret") input.placeholder = v[key] === "(set)" ? "(set) — leave empty to keep" : (extra || "");
      else if (v[key] != null) input.value = v[key];
    }
    let label = type === "checkbox" ? el("label", { className: "check", dataset: { field: key } }, input, key)
                                    : el("label", { dataset: { field: key } }, key, input);
    // A webhook secret made here on request (the browser's CSPRNG), shown once, in clear,
    // so it can be copied to the receiver before saving; never shown again after.
    if (section === "sink" && key === "secret") {
      const gen = el("button", { type: "button", textContent: "Generate", className: "gen-secret" });
      gen.onclick = () => {
        const bytes = crypto.getRandomValues(new Uint8Array(24));
        input.type = "text"; input.value = "whsec_" + btoa(String.fromCharCode(...bytes));
        input.select(); flash("new secret: copy it to the receiver now; after saving it shows only as (set)");
      };
      label.append(gen);
    }
    form.append(label, el("span", { className: "field-error", id: `err-${key}` }));
  }
  form.append(el("div", { className: "row-actions" }, el("button", { textContent: item ? "Save" : "Add", className: "submit" })), el("div", { id: "edit-result" }));
  if (section === "sink") { form.elements.kind.addEventListener("change", showKindFields); showKindFields(); }
  show("edit", true); show("zone-editor", false);
  $("edit").scrollIntoView({ behavior: "instant", block: "start" });
}
function formValue() {
  const { section, original } = editing;
  const out = Object.assign({}, original || {});
  for (const [key, type, extra] of SPECS[section]) {
    const input = $("edit-form").elements[key];
    // Another kind's field: not this sink's, left out (kept only if the kind did not change).
    if (input.closest(".hidden")) { if (!(original && original.kind === out.kind && key in original)) delete out[key]; continue; }
    const raw = type === "checkbox" ? input.checked : input.value.trim();
    // A checkbox left at its default is not written into the operator's file.
    if (type === "checkbox") { if (raw === extra && !(original && key in original)) delete out[key]; else out[key] = raw; }
    else if (type === "secret") { if (raw) out[key] = raw; else if (!(original && original[key] === "(set)")) delete out[key]; }
    else if (raw === "") delete out[key];
    else if (type === "number") out[key] = Number(raw);
    else if (type === "list") out[key] = raw.split(",").map((s) => s.trim()).filter(Boolean);
    else out[key] = raw;
  }
  return out;
}
function showProblems(r, resultEl) {
  document.querySelectorAll(".field-error").forEach((e) => { e.textContent = ""; });
  const unplaced = [];
  for (const p of (r.body && r.body.problems) || []) {
    const key = p.field.replace(/\[\d+\]/g, "").split(".").pop();
    const slot = $(`err-${key}`);
    // In words, beside the field; a problem elsewhere in the file names its item, never a line.
    if (slot && !slot.closest(".hidden")) slot.textContent = p.message; else unplaced.push(`${p.field ? p.field + ": " : ""}${p.message}`);
  }
  const now = r.status === 412 && r.body && r.body.current
    ? [el("div", { className: "muted", textContent: "now in the file: " + JSON.stringify(r.body.current) + " — your form is kept; Save applies it over this." })] : [];
  resultEl.replaceChildren(el("div", { className: "error", textContent: errorOf(r) }), ...now, ...unplaced.map((t) => el("div", { className: "error", textContent: t })));
}
$("edit-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  // Types checked here, in words beside the field, before anything is sent.
  document.querySelectorAll("#edit-form .field-error").forEach((e) => { e.textContent = ""; });
  let bad = false;
  for (const [key, type] of SPECS[editing.section]) {
    const v = $("edit-form").elements[key].value.trim();
    if (type === "number" && v !== "" && !Number.isFinite(Number(v))) { $(`err-${key}`).textContent = "must be a number"; bad = true; }
  }
  if (bad) return;
  const body = formValue();
  if (!body.name) { $("err-name").textContent = "a name is needed"; return; }
  // Adding creates (refused when the name is taken); editing replaces the item it opened.
  const r = editing.name
    ? await api(`/api/config/${editing.section}/${encodeURIComponent(editing.name)}${body.name !== editing.name ? "?rename=true" : ""}`,
                { method: "PUT", body: JSON.stringify(body), headers: ifMatch() })
    : await api(`/api/config/${editing.section}`, { method: "POST", body: JSON.stringify(body), headers: ifMatch() });
  if (r.status === 200) { show("edit", false); flash(describeApplied(r.body)); await reloadAll(); }
  else {
    showProblems(r, $("edit-result"));
    // A stale form may be saved again over the version it was just shown.
    if (r.status === 412 && r.body && r.body.version != null) configTag = `"${r.body.version}"`;
  }
});
$("edit-cancel").addEventListener("click", () => show("edit", false));
document.querySelectorAll("[data-add]").forEach((b) => b.addEventListener("click", () => openEditor(b.dataset.add, null)));
// What a change did, where the eye is (not at the bottom of the page), for a few seconds; the
// config section keeps the last one too.
let toastTimer = null;
function flash(text) {
  $("config-result").replaceChildren(el("span", { className: "ok", textContent: text }));
  const t = $("toast"); t.textContent = text; show("toast", true);
  clearTimeout(toastTimer); toastTimer = setTimeout(() => show("toast", false), 6000);
}

async function itemAction(section, item, action, button) {
  let r;
  if (action === "delete") {
    const key = `${section}/${item.name}`;
    // Armed for 10 s, kept across the cards' redraws (every 3 s).
    if (!(armed[key] > Date.now())) { armed[key] = Date.now() + 10000; button.textContent = "Really delete?"; return; }
    delete armed[key];
    r = await api(`/api/config/${section}/${encodeURIComponent(item.name)}`, { method: "DELETE", headers: ifMatch() });
  } else {
    const body = Object.assign({}, item, { enabled: item.enabled === false });
    r = await api(`/api/config/${section}/${encodeURIComponent(item.name)}`, { method: "PUT", body: JSON.stringify(body), headers: ifMatch() });
  }
  if (r.status === 200) { flash(describeApplied(r.body)); await reloadAll(); } else { button.after(el("span", { className: "error", textContent: " " + errorOf(r) })); }
}
function actions(section, item, extra = []) {
  const box = el("div", { className: "row-actions" }, ...extra);
  const edit = el("button", { type: "button", textContent: "Edit", onclick: () => openEditor(section, item) });
  const toggle = el("button", { type: "button", textContent: item.enabled === false ? "Enable" : "Disable", className: "toggle" });
  toggle.onclick = () => itemAction(section, item, "toggle", toggle);
  const del = el("button", { type: "button", textContent: armed[`${section}/${item.name}`] > Date.now() ? "Really delete?" : "Delete", className: "delete" });
  del.onclick = () => itemAction(section, item, "delete", del);
  if (section === "zone" || section === "line") edit.onclick = () => editShape(section, item);
  box.append(...(section === "zone" || section === "line" ? [edit, del] : [edit, toggle, del]));
  return box;
}
async function loadItems() {
  const [z, rules, sinks, cams, ln] = await Promise.all(["zone", "rule", "sink", "camera", "line"].map((s) => api(`/api/config/${s}`)));
  zones = z.status === 200 ? z.body : [];
  lines = ln.status === 200 ? ln.body : [];
  ruleItems = rules.status === 200 ? rules.body : [];
  drawLines();
  if (z.etag) configTag = z.etag;
  $("zones").replaceChildren(...zones.map((zn) => el("div", { className: "item", dataset: { zone: zn.name } },
    el("div", { className: "what" }, el("strong", { textContent: zn.name }), el("div", { className: "muted", textContent: `${(zn.cameras || ["all cameras"]).join(", ")} · ${zn.polygon.length} corners · ${usedBy("zone", zn.name)}`, dataset: { usedBy: zn.name } })),
    actions("zone", zn))));
  if (!zones.length) $("zones").replaceChildren(el("div", { className: "muted", textContent: "No zones yet: draw one on a camera's picture (Zone button)." }));
  $("rules").replaceChildren(...(rules.body || []).map((r) => el("div", { className: "item", dataset: { rule: r.name } },
    el("div", { className: "what" }, el("strong", { textContent: r.name + (r.enabled === false ? " (disabled)" : "") }),
      el("div", { className: "muted", textContent: `${(r.labels || []).join(", ")} ≥ ${r.min_confidence ?? 0.5} · ${typeof r.zone === "string" ? "zone " + r.zone : r.zone ? "own polygon" : "whole frame"} · ${(r.cameras || ["all cameras"]).join(", ")}` })),
    actions("rule", r, [el("button", { type: "button", textContent: "Dry run", className: "dry", onclick: () => openDryRun(r) })]))));
  $("sinks").replaceChildren(...(sinks.body || []).map((s) => {
    const answer = el("span", { className: "answer" });
    const test = el("button", { type: "button", textContent: "Send test alert", className: "test" });
    test.onclick = async () => {
      answer.textContent = " sending…"; answer.className = "answer";
      const r = await api(`/api/sinks/${encodeURIComponent(s.name)}/test`, { method: "POST" });
      if (r.status !== 200) { answer.textContent = " " + errorOf(r); answer.className = "answer error"; return; }
      const a = r.body;
      answer.textContent = ` ${a.delivered ? "delivered" : "not delivered"}${a.status ? " · HTTP " + a.status : ""}${a.error ? " · " + a.error : ""} · ${a.ms} ms`;
      answer.className = "answer " + (a.delivered ? "ok" : "error");
    };
    return el("div", { className: "item", dataset: { sink: s.name } },
      el("div", { className: "what" }, el("strong", { textContent: s.name + (s.enabled === false ? " (disabled)" : "") }),
        el("div", { className: "muted", textContent: `${s.kind} · ${s.url || s.topic || ""} · secret ${s.secret ? "set" : "not set"}` }), answer),
      actions("sink", s, s.enabled === false ? [] : [test]));
  }));
  const off = (cams.body || []).filter((c) => c.enabled === false);
  $("cameras-off").replaceChildren(...off.map((c) => el("div", { className: "item", dataset: { cameraOff: c.name } },
    el("div", { className: "what" }, el("strong", { textContent: c.name }), el("span", { className: "disabled", textContent: " disabled" })), actions("camera", c))));
  window.cameraItems = Object.fromEntries((cams.body || []).map((c) => [c.name, c]));
}

// ---- lines: their list with counts, an hourly chart ------------------------------------
const svgNs = "http://www.w3.org/2000/svg";
const svgEl = (tag, attrs) => { const e = document.createElementNS(svgNs, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); return e; };
const countsOf = (name) => lineCounts.find((c) => c.name === name);
const countText = (c) => (c ? `${c.in} in · ${c.out} out · ${c.occupancy} inside` : "no crossings yet");
// Today's hours as bars: "in" above the axis, "out" below.
function hourChart(c) {
  const svg = svgEl("svg", { viewBox: "0 0 240 40", width: "240", height: "40", class: "hours", role: "img", "aria-label": "crossings per hour today" });
  const midnight = new Date(); midnight.setHours(0, 0, 0, 0);
  const today = (c ? c.hours : []).filter((h) => Date.parse(h.start) >= midnight.getTime());
  const top = Math.max(1, ...today.map((h) => Math.max(h.in, h.out)));
  svg.append(svgEl("line", { x1: 0, y1: 20, x2: 240, y2: 20, stroke: "#999", "stroke-width": 0.5 }));
  for (const h of today) {
    const x = new Date(h.start).getHours() * 10 + 1;
    const up = (18 * h.in) / top, down = (18 * h.out) / top;
    const bar = (y, height, fill, text) => { const r = svgEl("rect", { x, y, width: 8, height, fill }); r.append(svgEl("title", {})); r.firstChild.textContent = text; svg.append(r); };
    bar(20 - up, up, "#2a7", `${new Date(h.start).getHours()}:00 · ${h.in} in`);
    bar(20, down, "#c43", `${new Date(h.start).getHours()}:00 · ${h.out} out`);
  }
  return svg;
}
function drawLines() {
  if (!lines.length) { $("lines").replaceChildren(el("div", { className: "muted", textContent: "No lines yet: draw one on a camera's picture (Zone button, then \"a line\")." })); return; }
  $("lines").replaceChildren(...lines.map((ln) => {
    const c = countsOf(ln.name);
    const reset = el("button", { type: "button", textContent: "Reset counts", className: "reset" });
    reset.onclick = async () => {
      const r = await api(`/api/lines/${encodeURIComponent(ln.name)}/reset`, { method: "POST" });
      if (r.status === 200) { flash(`line "${ln.name}" reset to zero`); refresh(); } else flash(errorOf(r));
    };
    return el("div", { className: "item", dataset: { line: ln.name } },
      el("div", { className: "what" }, el("strong", { textContent: ln.name }),
        el("div", { className: "muted", textContent: `${(ln.cameras || ["all cameras"]).join(", ")} · in = ${ln.in || "left-to-right"} · ${ln.points.length} points · ${usedBy("crosses", ln.name)}` }),
        el("div", { className: "counts", dataset: { counts: ln.name }, textContent: countText(c) + (c ? ` · today ${c.today_in} in, ${c.today_out} out` : "") }),
        hourChart(c)),
      actions("line", ln, [reset]));
  }));
}

// ---- the zone (and line) editor -------------------------------------------------------
// The "in" arrow of a line: across its first segment's middle, towards the side a track
// ends on when it crosses "in" (image coordinates: y grows downwards).
function inArrow(pts, inSide) {
  const [a, b] = pts, dx = b[0] - a[0], dy = b[1] - a[1], len = Math.hypot(dx, dy) || 1;
  const s = inSide === "right-to-left" ? -1 : 1, nx = (-dy / len) * s * 0.06, ny = (dx / len) * s * 0.06;
  const mx = (a[0] + b[0]) / 2, my = (a[1] + b[1]) / 2;
  return [[mx - nx, my - ny], [mx + nx, my + ny]];
}
function drawZone() {
  const svg = $("zone-svg"); svg.replaceChildren();
  const ns = svgNs;
  const poly = (pts, stroke, fill) => { const p = document.createElementNS(ns, "polygon"); p.setAttribute("points", pts.map((q) => q.join(",")).join(" "));
    p.setAttribute("fill", fill); p.setAttribute("stroke", stroke); p.setAttribute("stroke-width", "0.006"); p.setAttribute("vector-effect", "non-scaling-stroke"); svg.append(p); };
  const polyline = (pts, stroke, inSide) => {
    svg.append(svgEl("polyline", { points: pts.map((q) => q.join(",")).join(" "), fill: "none", stroke, "stroke-width": 3, "vector-effect": "non-scaling-stroke" }));
    if (pts.length < 2) return;
    const [[x1, y1], [x2, y2]] = inArrow(pts, inSide);
    svg.append(svgEl("line", { x1, y1, x2, y2, stroke, "stroke-width": 2, "vector-effect": "non-scaling-stroke", "marker-end": "url(#arrow)", class: "in-arrow" }));
  };
  const marker = svgEl("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 5, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" });
  marker.append(svgEl("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "context-stroke" }));
  const defs = svgEl("defs", {}); defs.append(marker); svg.append(defs);
  const other = (x) => !(editingShape && editingShape.name === x.name);
  for (const z of zones.filter((z) => (!z.cameras || z.cameras.includes(zoneCam)) && (drawMode !== "zone" || other(z)))) poly(z.polygon, "#888", "#8883");
  for (const l of lines.filter((l) => (!l.cameras || l.cameras.includes(zoneCam)) && (drawMode !== "line" || other(l)))) polyline(l.points, "#888", l.in);
  if (points.length && drawMode === "zone") poly(points, "#ff3b30", "#ff3b3033");
  if (points.length && drawMode === "line") polyline(points, "#ff3b30", lineIn);
  for (const [x, y] of points) { const c = document.createElementNS(ns, "circle"); c.setAttribute("cx", x); c.setAttribute("cy", y); c.setAttribute("r", "0.012"); c.setAttribute("fill", "#ff3b30"); svg.append(c); }
  $("zone-svg").dataset.points = points.length;
}
// An existing zone or line in the editor: its points shown (the preview) and movable, its
// name fixed, saved with PUT and the version it was read at.
function editShape(section, item) {
  const cam = (item.cameras && item.cameras[0]) || Object.keys(window.cameraItems || {})[0];
  if ($("zone-mode").value !== section) { $("zone-mode").value = section; $("zone-mode").dispatchEvent(new Event("change")); }
  openZoneEditor(cam);
  editingShape = { section, name: item.name, item };
  points = (section === "zone" ? item.polygon : item.points).map((p) => [...p]);
  if (section === "line") lineIn = item.in || "left-to-right";
  $("zone-name").value = item.name; $("zone-name").readOnly = true;
  drawZone();
}
function openZoneEditor(cam) {
  zoneCam = cam; points = []; editingShape = null; $("zone-name").readOnly = false;
  $("zone-camera").textContent = cam; $("zone-result").textContent = "";
  // Drawing needs the picture: until the camera has delivered a frame, say so and keep the
  // editor from saving.
  $("zone-save").disabled = true;
  $("zone-img").onload = () => { $("zone-save").disabled = false; $("zone-result").textContent = ""; };
  $("zone-img").onerror = () => {
    $("zone-save").disabled = true;
    $("zone-result").replaceChildren(el("span", { className: "error", dataset: { noPicture: cam }, textContent: `camera "${cam}" has no picture yet (it is not streaming); the editor works once it does` }));
  };
  $("zone-img").src = `/api/cameras/${encodeURIComponent(cam)}/snapshot?t=${Date.now()}`;
  show("zone-editor", true); show("edit", false); drawZone();
  $("zone-editor").scrollIntoView({ behavior: "instant", block: "start" });
}
const round3 = (v) => Math.round(Math.min(1, Math.max(0, v)) * 1000) / 1000;
const svgPoint = (e) => { const r = $("zone-svg").getBoundingClientRect(); return [round3((e.clientX - r.left) / r.width), round3((e.clientY - r.top) / r.height)]; };
// Corners are dragged: pressing near one moves it (and that press adds no point).
let dragging = null, dragged = false;
$("zone-svg").addEventListener("pointerdown", (e) => {
  // A click that follows a drag may never come (its target was redrawn): every press starts
  // afresh.
  dragged = false;
  const [x, y] = svgPoint(e);
  const i = points.findIndex(([px, py]) => Math.hypot(px - x, py - y) < 0.03);
  if (i >= 0) { dragging = i; dragged = false; $("zone-svg").setPointerCapture(e.pointerId); }
});
$("zone-svg").addEventListener("pointermove", (e) => {
  if (dragging == null) return;
  points[dragging] = svgPoint(e); dragged = true; drawZone();
});
$("zone-svg").addEventListener("pointerup", () => { dragging = null; });
$("zone-svg").addEventListener("click", (e) => {
  if (dragged) { dragged = false; return; }
  const [x, y] = svgPoint(e);
  // A tap on a corner (no drag) does not add a second one there.
  if (points.some(([px, py]) => Math.hypot(px - x, py - y) < 0.03)) return;
  points.push([x, y]);
  drawZone();
});
$("zone-mode").addEventListener("change", () => {
  drawMode = $("zone-mode").value; const line = drawMode === "line";
  $("zone-mode-title").textContent = line ? "Line" : "Zone";
  $("zone-name-label").textContent = line ? "Line name" : "Zone name";
  $("zone-save").textContent = line ? "Save line" : "Save zone";
  $("zone-help").textContent = line
    ? "Tap two or more points across the path; the arrow shows which way counts as \"in\" (flip it if needed)."
    : "Tap the picture to add corners; the zone is the polygon they make. Other zones and lines of this camera show in grey.";
  show("line-flip", line); $("zone-result").textContent = ""; drawZone();
});
$("line-flip").addEventListener("click", () => { lineIn = lineIn === "left-to-right" ? "right-to-left" : "left-to-right"; drawZone(); });
$("zone-undo").addEventListener("click", () => { points.pop(); drawZone(); });
$("zone-clear").addEventListener("click", () => { points = []; drawZone(); });
$("zone-cancel").addEventListener("click", () => show("zone-editor", false));
$("zone-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = $("zone-name").value.trim();
  // An edit keeps every other field of the item and replaces only its points (and "in").
  const save = (section, fields) => editingShape
    ? api(`/api/config/${section}/${encodeURIComponent(editingShape.name)}`, { method: "PUT", body: JSON.stringify({ ...editingShape.item, ...fields }), headers: ifMatch() })
    : api(`/api/config/${section}`, { method: "POST", body: JSON.stringify({ name, cameras: [zoneCam], ...fields }), headers: ifMatch() });
  if (drawMode === "line") {
    if (points.length < 2) { $("zone-result").replaceChildren(el("span", { className: "error", textContent: "a line needs at least 2 points" })); return; }
    const r = await save("line", { points, in: lineIn });
    if (r.status === 200) { $("zone-result").replaceChildren(el("span", { className: "ok", textContent: `line "${name}" saved · ` + describeApplied(r.body) })); points = []; editingShape = null; $("zone-name").readOnly = false; await loadItems(); drawZone(); }
    else showProblems(r, $("zone-result"));
    return;
  }
  if (points.length < 3) { $("zone-result").replaceChildren(el("span", { className: "error", textContent: "a zone needs at least 3 corners" })); return; }
  // A new zone: refused (409) when the name is taken, never moved from another camera.
  const r = await save("zone", { polygon: points });
  if (r.status === 200) { $("zone-result").replaceChildren(el("span", { className: "ok", textContent: `zone "${name}" saved · ` + describeApplied(r.body) })); points = []; editingShape = null; $("zone-name").readOnly = false; await loadItems(); drawZone(); }
  else showProblems(r, $("zone-result"));
});

// ---- the dashboard ------------------------------------------------------------------------
function alertRow(a) {
  const d = (a.body && a.body.data) || a.data || {};
  const tr = el("tr"); tr.dataset.alertId = d.alert_id || a.alert_id; tr.dataset.rule = d.rule || a.rule || "";
  const when = new Date(a.created_at || Date.parse(a.timestamp || (a.body && a.body.timestamp)));
  const stamp = `${when.toLocaleDateString(undefined, { month: "short", day: "numeric" })} ${when.toLocaleTimeString()}`;
  // Label and confidence under the rule, so a phone shows them too.
  const report = (a.body && a.body.type) === "count.report" || a.type === "count.report";
  const what = report ? `count report: ${d.in} in · ${d.out} out · ${d.occupancy} inside`
    : `${d.label || ""}${d.confidence != null ? " " + d.confidence.toFixed(2) : ""}${d.line ? ` · line ${d.line.name}${d.line.direction ? " " + d.line.direction : ""}` : ""}`;
  tr.append(el("td", { textContent: stamp }), el("td", { textContent: d.severity || a.severity || "", className: "sev" }),
            el("td", { textContent: d.camera || a.camera || "" }),
            el("td", {}, el("div", { textContent: d.rule || a.rule || "" }), el("div", { className: "muted", textContent: what })));
  const pic = el("td", { className: "thumb" });
  if (d.snapshot) pic.append(el("img", { src: `/api/snapshots/${encodeURIComponent(d.snapshot)}`, alt: "snapshot", loading: "lazy" }));
  tr.append(pic);
  // The row (thumbnail included) opens the alert's detail: the picture large, the payload,
  // and what became of it at each sink.
  tr.onclick = () => openAlert(tr.dataset.alertId);
  return tr;
}

// ---- the rule dry-run -----------------------------------------------------------------
let dryTimer = null;
function openDryRun(rule) {
  $("dry-rule").textContent = rule.name;
  const cams = rule.cameras || Object.keys(window.cameraItems || {});
  $("dry-camera").replaceChildren(...cams.map((c) => el("option", { value: c, textContent: c })));
  show("dry-run", true);
  $("dry-run").scrollIntoView({ behavior: "instant", block: "start" });
  clearInterval(dryTimer);
  const tick = async () => {
    if ($("dry-run").classList.contains("hidden")) { clearInterval(dryTimer); return; }
    const cam = $("dry-camera").value;
    const r = await api(`/api/rules/${encodeURIComponent(rule.name)}/dry-run?camera=${encodeURIComponent(cam)}`);
    if (r.status !== 200) { $("dry-verdict").replaceChildren(el("span", { className: "error", textContent: errorOf(r) })); $("dry-tracks").replaceChildren(); return; }
    const x = r.body, mark = (ok) => (ok ? "✓" : "✗");
    $("dry-verdict").replaceChildren(el("strong", { className: x.would_fire ? "ok" : "", dataset: { wouldFire: String(x.would_fire) }, textContent: x.would_fire ? "Would fire now: " : "Would not fire: " }),
      el("span", { textContent: x.why }),
      el("span", { className: "muted", textContent: ` · schedule ${x.scheduled ? "open" : "closed"} · cooldown ${x.cooldown_left_s.toFixed(0)} s left · ${x.qualifying}/${x.min_count} tracks` + (x.occupancy != null ? ` · occupancy ${x.occupancy}` : "") }));
    $("dry-tracks").replaceChildren(...x.tracks.map((t) => el("tr", { dataset: { track: t.track_id, label: t.label, qualifies: String(t.qualifies), inZone: String(t.in_zone), dwellOk: String(t.dwell_ok) } },
      el("td", { textContent: `${t.track_id}${t.confirmed ? "" : " (new)"}` }), el("td", { textContent: `${mark(t.label_ok)} ${t.label}` }),
      el("td", { textContent: `${mark(t.confidence_ok)} ${t.confidence.toFixed(2)}` }), el("td", { textContent: mark(t.area_ok) }),
      el("td", { textContent: t.in_zone == null ? "whole frame" : t.in_zone ? "✓ inside" : "✗ outside" }),
      el("td", { textContent: `${mark(t.dwell_ok)} ${t.dwell_s == null ? "–" : t.dwell_s.toFixed(1) + " s"}` }),
      el("td", { textContent: t.fired_already ? "yes" : "no" }), el("td", { textContent: t.qualifies ? "✓ yes" : "✗ no" }))));
    if (!x.tracks.length) $("dry-tracks").replaceChildren(el("tr", {}, el("td", { colSpan: 8, className: "muted", textContent: "no track on this camera right now" })));
  };
  tick(); dryTimer = setInterval(tick, 1000);
}
$("dry-camera").addEventListener("change", () => { $("dry-tracks").replaceChildren(); });
$("dry-close").addEventListener("click", () => { show("dry-run", false); clearInterval(dryTimer); });

// ---- camera cards: the live picture with what the detector sees ------------------------
const ago = (s) => (s == null ? "–" : s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`);
// The picture with the camera's zones (grey), lines (blue, "in" arrow) and the current
// detections' boxes (green, with label and confidence) drawn over it.
function overlaid(img, c) {
  const svg = svgEl("svg", { viewBox: "0 0 1 1", preserveAspectRatio: "none", class: "overlay", "data-overlay": c.name });
  const mine = (x) => !x.cameras || x.cameras.includes(c.name);
  for (const z of zones.filter(mine))
    svg.append(svgEl("polygon", { points: z.polygon.map((q) => q.join(",")).join(" "), fill: "#8883", stroke: "#ccc", "stroke-width": 1.5, "vector-effect": "non-scaling-stroke" }));
  for (const l of lines.filter(mine)) {
    svg.append(svgEl("polyline", { points: l.points.map((q) => q.join(",")).join(" "), fill: "none", stroke: "#39f", "stroke-width": 2.5, "vector-effect": "non-scaling-stroke" }));
    const [[x1, y1], [x2, y2]] = inArrow(l.points, l.in);
    svg.append(svgEl("line", { x1, y1, x2, y2, stroke: "#39f", "stroke-width": 2, "vector-effect": "non-scaling-stroke" }));
  }
  for (const o of c.objects || []) {
    const [x1, y1, x2, y2] = o.box;
    const r = svgEl("rect", { x: x1, y: y1, width: x2 - x1, height: y2 - y1, fill: "none", stroke: "#2d2", "stroke-width": 2, "vector-effect": "non-scaling-stroke", class: "det" });
    const t = svgEl("title", {}); t.textContent = `${o.label} ${o.confidence.toFixed(2)} (track ${o.track_id})`; r.append(t); svg.append(r);
    const label = svgEl("text", { x: x1, y: Math.max(0.04, y1 - 0.01), "font-size": 0.045, fill: "#2d2" }); label.textContent = `${o.label} ${o.confidence.toFixed(2)}`; svg.append(label);
  }
  return el("div", { className: "stage" }, img, svg);
}

// ---- one alert: its picture, payload and delivery chain -------------------------------
const when = (t) => (t ? new Date(t).toLocaleString() : "–");
let shownAlert = null;
async function openAlert(id) {
  if (shownAlert !== id) $("alert-replay-result").textContent = "";
  shownAlert = id;
  const r = await api(`/api/alerts/${encodeURIComponent(id)}`);
  if (r.status !== 200) { flash(errorOf(r)); return; }
  const a = r.body, d = (a.body && a.body.data) || {};
  $("alert-title").textContent = `${a.rule} on ${a.camera} · ${a.severity}`;
  const pic = $("alert-picture");
  if (d.snapshot) { pic.src = `/api/snapshots/${encodeURIComponent(d.snapshot)}`; show("alert-picture", true); } else show("alert-picture", false);
  $("alert-payload").textContent = JSON.stringify(a.body, null, 2);
  const chain = [el("li", { dataset: { step: "committed" }, textContent: `committed ${when(a.created_at)} (alert ${a.alert_id})` })];
  for (const row of a.deliveries) {
    const attempts = el("ul", {}, ...row.attempts.map((t) => el("li", { dataset: { attempt: row.sink },
      textContent: `${when(t.at)} · ${t.status ? "HTTP " + t.status : "no answer"} · ${t.latency_ms} ms${t.error ? " · " + t.error : ""}` })));
    const fate = row.state === "delivered" ? `delivered ${when(row.delivered_at)}`
      : row.state === "dead" ? `dead: ${row.last_error || "gave up"}` : `pending, next attempt ${when(row.next_attempt_at)}`;
    const li = el("li", { dataset: { chainSink: row.sink, state: row.state } },
      el("strong", { textContent: `${row.sink}: ` }), el("span", { className: row.state === "dead" ? "error" : row.state === "delivered" ? "ok" : "", textContent: fate }), attempts);
    if (row.state === "dead") {
      li.append(el("button", { type: "button", textContent: "Replay", className: "replay-one", onclick: async () => {
        const rr = await api(`/api/dead-letters/${row.id}/replay`, { method: "POST" });
        $("alert-replay-result").replaceChildren(el("span", { className: rr.status === 200 ? "ok" : "error", textContent: rr.status === 200 ? `replayed · ${rr.body.warnings.join(" ") || "queued again"}` : errorOf(rr) }));
        openAlert(id); refresh();
      } }));
    }
    chain.push(li);
  }
  if (!a.deliveries.length) chain.push(el("li", { className: "muted", textContent: "no sink took this alert (routing sent it nowhere)" }));
  $("alert-chain").replaceChildren(...chain);
  show("alert-detail", true);
  $("alert-detail").scrollIntoView({ behavior: "instant", block: "start" });
}
$("alert-close").addEventListener("click", () => show("alert-detail", false));
async function refresh() {
  const [cams, health, dead, counted] = await Promise.all([api("/api/cameras"), api("/api/health"), api("/api/dead-letters"), api("/api/lines")]);
  if (cams.status === 401) return start();
  if (counted.status === 200) { lineCounts = counted.body; drawLines(); }
  const box = $("cameras");
  const shown = new Map([...box.querySelectorAll(".cam")].map((d) => [d.dataset.camera, d.querySelector("img")]));
  box.replaceChildren();
  for (const c of cams.body || []) {
    const div = el("div", { className: "cam", dataset: { camera: c.name } });
    const img = el("img", { alt: c.name });
    // The last picture stays up (from the browser's cache) until the next one has loaded:
    // no grey flash on every refresh.
    const prev = shown.get(c.name);
    if (prev && prev.complete && prev.naturalWidth > 0) img.src = prev.src;
    if (c.state === "streaming") {
      const next = new Image();
      next.onload = () => { img.src = next.src; };
      next.src = `/api/cameras/${encodeURIComponent(c.name)}/snapshot?t=${Date.now()}`;
    }
    // The state with its age, and "stale picture" when frames stopped reaching the detector.
    const stale = c.state === "streaming" && c.last_detection_s != null && c.last_detection_s > 5;
    const stateText = stale ? `stale picture (no detection for ${ago(c.last_detection_s)})` : `${c.state} for ${ago(c.state_for_s)}`;
    const title = el("div", {}, el("strong", { textContent: c.name + " " }), el("span", { className: "state " + (stale ? "stale" : c.state), dataset: { cameraState: c.name }, textContent: stateText }));
    const info = el("div", { className: "muted", dataset: { cameraInfo: c.name }, textContent:
      `${c.detect_fps != null ? c.detect_fps.toFixed(1) : "–"} detections/s · ${c.inference_ms != null ? c.inference_ms.toFixed(0) + " ms" : "–"} inference · ${c.frames_gated} gated · ` +
      `${c.alerts_24h} alerts in 24 h${c.last_alert_at ? " (last " + new Date(c.last_alert_at).toLocaleTimeString() + ")" : ""}` + (c.last_error ? ` · ${c.last_error}` : "") });
    const item = (window.cameraItems || {})[c.name];
    const zoneBtn = el("button", { type: "button", textContent: "Zone", className: "zone", onclick: () => openZoneEditor(c.name) });
    const picture = img.src || c.state === "streaming" ? overlaid(img, c) : el("div", { className: "nopic", textContent: "no picture yet" });
    // The live counts of every line drawn on this camera.
    const counts = lines.filter((l) => !l.cameras || l.cameras.includes(c.name))
      .map((l) => el("div", { className: "muted counts", dataset: { lineCounts: l.name }, textContent: `line ${l.name}: ${countText(countsOf(l.name))}` }));
    div.append(picture, title, info, ...counts, item ? actions("camera", item, [zoneBtn]) : el("div", {}, zoneBtn)); box.append(div);
  }
  if (health.status === 200) {
    const h = health.body, n = $("numbers"); n.replaceChildren();
    const rate = h.delivery_success_rate == null ? "–" : (100 * h.delivery_success_rate).toFixed(1) + " %";
    for (const [k, v] of [["events 24 h", h.events_24h], ["delivered", rate], ["dead letters", h.dead_letters],
                          ["latency p95", h.delivery_latency_p95_ms == null ? "–" : h.delivery_latency_p95_ms + " ms"],
                          ["silent", h.anomalies.map((a) => a.name).join(", ") || "none"]]) {
      n.append(el("span", { textContent: `${k}: ${v}`, dataset: { k } }));
    }
    // Each sink on its own line: which one is failing, and why.
    for (const k of h.delivery) {
      const rate = k.delivery_success_rate == null ? "no attempts in 24 h" : (100 * k.delivery_success_rate).toFixed(1) + " % delivered";
      const last = k.last_error ? ` · last error: ${k.last_error}` : k.last_success_at ? ` · last success ${new Date(k.last_success_at).toLocaleString()}` : "";
      n.append(el("span", { textContent: `sink ${k.sink}: ${k.pending} pending · ${k.dead} dead · ${rate}${last}`,
                            className: k.last_error ? "error" : "", dataset: { k: "sink", sink: k.sink } }));
    }
    // What stops alerts from being kept or sent, in words: the outbox and each sink's worker.
    const problems = [];
    if (h.outbox.commit_failing) problems.push(`outbox cannot commit: ${h.outbox.error || "unknown error"} (${h.alerts_uncommitted} alerts waiting)`);
    if (h.outbox.fatal) problems.push(`outbox damaged: ${h.outbox.fatal}`);
    if (h.alerts_dropped_uncommitted) problems.push(`${h.alerts_dropped_uncommitted} alerts dropped while the outbox could not commit`);
    for (const note of h.outbox.notices) problems.push(note);
    for (const s of h.sinks) if (s.state !== "running") problems.push(`sink ${s.sink} ${s.state}: ${s.error || ""}`);
    for (const text of problems) n.append(el("span", { textContent: text, className: "error", dataset: { k: "problem" } }));
  }
  if (dead.status === 200) {
    $("dead").replaceChildren(...dead.body.map((d) => el("tr", { dataset: { alertId: d.alert_id, row: d.id } },
      el("td", { textContent: new Date(d.created_at).toLocaleString() }),
      ...[d.sink, d.camera, d.rule].map((t) => el("td", { textContent: t })), el("td", { className: "wide", textContent: d.attempts }),
      el("td", { textContent: d.last_error || "" }),
      el("td", {}, el("button", { type: "button", textContent: "Replay", className: "replay-one", onclick: () => replayOne(d.id) })))));
  }
}
async function loadConfig() {
  const c = await api("/api/config");
  if (c.status === 200) { $("config-text").value = c.body.toml; $("config-version").textContent = `version ${c.body.version}`; }
}
async function reloadAll() { await loadItems(); await Promise.all([refresh(), loadConfig()]); }
$("config-save").addEventListener("click", async () => {
  const r = await api("/api/config", { method: "PUT", body: JSON.stringify({ toml: $("config-text").value }) });
  if (r.status === 200) { await reloadAll(); flash(describeApplied(r.body)); } else showProblems(r, $("config-result"));
});
$("config-rollback").addEventListener("click", async () => {
  const r = await api("/api/config/rollback", { method: "POST" });
  if (r.status === 200) { await reloadAll(); flash(describeApplied(r.body)); } else showProblems(r, $("config-result"));
});
// ---- the alert list: filters and paging (the API's own parameters) --------------------
let oldestSeq = null;
function alertQuery(before) {
  const q = new URLSearchParams({ limit: "50" });
  for (const k of ["camera", "rule", "label", "severity"]) { const v = $(`af-${k}`).value.trim(); if (v) q.set(k, v); }
  for (const k of ["since", "until"]) { const v = $(`af-${k}`).value; if (v) q.set(k, new Date(v).toISOString()); }
  if (before) q.set("before", String(before));
  return q.toString();
}
const filtering = () => ["camera", "rule", "label", "severity", "since", "until"].some((k) => $(`af-${k}`).value);
async function loadAlerts(more) {
  const r = await api(`/api/alerts?${alertQuery(more ? oldestSeq : null)}`);
  if (r.status !== 200) { $("af-result").replaceChildren(el("span", { className: "error", textContent: errorOf(r) })); return; }
  const rows = r.body.map(alertRow);
  if (more) $("alerts").append(...rows); else $("alerts").replaceChildren(...rows);
  if (r.body.length) oldestSeq = r.body[r.body.length - 1].seq;
  $("af-result").textContent = r.body.length < 50 ? (more || r.body.length ? "that is all" : "no alert matches") : "";
  show("af-older", r.body.length === 50);
}
$("alert-filter").addEventListener("submit", (e) => { e.preventDefault(); loadAlerts(false); });
$("alert-filter").addEventListener("reset", () => setTimeout(() => loadAlerts(false), 0));
$("af-older").addEventListener("click", () => loadAlerts(true));

async function dashboard() {
  show("setup", false); show("login", false); show("dashboard", true); show("logout", true); show("nav", true);
  await loadAlerts(false);
  const tbody = $("alerts");
  if (!events) {
    events = new EventSource("/api/events");
    events.addEventListener("alert", (e) => {
      const a = JSON.parse(e.data);
      // Live rows only while the list is unfiltered (a filtered list is a search result).
      if (a.type === "alert.fired" && !filtering()) tbody.prepend(alertRow(a));
    });
  }
  await reloadAll();
}
async function start() {
  const s = await api("/api/session");
  if (s.status === 200 && s.body.csrf) { csrf = s.body.csrf; return dashboard(); }
  const setUp = s.body && s.body.set_up;
  show("dashboard", false); show("logout", false); show("nav", false); show("setup", !setUp); show("login", !!setUp);
}
$("setup-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await api("/api/setup", { method: "POST", body: JSON.stringify({ code: $("setup-code").value, password: $("setup-password").value }) });
  if (r.status === 204) { $("setup-error").textContent = ""; start(); } else { $("setup-error").textContent = errorOf(r); }
});
$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await api("/api/login", { method: "POST", body: JSON.stringify({ password: $("login-password").value }) });
  if (r.status === 200) { csrf = r.body.csrf; $("login-error").textContent = ""; dashboard(); } else { $("login-error").textContent = errorOf(r); }
});
$("logout").addEventListener("click", async () => { await api("/api/logout", { method: "POST" }); csrf = null; if (events) { events.close(); events = null; } start(); });
// A replay into a sink that still fails says so: the rows would only die again.
function replayed(r) {
  const box = $("replay-result");
  if (r.status !== 200) { box.replaceChildren(el("span", { className: "error", textContent: errorOf(r) })); return; }
  box.replaceChildren(el("span", { className: "ok", textContent: `replayed ${r.body.replayed}` }),
                      ...r.body.warnings.map((w) => el("div", { className: "error", textContent: w })));
}
$("replay").addEventListener("click", async () => { replayed(await api("/api/dead-letters/replay", { method: "POST" })); refresh(); });
async function replayOne(id) { replayed(await api(`/api/dead-letters/${id}/replay`, { method: "POST" })); refresh(); }
setInterval(() => { if (csrf && document.visibilityState === "visible") refresh(); }, 3000);
start();
