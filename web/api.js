// The daemon's HTTP API as the dashboard uses it: reads, actions with the token, streams.
// In a snapshot file the same calls are answered from the embedded data (snapshot.js).

import { answer, replay, snapshot } from "./snapshot.js";

const tokenMeta = document.querySelector('meta[name="devloop-token"]');
const token = tokenMeta ? tokenMeta.content : "";

export async function getJSON(path, { signal } = {}) {
  if (snapshot) return answer(path);
  const response = await fetch(path, { signal, headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

// Every mutation goes through here: POST with the per-session token the page was served with.
export async function action(name, body) {
  if (snapshot) throw new Error(`${name}: this is a snapshot, nothing can change`);
  const response = await fetch(`/api/v1/actions/${name}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Devloop-Token": token },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try { message = (await response.json()).error || message; } catch { /* not JSON */ }
    throw new Error(`${name}: ${message}`);
  }
  return response.json().catch(() => ({}));
}

export function logsURL({ resource = "", since = 0, before = 0, q = "", source = "", limit = 0, follow = false }) {
  const params = new URLSearchParams();
  if (resource) params.set("resource", resource);
  if (since) params.set("since", String(since));
  if (before) params.set("before", String(before));
  if (q) params.set("q", q);
  if (source) params.set("source", source);
  if (limit) params.set("limit", String(limit));
  if (follow) params.set("follow", "1");
  return `/api/v1/logs?${params}`;
}

// One page of kept log lines.
export function getLogs(options, signal) {
  return getJSON(logsURL(options), { signal });
}

// All kept lines matching `options`, newest first: the server's `limit` keeps the newest N
// lines (at most 10,000 a page) and `before` pages back from there while `more` says older
// ones match. Each page is handed over as it arrives, so the view paints the newest lines
// before the older ones have loaded. Returns the newest seq seen, where following the stream
// should start.
export async function loadLogs(options, onPage, signal, pageSizes = [5000, 10000]) {
  let before = 0;
  let newest = 0;
  for (let page = 0; ; page++) {
    const limit = pageSizes[Math.min(page, pageSizes.length - 1)];
    const body = await getLogs({ ...options, before, limit }, signal);
    const lines = body.lines || [];
    if (page === 0) newest = lines.length ? lines[lines.length - 1].seq : Number(body.last) || 0;
    onPage(body, page > 0);
    // The oldest page: everything kept has been read.
    if (!body.more || !lines.length) return newest;
    before = lines[0].seq;
  }
}

// An EventSource over one of the API's streams; it reconnects by itself and resumes with
// Last-Event-ID. `onEvent` gets each parsed `data:` payload.
export function stream(url, onEvent, onState) {
  if (snapshot) return replay(url, onEvent, onState);
  const source = new EventSource(url);
  source.onopen = () => onState && onState("open");
  source.onerror = () => onState && onState(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
  source.onmessage = (message) => {
    let data;
    try { data = JSON.parse(message.data); } catch { return; }
    onEvent(data, message.lastEventId);
  };
  return source;
}
