"""Source-to-source rewriting of one Starlark file so that it can run inside one program.

Why: the starlark-go binding has no loader hook (`load` fails with "load not
implemented"), freezes globals after each `exec`, cannot run Starlark from a Python
builtin (a nested `exec` crashes the process) and cannot hand Starlark functions or Python
objects with attributes across the boundary. So every file (the Tiltfile, each loaded or
included file) becomes a function body in one combined program (see `program.py`), and
this module rewrites only what the binding cannot do otherwise:

* `load("path", "a", b="c")` statements become calls of the program's `__dl_load`, which
  resolves the path when the statement runs and runs the file once;
* `x.name` becomes `__dl_attr(x, "name")`, so that structs and modules (plain dicts with
  a type marker) have attributes while strings, lists and dicts keep their methods;
* `x.name = v` becomes `__dl_settable(x, "name").name = v`, so that assigning to a
  struct's field fails naming a struct, not the dict behind it;
* `a - b` becomes `__dl_sub(a, b)`: the bundled starlark-go lacks set difference;
* calls of builtins become `__dl_at("<loc>", name)(...)`, so a builtin knows its call site.

`include()` and `load_dynamic()` are not rewritten: they are ordinary functions that
resolve their (possibly computed) path when called. Literal paths are only noted, so that
the evaluator can prepare those files before the run.

Every rewrite stays on the lines it came from, so line numbers never change; columns
shift and `LineEdits` maps them back.
"""

from __future__ import annotations

import ast
import io
import json
import tokenize
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from devloop.tiltfile.errors import Location, TiltfileError


@dataclass(frozen=True)
class LoadSpec:
    """A `load`, `include` or `load_dynamic` of a file, as written."""

    path: str
    symbols: tuple[tuple[str, str], ...]
    location: Location
    kind: str


@dataclass
class LineEdits:
    """Column shifts of one rewritten line: (original column, characters added) pairs."""

    shifts: list[tuple[int, int]] = field(default_factory=list)
    # Whole statements replaced (load): original column -> length of the new text. An
    # error anywhere in the new text belongs to the statement's start.
    statements: dict[int, int] = field(default_factory=dict)

    def original_column(self, column: int) -> int:
        """Map a 1-based column of the rewritten line back to the original line."""
        shift = 0
        for original, added in sorted(self.shifts):
            length = self.statements.get(original)
            if length is not None and original + shift < column <= original + shift + length:
                return original + 1
            if original + shift + max(added, 0) < column:
                shift += added
        return max(1, column - shift)


@dataclass
class RewrittenFile:
    path: str
    lines: list[str]
    edits: dict[int, LineEdits]
    loads: list[LoadSpec]
    exports: list[str]
    conditional_names: list[str]
    string_continuation_lines: set[int]
    # What decides whether the file can run as a program of its own before the main one,
    # so that its values are frozen once loaded (program.py): its `load` statements all
    # come before any other statement, it names no include()/load_dynamic(), and it
    # declares no extension repositories (which change what later ext:// loads mean).
    loads_lead: bool = False
    leading_loads: int = 0  # how many load statements come before any other statement
    dynamic_loads: bool = True
    declares_extensions: bool = True
    top_level_names: frozenset[str] = frozenset()
    # A function nested in another that names a function of the enclosing one (itself,
    # when it recurses): the bundled starlark-go's freeze never ends on such a closure.
    closure_cycles: bool = True
    # Names and attribute names used inside the file's functions: those run after the
    # load, when the file's own program state (its copy of os.environ) is frozen.
    names_in_functions: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Edit:
    line: int  # 1-based
    start: int  # character offsets in the original line
    end: int
    text: str
    order: int
    statement: bool = False


class _Rewriter(ast.NodeVisitor):
    def __init__(self, path: str, lines: list[str], located_builtins: frozenset[str]) -> None:
        self.path = path
        self.lines = lines
        self.located = located_builtins
        self.edits: list[_Edit] = []
        self.loads: list[LoadSpec] = []
        self._order = 0

    # -- helpers
    def _char_col(self, line: int, byte_col: int) -> int:
        return len(self.lines[line - 1].encode()[:byte_col].decode(errors="replace"))

    def _add(self, line: int, start: int, end: int, text: str, statement: bool = False) -> None:
        self.edits.append(_Edit(line, start, end, text, self._order, statement))
        self._order += 1

    def _pos(self, node: ast.AST, end: bool = False) -> tuple[int, int]:
        # Every node this is called with (expressions, statements, arguments) has positions.
        if end:
            line: int = getattr(node, "end_lineno", None) or 1
            return line, self._char_col(line, getattr(node, "end_col_offset", None) or 0)
        line = getattr(node, "lineno", 1)
        return line, self._char_col(line, getattr(node, "col_offset", 0))

    def _loc(self, node: ast.AST) -> Location:
        line, col = self._pos(node)
        return Location(self.path, line, col + 1)

    def _replace_span(self, node: ast.AST, text: str) -> None:
        """Replace a whole node with `text`, keeping its line count by trailing newlines."""
        start_line, start_col = self._pos(node)
        end_line, end_col = self._pos(node, end=True)
        if start_line == end_line:
            self._add(start_line, start_col, end_col, text, statement=True)
            return
        self._add(start_line, start_col, len(self.lines[start_line - 1]), text, statement=True)
        for line in range(start_line + 1, end_line):
            self._add(line, 0, len(self.lines[line - 1]), "")
        self._add(end_line, 0, end_col, "")

    # -- rewrites
    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Load):
            value_line, value_col = self._pos(node.value)
            self._add(value_line, value_col, value_col, "__dl_attr(")
            end_line, end_col = self._pos(node.value, end=True)
            attr_line, attr_end = self._pos(node, end=True)
            text = f', "{node.attr}")'
            if end_line == attr_line:
                self._add(end_line, end_col, attr_end, text)
            else:
                # `.name` on a later line: keep the line breaks inside the call's parentheses.
                self._add(end_line, end_col, len(self.lines[end_line - 1]), ",")
                for line in range(end_line + 1, attr_line):
                    self._add(line, 0, len(self.lines[line - 1]), "")
                self._add(attr_line, 0, attr_end, f'"{node.attr}")')
        elif isinstance(node.ctx, ast.Store):
            # `x.name = v`: x goes through __dl_settable, which refuses structs and
            # modules by their own type name; anything else fails as Starlark says.
            value_line, value_col = self._pos(node.value)
            end_line, end_col = self._pos(node.value, end=True)
            # An error of the call belongs to the assignment's target.
            self._add(value_line, value_col, value_col, "__dl_settable(", statement=True)
            self._add(end_line, end_col, end_col, f', "{node.attr}")')
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        # The bundled starlark-go lacks set difference; `a - b` goes through the prelude.
        if isinstance(node.op, ast.Sub):
            self._wrap_binary("__dl_sub(", node.left, node.right)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.op, ast.Sub) and isinstance(node.target, ast.Name):
            line, col = self._pos(node.target)
            end_line, end_col = self._pos(node.target, end=True)
            name = node.target.id
            self._add(end_line, end_col, end_col, f" = __dl_sub({name}, ")
            value_line, value_col = self._pos(node.value)
            self._between(end_line, end_col, value_line, value_col, "")
            last_line, last_col = self._pos(node.value, end=True)
            self._add(last_line, last_col, last_col, ")")
        self.generic_visit(node)

    def _wrap_binary(self, function: str, left: ast.AST, right: ast.AST) -> None:
        line, col = self._pos(left)
        self._add(line, col, col, function)
        left_line, left_col = self._pos(left, end=True)
        right_line, right_col = self._pos(right)
        self._between(left_line, left_col, right_line, right_col, ", ")
        end_line, end_col = self._pos(right, end=True)
        self._add(end_line, end_col, end_col, ")")

    def _between(self, line: int, col: int, to_line: int, to_col: int, text: str) -> None:
        """Replace the text from (line, col) to (to_line, to_col), keeping line breaks."""
        if line == to_line:
            self._add(line, col, to_col, text)
            return
        self._add(line, col, len(self.lines[line - 1]), text)
        for middle in range(line + 1, to_line):
            self._add(middle, 0, len(self.lines[middle - 1]), "")
        self._add(to_line, 0, to_col, "")

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("include", "load_dynamic") \
                and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            # A hint only: the call itself resolves its path when it runs.
            self.loads.append(LoadSpec(node.args[0].value, (), self._loc(node), func.id))
        if isinstance(func, ast.Name) and func.id == "load":
            raise TiltfileError("load() must be a statement at the top level of a file",
                                self._loc(node))
        if isinstance(func, ast.Name) and func.id in self.located:
            line, col = self._pos(func)
            self._add(line, col, col, f'__dl_at("{self.path}:{line}:{col + 1}", ')
            end_line, end_col = self._pos(func, end=True)
            self._add(end_line, end_col, end_col, ")")
        self.generic_visit(node)


def _literal_path(node: ast.Call, path: str, loc: Location, what: str) -> str:
    if not node.args or not isinstance(node.args[0], ast.Constant) \
            or not isinstance(node.args[0].value, str):
        raise TiltfileError(f"{what}() needs a string literal path as its first argument", loc)
    return node.args[0].value


def _bound_names(target: ast.AST) -> Iterable[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, ast.Tuple | ast.List):
        for element in target.elts:
            yield from _bound_names(element)


def _top_level_names(body: list[ast.stmt], conditional: bool,
                     found: dict[str, bool]) -> None:
    """Names bound at file level; `found[name]` is True when some binding is conditional."""
    for stmt in body:
        names: list[str] = []
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                names.extend(_bound_names(target))
        elif isinstance(stmt, ast.AugAssign | ast.AnnAssign):
            names.extend(_bound_names(stmt.target))
        elif isinstance(stmt, ast.FunctionDef):
            names.append(stmt.name)
        elif isinstance(stmt, ast.For):
            # A loop over nothing never binds its target.
            for name in _bound_names(stmt.target):
                found[name] = True
            _top_level_names(stmt.body, True, found)
            _top_level_names(stmt.orelse, True, found)
        elif isinstance(stmt, ast.If | ast.While):
            _top_level_names(stmt.body, True, found)
            _top_level_names(stmt.orelse, True, found)
        for name in names:
            found[name] = found.get(name, False) or conditional


def _string_continuation_lines(text: str) -> set[int]:
    """Lines that start inside a multi-line string: indenting them would change the string."""
    lines: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.STRING and token.end[0] > token.start[0]:
                lines.update(range(token.start[0] + 1, token.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        pass
    return lines


def rewrite(path: str, text: str, located_builtins: frozenset[str],
            syntax_check: Callable[[str, str], None]) -> RewrittenFile:
    """Rewrite one file. `syntax_check(path, text)` raises a TiltfileError for bad syntax."""
    syntax_check(path, text)
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as exc:
        raise TiltfileError(f"syntax error: {exc.msg}",
                            Location(path, exc.lineno or 1, exc.offset or 0)) from None
    lines = text.split("\n")
    rewriter = _Rewriter(path, lines, located_builtins)
    load_bound: set[str] = set()
    for stmt in tree.body:
        if _is_load(stmt):
            assert isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
            spec = _load_spec(stmt.value, path, rewriter._loc(stmt.value))
            rewriter.loads.append(spec)
            literal = json.dumps(spec.path)
            assigns = [f"__dl_m = __dl_load({literal})"]
            for local_name, exported in spec.symbols:
                assigns.append(f'{local_name} = __dl_symbol(__dl_m, "{exported}", {literal})')
                load_bound.add(local_name)
            rewriter._replace_span(stmt, "; ".join(assigns))
        else:
            rewriter.visit(stmt)
    found: dict[str, bool] = {}
    _top_level_names(tree.body, False, found)
    # Private names too: load() refuses them, but load_dynamic() returns them, as in Tilt.
    exports = sorted(n for n in found if n not in load_bound)
    conditional = sorted(n for n, cond in found.items() if cond and n not in load_bound)
    new_lines, edits = _apply(lines, rewriter.edits)
    leading = _leading_loads(tree.body)
    return RewrittenFile(path, new_lines, edits, rewriter.loads, exports, conditional,
                         _string_continuation_lines(text),
                         loads_lead=leading == sum(map(_is_load, tree.body)),
                         leading_loads=leading,
                         dynamic_loads=_names_any(tree, {"include", "load_dynamic"}),
                         declares_extensions=_attributes_any(tree, {"extension_repo",
                                                                    "extension"}),
                         top_level_names=frozenset(found) | load_bound | {"__dl_m"},
                         closure_cycles=_closure_cycles(tree),
                         names_in_functions=_names_in_functions(tree))


def _is_load(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) \
        and isinstance(stmt.value.func, ast.Name) and stmt.value.func.id == "load"


def _leading_loads(body: list[ast.stmt]) -> int:
    count = 0
    for stmt in body:
        if _is_load(stmt):
            count += 1
        elif not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                  and isinstance(stmt.value.value, str)):
            break
    return count


def _closure_cycles(tree: ast.Module) -> bool:
    """Whether a function nested in a top-level one uses the name of a function defined
    inside that top-level one (a def, or a name bound to a lambda): such a closure may
    hold itself through a cell."""
    for outer in tree.body:
        if not isinstance(outer, ast.FunctionDef):
            continue
        inner_functions: set[str] = set()
        nested: list[ast.AST] = []
        for node in ast.walk(outer):
            if node is outer:
                continue
            if isinstance(node, ast.FunctionDef):
                inner_functions.add(node.name)
                nested.append(node)
            elif isinstance(node, ast.Lambda):
                nested.append(node)
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda):
                for target in node.targets:
                    inner_functions.update(_bound_names(target))
        for function in nested:
            if _names_any(function, inner_functions):
                return True
    return False


def _names_in_functions(tree: ast.Module) -> frozenset[str]:
    names: set[str] = set()
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.Lambda):
            for node in ast.walk(function):
                if isinstance(node, ast.Name):
                    names.add(node.id)
                elif isinstance(node, ast.Attribute):
                    names.add(node.attr)
    return frozenset(names)


def _names_any(tree: ast.AST, names: set[str]) -> bool:
    return any(isinstance(node, ast.Name) and node.id in names for node in ast.walk(tree))


def _attributes_any(tree: ast.AST, names: set[str]) -> bool:
    return any(isinstance(node, ast.Attribute) and node.attr in names
               for node in ast.walk(tree))


def _load_spec(call: ast.Call, path: str, loc: Location) -> LoadSpec:
    module = _literal_path(call, path, loc, "load")
    symbols: list[tuple[str, str]] = []
    for arg in call.args[1:]:
        if not isinstance(arg, ast.Constant) or not isinstance(arg.value, str):
            raise TiltfileError("load() symbol names must be string literals", loc)
        symbols.append((arg.value, arg.value))
    for keyword in call.keywords:
        if keyword.arg is None or not isinstance(keyword.value, ast.Constant) \
                or not isinstance(keyword.value.value, str):
            raise TiltfileError("load() aliases must be name=\"symbol\"", loc)
        symbols.append((keyword.arg, keyword.value.value))
    for _, exported in symbols:
        if exported.startswith("_"):
            raise TiltfileError(f"load: symbol '{exported}' is private and cannot be loaded",
                                loc)
    return LoadSpec(module, tuple(symbols), loc, "load")


def _apply(lines: list[str], edits: list[_Edit]) -> tuple[list[str], dict[int, LineEdits]]:
    by_line: dict[int, list[_Edit]] = {}
    for edit in edits:
        by_line.setdefault(edit.line, []).append(edit)
    out = list(lines)
    shifts: dict[int, LineEdits] = {}
    for line, line_edits in by_line.items():
        original = lines[line - 1]
        # Insertions at one point keep the order they were made in (outer before inner).
        line_edits.sort(key=lambda e: (e.start, e.end > e.start, e.order))
        pieces: list[str] = []
        cursor = 0
        record = LineEdits()
        for edit in line_edits:
            if edit.start < cursor:
                continue
            pieces.append(original[cursor:edit.start])
            pieces.append(edit.text)
            record.shifts.append((edit.start, len(edit.text) - (edit.end - edit.start)))
            if edit.statement:
                record.statements[edit.start] = len(edit.text)
            cursor = edit.end
        pieces.append(original[cursor:])
        out[line - 1] = "".join(pieces)
        shifts[line] = record
    return out, shifts
