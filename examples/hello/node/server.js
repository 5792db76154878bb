// hello-node: a small HTTP service that also asks hello-go, through its Service name.
"use strict";

const http = require("http");

// VERSION changes when the code does; the benchmark edits it and waits for the new answer.
const VERSION = "v1";
const PORT = Number(process.env.PORT || 3000);
const GO_URL = process.env.GO_URL || "http://hello-go:8080/";

function askGo() {
  return new Promise((resolve, reject) => {
    const req = http.get(GO_URL, { timeout: 3000 }, (res) => {
      let body = "";
      res.on("data", (chunk) => { body += chunk; });
      res.on("end", () => {
        try { resolve(JSON.parse(body)); } catch (err) { reject(err); }
      });
    });
    req.on("timeout", () => req.destroy(new Error(`timeout asking ${GO_URL}`)));
    req.on("error", reject);
  });
}

const server = http.createServer(async (req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "Content-Type": "text/plain" });
    res.end("ok\n");
    return;
  }
  let go;
  try {
    go = await askGo();
  } catch (err) {
    res.writeHead(502, { "Content-Type": "text/plain" });
    res.end(`cannot reach hello-go at ${GO_URL}: ${err.message}\n`);
    return;
  }
  res.writeHead(200, { "Content-Type": "application/json" });
  res.end(JSON.stringify({ service: "hello-node", version: VERSION, go }) + "\n");
});

server.listen(PORT, () => console.log(`hello-node ${VERSION} listening on :${PORT}`));
