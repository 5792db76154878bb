"""Dockerfile syntax (devloop/model/dockerfile.py): instructions, ARGs, image uses, BuildKit."""

from __future__ import annotations

import pytest

from devloop.model import dockerfile


@pytest.mark.parametrize(("text", "expected"), [
    ("# comment\n\nFROM busybox\nRUN echo a \\\n  && echo b\nCMD [\"sh\"]\n",
     [(3, 3, "FROM", "busybox"), (4, 5, "RUN", "echo a && echo b"), (6, 6, "CMD", "[\"sh\"]")]),
    ("FROM a\n\n# c\nRUN echo \\\n  one \\\n  two\nCMD x\n",
     [(1, 1, "FROM", "a"), (4, 6, "RUN", "echo one two"), (7, 7, "CMD", "x")]),
    # Comments and blank lines inside a continued instruction do not end it.
    ("RUN a \\\n# note\n\n  b\nCMD c\n", [(1, 4, "RUN", "a b"), (5, 5, "CMD", "c")]),
    ("# escape=`\nFROM `\n  base\nRUN dir c:\\\n", [(2, 3, "FROM", "base"),
                                                  (4, 4, "RUN", "dir c:\\")]),
    # A heredoc's body is not read as instructions.
    ("FROM x\nCOPY <<EOF /etc/conf\nRUN --mount=type=cache x\nEOF\nCMD a\n",
     [(1, 1, "FROM", "x"), (2, 2, "COPY", "<<EOF /etc/conf"), (5, 5, "CMD", "a")]),
    ("FROM x\nRUN <<-'END' sh\n  FROM y\n  END\n",
     [(1, 1, "FROM", "x"), (2, 2, "RUN", "<<-'END' sh")]),
    ("from\tx\nRUN a \\\n", [(1, 1, "FROM", "x"), (2, 2, "RUN", "a")]),
    ("", []),
])
def test_instructions_with_their_lines(text: str, expected: list[tuple[int, int, str, str]]):
    found = dockerfile.parse(text).instructions
    assert [(i.line, i.end, i.keyword, i.args) for i in found] == expected


@pytest.mark.parametrize(("text", "flags", "args", "rest"), [
    ("FROM --platform=linux/amd64 base AS b", (("platform", "linux/amd64"),), "base AS b",
     "--platform=linux/amd64 base AS b"),
    ("COPY --link --from=tools /x /y", (("link", ""), ("from", "tools")), "/x /y",
     "--link --from=tools /x /y"),
    ("RUN echo --not-a-flag", (), "echo --not-a-flag", "echo --not-a-flag"),
])
def test_leading_flags_are_split_off(text: str, flags: tuple, args: str, rest: str):
    (ins,) = dockerfile.parse(text).instructions
    assert (ins.flags, ins.args, ins.rest, ins.text) == (flags, args, rest, text)


def test_flag_lookup():
    (ins,) = dockerfile.parse("COPY --link --from=tools /x /y\n").instructions
    assert (ins.flag("from"), ins.flag("link"), ins.flag("chmod")) == ("tools", "", None)


@pytest.mark.parametrize(("text", "directives"), [
    ("# syntax=docker/dockerfile:1\nFROM x\n", {"syntax": (1, "docker/dockerfile:1")}),
    ("# syntax=docker/dockerfile:1\n# escape=`\nFROM x\n",
     {"syntax": (1, "docker/dockerfile:1"), "escape": (2, "`")}),
    ("FROM x\n# syntax=docker/dockerfile:1\n", {}),
    ("# a comment\n# syntax=docker/dockerfile:1\nFROM x\n", {}),
])
def test_directives_only_count_at_the_top(text: str, directives: dict):
    assert dockerfile.parse(text).directives == directives


@pytest.mark.parametrize(("text", "values", "expected"), [
    ("${A}-$B-${C:-c}", {"A": "a"}, "a--c"),
    ("${A:-x}", {"A": "a"}, "a"),
    ("${A:+x}/${B:+y}", {"A": "a"}, "x/"),
    ("plain", {}, "plain"),
])
def test_substitute(text: str, values: dict[str, str], expected: str):
    assert dockerfile.substitute(text, values) == expected


@pytest.mark.parametrize(("args", "expected"), [
    ("a=1 b", [("a", "1"), ("b", None)]),
    ('"c=x y" d=', [("c", "x y"), ("d", "")]),
    ('e="unbalanced', [("e", '"unbalanced')]),
])
def test_arg_declarations(args: str, expected: list[tuple[str, str | None]]):
    assert dockerfile.arg_declarations(args) == expected


@pytest.mark.parametrize(("text", "build_args", "expected"), [
    ("FROM base\nRUN true\n", {}, ["base"]),
    ("FROM --platform=linux/amd64 base:1.2 AS build\n", {}, ["base:1.2"]),
    ("FROM base AS build\nFROM build\nCOPY --from=build /a /b\n", {}, ["base"]),
    ("FROM scratch\nCOPY --from=tools /bin/x /x\n", {}, ["tools"]),
    ("FROM a AS one\nFROM b\nCOPY --from=0 /x /y\n", {}, ["a", "b"]),
    ("ARG BASE=base\nFROM ${BASE}\n", {}, ["base"]),
    ("ARG BASE\nFROM ${BASE:-fallback}:latest\n", {}, ["fallback:latest"]),
    ("ARG V=1\nFROM img:$V\n", {}, ["img:1"]),
    ("# comment\nFROM \\\n  base\n", {}, ["base"]),
    ("# escape=`\nFROM `\n  base\n", {}, ["base"]),
    ("FROM base\nARG LATE=x\nFROM other:${LATE}\n", {}, ["base", "other:"]),
    ("ARG BASE=public\nFROM $BASE\n", {"BASE": "mine"}, ["mine"]),
    ("ARG T\nFROM x:${T:+tagged}\n", {"T": "1"}, ["x:tagged"]),
    ('ARG "N=a b" M=${N}\nFROM img:${M}\n', {}, ["img:a b"]),
    # A stage is only one once it is declared: an earlier FROM of the same name is an image.
    ("FROM base\nFROM x AS base\nFROM base\n", {}, ["base", "x"]),
    ("FROM x AS build\nRUN --mount=type=cache,target=/c --mount=type=bind,from=tools,"
     "target=/t true\nRUN --mount=from=build,target=/b true\n", {}, ["x", "tools"]),
])
def test_image_uses_after_substitution_without_stages(text: str, build_args: dict[str, str],
                                                      expected: list[str]):
    assert [use.ref for use in dockerfile.image_uses(text, build_args)] == expected


def test_image_uses_say_where_and_how():
    text = ("ARG PY=3.10\nARG BASE\nFROM python:${PY}-slim AS build\nFROM $BASE\n"
            "COPY --from=tools:1 /x /x\nRUN --mount=from=cache,target=/c true\n")
    found = dockerfile.image_uses(text, {"BASE": "golang:1.26"})
    assert [(u.line, u.keyword, u.ref, u.text) for u in found] == [
        (3, "FROM", "python:3.10-slim", "FROM python:${PY}-slim AS build"),
        (4, "FROM", "golang:1.26", "FROM $BASE"),
        (5, "COPY", "tools:1", "COPY --from=tools:1 /x /x"),
        (6, "RUN", "cache", "RUN --mount=from=cache,target=/c true"),
    ]


@pytest.mark.parametrize(("text", "line", "what"), [
    ("# syntax=docker/dockerfile:1\nFROM x\n", 1, "a `# syntax=` frontend line"),
    ("FROM x\nRUN --mount=type=cache,target=/root/.cache pip install .\n", 2,
     "RUN --mount=type=cache,target=/root/.cache"),
    ("FROM x\nCOPY --chown=1:1 a /a\nCOPY --chmod=755 run.sh /\n", 3, "COPY --chmod=755"),
    ("FROM x\nCOPY --link . /app\n", 2, "COPY --link"),
    ("FROM x\nRUN <<EOF\necho hi\nEOF\nRUN true\n", 2, "a heredoc in RUN"),
    ("FROM x\nADD --checksum=sha256:0 https://example.invalid/a /a\n", 2,
     "ADD --checksum=sha256:0"),
])
def test_buildkit_features_name_the_line(text: str, line: int, what: str):
    features = dockerfile.buildkit_features(text)
    assert (features[0].line, features[0].what) == (line, what)


def test_plain_dockerfile_needs_no_buildkit():
    text = "FROM --platform=linux/amd64 python:3.11-slim AS base\nCOPY --chown=1:1 . /a\n"
    assert dockerfile.buildkit_features(text) == []
