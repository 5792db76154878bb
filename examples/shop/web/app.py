"""The shop's web frontend: a page that lists the API's items from the browser."""

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TITLE = "Shop"
PAGE = """<!doctype html>
<html><head><title>{title}</title></head>
<body><h1>{title}</h1><ul id="items"></ul>
<script>
fetch("http://localhost:18081/").then(r => r.json()).then(d => {{
  for (const item of d.items) {{
    const li = document.createElement("li"); li.textContent = item;
    document.getElementById("items").appendChild(li);
  }}
}});
</script></body></html>
"""


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = PAGE.format(title=TITLE).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("web:", fmt % args, flush=True)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8000"))
    print(f"web listening on :{port}", flush=True)
    ThreadingHTTPServer(("", port), Handler).serve_forever()
