"""Build-context filtering: .dockerignore semantics, only=, ignore=, the tar and its digest."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from devloop.build.context import (
    GENERATED_DOCKERFILE,
    ContextFilter,
    PatternMatcher,
    buildkit_ignore_patterns,
    context_digest,
    make_build_context,
)
from devloop.model import plan


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        (["*.log"], "a.log", True),
        (["*.log"], "dir/a.log", False),  # * stays within one segment
        (["**/*.log"], "dir/sub/a.log", True),
        (["**/*.log"], "a.log", True),  # **/ may match zero directories
        (["build"], "build/out/x.o", True),  # a directory pattern covers its contents
        (["build/**"], "build", False),
        (["build/**"], "build/x", True),
        (["a/**/z"], "a/z", True),
        (["a/**/z"], "a/b/c/z", True),
        (["?.txt"], "ab.txt", False),
        (["?.txt"], "a.txt", True),
        (["*.md", "!README.md"], "README.md", False),
        (["*.md", "!README.md"], "CHANGES.md", True),
        (["*.md", "!README.md", "README*"], "README.md", True),  # last match wins
        (["/node_modules"], "node_modules/x.js", True),  # leading slash is the root
        (["./tmp/"], "tmp/file", True),
        (["# comment", ""], "# comment", False),
        (["a.b"], "axb", False),  # dots are literal
        (["[ab].c"], "b.c", True),
        (["**"], "anything/at/all", True),
        (["**", "!src"], "src/main.py", False),
    ],
)
def test_pattern_matcher_follows_docker_semantics(patterns, path, excluded):
    assert PatternMatcher(patterns).matches(path) is excluded


def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def _target(root: Path, **kwargs) -> plan.DockerBuild:
    kwargs.setdefault("dockerfile", str(root / "Dockerfile"))
    return plan.DockerBuild(ref="app", context=str(root), **kwargs)


def _names(target: plan.DockerBuild) -> dict[str, bytes]:
    ctx = make_build_context(target)
    try:
        with tarfile.open(fileobj=ctx.tar) as tar:
            return {m.name: (tar.extractfile(m).read() if m.isreg() else b"")  # type: ignore[union-attr]
                    for m in tar.getmembers()}
    finally:
        ctx.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    _tree(tmp_path, {
        "Dockerfile": "FROM busybox\nCOPY . /app\n",
        ".dockerignore": "*.log\nsecrets\n!secrets/public.txt\n",
        "main.py": "print('hi')\n",
        "debug.log": "noise",
        "secrets/key.pem": "x",
        "secrets/public.txt": "ok",
        "src/lib.py": "x = 1\n",
        "docs/index.md": "# docs",
    })
    return tmp_path


def test_context_excludes_dockerignored_files_and_keeps_exceptions(project):
    names = _names(_target(project))
    assert "main.py" in names and "src/lib.py" in names
    assert "debug.log" not in names and "secrets/key.pem" not in names
    assert "secrets/public.txt" in names
    assert "Dockerfile" in names and ".dockerignore" in names


def test_ignore_argument_adds_patterns_after_dockerignore(project):
    names = _names(_target(project, ignore=("docs",)))
    assert not any(n.startswith("docs") for n in names)
    assert "main.py" in names


def test_only_keeps_listed_paths_plus_dockerfile(project):
    names = _names(_target(project, only=("src", "./main.py")))
    files = {n for n in names if not n.endswith("/") and n not in ("src",)}
    assert files == {"src/lib.py", "main.py", "Dockerfile", ".dockerignore"}


def test_dockerfile_contents_is_added_under_a_hidden_name(project):
    target = _target(project, dockerfile="", dockerfile_contents="FROM scratch\n")
    names = _names(target)
    assert names[GENERATED_DOCKERFILE] == b"FROM scratch\n"
    # The daemon drops listed files, so COPY . . does not see the generated Dockerfile.
    assert GENERATED_DOCKERFILE in names[".dockerignore"].decode().splitlines()
    ctx = make_build_context(target)
    assert ctx.dockerfile == GENERATED_DOCKERFILE
    ctx.close()


def test_dockerfile_outside_context_is_sent(tmp_path):
    _tree(tmp_path, {"ctx/a.txt": "a", "docker/app.Dockerfile": "FROM busybox\n"})
    target = plan.DockerBuild(ref="app", context=str(tmp_path / "ctx"),
                              dockerfile=str(tmp_path / "docker/app.Dockerfile"))
    names = _names(target)
    assert names[GENERATED_DOCKERFILE] == b"FROM busybox\n"
    assert "a.txt" in names


def test_digest_changes_with_included_content_only(project):
    target = _target(project)
    before = context_digest(target)
    assert context_digest(target) == before  # deterministic
    (project / "debug.log").write_text("more noise")
    assert context_digest(target) == before  # ignored file
    os.utime(project / "main.py", (1, 1))
    assert context_digest(target) == before  # mtimes do not count
    (project / "main.py").write_text("print('changed')\n")
    assert context_digest(target) != before


def test_digest_changes_with_executable_bit(project):
    target = _target(project)
    before = context_digest(target)
    os.chmod(project / "main.py", 0o755)
    assert context_digest(target) != before


def test_files_are_owned_by_root(project):
    ctx = make_build_context(_target(project))
    with tarfile.open(fileobj=ctx.tar) as tar:
        assert {(m.uid, m.gid) for m in tar.getmembers()} == {(0, 0)}
    ctx.close()


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("main.py", False),
        ("debug.log", True),
        ("secrets/key.pem", True),
        ("secrets/public.txt", False),
        ("Dockerfile", False),
        (".dockerignore", False),
        ("../elsewhere.txt", True),
    ],
)
def test_is_ignored_answers_for_the_watcher(project, path, ignored):
    flt = ContextFilter.for_build(_target(project))
    assert flt.is_ignored(str(project / path)) is ignored
    assert flt.is_ignored(path) is ignored  # relative paths are relative to the context


def test_is_ignored_with_only_keeps_dockerfile_outside_context(tmp_path):
    _tree(tmp_path, {"ctx/src/a.py": "", "ctx/b.py": "", "Dockerfile": "FROM busybox\n"})
    flt = ContextFilter.for_build(plan.DockerBuild(
        ref="app", context=str(tmp_path / "ctx"), dockerfile=str(tmp_path / "Dockerfile"),
        only=("src",)))
    assert not flt.is_ignored(str(tmp_path / "ctx/src/a.py"))
    assert flt.is_ignored(str(tmp_path / "ctx/b.py"))
    assert not flt.is_ignored(str(tmp_path / "Dockerfile"))


def test_missing_context_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        make_build_context(plan.DockerBuild(ref="a", context=str(tmp_path / "nope"),
                                            dockerfile="", dockerfile_contents="FROM x"))


def test_excluded_directory_with_exception_inside_is_descended(tmp_path):
    _tree(tmp_path, {"Dockerfile": "FROM x", ".dockerignore": "vendor\n!vendor/keep/**\n",
                     "vendor/keep/a.txt": "a", "vendor/drop/b.txt": "b"})
    names = _names(_target(tmp_path))
    assert "vendor/keep/a.txt" in names
    assert "vendor/drop/b.txt" not in names


def test_buildkit_ignore_file_matches_the_tar_filter(project):
    # The same filter as one ignore file, for builds where BuildKit reads the directory.
    target = _target(project, only=("src", "main.py", "debug.log", "secrets"), ignore=("docs",))
    patterns = buildkit_ignore_patterns(target)
    assert patterns[:5] == ["*", "!src", "!main.py", "!debug.log", "!secrets"]
    matcher = PatternMatcher(patterns)
    sent = {n for n in _names(target) if n not in ("Dockerfile", ".dockerignore")}
    for rel in ("main.py", "debug.log", "secrets/key.pem", "secrets/public.txt",
                "src/lib.py", "docs/index.md"):
        assert (rel in sent) == (not matcher.matches(rel)), rel


def test_tar_starts_with_the_dockerfile(project):
    ctx = make_build_context(_target(project))
    try:
        with tarfile.open(fileobj=ctx.tar) as tar:
            assert tar.getmembers()[0].name == "Dockerfile"
    finally:
        ctx.close()
