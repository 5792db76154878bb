// A snapshot file's answers to the dashboard's API calls, from the data embedded in the page
// (`devloop snapshot`); the live dashboard never loads any of it.

const node = document.getElementById("devloop-snapshot");

// The embedded data, or null in the live dashboard.
export const snapshot = node ? JSON.parse(node.textContent) : null;

// GET /api/v1/logs as the server answers it: filters, the newest `limit` lines before
// `before`, and whether older ones match.
function logsPage(params) {
  const resource = params.get("resource") || "";
  const source = params.get("source") || "";
  const q = (params.get("q") || "").toLowerCase();
  const before = Number(params.get("before")) || Infinity;
  const since = Number(params.get("since")) || 0;
  const limit = Math.min(Number(params.get("limit")) || 1000, 10000);
  const matching = snapshot.logs.filter((line) => line.seq < before && line.seq > since
    && (!resource || line.resource === resource) && (!source || line.source === source)
    && (!q || line.text.toLowerCase().includes(q)));
  const lines = matching.slice(-limit);
  const dropped = {};
  for (const [name, count] of Object.entries(snapshot.dropped || {})) {
    if (!resource || name === resource) dropped[name] = count;
  }
  return { lines, dropped, more: matching.length > lines.length,
    last: lines.length ? lines[lines.length - 1].seq : since };
}

export function answer(path) {
  const url = new URL(path, "http://snapshot.invalid");
  if (url.pathname === "/api/v1/logs") return logsPage(url.searchParams);
  const kind = /^\/api\/v1\/([^/]+)$/.exec(url.pathname);
  if (kind) {
    const items = snapshot.objects.filter((o) => kind[1] === "all" || o.kind === kind[1]);
    return { kind: kind[1], items };
  }
  throw new Error(`${path}: not in this snapshot`);
}

// The watch stream replays every object once; other streams (following logs) stay silent.
export function replay(url, onEvent, onState) {
  let open = true;
  setTimeout(() => {
    if (!open) return;
    if (url.startsWith("/api/v1/watch")) {
      for (const object of snapshot.objects) onEvent({ type: "ADDED", object }, "");
    }
    if (onState) onState("snapshot");
  }, 0);
  return { close() { open = false; } };
}
