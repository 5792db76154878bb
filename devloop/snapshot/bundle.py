"""The dashboard's ES modules joined into one inline script, so a snapshot needs no files.

Each module becomes a function run once in dependency order; `import {a, b as c} from "./x.js"`
becomes a destructuring of x's exports. The dashboard's modules use only named imports of
sibling files and `export` on declarations; anything else is refused with the file's name, so a
new construct in web/ fails the unit test instead of a user's snapshot.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

_IMPORT = re.compile(r'^import\s*\{([^}]*)\}\s*from\s*"\./([\w.-]+\.js)"\s*;?[ \t]*$',
                     re.MULTILINE)
_EXPORT_DECL = re.compile(r"^export\s+((?:async\s+)?function\*?|class|const|let|var)\s+([\w$]+)",
                          re.MULTILINE)
_OTHER_MODULE_SYNTAX = re.compile(r"^\s*(import\b[^(.]|export\b)", re.MULTILINE)


class BundleError(Exception):
    """A dashboard module uses module syntax the bundler does not handle."""


def _imports(source: str) -> list[tuple[str, str]]:
    """(names, file) of each import statement."""
    return [(match.group(1), match.group(2)) for match in _IMPORT.finditer(source)]


def _transform(name: str, source: str) -> str:
    exports: list[str] = []

    def declaration(match: re.Match[str]) -> str:
        exports.append(match.group(2))
        return f"{match.group(1)} {match.group(2)}"

    def importing(match: re.Match[str]) -> str:
        names = []
        for item in match.group(1).split(","):
            parts = item.split()
            if len(parts) == 3 and parts[1] == "as":
                names.append(f"{parts[0]}: {parts[2]}")
            elif len(parts) == 1:
                names.append(parts[0])
            elif parts:
                raise BundleError(f"{name}: cannot bundle the import {match.group(0)!r}")
        return f"const {{ {', '.join(names)} }} = modules[{json.dumps(match.group(2))}];"

    body = _IMPORT.sub(importing, source)
    body = _EXPORT_DECL.sub(declaration, body)
    leftover = _OTHER_MODULE_SYNTAX.search(body)
    if leftover:
        line = body[:leftover.start()].count("\n") + 1
        raise BundleError(f"{name}:{line}: cannot bundle {leftover.group(0).strip()!r}")
    return (f"modules[{json.dumps(name)}] = (() => {{\n{body}\n"
            f"return {{ {', '.join(exports)} }};\n}})();\n")


def bundle(web_dir: Path, entry: str = "app.js") -> str:
    """The modules reachable from `entry`, as one script (to be inlined as a module)."""
    sources = module_sources(web_dir, entry)
    parts = ["const modules = {};\n"] + [_transform(name, source)
                                         for name, source in sources.items()]
    return "".join(parts)


def module_sources(web_dir: Path, entry: str = "app.js") -> dict[str, str]:
    """The modules reachable from `entry` and their text, dependencies first (a module is
    added once its imports are)."""
    sources: dict[str, str] = {}
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in sources:
            return
        if name in visiting:
            raise BundleError(f"{name}: import cycle")
        visiting.add(name)
        path = web_dir / name
        if not path.is_file():
            raise BundleError(f"{name}: no such dashboard file in {web_dir}")
        source = path.read_text(encoding="utf-8")
        for _, dependency in _imports(source):
            visit(dependency)
        sources[name] = source

    visit(entry)
    return sources
