"""The tutorial's web app: says hello and what the local_resource wrote."""

from pathlib import Path

from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello() -> str:
    info = Path(__file__).with_name("build-info.txt")
    return f"Hello from the tutorial app ({info.read_text().strip()})\n"


if __name__ == "__main__":
    print("tutorial app starting on port 8000", flush=True)
    app.run(host="0.0.0.0", port=8000)
