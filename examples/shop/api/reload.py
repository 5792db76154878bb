"""Run the API and restart it whenever one of its Python files changes.

Live update copies new sources into the running container; this loop notices (it polls
modification times, which is cheap for a handful of files) and restarts the app, so the new
code answers without a new pod. It holds the app's listening socket (PORT) and hands it to
each app process as LISTEN_FD, so requests during a restart wait instead of failing, and
the app it replaces answers the requests it had accepted before it exits. Only the standard
library, like the app.
"""

import os
import signal
import socket
import subprocess
import sys
import time

POLL_SECONDS = 0.02
RETIRE_SECONDS = 5.0


def sources(root: str) -> dict[str, int]:
    found = {}
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                try:
                    found[path] = os.stat(path).st_mtime_ns
                except FileNotFoundError:
                    pass
    return found


def start(argv: list[str], listener: socket.socket) -> subprocess.Popen:
    fd = listener.fileno()
    return subprocess.Popen([sys.executable, "-u", *argv], pass_fds=(fd,),
                            env={**os.environ, "LISTEN_FD": str(fd)})


def stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main() -> None:
    argv = sys.argv[1:]
    listener = socket.create_server(("", int(os.environ.get("PORT", "8080"))))
    child = start(argv, listener)
    # Replaced apps finishing their requests, and when to kill them if they have not.
    retiring: dict[subprocess.Popen, float] = {}
    signal.signal(signal.SIGTERM, lambda *_: (
        [stop(app) for app in [child, *retiring]], sys.exit(0)))
    seen = sources(".")
    while True:
        time.sleep(POLL_SECONDS)
        for app, deadline in list(retiring.items()):
            if app.poll() is not None:
                del retiring[app]
            elif time.monotonic() > deadline:
                app.kill()
        now = sources(".")
        if now != seen:
            seen = now
            print("reload: sources changed, restarting", flush=True)
            # The new app first, on the same socket; the old one stops accepting on SIGTERM
            # and answers what it has accepted (app.py) while this loop goes on.
            old, child = child, start(argv, listener)
            old.terminate()
            retiring[old] = time.monotonic() + RETIRE_SECONDS


if __name__ == "__main__":
    main()
