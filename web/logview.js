// The Logs tab: kept lines of one resource (or all) in column arrays, drawn by virtual scrolling.
//
// Only the rows in the viewport exist in the DOM (a fixed row height turns a scroll offset into
// a line index), so a million lines cost memory for their text and nothing for layout. History
// comes from the server page by page (search and source filter run there, over everything kept);
// new lines arrive over the follow stream and are filtered here the same way.

import { loadLogs, logsURL, stream } from "./api.js";
import { hueOf, thousands } from "./util.js";

const ROW_HEIGHT = 18; // px; must match .log-row in style.css
// Browsers cap an element's height (Chromium ~33M px, Firefox ~17M px); past this the scroll
// position is scaled to a line index instead of mapped 1:1.
const MAX_SCROLL_PX = 8_000_000;

const ERROR_RE = /\b(error|fatal|panic|exception|traceback|failed|crash\w*)\b/i;
const WARN_RE = /\b(warn|warning|deprecated|retrying)\b/i;

export function levelOf(text) {
  if (ERROR_RE.test(text)) return 2;
  return WARN_RE.test(text) ? 1 : 0;
}

// Lines as parallel arrays: far fewer objects than one per line. Repeated strings (resource,
// source, prefix) are interned so a million lines share a handful of them.
export class LogLines {
  constructor() {
    this.seq = []; this.time = []; this.resource = []; this.source = []; this.prefix = [];
    this.text = []; this.level = null; this.lastSeq = 0;
    this.strings = new Map();
  }

  get length() { return this.text.length; }

  intern(value) {
    const known = this.strings.get(value);
    if (known !== undefined) return known;
    this.strings.set(value, value);
    return value;
  }

  push(line) {
    if (line.seq <= this.lastSeq) return false; // already have it (stream resumed)
    this.seq.push(line.seq); this.time.push(line.time);
    this.resource.push(this.intern(line.resource || ""));
    this.source.push(this.intern(line.source || ""));
    this.prefix.push(this.intern(line.prefix || ""));
    this.text.push(line.text);
    if (this.level) this.level.push(levelOf(line.text));
    this.lastSeq = line.seq;
    return true;
  }

  // Older lines, read after the newer ones were shown, go in front.
  prepend(page) {
    if (!page.length) return;
    const column = (pick) => page.map(pick);
    this.seq = column((l) => l.seq).concat(this.seq);
    this.time = column((l) => l.time).concat(this.time);
    this.resource = column((l) => this.intern(l.resource || "")).concat(this.resource);
    this.source = column((l) => this.intern(l.source || "")).concat(this.source);
    this.prefix = column((l) => this.intern(l.prefix || "")).concat(this.prefix);
    const text = column((l) => l.text);
    if (this.level) this.level = text.map(levelOf).concat(this.level);
    this.text = text.concat(this.text);
    if (!this.lastSeq) this.lastSeq = page[page.length - 1].seq;
  }

  // Levels are guessed from the text, computed the first time a level filter asks for them.
  levels() {
    if (!this.level) this.level = this.text.map(levelOf);
    return this.level;
  }
}

export class LogView {
  constructor(root) {
    this.scroll = root.querySelector("#log-scroll");
    this.spacer = root.querySelector("#log-spacer");
    this.rowsBox = root.querySelector("#log-rows");
    this.info = root.querySelector("#log-info");
    this.droppedBanner = root.querySelector("#log-dropped");
    this.pool = [];
    this.lines = new LogLines();
    this.index = null; // row -> line, when a level filter hides some lines
    this.shiftRows = 0; // rows added in front since the last frame
    this.stick = true; // follow the newest line until the user scrolls up
    this.query = { resource: "", q: "", source: "", level: 0 };
    this.generation = 0;
    this.frame = 0;
    this.pending = [];
    this.dropped = {};
    this.follower = null;
    this.controller = null;
    this.scroll.addEventListener("scroll", () => {
      const bottom = this.scroll.scrollHeight - this.scroll.clientHeight;
      this.stick = this.scroll.scrollTop >= bottom - ROW_HEIGHT;
      this.schedule();
    }, { passive: true });
    new ResizeObserver(() => this.schedule()).observe(this.scroll);
  }

  // Show `query` (resource "", meaning all, plus q, source, level): reload history when the
  // server-side part changed, otherwise only re-index.
  show(query) {
    const next = { ...this.query, ...query, level: Number(query.level ?? this.query.level) };
    const serverSide = ["resource", "q", "source"].some((key) => next[key] !== this.query[key]);
    this.query = next;
    if (serverSide || !this.follower) this.reload();
    else { this.reindex(); this.stick = true; this.schedule(); }
  }

  close() {
    this.generation++;
    if (this.controller) this.controller.abort();
    if (this.follower) this.follower.close();
    this.follower = null;
  }

  async reload() {
    this.close();
    const generation = this.generation;
    const controller = this.controller = new AbortController();
    const { resource, q, source } = this.query;
    this.lines = new LogLines();
    this.index = null;
    this.dropped = {};
    this.pending = [];
    this.shiftRows = 0;
    this.stick = true;
    this.timing = { started: performance.now(), firstPaint: 0, loaded: 0 };
    this.setState("loading");
    this.reindex();
    this.schedule();
    let last = 0;
    try {
      last = await loadLogs({ resource, q, source }, (page, older) => {
        if (generation !== this.generation) return;
        if (older) this.prepend(page.lines || []);
        else for (const line of page.lines || []) this.append(line);
        Object.assign(this.dropped, page.dropped || {});
        this.schedule();
      }, controller.signal);
    } catch (error) {
      if (generation === this.generation) this.info.textContent = `could not load logs: ${error.message}`;
      return;
    }
    if (generation !== this.generation) return;
    this.timing.loaded = performance.now();
    this.setState("ready");
    this.schedule();
    const url = logsURL({ resource, since: Math.max(last, this.lines.lastSeq), follow: true });
    this.follower = stream(url, (data) => {
      if (generation !== this.generation) return;
      for (const line of Array.isArray(data.lines) ? data.lines : [data]) {
        if (this.matches(line)) this.pending.push(line);
      }
      this.schedule();
    });
  }

  // Live lines are filtered here like the server filtered the history.
  matches(line) {
    const { resource, q, source } = this.query;
    if (typeof line.seq !== "number" || typeof line.text !== "string") return false;
    if (resource && line.resource !== resource) return false;
    if (source && line.source !== source) return false;
    return !q || line.text.toLowerCase().includes(q.toLowerCase());
  }

  append(line) {
    if (!this.lines.push(line)) return;
    if (this.index) {
      const row = this.lines.length - 1;
      if (this.lines.level[row] >= this.query.level) this.index.push(row);
    }
  }

  prepend(lines) {
    const before = this.count();
    this.lines.prepend(lines);
    if (this.index) this.reindex();
    // Keep the same lines in view when the user has scrolled away from the newest.
    this.shiftRows += this.count() - before;
  }

  reindex() {
    const minimum = this.query.level;
    if (!minimum) { this.index = null; return; }
    const levels = this.lines.levels();
    const index = [];
    for (let row = 0; row < levels.length; row++) if (levels[row] >= minimum) index.push(row);
    this.index = index;
  }

  setState(state) { this.scroll.dataset.state = state; }

  count() { return this.index ? this.index.length : this.lines.length; }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  render() {
    for (const line of this.pending) this.append(line);
    this.pending = [];
    const count = this.count();
    const viewport = this.scroll.clientHeight;
    const total = count * ROW_HEIGHT;
    const height = Math.min(total, MAX_SCROLL_PX);
    this.spacer.style.height = `${height}px`;
    if (this.stick) this.scroll.scrollTop = Math.max(0, height - viewport);
    else if (this.shiftRows && total <= MAX_SCROLL_PX) this.scroll.scrollTop += this.shiftRows * ROW_HEIGHT;
    this.shiftRows = 0;
    const top = this.scroll.scrollTop;
    const visible = Math.ceil(viewport / ROW_HEIGHT) + 1;
    let first;
    let offset;
    if (total <= MAX_SCROLL_PX) {
      first = Math.floor(top / ROW_HEIGHT);
      offset = first * ROW_HEIGHT;
    } else {
      const range = Math.max(1, height - viewport);
      first = Math.round((Math.min(top, range) / range) * Math.max(0, count - visible + 1));
      offset = top;
    }
    this.rowsBox.style.transform = `translateY(${offset}px)`;
    this.fillRows(first, visible, count);
    this.renderInfo(count);
    this.scroll.dataset.lines = String(count);
    if (count && this.timing && !this.timing.firstPaint) {
      // The rows are in the DOM; the next frame paints them.
      const timing = this.timing;
      requestAnimationFrame(() => {
        timing.firstPaint = performance.now();
        this.scroll.dataset.painted = "1";
      });
    }
  }

  fillRows(first, visible, count) {
    while (this.pool.length < visible) {
      const row = document.createElement("div");
      row.className = "log-row";
      const resource = row.appendChild(document.createElement("span"));
      resource.className = "log-resource";
      const prefix = row.appendChild(document.createElement("span"));
      prefix.className = "log-prefix";
      const text = row.appendChild(document.createElement("span"));
      text.className = "log-text";
      this.rowsBox.append(row);
      this.pool.push({ row, resource, prefix, text });
    }
    const showResource = !this.query.resource;
    const lines = this.lines;
    for (let i = 0; i < this.pool.length; i++) {
      const cells = this.pool[i];
      const rowIndex = first + i;
      if (i >= visible || rowIndex >= count) { cells.row.hidden = true; continue; }
      const at = this.index ? this.index[rowIndex] : rowIndex;
      const text = lines.text[at];
      cells.row.hidden = false;
      cells.row.dataset.source = lines.source[at];
      cells.row.dataset.level = String(levelOf(text));
      const resource = lines.resource[at];
      cells.resource.textContent = showResource ? resource : "";
      cells.resource.style.color = showResource ? `hsl(${hueOf(resource)} 60% 65%)` : "";
      cells.prefix.textContent = lines.prefix[at] || "";
      cells.text.textContent = text;
    }
  }

  renderInfo(count) {
    const loading = this.scroll.dataset.state === "loading";
    const shown = this.index ? `${thousands(count)} of ${thousands(this.lines.length)}`
      : thousands(count);
    this.info.textContent = `${shown} lines${loading ? " (loading…)" : ""}`;
    const dropped = Object.entries(this.dropped).filter(([, n]) => n > 0);
    this.droppedBanner.hidden = dropped.length === 0;
    this.droppedBanner.textContent = dropped.length === 0 ? "" : "Older lines dropped to stay within "
      + "the log budget: " + dropped.map(([name, n]) => `${name} ${thousands(n)}`).join(", ");
  }

  scrollToNewest() { this.stick = true; this.schedule(); }
}
