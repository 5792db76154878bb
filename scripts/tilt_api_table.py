"""Write docs/tilt-api.md: every builtin and parameter of Tilt's Tiltfile API, with devloop's
status for each (supported, no-op as in Tilt, ignored with a warning, refused, or missing).

Inputs: scripts/tilt_api/tilt_api.txt, a list of names and parameter names (its header
gives the format), and devloop's own builtins, found by building the Tiltfile areas and
reading their signatures. Nothing is downloaded.

How tilt_api.txt was made, and how to refresh it for a new Tilt release: in a checkout of
github.com/tilt-dev/tilt, walk internal/tiltfile/api/**/*.py (Tilt's published API stubs)
with Python's `ast` module and write, per module-level `def`, `name(param, ...)` with the
module path as prefix (`os.path.join`, `v1alpha1.cmd`; the top-level package has none),
and `name =` per module-level value. Then compare with the builtins Tilt's Go code
registers (`grep -rn 'AddBuiltin(' internal/tiltfile`) and the keywords it unpacks
(`UnpackArgs(` calls): add a `+` line per builtin the stubs lack, and `param>impl` where
a stub's keyword is not the one the implementation takes. Run this script again and
commit both files; tests/unit/test_tilt_api_audit.py fails when the table is stale.

Usage: python scripts/tilt_api_table.py [--check]
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(HERE, "tilt_api", "tilt_api.txt")
OUTPUT = os.path.join(ROOT, "docs", "tilt-api.md")

SUPPORTED = "supported"
NO_OP = "no-op"
IGNORED = "ignored"
REFUSED = "refused"
MISSING = "missing"

# Builtins the evaluator itself provides (the language layer, not a builtin area).
LANGUAGE: dict[str, tuple[str, ...]] = {
    "load": ("path", "*args"), "include": ("path",), "load_dynamic": ("path",),
    "struct": ("**kwargs",), "fail": ("msg",), "os.environ": (), "os.getenv": ("key", "default"),
    "os.putenv": ("key", "value"), "os.unsetenv": ("key",),
    "workload_to_resource_function": ("fn",), "module": ("name", "**kwargs"),
}

# Deliberate differences, with the reason shown in the table. Everything else a devloop
# builtin accepts is supported.
STATUS: dict[tuple[str, str], tuple[str, str]] = {
    ("docker_prune_settings", "max_age_mins"): (IGNORED, "devloop prunes by `disable` only"),
    ("docker_prune_settings", "num_builds"): (IGNORED, "devloop prunes by `disable` only"),
    ("docker_prune_settings", "interval_hrs"): (IGNORED, "devloop prunes by `disable` only"),
    ("docker_prune_settings", "keep_recent"): (IGNORED, "devloop prunes by `disable` only"),
    ("version_settings", "check_updates"): (IGNORED, "devloop never checks for updates"),
    ("analytics_settings", "enable"): (IGNORED, "devloop sends no analytics"),
    ("experimental_metrics_settings", "*args"): (IGNORED, "deprecated in Tilt too"),
    ("experimental_metrics_settings", "**kwargs"): (IGNORED, "deprecated in Tilt too"),
    ("experimental_telemetry_cmd", "*"): (IGNORED, "devloop records no telemetry"),
    ("experimental_analytics_report", "*"): (IGNORED, "devloop sends no analytics"),
    ("local_git_repo", "paths"): (REFUSED, "the value's .paths() method cannot cross the "
                                           "Starlark binding; use os.path.join"),
    ("k8s_kind", "image_object"): (REFUSED, "image injection by repo/tag fields is not "
                                            "implemented; use image_json_path"),
    ("local", "command_bat"): (NO_OP, "Windows form; unused off Windows, as in Tilt"),
    ("custom_build", "command_bat"): (NO_OP, "Windows form; unused off Windows, as in Tilt"),
    ("custom_build", "command_bat_val"): (NO_OP, "Windows form; unused off Windows, as in "
                                                 "Tilt"),
    ("local_resource", "cmd_bat"): (NO_OP, "Windows form; unused off Windows, as in Tilt"),
    ("local_resource", "serve_cmd_bat"): (NO_OP, "Windows form; unused off Windows, as in "
                                                 "Tilt"),
    ("test", "cmd_bat"): (NO_OP, "Windows form; unused off Windows, as in Tilt"),
    ("test", "serve_cmd_bat"): (NO_OP, "Windows form; unused off Windows, as in Tilt"),
    ("k8s_custom_deploy", "apply_cmd_bat"): (NO_OP, "Windows form; used only when apply_cmd "
                                                    "is empty"),
    ("k8s_custom_deploy", "delete_cmd_bat"): (NO_OP, "Windows form; used only when "
                                                     "delete_cmd is empty"),
}


@dataclass(frozen=True)
class Row:
    builtin: str
    param: str  # "" for the builtin itself (no parameters, or a value)
    keyword: str  # the keyword Tilt's implementation takes ("" when none)
    extra: bool  # absent from the stubs, registered by Tilt's implementation
    status: str
    note: str


def read_api(path: str = DATA) -> Iterator[tuple[str, list[tuple[str, str]], bool, bool]]:
    """(builtin, [(stub param, implementation keyword)], is a value, not in the stubs)."""
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            extra = line.startswith("+ ")
            line = line.removeprefix("+ ")
            if line.endswith("="):
                yield line[:-1].strip(), [], True, extra
                continue
            name, _, rest = line.partition("(")
            params: list[tuple[str, str]] = []
            for item in rest.rstrip(")").split(","):
                item = item.strip()
                if item:
                    stub, _, impl = item.partition(">")
                    params.append((stub, "" if impl == "-" else (impl or stub)))
            yield name.strip(), params, False, extra


def devloop_builtins() -> dict[str, Any]:
    """Every name the builtin areas register, with its callable or value."""
    sys.path.insert(0, ROOT)
    from devloop.tiltfile.areas import default_areas
    from devloop.tiltfile.context import EvalContext

    ctx = EvalContext(main_path=os.path.join(ROOT, "Tiltfile"))
    found: dict[str, Any] = {}
    for area in default_areas(ctx):
        found.update(area.builtins())
        for name, function in area.environ_builtins().items():
            found[name] = ("environ", function)
    return found


def accepted_keywords(name: str, value: Any) -> set[str] | None:
    """The keywords a devloop builtin takes; None when it takes any."""
    from devloop.tiltfile import v1alpha1_area

    if name.startswith("v1alpha1."):
        short = name.removeprefix("v1alpha1.")
        if short in v1alpha1_area.HELPERS:
            type_ = v1alpha1_area.HELPERS[short]
            extra = {"handler"} if type_ == "Probe" else set()
            return {f[0] for f in v1alpha1_area.TYPES[type_]} | extra
        obj = v1alpha1_area.OBJECTS[short]
        return {"name", "labels", "annotations"} | {f[0] for f in obj.fields}
    function: Callable[..., Any] = value[1] if isinstance(value, tuple) else value
    signature = inspect.signature(function)
    params = list(signature.parameters.values())
    if isinstance(value, tuple):
        params = params[1:]  # the Tiltfile's os.environ, passed by the evaluator
    keywords: set[str] = set()
    for param in params:
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            keywords.add("*" + param.name)
            keywords.add("*args")
        else:
            keywords.add(param.name)
    return keywords


def rows() -> list[Row]:
    builtins = devloop_builtins()
    out: list[Row] = []
    for name, params, is_value, extra in read_api():
        if name in LANGUAGE:
            known: set[str] | None = set(LANGUAGE[name])
            present = True
        else:
            present = name in builtins
            known = accepted_keywords(name, builtins[name]) if present and not is_value \
                and callable(builtins[name]) or isinstance(builtins.get(name), tuple) else None
        if is_value or not params:
            status = SUPPORTED if present else MISSING
            note = "" if present else "not defined"
            out.append(Row(name, "", "", extra, status, note))
            continue
        for stub, keyword in params:
            override = STATUS.get((name, keyword)) or STATUS.get((name, "*"))
            if not present:
                status, note = MISSING, "builtin not defined"
            elif not keyword:
                status, note = SUPPORTED, "Tilt's implementation takes no such parameter"
            elif known is not None and keyword not in known and not any(
                    k.startswith("*") for k in known):
                # A builtin taking *args takes its leading parameters by position.
                status, note = MISSING, "parameter not accepted"
            elif override is not None:
                status, note = override
            else:
                status, note = SUPPORTED, ""
            if keyword and keyword != stub:
                note = (f"the stubs say `{stub}`, Tilt takes `{keyword}`; " + note).rstrip("; ")
            out.append(Row(name, stub, keyword, extra, status, note))
    return out


def render(table: list[Row]) -> str:
    counts: dict[str, int] = {}
    for row in table:
        counts[row.status] = counts.get(row.status, 0) + 1
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in (SUPPORTED, NO_OP, IGNORED, REFUSED,
                                                            MISSING))
    lines = [
        "# Tilt's Tiltfile API in devloop",
        "",
        "<!-- Generated by scripts/tilt_api_table.py from scripts/tilt_api/tilt_api.txt; "
        "do not edit. -->",
        "",
        "Every builtin and parameter of Tilt's Tiltfile API (from the API stubs Tilt "
        "publishes, plus the builtins its implementation registers beyond them, marked "
        "with +) and what devloop does with it:",
        "",
        "- **supported**: has its effect, as in Tilt;",
        "- **no-op**: accepted and checked, with no effect here, as in Tilt on Linux and "
        "macOS;",
        "- **ignored**: accepted, with a warning saying it is ignored (a `WARNING:` line in "
        "the Tiltfile log after each evaluation, and on `devloop tiltfile-result`'s stderr);",
        "- **refused**: evaluation fails with a message saying what to use instead;",
        "- **missing**: not there yet.",
        "",
        f"Rows: {len(table)} ({summary}).",
        "tests/unit/test_tilt_api_audit.py calls every builtin with every parameter and "
        "checks the status below.",
        "",
        "| Builtin | Parameter | devloop | Note |",
        "|---|---|---|---|",
    ]
    for row in table:
        name = f"`{row.builtin}`" + (" +" if row.extra else "")
        param = f"`{row.param}`" if row.param else ""
        lines.append(f"| {name} | {param} | {row.status} | {row.note} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    text = render(rows())
    if "--check" in argv:
        with open(OUTPUT, encoding="utf-8") as handle:
            if handle.read() != text:
                print(f"{OUTPUT} is stale: run python scripts/tilt_api_table.py",
                      file=sys.stderr)
                return 1
        return 0
    os.makedirs(os.path.dirname(OUTPUT), exist_ok=True)
    with open(OUTPUT, "w", encoding="utf-8") as handle:
        handle.write(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
