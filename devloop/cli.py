"""The `devloop` command line: up, ci, down, tiltfile-result, and clients of a running daemon."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence

from devloop.engine.runner import UpdateError
from devloop.tiltfile.errors import Location, TiltfileError

DEFAULT_PORT = 10350


def _split_tiltfile_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Everything after `--` belongs to the Tiltfile's config.parse(), like Tilt."""
    argv = list(argv)
    if "--" in argv:
        index = argv.index("--")
        return argv[:index], argv[index + 1:]
    return argv, []


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="devloop", description=(
        "The inner dev loop for multi-service apps on Kubernetes, driven by a Tiltfile."))
    sub = parser.add_subparsers(dest="command", required=True)

    def tiltfile_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("-f", "--file", default="Tiltfile", help="path to the Tiltfile")
        p.add_argument("--context", default="", help="kube context to use instead of the "
                       "kubeconfig's current one (k8s_context() returns it)")
        p.add_argument("--namespace", default="", help="namespace for objects that name "
                       "none, instead of the context's (k8s_namespace() returns it)")

    def server_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--port", type=int, default=int(os.environ.get("DEVLOOP_PORT",
                                                                      DEFAULT_PORT)))
        p.add_argument("--host", default=os.environ.get("DEVLOOP_HOST", "127.0.0.1"))

    up = sub.add_parser("up", help="run the dev loop until Ctrl-C")
    tiltfile_options(up)
    server_options(up)
    up.add_argument("--stream", action="store_true", help="plain log lines, no terminal UI")

    ci = sub.add_parser("ci", help="build and deploy once; exit 0 when every resource is ready")
    tiltfile_options(ci)
    server_options(ci)
    ci.add_argument("--timeout", default="", help="e.g. 30m, 90s (default: ci_settings or 30m)")
    ci.add_argument("--junit-xml", default="", metavar="FILE",
                    help="write a JUnit XML report: one test case per resource")
    ci.add_argument("--report-json", default="", metavar="FILE",
                    help="write a JSON report: per-resource timings, builds and alerts")

    down = sub.add_parser("down", help="delete what up/ci deployed")
    tiltfile_options(down)
    down.add_argument("--delete-namespaces", action="store_true")
    down.add_argument("--volumes", "--delete-volumes", action="store_true",
                      help="also remove the named volumes of the Compose project "
                      "(--delete-volumes is Tilt's name)")
    down.add_argument("--wait", type=_boolean, nargs="?", const=True, default=True,
                      metavar="true|false", help="wait until the objects are gone "
                      "(default true; --wait=false returns once deletion is requested)")

    snapshot = sub.add_parser("snapshot", help="write the running session's dashboard, logs "
                              "included, to one self-contained HTML file")
    server_options(snapshot)
    snapshot.add_argument("-o", "--output", default="", metavar="FILE.html",
                          help="where to write it (default: devloop-snapshot-<time>.html)")

    result = sub.add_parser("tiltfile-result", help="print the evaluated Tiltfile as JSON")
    tiltfile_options(result)

    for name, text in (("get", "list objects of the running daemon"),
                       ("describe", "describe a resource"), ("logs", "print logs"),
                       ("trigger", "trigger an update"), ("enable", "enable resources"),
                       ("disable", "disable resources"), ("args", "change Tiltfile args")):
        client = sub.add_parser(name, help=text)
        server_options(client)
        client.add_argument("names", nargs="*")
        if name == "get":
            client.add_argument("-o", "--output", default="", choices=["", "json", "yaml",
                                                                      "wide"])
        if name == "logs":
            client.add_argument("-f", "--follow", action="store_true")
    return parser


def _boolean(text: str) -> bool:
    """kubectl's flag values: true/false (also 1/0, yes/no)."""
    value = text.strip().lower()
    if value in ("true", "1", "yes", "t"):
        return True
    if value in ("false", "0", "no", "f"):
        return False
    raise argparse.ArgumentTypeError(f"want true or false, got {text!r}")


def main(argv: Sequence[str] | None = None) -> int:
    own, tiltfile_args = _split_tiltfile_args(sys.argv[1:] if argv is None else argv)
    options = _parser().parse_args(own)
    # The Tiltfile is evaluated in a child process, which reads these (tiltfile/k8s_area.py).
    for flag, variable in (("context", "DEVLOOP_CONTEXT"), ("namespace", "DEVLOOP_NAMESPACE")):
        if getattr(options, flag, ""):
            os.environ[variable] = getattr(options, flag)
    started = time.time()
    try:
        if options.command == "tiltfile-result":
            return _tiltfile_result(options.file, tuple(tiltfile_args))
        if options.command in ("up", "ci"):
            from devloop.daemon.session import run_session

            return asyncio.run(run_session(options, tuple(tiltfile_args)))
        if options.command == "down":
            from devloop.daemon.down import run_down

            return asyncio.run(run_down(options.file, tuple(tiltfile_args),
                                        delete_namespaces=options.delete_namespaces,
                                        volumes=options.volumes, wait=options.wait))
        if options.command == "snapshot":
            from devloop.snapshot.client import run_snapshot

            return run_snapshot(options)
        from devloop.client import run_client

        return run_client(options, tiltfile_args)
    except TiltfileError as exc:
        print(exc.render(), file=sys.stderr)
        _setup_failure_reports(options, started, "(Tiltfile)", str(exc), exc.render(),
                               exc.location)
        return 1
    except UpdateError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        _setup_failure_reports(options, started, "(devloop)", str(exc), str(exc))
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        # Ctrl-C: asyncio.run turns it into CancelledError when the session's task was
        # cancelled more than once on its way out; either way, end quietly.
        return 130


def _setup_failure_reports(options: argparse.Namespace, started: float, what: str,
                           message: str, detail: str, location: Location | None = None,
                           ) -> None:
    """`devloop ci` asked for reports but failed before any resource ran: report that, with
    the file relative to here (annotations want the repository's paths)."""
    if options.command != "ci":
        return
    from devloop.reports import write_setup_failure_reports

    file = ""
    if location is not None and location.path:
        try:
            file = os.path.relpath(location.path)
        except ValueError:  # another drive (Windows)
            file = location.path
    write_setup_failure_reports(what=what, message=message, detail=detail, started=started,
                                finished=time.time(), file=file,
                                line=location.line if location is not None else 0,
                                junit_xml=options.junit_xml, report_json=options.report_json)


def _tiltfile_result(path: str, args: tuple[str, ...]) -> int:
    from devloop.model.plan import to_jsonable
    from devloop.tiltfile.isolated import evaluate_in_child

    # Printed lines go to stderr as the Tiltfile prints them (a slow local() shows itself).
    evaluation = evaluate_in_child(path, args=args, subcommand="tiltfile-result",
                                   on_output=lambda line: print(line, file=sys.stderr,
                                                                flush=True))
    # Warnings (ignored parameters, unused images) are not printed lines: say them too.
    for warning in evaluation.plan.warnings:
        print(f"WARNING: {warning}", file=sys.stderr, flush=True)
    json.dump(to_jsonable(evaluation.plan), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
