// The Alerts and Facets tabs: what needs attention now, and the facts behind a resource.

import { getLogs } from "./api.js";
import { buildNumber, byName, clockTime, duration, el } from "./util.js";

const EXCERPT_LINES = 20;

function ofResource(map, resource) {
  return [...map.values()].filter((obj) => !resource || (obj.spec || {}).resource === resource);
}

export function buildsOf(state, resource) {
  return ofResource(state.kinds("build"), resource)
    .sort((a, b) => buildNumber(b.metadata.name) - buildNumber(a.metadata.name));
}

// The newest `count` kept lines of a resource (of some sources) that pass `keep`.
async function tailLines(resource, source, count, keep = () => true) {
  const page = await getLogs({ resource, source, limit: count });
  return (page.lines || []).filter(keep);
}

// A build's own log: the build lines written since it started.
export function buildLog(build) {
  const started = (build.status || {}).startTime || 0;
  return tailLines(build.spec.resource, "build", 2000, (line) => line.time >= started - 0.5);
}

function logBlock(lines, empty) {
  if (!lines.length) return el("p", { class: "muted" }, empty);
  return el("pre", { class: "log-excerpt" }, lines.map((line) =>
    (line.prefix ? `${line.prefix} ` : "") + line.text).join("\n"));
}

function pending(text = "loading…") {
  return el("p", { class: "muted" }, text);
}

// Fill `slot` when `promise` resolves, unless the panel was redrawn in the meantime.
function fillLater(slot, promise, render) {
  promise.then((value) => { if (slot.isConnected) slot.replaceChildren(render(value)); },
    (error) => { if (slot.isConnected) slot.replaceChildren(pending(`could not load: ${error.message}`)); });
}

export function renderAlerts(panel, state, resource) {
  const alerts = ofResource(state.kinds("alert"), resource)
    .sort((a, b) => byName(a.metadata.name, b.metadata.name));
  if (!alerts.length) {
    panel.replaceChildren(el("p", { class: "empty" }, "No alerts. Build failures, crash loops, "
      + "image pull errors, failing probes and port-forwards that are down show up here."));
    return;
  }
  panel.replaceChildren(...alerts.map((alert) => {
    const owner = alert.spec.resource || "";
    const isBuild = (alert.spec || {}).type === "update"; // see AlertType in engine/alerts.py
    const slot = el("div", { class: "excerpt" }, pending());
    const card = el("article", { class: "alert", dataset: { name: alert.metadata.name } },
      el("header", {},
        el("span", { class: "badge error" }, isBuild ? "build" : "runtime"),
        el("a", { class: "alert-resource", href: `#/r/${encodeURIComponent(owner)}/logs` }, owner),
        el("span", { class: "muted" }, clockTime(alert.metadata.updatedAt))),
      el("pre", { class: "alert-message" }, (alert.status || {}).message || ""),
      slot);
    const latest = buildsOf(state, owner)[0];
    if (isBuild && latest) {
      fillLater(slot, buildLog(latest), (lines) => logBlock(lines.slice(-EXCERPT_LINES),
        "The build wrote no log."));
    } else {
      const message = (alert.status || {}).message || "";
      fillLater(slot, tailLines(owner, "runtime,local", 200), (lines) => {
        // Prefer the lines of the pod the alert names, when it names one.
        const named = lines.filter((line) => line.prefix && message.includes(line.prefix.split(":")[0]));
        return logBlock((named.length ? named : lines).slice(-EXCERPT_LINES), "No log lines kept.");
      });
    }
    return card;
  }));
}

function table(headers, rows, empty) {
  if (!rows.length) return el("p", { class: "muted" }, empty);
  return el("table", {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c))))));
}

function section(id, title, ...body) {
  return el("section", { class: "facet", id: `facet-${id}` }, el("h2", {}, title), ...body);
}

function fileList(files) {
  if (!files || !files.length) return "";
  const shown = files.slice(0, 5).join(", ");
  return files.length > 5 ? `${shown} (+${files.length - 5} more)` : shown;
}

// Update timelines: each update's trace (build status.trace) as bars on one time axis,
// from the save to the first answer, with BuildKit's steps under the build phase.
const TIMELINES_SHOWN = 5;
const PHASE_COLORS = {
  notice: "var(--idle)", debounce: "var(--idle)", queue: "var(--idle)", prepare: "var(--muted)",
  build: "var(--build)", push: "var(--accent)", apply: "var(--warn)", rollout: "#d2a8ff",
  ready: "var(--ok)", sync: "var(--accent)", run: "var(--build)", restart: "var(--warn)",
  update: "var(--build)", answer: "var(--ok)",
};

function bar(span, total, color, thin) {
  const left = total > 0 ? (100 * span.offset) / total : 0;
  const width = total > 0 ? Math.max((100 * span.duration) / total, 0.4) : 100;
  return el("div", { style: "position:relative;height:" + (thin ? "8px" : "12px") + ";flex:1;"
    + "background:#0f1115;border-radius:2px" },
    el("div", { class: "trace-bar", title: `${span.name}: ${duration(span.duration)}`,
      style: `position:absolute;top:0;bottom:0;left:${left.toFixed(2)}%;width:${width.toFixed(2)}%;`
        + `background:${color};border-radius:2px;${thin ? "opacity:.7" : ""}` }));
}

function traceRow(span, total, color, thin) {
  const attrs = span.attrs || {};
  const note = [attrs.image, attrs.container, attrs.command, attrs.cached ? "cached" : "",
    attrs.error ? `error: ${attrs.error}` : ""].filter(Boolean).join(" · ");
  return el("div", { class: thin ? "trace-step" : "trace-phase", dataset: { name: span.name },
    style: "display:flex;align-items:center;gap:8px;margin:1px 0;" + (thin ? "font-size:11px" : "") },
    el("span", { style: `width:220px;flex:none;overflow:hidden;text-overflow:ellipsis;`
      + `white-space:nowrap;${thin ? "padding-left:12px;color:var(--muted)" : ""}`, title: span.name },
      span.name),
    bar(span, total, color, thin),
    el("span", { style: "width:150px;flex:none;font-family:var(--mono);font-size:11px;"
      + "white-space:nowrap;overflow:hidden;text-overflow:ellipsis", title: note },
      `+${duration(span.offset) || "0ms"} ${duration(span.duration)}${note ? " " + note : ""}`));
}

function timeline(build) {
  const trace = (build.status || {}).trace;
  const total = Math.max(trace.total || 0, ...(trace.points || []).map((p) => p.offset));
  const rows = [];
  for (const span of trace.spans || []) {
    rows.push(traceRow(span, total, PHASE_COLORS[span.name] || "var(--accent)", false));
    for (const step of (trace.steps || []).filter((s) => s.parent === span.name
        && s.start >= span.start - 0.001 && s.end <= span.end + 0.001)) {
      rows.push(traceRow(step, total, PHASE_COLORS[span.name] || "var(--accent)", true));
    }
  }
  const points = (trace.points || []).map((p) =>
    `${p.name} at +${duration(p.offset) || "0ms"}${p.attrs && p.attrs.pod ? ` (${p.attrs.pod})` : ""}`
    + `${p.attrs && p.attrs.file ? ` (${p.attrs.file})` : ""}`);
  return el("article", { class: "trace", dataset: { build: build.metadata.name },
    style: "margin-bottom:12px" },
    el("header", { style: "display:flex;gap:10px;align-items:baseline;margin-bottom:4px" },
      el("strong", {}, `#${buildNumber(build.metadata.name)}`),
      el("span", { class: "trace-summary", style: "font-family:var(--mono)" }, trace.summary || ""),
      el("span", { class: trace.state === "failed" ? "error-text" : "muted" }, trace.state || "")),
    rows,
    points.length ? el("p", { class: "muted", style: "margin:2px 0 0;font-size:11px" },
      points.join(" · ")) : []);
}

export function renderFacets(panel, state, name, cache) {
  const resource = state.kinds("resource").get(name);
  if (!resource) {
    panel.replaceChildren(el("p", { class: "empty" }, `No resource named ${name}.`));
    return;
  }
  const spec = resource.spec || {};
  const status = resource.status || {};
  const details = status.details || {};
  const builds = buildsOf(state, name);
  const pods = ofResource(state.kinds("pod"), name);
  const forwards = ofResource(state.kinds("portforward"), name);
  const liveUpdates = ofResource(state.kinds("liveupdate"), name)
    .sort((a, b) => Number(b.metadata.resourceVersion) - Number(a.metadata.resourceVersion));

  const summary = section("summary", "Summary", el("dl", {},
    el("dt", {}, "type"), el("dd", {}, spec.type || ""),
    el("dt", {}, "update"), el("dd", {}, status.updateStatus || ""),
    el("dt", {}, "runtime"), el("dd", {}, [status.runtimeStatus, status.runtimeReason].filter(Boolean).join(": ")),
    status.waiting ? [el("dt", {}, "waiting"), el("dd", {}, status.waiting)] : [],
    status.error ? [el("dt", {}, "error"), el("dd", { class: "error-text" }, status.error)] : [],
    el("dt", {}, "trigger mode"), el("dd", {}, spec.triggerMode || ""),
    el("dt", {}, "depends on"), el("dd", {}, (spec.resourceDeps || []).join(", ") || "nothing"),
    el("dt", {}, "labels"), el("dd", {}, (spec.labels || []).join(", ")),
    (status.pendingChanges || []).length
      ? [el("dt", {}, "pending changes"), el("dd", {}, fileList(status.pendingChanges))] : []));

  const traced = builds.filter((build) => (build.status || {}).trace).slice(0, TIMELINES_SHOWN);
  const timelines = section("timeline", "Update timeline (save to ready)", traced.length
    ? traced.map(timeline)
    : el("p", { class: "muted" }, "No update traced yet."));

  const yaml = section("yaml", "Applied YAML", details.appliedYaml
    ? el("pre", { class: "yaml" }, details.appliedYaml)
    : el("p", { class: "muted" }, "Nothing applied to the cluster (yet)."));

  // The last build's log is fetched once per build version, not on every store change.
  const latest = builds[0];
  const logSlot = el("div", {}, latest ? pending() : el("p", { class: "muted" }, "No build yet."));
  if (latest) {
    const key = `${latest.metadata.name}@${latest.metadata.resourceVersion}`;
    if (!cache.buildLog || cache.buildLog.key !== key) cache.buildLog = { key, promise: buildLog(latest) };
    fillLater(logSlot, cache.buildLog.promise, (lines) => logBlock(lines, "The build wrote no log."));
  }
  const lastLog = section("build-log", latest ? `Last build log (#${buildNumber(latest.metadata.name)})`
    : "Last build log", logSlot);

  const history = section("builds", "Build history", table(
    ["#", "started", "duration", "cause", "files", "result"],
    builds.map((build) => {
      const s = build.status || {};
      return [String(buildNumber(build.metadata.name)), clockTime(s.startTime), duration(s.duration),
        build.spec.cause || "", fileList(build.spec.files),
        s.error ? el("span", { class: "error-text" }, s.error)
          : (s.duration === undefined ? "running" : "ok")];
    }), "No builds yet."));

  const podRows = pods.length ? pods.map((pod) => {
    const s = pod.status || {};
    return [pod.metadata.name, s.phase || "", String(s.ready ?? ""), String(s.restarts ?? 0),
      s.lastTermination || "", s.problem ? el("span", { class: "error-text" }, s.problem) : "",
      clockTime(s.created)];
  }) : (details.pods || []).map((p) => [p.name, p.phase || "", String(p.ready ?? ""),
    String(p.restarts ?? 0), p.lastTermination || "",
    p.problem ? el("span", { class: "error-text" }, p.problem) : "", ""]);
  const podSection = section("pods", "Pods", table(
    ["pod", "phase", "ready", "restarts", "last termination", "problem", "created"], podRows,
    "No pods."));

  const forwardSection = section("forwards", "Port-forwards", table(
    ["local", "container", "pod", "state", "url"],
    forwards.map((f) => {
      const s = f.status || {};
      return [String(f.spec.localPort ?? ""), String(f.spec.containerPort ?? ""), s.pod || "",
        s.message ? el("span", { class: "error-text" }, `${s.state}: ${s.message}`) : s.state || "",
        s.url ? el("a", { href: s.url, target: "_blank", rel: "noopener" }, s.url) : ""];
    }), "No port-forwards."));

  // Pod events (scheduling, pulls, probes, kills, mounts), newest first.
  const eventSection = section("events", "Pod events", table(
    ["time", "pod", "type", "reason", "message", "count"],
    (details.events || []).slice().reverse().map((e) => [clockTime(e.time), e.pod,
      e.type === "Warning" ? el("span", { class: "error-text" }, e.type) : e.type, e.reason,
      e.message, String(e.count ?? 1)]), "No pod events."));

  const liveSection = section("live-updates", "Live updates", table(
    ["files", "containers", "steps", "duration", "result"],
    liveUpdates.map((lu) => {
      const s = lu.status || {};
      const steps = Array.isArray(s.steps) ? s.steps.map((step) =>
        typeof step === "string" ? step : JSON.stringify(step)).join("; ") : String(s.steps ?? "");
      return [fileList(lu.spec.files), (lu.spec.containers || []).join(", "), steps,
        duration(s.duration), s.error ? el("span", { class: "error-text" }, s.error) : (s.result || "")];
    }), "No live updates."));

  // Compose services: their containers (state, health, ports) and the effective config.
  const composeSections = details.composeConfig === undefined ? [] : [
    section("containers", "Containers", table(
      ["container", "id", "status", "health", "ports", "restarts", "exit code"],
      (details.containers || []).map((c) => [c.name, c.id, c.status, c.health || "",
        (c.ports || []).join(", "), String(c.restarts ?? 0), String(c.exitCode ?? "")]),
      "No containers.")),
    section("compose-config", "Compose config (effective)",
      el("pre", { class: "yaml" }, details.composeConfig)),
  ];
  // A Compose service applies nothing to a cluster and has no pods or port-forwards.
  const k8sSections = composeSections.length ? [] : [yaml];
  const runtimeSections = composeSections.length ? [] : [podSection, eventSection, forwardSection];
  panel.replaceChildren(summary, timelines, ...k8sSections, ...composeSections, lastLog, history,
    ...runtimeSections, liveSection);
}
