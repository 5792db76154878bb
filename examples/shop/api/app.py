"""The shop's API: a JSON list of items."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "v1"
ITEMS = ["coffee", "tea", "cake"]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"items": ITEMS, "version": VERSION}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("api:", fmt % args, flush=True)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    print(f"api {VERSION} listening on :{port}", flush=True)
    ThreadingHTTPServer(("", port), Handler).serve_forever()
