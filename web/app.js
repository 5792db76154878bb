// The dashboard: resources from the daemon's watch stream, grouped by label, with Logs,
// Alerts and Facets per resource. It only reads the API and acts through POSTs; no polling.

import { action, getJSON, stream } from "./api.js";
import { LogView } from "./logview.js";
import { renderAlerts, renderFacets } from "./panels.js";
import { snapshot } from "./snapshot.js";
import { ago, buildNumber, byName, clockTime, duration, el, statusOf } from "./util.js";

const TABS = ["logs", "alerts", "facets"];
const UNLABELED = "unlabeled";

// The kinds whose objects belong to a resource (spec.resource), from GET /api/v1/kinds (the
// registry in devloop/model/kinds.py): a change to any of them redraws the resource's facets,
// so a new kind needs no change here. Until it answers (and in a snapshot), these.
let ownedKinds = ["build", "pod", "portforward", "alert", "liveupdate", "container"];

// The client's copy of the store, kept current by the watch stream.
class State {
  constructor() { this.objects = new Map(); this.version = 0; }
  kinds(kind) {
    if (!this.objects.has(kind)) this.objects.set(kind, new Map());
    return this.objects.get(kind);
  }
  apply(event) {
    const object = event.object || {};
    const name = (object.metadata || {}).name;
    if (!object.kind || !name) return;
    if (event.type === "DELETED") this.kinds(object.kind).delete(name);
    else this.kinds(object.kind).set(name, object);
    this.version = Math.max(this.version, Number(object.metadata.resourceVersion) || 0);
  }
}

const state = new State();
const $ = (id) => document.getElementById(id);
const logView = new LogView($("panel-logs"));
const panelCache = {};
let route = { resource: "", tab: "logs" };
let dirtyKinds = new Set();
let frame = 0;

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "r" && parts[1]) {
    return { resource: parts[1], tab: TABS.includes(parts[2]) ? parts[2] : "logs" };
  }
  return { resource: "", tab: parts[0] === "all" && parts[1] === "alerts" ? "alerts" : "logs" };
}

function hrefFor(resource, tab) {
  return resource ? `#/r/${encodeURIComponent(resource)}/${tab}` : (tab === "alerts" ? "#/all/alerts" : "#/all");
}

function toast(message) {
  const note = el("div", { class: "toast", role: "alert" }, message);
  document.body.append(note);
  setTimeout(() => note.remove(), 6000);
}

async function act(name, body, button) {
  if (button) button.disabled = true;
  try { await action(name, body); } catch (error) { toast(error.message); } finally {
    if (button) button.disabled = false;
  }
}

// -- resource list

// "Now" is when the snapshot was taken when showing one, so ages read as they did then.
const now = () => (snapshot ? snapshot.createdAt : Date.now() / 1000);

// What the rows need of other kinds, gathered once per sidebar render: each row searching
// every build and forward would make a render quadratic in resources (300 resources with
// a build each: 90,000 looks and 300 sorts).
function rowContext() {
  const latestBuilds = new Map();
  for (const build of state.kinds("build").values()) {
    const owner = (build.spec || {}).resource;
    const newest = latestBuilds.get(owner);
    if (!newest || buildNumber(build.metadata.name) > buildNumber(newest.metadata.name)) {
      latestBuilds.set(owner, build);
    }
  }
  const forwardURLs = new Map();
  for (const forward of state.kinds("portforward").values()) {
    const owner = (forward.spec || {}).resource;
    const url = (forward.status || {}).url;
    if (!url) continue;
    if (!forwardURLs.has(owner)) forwardURLs.set(owner, []);
    forwardURLs.get(owner).push(url);
  }
  return { latestBuilds, forwardURLs };
}

function resourceRow(resource, context) {
  const name = resource.metadata.name;
  const spec = resource.spec || {};
  const status = resource.status || {};
  const shown = statusOf(resource);
  const build = context.latestBuilds.get(name);
  const buildStatus = (build && build.status) || {};
  const finished = buildStatus.startTime ? buildStatus.startTime + (buildStatus.duration || 0) : 0;
  const pendingFiles = status.pendingChanges || [];
  const links = [...(spec.links || [])];
  for (const url of context.forwardURLs.get(name) || []) {
    if (!links.includes(url)) links.push(url);
  }
  const selected = route.resource === name;
  const enabled = status.enabled !== false;
  const meta = [
    finished ? `<span class="updated" title="${html(clockTime(finished))}" data-time="${html(finished)}">`
      + `updated ${html(ago(finished, now()))}</span>` : '<span class="muted">not updated yet</span>',
    buildStatus.duration !== undefined ? `<span class="duration">${html(duration(buildStatus.duration))}</span>` : "",
    pendingFiles.length ? `<span class="pending-changes" title="${html(pendingFiles.join("\n"))}">`
      + `${pendingFiles.length} pending change${pendingFiles.length === 1 ? "" : "s"}</span>` : "",
    status.waiting ? `<span class="waiting">${html(status.waiting)}</span>` : "",
  ].join("");
  const linkList = links.length ? `<div class="links">${links.map((url) =>
    `<a href="${html(url)}" target="_blank" rel="noopener">${html(url.replace(/^https?:\/\//, ""))}</a>`).join("")}</div>` : "";
  return `<li class="resource${selected ? " selected" : ""}" data-name="${html(name)}" data-status="${html(shown)}">`
    + '<div class="resource-line">'
    + `<span class="badge ${html(shown)}" title="${html(status.runtimeReason || status.waiting || "")}">${html(shown)}</span>`
    + `<a class="resource-name" href="${html(hrefFor(name, selected ? route.tab : "logs"))}">${html(name)}</a>`
    + `<span class="type">${html(spec.type || "")}</span>`
    + `<button class="trigger" type="button" title="${html(`update ${name} now`)}">\u25b6</button>`
    + `<label class="toggle" title="${enabled ? "disable" : "enable"}">`
    + `<input type="checkbox" class="enable"${enabled ? " checked" : ""}></label></div>`
    + `<div class="resource-meta">${meta}</div>${linkList}</li>`;
}

// The sidebar is written as one HTML string, every value escaped: the browser's parser
// builds 300 rows in a fraction of the time creating their elements one by one takes, which
// was most of a 300-resource sidebar's render. The trigger and enable controls are handled
// once, on the list (wireSidebarControls).
const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const html = (value) => String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]);

function wireSidebarControls() {
  const groups = $("resource-groups");
  const nameOf = (node) => node.closest("li.resource").dataset.name;
  groups.addEventListener("click", (event) => {
    const trigger = event.target.closest("button.trigger");
    if (trigger) act("trigger", { resource: nameOf(trigger) }, trigger);
  });
  groups.addEventListener("change", (event) => {
    const box = event.target.closest("input.enable");
    if (box) act(box.checked ? "enable" : "disable", { resource: nameOf(box) }, box);
  });
}

function renderSidebar() {
  const context = rowContext();
  const groups = new Map();
  const resources = [...state.kinds("resource").values()];
  for (const resource of resources) {
    const labels = (resource.spec || {}).labels || [];
    for (const label of labels.length ? labels : [UNLABELED]) {
      if (!groups.has(label)) groups.set(label, []);
      groups.get(label).push(resource);
    }
  }
  const names = [...groups.keys()].sort((a, b) =>
    (a === UNLABELED) - (b === UNLABELED) || byName(a, b));
  const onlyUnlabeled = names.length === 1 && names[0] === UNLABELED;
  $("resource-groups").innerHTML = names.map((label) => {
    const members = groups.get(label);
    const counts = {};
    for (const r of members) counts[statusOf(r)] = (counts[statusOf(r)] || 0) + 1;
    const summary = Object.entries(counts).map(([s, n]) =>
      `<span class="dot ${html(s)}" title="${html(s)}">${n}</span>`).join("");
    const heading = onlyUnlabeled ? ""
      : `<h3>${html(label)}<span class="group-summary">${summary}</span></h3>`;
    return `<section class="group" data-label="${html(label)}">${heading}`
      + `<ul>${members.map((member) => resourceRow(member, context)).join("")}</ul></section>`;
  }).join("");
  $("all-resources").classList.toggle("selected", !route.resource);
}

function renderHeader() {
  const session = state.kinds("session").get("tiltfile");
  const error = session && (session.status || {}).error;
  $("tiltfile-error").hidden = !error;
  $("tiltfile-error").textContent = error ? `Tiltfile: ${error}` : "";
  const resource = route.resource && state.kinds("resource").get(route.resource);
  $("resource-title").textContent = route.resource || "All resources";
  const badge = $("resource-status");
  if (resource) {
    const shown = statusOf(resource);
    badge.className = `badge ${shown}`;
    badge.textContent = shown;
    const s = resource.status || {};
    $("resource-reason").textContent = s.error || s.waiting || s.runtimeReason || "";
  } else {
    badge.className = "badge";
    badge.textContent = route.resource ? "unknown" : "";
    $("resource-reason").textContent = "";
  }
  const alerts = [...state.kinds("alert").values()].filter((a) =>
    !route.resource || (a.spec || {}).resource === route.resource);
  $("alert-count").textContent = alerts.length ? String(alerts.length) : "";
  for (const tab of TABS) {
    const link = $(`tab-${tab}`);
    link.href = hrefFor(route.resource, tab);
    link.setAttribute("aria-selected", String(route.tab === tab));
    link.hidden = !route.resource && tab === "facets";
  }
}

function renderPanel(force) {
  for (const tab of TABS) $(`panel-${tab}`).hidden = route.tab !== tab;
  const touches = (...kinds) => force || kinds.some((k) => dirtyKinds.has(k));
  if (route.tab === "alerts" && touches("alert", "build")) {
    renderAlerts($("panel-alerts"), state, route.resource);
  } else if (route.tab === "facets" && touches("resource", ...ownedKinds)) {
    renderFacets($("panel-facets"), state, route.resource, panelCache);
  }
}

function render(force = false) {
  if (force || ["resource", "build", "portforward"].some((k) => dirtyKinds.has(k))) renderSidebar();
  renderHeader();
  renderPanel(force);
  dirtyKinds = new Set();
}

function schedule(kind) {
  dirtyKinds.add(kind);
  if (!frame) frame = requestAnimationFrame(() => { frame = 0; render(); });
}

function onRoute() {
  const next = parseRoute();
  const changedResource = next.resource !== route.resource;
  route = next;
  if (changedResource) panelCache.buildLog = null;
  if (route.tab === "logs") {
    logView.show({ resource: route.resource });
  }
  render(true);
}

// -- wiring

// The objects the daemon put in the page when it served it, and the version they are at
// (devloop/server/app.py inject_state): painted at once, then the watch resumes from there.
function loadEmbeddedState() {
  const node = document.getElementById("devloop-state");
  if (snapshot || !node) return;
  let data;
  try { data = JSON.parse(node.textContent); } catch { return; }
  for (const object of data.objects || []) state.apply({ type: "ADDED", object });
  state.version = Number(data.version) || 0;
}

function connect() {
  const indicator = $("connection");
  const since = state.version ? `?resourceVersion=${state.version}` : "";
  stream(`/api/v1/watch${since}`, (event) => {
    state.apply(event);
    schedule((event.object || {}).kind);
  }, (status) => {
    indicator.dataset.state = status;
    indicator.textContent = status === "open" ? "live" : status;
    if (status === "snapshot") {
      indicator.textContent = `snapshot of ${new Date(snapshot.createdAt * 1000).toLocaleString()}`;
      const scrub = snapshot.scrub || {};
      indicator.title = scrub.disabled ? "secret values not scrubbed (secret_settings(disable_scrub=True))"
        : `${scrub.values || 0} secret value forms scrubbed`;
    }
  });
}

function loadKinds() {
  if (snapshot) return;
  getJSON("/api/v1/kinds").then((body) => {
    if (!Array.isArray(body.kinds)) return;
    const owned = body.kinds.filter((kind) => kind.owned).map((kind) => kind.kind);
    if ([...owned].sort().join() === [...ownedKinds].sort().join()) return; // as assumed
    ownedKinds = owned;
    render(true);
  }).catch(() => { /* an older daemon: the defaults above */ });
}

function wireLogControls() {
  const search = $("log-search");
  let timer = 0;
  const apply = () => { clearTimeout(timer); logView.show({ q: search.value.trim() }); };
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(apply, 300); });
  search.addEventListener("keydown", (event) => { if (event.key === "Enter") apply(); });
  $("log-source").addEventListener("change", (event) => logView.show({ source: event.target.value }));
  $("log-level").addEventListener("change", (event) => logView.show({ level: Number(event.target.value) }));
  $("log-bottom").addEventListener("click", () => logView.scrollToNewest());
}

function wireArgs() {
  $("args-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const words = $("args-input").value.trim().split(/\s+/).filter(Boolean);
    if (words[0] === "--") words.shift();
    act("args", { args: words }, event.submitter);
  });
}

// "updated 12s ago" ages without asking the server anything.
setInterval(() => {
  for (const node of document.querySelectorAll(".updated[data-time]")) {
    node.textContent = `updated ${ago(Number(node.dataset.time), now())}`;
  }
}, 5000);

// A snapshot is read-only: its controls are hidden (style.css) and it offers no snapshot.
if (snapshot) document.body.dataset.mode = "snapshot";
// The page's own copy of the state first, then the watch for what changes after it: its
// request goes out now, and the server answers it while the rest of the page is set up.
loadEmbeddedState();
connect();
window.addEventListener("hashchange", onRoute);
wireLogControls();
wireSidebarControls();
wireArgs();
loadKinds();
route = { resource: null, tab: "logs" }; // force the first route to load its logs
onRoute();
window.devloop = { state, logView };
