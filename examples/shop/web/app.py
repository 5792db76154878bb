"""The shop's web frontend: a page listing the API's items, fetched on the server side.

The web reaches the API the way services in a cluster reach each other: through the API's
Service name (`API_URL`, default http://api:8080/), resolved by the cluster's DNS and
routed to a pod by kube-proxy. `/healthz` answers 200 only while that works, so the web is
Ready only when it can really serve its page.
"""

import json
import os
import urllib.error
import urllib.request
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TITLE = "Shop"
API_URL = os.environ.get("API_URL", "http://api:8080/")
API_TIMEOUT_SECONDS = 3
PAGE = """<!doctype html>
<html><head><title>{title}</title></head>
<body><h1>{title}</h1><ul id="items">{items}</ul>
<p>api {version} at {api}</p>
</body></html>
"""


def fetch_items():
    with urllib.request.urlopen(API_URL, timeout=API_TIMEOUT_SECONDS) as response:
        return json.load(response)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            data = fetch_items()
        except (OSError, ValueError) as exc:
            self.reply(502, "text/plain", f"cannot reach the api at {API_URL}: {exc}\n")
            return
        if self.path == "/healthz":
            self.reply(200, "text/plain", "ok\n")
            return
        items = "".join(f"<li>{escape(str(item))}</li>" for item in data.get("items", []))
        page = PAGE.format(title=TITLE, items=items, version=escape(str(data.get("version"))),
                           api=escape(API_URL))
        self.reply(200, "text/html", page)

    def reply(self, status, content_type, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("web:", fmt % args, flush=True)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8000"))
    print(f"web listening on :{port}, api at {API_URL}", flush=True)
    ThreadingHTTPServer(("", port), Handler).serve_forever()
