"""Fuzzing the evaluator: whatever the Tiltfile says, evaluation ends with a Plan or a
TiltfileError at a real place, never another exception.

Bounded for the normal suite: 60 examples per property, derandomized so that a run is
reproducible (about 4 s here). DEVLOOP_FUZZ_EXAMPLES=N runs N random examples per property
instead, for a longer search. Commands
are never run: `local()` and the builtins that start programs are left out of the
generated calls, and ext:// loads point at an empty repository.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devloop.tiltfile.areas import default_areas
from devloop.tiltfile.context import EvalContext
from devloop.tiltfile.errors import TiltfileError
from devloop.tiltfile.evaluator import evaluate

EXAMPLES = int(os.environ.get("DEVLOOP_FUZZ_EXAMPLES", "60"))
# Builtins that run programs (their effects are tested with real commands elsewhere).
RUNS_PROGRAMS = {"local", "helm", "kustomize", "docker_compose", "kubectl"}


def _builtin_names() -> list[str]:
    names: set[str] = set()
    for area in default_areas(EvalContext(main_path="/nonexistent/Tiltfile")):
        names.update(area.builtins())
        names.update(area.environ_builtins())
    return sorted(name for name in names if name not in RUNS_PROGRAMS)


BUILTINS = _builtin_names()
NAMES = ["x", "y", "s", "items", "f"]
FILES = ["lib.star", "sub/Tiltfile", "app.yaml", "missing.star", "Tiltfile", "."]

literals = st.one_of(
    st.integers(-3, 10**20).map(str), st.sampled_from(["None", "True", "False", "[]", "{}"]),
    st.text(max_size=12).map(repr), st.sampled_from(FILES).map(repr),
    st.sampled_from(["struct(a=1)", "blob('b')", "[1, 'a']", "{'k': 'v'}", "set([1])",
                     "lambda v: v", "(1,)", "os.environ"]))


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    choice = draw(st.integers(0, 6 if depth < 2 else 1))
    if choice == 0:
        return draw(literals)
    if choice == 1:
        return draw(st.sampled_from(NAMES))
    if choice == 2:
        op = draw(st.sampled_from(["+", "-", "*", "%", "==", "in", "and", "|", "//"]))
        return f"({draw(expressions(depth + 1))} {op} {draw(expressions(depth + 1))})"
    if choice == 3:
        return f"{draw(expressions(depth + 1))}.{draw(st.sampled_from(['a', 'keys', 'x']))}"
    if choice == 4:
        return f"{draw(expressions(depth + 1))}[{draw(expressions(depth + 1))}]"
    function = draw(st.sampled_from(BUILTINS + ["include", "load_dynamic", "str", "len",
                                                "getattr", "dir", "type", "print", "f"]))
    args = draw(st.lists(expressions(depth + 1), max_size=3))
    keywords = st.sampled_from(["name", "deps", "path", "labels"])
    kwargs = draw(st.lists(st.tuples(keywords, expressions(depth + 1)), max_size=2,
                           unique_by=lambda kv: kv[0]))
    return f"{function}({', '.join(args + [f'{k}={v}' for k, v in kwargs])})"


@st.composite
def statements(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 6))
    expr = draw(expressions())
    if kind == 0:
        return f"{draw(st.sampled_from(NAMES))} = {expr}"
    if kind == 1:
        return f"if {expr}:\n    {draw(expressions())}"
    if kind == 2:
        return f"for {draw(st.sampled_from(NAMES))} in {expr}:\n    {draw(expressions())}"
    if kind == 3:
        return f"def f(v):\n    return {expr}"
    if kind == 4:
        return (f"load({draw(st.sampled_from(FILES + ['ext://none']))!r}, "
                f"{draw(st.sampled_from(['x', 'y', '_p']))!r})")
    return expr


def _project(root: Path) -> None:
    (root / "sub").mkdir(exist_ok=True)
    (root / "lib.star").write_text("x = 1\ny = [1]\n_p = 2\ndef f(v):\n    return v\n")
    (root / "sub" / "Tiltfile").write_text('include("../lib.star")\nx = struct(a=2)\n')
    (root / "app.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")


def _check(path: Path) -> None:
    try:
        evaluate(str(path))
    except TiltfileError as exc:
        text = str(exc)
        assert "Traceback" not in text and "__dl_" not in text, text
        if exc.location is not None and exc.location.path.startswith(str(path.parent)):
            lines = Path(exc.location.path).read_bytes().count(b"\n") + 2
            assert 0 <= exc.location.line <= lines, (text, lines)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    _project(root)
    (root / "extensions").mkdir()
    return root


# The suite's run is reproducible; a longer search (DEVLOOP_FUZZ_EXAMPLES) explores anew.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize="DEVLOOP_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(program=st.lists(statements(), min_size=1, max_size=8))
def test_generated_programs_end_in_a_plan_or_a_located_error(
        project: Path, program: list[str], monkeypatch_module: pytest.MonkeyPatch) -> None:
    path = project / "Tiltfile"
    path.write_text("\n".join(program) + "\n")
    _check(path)


@FUZZ
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_end_in_a_plan_or_a_located_error(
        project: Path, data: bytes, monkeypatch_module: pytest.MonkeyPatch) -> None:
    path = project / "Tiltfile"
    path.write_bytes(data)
    _check(path)


@FUZZ
@given(pieces=st.lists(st.sampled_from(list("()[]{}:.,=+-*\"'\\#\n\t x1_") +
                                      ["def ", "load(", "if ", "for ", "in ", "\x00", "é",
                                       "lambda", "include(", "struct(", "    "]), max_size=60))
def test_punctuation_soup_ends_in_a_plan_or_a_located_error(
        project: Path, pieces: list[str], monkeypatch_module: pytest.MonkeyPatch) -> None:
    path = project / "Tiltfile"
    path.write_text("".join(pieces))
    _check(path)


@pytest.fixture(scope="module")
def monkeypatch_module(project: Path):  # noqa: ANN201
    patch = pytest.MonkeyPatch()
    patch.setenv("DEVLOOP_EXTENSIONS_REPO", str(project / "extensions"))
    patch.setenv("DEVLOOP_TILTFILE_TIMEOUT", "10")
    yield patch
    patch.undo()
