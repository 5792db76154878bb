// Runs server.js and restarts it when a file in this directory changes, so files synced
// by live update take effect without a new image. It watches the directory rather than
// each file: a synced file replaces the old one, and a watch on the old file would end.
"use strict";

const { spawn } = require("child_process");
const fs = require("fs");
const path = require("path");

const DEBOUNCE_MS = 100; // one restart for a sync that writes several files
let child = null;
let restarting = false;
let timer = null;

function start() {
  child = spawn(process.execPath, [path.join(__dirname, "server.js")], { stdio: "inherit" });
  child.on("exit", (code, signal) => {
    if (restarting) {
      restarting = false;
      start();
    } else {
      process.exit(code === null ? 1 : code);
    }
  });
}

fs.watch(__dirname, (event, file) => {
  if (!file || !file.endsWith(".js") || file === "dev.js") return;
  clearTimeout(timer);
  timer = setTimeout(() => {
    console.log(`dev: ${file} changed, restarting server.js`);
    restarting = true;
    child.kill("SIGTERM");
  }, DEBOUNCE_MS);
});

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => { child.kill(sig); process.exit(0); });
}
start();
