"""Host builtins: local() runs a command now; local_resource() declares a host process.

Also the readiness probe constructors (probe, exec_action, http_get_action,
tcp_socket_action), link(), the TRIGGER_MODE_* constants, and the small parsers of
trigger modes and labels that other resource builtins share.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import signal
from collections.abc import Callable, Mapping
from typing import Any

from devloop.model import plan as p
from devloop.tiltfile.context import (
    EvalContext,
    PlanDraft,
    blob,
    command_spec,
    is_blob,
    struct,
    struct_kind,
    type_name,
    want_bool,
    want_int,
    want_str,
    want_str_dict,
    want_str_list,
)
from devloop.tiltfile.errors import BuiltinError, Location, TiltfileError
from devloop.tiltfile.links import link, parse_links
from devloop.tiltfile.local_command import run_streaming

TRIGGER_MODE_AUTO = int(p.TriggerMode.AUTO)
TRIGGER_MODE_MANUAL = int(p.TriggerMode.MANUAL)

# How many lines of a failed command's output its error message repeats.
ERROR_OUTPUT_LINES = 40

_LABEL = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def parse_trigger_mode(fn: str, value: Any) -> p.TriggerMode:
    """TRIGGER_MODE_AUTO or TRIGGER_MODE_MANUAL (plain ints, as in Tilt)."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return p.TriggerMode(value)
        except ValueError:
            pass
    raise BuiltinError(f"{fn}: for parameter 'trigger_mode': got {value!r}, "
                       "want TRIGGER_MODE_AUTO or TRIGGER_MODE_MANUAL")


def parse_labels(fn: str, value: Any) -> tuple[str, ...]:
    """A label or a list of labels; each a Kubernetes qualified name like Tilt checks."""
    labels = want_str_list(fn, "labels", value)
    for label in labels:
        prefix, _, name = label.rpartition("/")
        if (not _LABEL.match(name) or len(name) > 63
                or (prefix and (len(prefix) > 253 or not _LABEL_PREFIX.match(prefix)))):
            raise BuiltinError(
                f"{fn}: for parameter 'labels': invalid label {label!r}: want alphanumeric "
                "characters, '-', '_' or '.', starting and ending with an alphanumeric "
                "character, at most 63 characters (optionally prefixed by a DNS subdomain "
                "and '/')")
    return tuple(dict.fromkeys(labels))


def parse_probe(fn: str, value: Any) -> p.Probe | None:
    """The value of a `readiness_probe=` argument: None or a probe()."""
    if value is None:
        return None
    if struct_kind(value) != "Probe":
        raise BuiltinError(f"{fn}: for parameter 'readiness_probe': got {type_name(value)}, "
                           "want Probe")
    action: p.HttpGetAction | p.TcpSocketAction | p.ExecAction
    if value["exec"] is not None:
        action = p.ExecAction(tuple(value["exec"]["command"]))
    elif value["http_get"] is not None:
        http = value["http_get"]
        action = p.HttpGetAction(http["port"], http["host"], http["scheme"], http["path"])
    else:
        tcp = value["tcp_socket"]
        action = p.TcpSocketAction(tcp["port"], tcp["host"])
    return p.Probe(action, value["initial_delay_secs"], value["timeout_secs"],
                   value["period_secs"], value["success_threshold"],
                   value["failure_threshold"])


def _display(spec: p.CommandSpec) -> str:
    return spec.argv[2] if spec.shell else shlex.join(spec.argv)


def _tail(text: str) -> str:
    lines = text.splitlines()
    if len(lines) > ERROR_OUTPUT_LINES:
        lines = [f"... ({len(lines) - ERROR_OUTPUT_LINES} lines omitted)"] + \
            lines[-ERROR_OUTPUT_LINES:]
    return "\n".join(lines)


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"signal: {signal.Signals(-code).name}"
        except ValueError:
            return f"signal: {-code}"
    return f"exit status {code}"


class LocalArea:
    """local, local_resource, probes, link and the trigger mode constants."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self.resources: list[tuple[p.Resource, Location | None]] = []
        # Resources that left trigger_mode unset take trigger_mode()'s default.
        self._default_trigger: set[str] = set()

    def builtins(self) -> Mapping[str, Any]:
        return {
            "local_resource": self.local_resource, "test": self.test, "link": link,
            "probe": self.probe,
            "exec_action": self.exec_action, "http_get_action": self.http_get_action,
            "tcp_socket_action": self.tcp_socket_action,
            "TRIGGER_MODE_AUTO": TRIGGER_MODE_AUTO, "TRIGGER_MODE_MANUAL": TRIGGER_MODE_MANUAL,
        }

    def environ_builtins(self) -> Mapping[str, Callable[..., Any]]:
        return {"local": self.local}

    def contribute(self, draft: PlanDraft) -> None:
        taken = {resource.name for resource in draft.resources}
        default = draft.settings.get("default_trigger_mode", p.TriggerMode.AUTO)
        for resource, location in self.resources:
            if resource.name in self._default_trigger:
                resource = dataclasses.replace(resource, trigger_mode=default)
            if resource.name in taken:
                raise TiltfileError(f"local_resource: resource name {resource.name!r} is "
                                    "already used by another resource", location)
            taken.add(resource.name)
            draft.resources.append(resource)

    # -- local
    def local(self, environ: dict[str, str], command: Any, quiet: Any = False,
              command_bat: Any = "", echo_off: Any = False, env: Any = None, dir: Any = "",
              stdin: Any = None) -> dict[str, Any]:
        """local(command, quiet=False, command_bat='', echo_off=False, env={}, dir='',
        stdin=None): run `command` now, while the Tiltfile loads, and return its stdout as a
        Blob. A string runs with `sh -c`, a list as argv; it runs in `dir` (default, or None:
        this file's directory) with the Tiltfile's os.environ plus `env`, and `stdin` (string
        or Blob) as input. `command_bat` (string or list) is the Windows form, unused here
        as in Tilt off Windows. The command is echoed unless `echo_off`, its output (line by
        line, while it runs) unless `quiet`.
        A non-zero exit fails the Tiltfile with the command, exit status and output."""
        fn = "local"
        _windows_form(fn, "command_bat", command_bat)
        extra = want_str_dict(fn, "env", env)
        dir_text = "" if dir is None else want_str(fn, "dir", dir, allow_blob=False)
        cwd = self.ctx.abspath(dir_text) if dir_text else self.ctx.current_dir()
        spec = command_spec(fn, "command", command, env=extra, dir=cwd)
        if spec is None:
            raise BuiltinError(f"{fn}: for parameter 'command': command is empty")
        if stdin is not None and not isinstance(stdin, str) and not is_blob(stdin):
            raise BuiltinError(f"{fn}: for parameter 'stdin': got {type_name(stdin)}, "
                               "want string or blob")
        input_text = None if stdin is None else want_str(fn, "stdin", stdin)
        quiet = want_bool(fn, "quiet", quiet)
        display = _display(spec)
        echo = not want_bool(fn, "echo_off", echo_off)
        if echo:
            self.ctx.print(f"local: {display}")
        printed = 0

        def on_line(line: str) -> None:
            nonlocal printed
            if not quiet:
                printed += 1
                self.ctx.print(f" → {line}")

        try:
            done = run_streaming(spec.argv, cwd=cwd, env={**environ, **extra},
                                 input_text=input_text, on_line=on_line)
        except OSError as exc:
            raise BuiltinError(f"{fn}: Command {display!r} failed.\nerror: "
                               f"{exc.strerror}: {exc.filename or spec.argv[0]}") from None
        if not quiet and not printed and echo:
            self.ctx.print(" → [no output]")
        if done.returncode != 0:
            raise BuiltinError(
                f'{fn}: Command "{display}" failed.\nerror: {_exit_reason(done.returncode)}'
                f"\n\nstdout:\n{_tail(done.stdout)}\nstderr:\n{_tail(done.stderr)}")
        return blob(done.stdout)

    # -- local_resource
    def local_resource(self, name: Any, cmd: Any = None, deps: Any = None,
                       trigger_mode: Any = None, resource_deps: Any = None,
                       ignore: Any = None, auto_init: Any = True, serve_cmd: Any = None,
                       cmd_bat: Any = "", serve_cmd_bat: Any = "", allow_parallel: Any = False,
                       links: Any = None, labels: Any = None, tags: Any = None,
                       env: Any = None, serve_env: Any = None, readiness_probe: Any = None,
                       dir: Any = "", serve_dir: Any = "") -> None:
        """local_resource(name, cmd='', deps=[], ...): a resource on the host. On each update
        `cmd` runs (in `dir`, default this file's directory, with `env` added); when it
        succeeds the previous `serve_cmd` (long-running; in `serve_dir` with `serve_env`)
        is replaced by a new one, ready per `readiness_probe`. Changes to `deps` (relative
        to this file, minus `ignore` patterns) trigger an update in TRIGGER_MODE_AUTO;
        without deps it runs once at start and on manual trigger. Local resources run one
        at a time unless `allow_parallel`. `auto_init=False` waits for a manual trigger.
        `cmd_bat`/`serve_cmd_bat` are the Windows forms (unused). At least one of `cmd`
        and `serve_cmd` is required; names are unique."""
        fn = "local_resource"
        name_text = want_str(fn, "name", name, allow_blob=False)
        if not name_text:
            raise BuiltinError(f"{fn}: for parameter 'name': must not be empty")
        _windows_form(fn, "cmd_bat", cmd_bat)
        _windows_form(fn, "serve_cmd_bat", serve_cmd_bat)
        if tags is not None:
            want_str_list(fn, "tags", tags)
            self.ctx.warn(f"{fn}: parameter 'tags' is not one of Tilt's; accepted and ignored")
        update_dir = "" if dir is None else want_str(fn, "dir", dir, allow_blob=False)
        run_dir = "" if serve_dir is None else want_str(fn, "serve_dir", serve_dir,
                                                         allow_blob=False)
        here = self.ctx.current_dir()
        update = command_spec(fn, "cmd", cmd, env=want_str_dict(fn, "env", env),
                              dir=self.ctx.abspath(update_dir) if update_dir else here)
        serve = command_spec(fn, "serve_cmd", serve_cmd,
                             env=want_str_dict(fn, "serve_env", serve_env),
                             dir=self.ctx.abspath(run_dir) if run_dir else here)
        if update is None and serve is None:
            raise BuiltinError(f"{fn}: local_resource must have a cmd and/or a serve_cmd, "
                               "but both were empty")
        ignores = want_str_list(fn, "ignore", ignore)
        for pattern in ignores:
            if "\n" in pattern:
                raise BuiltinError(f"{fn}: ignore cannot contain newlines; found ignore: "
                                   f"{pattern!r}")
        resource = p.Resource(
            name=name_text, type=p.ResourceType.LOCAL, labels=parse_labels(fn, labels),
            resource_deps=tuple(dict.fromkeys(want_str_list(fn, "resource_deps",
                                                            resource_deps))),
            trigger_mode=p.TriggerMode.AUTO if trigger_mode is None else parse_trigger_mode(
                fn, trigger_mode),
            auto_init=want_bool(fn, "auto_init", auto_init), links=parse_links(fn, links),
            cmd=update, serve_cmd=serve,
            deps=tuple(self.ctx.abspath(d) for d in want_str_list(fn, "deps", deps)),
            ignore=tuple(ignores), allow_parallel=want_bool(fn, "allow_parallel",
                                                            allow_parallel),
            readiness_probe=parse_probe(fn, readiness_probe),
        )
        if any(existing.name == name_text for existing, _ in self.resources):
            raise BuiltinError(f"{fn}: Local resource {name_text} has been defined "
                               "multiple times")
        self.resources.append((resource, self.ctx.location()))
        if trigger_mode is None:
            self._default_trigger.add(name_text)

    def test(self, *args: Any, **kwargs: Any) -> None:
        """test(name, cmd, ...): Tilt's deprecated early form of local_resource; the same
        arguments, positional or not, and the same resource."""
        self.local_resource(*args, **kwargs)

    # -- probes
    def probe(self, initial_delay_secs: Any = 0, timeout_secs: Any = 1, period_secs: Any = 10,
              success_threshold: Any = 1, failure_threshold: Any = 3, exec: Any = None,
              http_get: Any = None, tcp_socket: Any = None) -> dict[str, Any]:
        """probe(initial_delay_secs=0, timeout_secs=1, period_secs=10, success_threshold=1,
        failure_threshold=3, exec=None, http_get=None, tcp_socket=None): a readiness probe
        for a serve_cmd, like a Kubernetes probe; exactly one action is required."""
        fn = "probe"
        numbers = {}
        for param, value in (("initial_delay_secs", initial_delay_secs),
                             ("timeout_secs", timeout_secs), ("period_secs", period_secs),
                             ("success_threshold", success_threshold),
                             ("failure_threshold", failure_threshold)):
            numbers[param] = want_int(fn, param, value)
            if numbers[param] < 0:
                raise BuiltinError(f"{fn}: for parameter '{param}': must not be negative")
        for param, value, kind in (("exec", exec, "ExecAction"),
                                   ("http_get", http_get, "HTTPGetAction"),
                                   ("tcp_socket", tcp_socket, "TCPSocketAction")):
            if value is not None and struct_kind(value) != kind:
                raise BuiltinError(f"{fn}: for parameter '{param}': got {type_name(value)}, "
                                   f"want {kind}")
        if sum(action is not None for action in (exec, http_get, tcp_socket)) != 1:
            raise BuiltinError(f"{fn}: exactly one of exec, http_get, or tcp_socket must be "
                               "specified")
        return struct("Probe", **numbers, exec=exec, http_get=http_get, tcp_socket=tcp_socket)

    def exec_action(self, command: Any) -> dict[str, Any]:
        """exec_action(command): probe action that succeeds when `command` (a list, run as
        argv) exits 0."""
        if not isinstance(command, list | tuple):
            raise BuiltinError(f"exec_action: for parameter 'command': got "
                               f"{type_name(command)}, want list of strings")
        argv = want_str_list("exec_action", "command", command)
        if not argv:
            raise BuiltinError("exec_action: for parameter 'command': must not be empty")
        return struct("ExecAction", command=argv)

    def http_get_action(self, port: Any, host: Any = "localhost", scheme: Any = "http",
                        path: Any = "") -> dict[str, Any]:
        """http_get_action(port, host='localhost', scheme='http', path=''): probe action
        that succeeds on an HTTP status from 200 to 399."""
        fn = "http_get_action"
        scheme_text = want_str(fn, "scheme", scheme, allow_blob=False).lower()
        if scheme_text not in ("http", "https"):
            raise BuiltinError(f"{fn}: for parameter 'scheme': got {scheme_text!r}, "
                               "want 'http' or 'https'")
        return struct("HTTPGetAction", port=_port(fn, port),
                      host=want_str(fn, "host", host, allow_blob=False) or "localhost",
                      scheme=scheme_text, path=want_str(fn, "path", path, allow_blob=False))

    def tcp_socket_action(self, port: Any, host: Any = "localhost") -> dict[str, Any]:
        """tcp_socket_action(port, host='localhost'): probe action that succeeds when a TCP
        connection opens."""
        fn = "tcp_socket_action"
        return struct("TCPSocketAction", port=_port(fn, port),
                      host=want_str(fn, "host", host, allow_blob=False) or "localhost")


def _windows_form(fn: str, param: str, value: Any) -> None:
    """A `*_bat` argument: a string or a list of strings, run by Tilt only on Windows, so
    checked and left unused here, as Tilt does elsewhere."""
    if value is None or isinstance(value, str) or is_blob(value):
        return
    if isinstance(value, list | tuple):
        want_str_list(fn, param, value)
        return
    raise BuiltinError(f"{fn}: for parameter '{param}': got {type_name(value)}, want string "
                       "or list of strings")


def _port(fn: str, value: Any) -> int:
    port = want_int(fn, "port", value)
    if not 1 <= port <= 65535:
        raise BuiltinError(f"{fn}: for parameter 'port': {port} is not a port (1-65535)")
    return port
