"""Counts visits in Redis: GET / answers with a greeting and the count, /healthz checks Redis."""

import http.server
import os
import socket

GREETING = os.environ.get("GREETING", "Hello")
REDIS = (os.environ.get("REDIS_HOST", "redis"), 6379)


def redis(*words: str) -> bytes:
    """One Redis command over RESP; the first line of its reply."""
    request = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
    with socket.create_connection(REDIS, timeout=2) as conn:
        conn.sendall(request.encode())
        return conn.recv(256).split(b"\r\n", 1)[0]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        try:
            if self.path == "/healthz":
                body = redis("PING").decode()
            else:
                visits = redis("INCR", "visits").lstrip(b":").decode()
                body = f"{GREETING}! visits={visits}"
            status = 200
        except OSError as exc:
            body, status = f"redis unavailable: {exc}", 503
        data = (body + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        # The healthcheck asks every second: log only the other requests.
        if not self.path.startswith("/healthz"):
            super().log_message(format, *args)


if __name__ == "__main__":
    print(f"web: serving on :8000 ({GREETING!r})")
    http.server.ThreadingHTTPServer(("", 8000), Handler).serve_forever()
