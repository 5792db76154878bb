"""The shop's API: a JSON list of items."""

import json
import os
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "v1"
ITEMS = ["coffee", "tea", "cake"]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"items": ITEMS, "version": VERSION}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        # With a length the client need not wait for the connection to close, which takes
        # about a second through a Kubernetes port-forward.
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("api:", fmt % args, flush=True)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    inherited = os.environ.get("LISTEN_FD")
    server = ThreadingHTTPServer(("", port), Handler, bind_and_activate=not inherited)
    if inherited:
        # reload.py keeps the listening socket open across restarts: connections made
        # while the app restarts wait for it instead of being refused.
        server.socket.close()
        server.socket = socket.socket(fileno=int(inherited))
    print(f"api {VERSION} listening on :{port}", flush=True)
    server.serve_forever()
