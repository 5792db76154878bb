"""The shop's API: a JSON list of items."""

import json
import os
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "v1"
ITEMS = ["coffee", "tea", "cake"]
DRAIN_SECONDS = 2.0


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


class Server(ThreadingHTTPServer):
    """Counts the connections it is serving, so that a restart can let them finish."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.serving = 0
        self.lock = threading.Lock()

    def process_request_thread(self, request, client_address):
        with self.lock:
            self.serving += 1
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.lock:
                self.serving -= 1

    def drain(self, seconds):
        """Wait until the connections accepted so far are answered, or `seconds` pass (a
        connection that never sends a request is left)."""
        deadline = time.monotonic() + seconds
        while self.serving and time.monotonic() < deadline:
            time.sleep(0.01)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    inherited = os.environ.get("LISTEN_FD")
    server = Server(("", port), Handler, bind_and_activate=not inherited)
    if inherited:
        # reload.py keeps the listening socket open across restarts: connections made
        # while the app restarts wait for it instead of being refused.
        server.socket.close()
        server.socket = socket.socket(fileno=int(inherited))
    # On SIGTERM (reload.py replacing it) stop accepting, answer what was accepted, exit.
    # Killed outright, it would leave a request it had accepted unanswered, and through a
    # port-forward the client learns that only a second later: the container runtime waits
    # that long for the other direction before it closes the stream.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"api {VERSION} listening on :{port}", flush=True)
    server.serve_forever(poll_interval=0.05)
    server.drain(DRAIN_SECONDS)
