// Small DOM and formatting helpers shared by the dashboard's modules.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// The one status a person reads off a resource, in the order that matters most.
export function statusOf(resource) {
  const s = resource.status || {};
  if (s.enabled === false) return "disabled";
  if (s.updateStatus === "error" || s.runtimeStatus === "error") return "error";
  if (s.updateStatus === "in_progress") return "building";
  if (s.updateStatus === "pending" || s.runtimeStatus === "pending") return "pending";
  if (s.updateStatus === "ok" && (s.runtimeStatus === "ok" || s.runtimeStatus === "not_applicable")) {
    return "ready";
  }
  if (!s.updateStatus || s.updateStatus === "none") return "idle";
  return "pending";
}

// Local time as HH:MM:SS, by hand: an Intl.DateTimeFormat takes ~15 ms to create (its
// locale data loads on the page's first paint), and toLocaleTimeString makes one per call.
const twoDigits = (n) => String(n).padStart(2, "0");

// A time as epoch seconds, or an ISO 8601 string (a pod's creationTimestamp); "" when it is
// not a time.
export function clockTime(time) {
  if (!time) return "";
  const date = typeof time === "string" ? new Date(time) : new Date(time * 1000);
  if (Number.isNaN(date.getTime())) return "";
  return `${twoDigits(date.getHours())}:${twoDigits(date.getMinutes())}:${twoDigits(date.getSeconds())}`;
}

// Names in code-point order, as Tilt sorts its labels. localeCompare would load the ICU
// collator on first use: ~12 ms of the first paint of 300 resources.
export function byName(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

// 12,345: as toLocaleString() writes it in English, without the ~15 ms it takes to load
// the number formatter's locale data on the page's first paint.
export function thousands(count) {
  return String(count).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

export function ago(epochSeconds, now = Date.now() / 1000) {
  if (!epochSeconds) return "";
  const seconds = Math.max(0, Math.round(now - epochSeconds));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

export function duration(seconds) {
  if (seconds === undefined || seconds === null) return "";
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  return `${Math.floor(seconds / 60)}m${Math.round(seconds % 60)}s`;
}

// A stable colour per resource name, so prefixes in the combined log are easy to follow.
export function hueOf(name) {
  let hash = 0;
  for (let i = 0; i < name.length; i++) hash = (hash * 31 + name.charCodeAt(i)) | 0;
  return Math.abs(hash) % 360;
}

// Builds are named `<resource>-<n>`; the number orders them.
export function buildNumber(name) {
  const match = /-(\d+)$/.exec(name);
  return match ? Number(match[1]) : 0;
}
