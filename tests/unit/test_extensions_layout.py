"""ext:// loads as in Tilt: v1alpha1.extension_repo()/extension() redirect them, and git
repositories are laid out under tilt_modules/ so extensions can find it from their file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devloop.tiltfile.errors import TiltfileError
from devloop.tiltfile.loader import import_path

HELLO = "def hello(n):\n    return 'hi ' + n\n"


def _repo(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture
def no_default_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default repository does not exist: a load that uses it fails."""
    monkeypatch.setenv("DEVLOOP_EXTENSIONS_REPO", str(tmp_path / "no-default"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


def test_extension_repo_named_default_redirects_ext_loads(tiltfile, tmp_path,
                                                          no_default_repo) -> None:
    repo = _repo(tmp_path / "custom", {"hello/Tiltfile": HELLO})
    result = tiltfile(f"""
        v1alpha1.extension_repo(name="default", url="file://{repo}")
        load("ext://hello", "hello")
        print(hello("x"))
    """)
    assert result.output == ("hi x",)


def test_extension_object_points_at_a_path_in_a_named_repo(tiltfile, tmp_path,
                                                           no_default_repo) -> None:
    repo = _repo(tmp_path / "mine", {"deep/path/greeter/Tiltfile": HELLO})
    result = tiltfile(f"""
        v1alpha1.extension_repo(name="mine", url="file://{repo}")
        v1alpha1.extension(name="greet", repo_name="mine", repo_path="deep/path/greeter")
        load("ext://greet", "hello")
        print(hello("y"))
    """)
    assert result.output == ("hi y",)


def test_load_host_maps_a_module_prefix_to_a_repo(tiltfile, tmp_path, no_default_repo) -> None:
    repo = _repo(tmp_path / "hosted", {"sub/tools/greeter/Tiltfile": HELLO})
    result = tiltfile(f"""
        v1alpha1.extension_repo(name="h", url="file://{repo}", load_host="example.com",
                                git_subpath="sub")
        load("ext://example.com/tools/greeter", "hello")
        print(hello("z"))
    """)
    assert result.output == ("hi z",)


def test_extension_in_an_undeclared_repo_is_a_clear_error(tiltfile, no_default_repo) -> None:
    with pytest.raises(TiltfileError) as info:
        tiltfile("""
            v1alpha1.extension(name="greet", repo_name="nowhere", repo_path="greeter")
            load("ext://greet", "hello")
        """)
    assert "extension repo 'nowhere', which is not declared" in info.value.message
    assert (info.value.location.line, info.value.location.column) == (3, 1)


def test_git_repository_is_cloned_under_tilt_modules_and_found_from_the_extension(
        tiltfile, tmp_path, monkeypatch) -> None:
    work = _repo(tmp_path / "src", {
        "walker/Tiltfile": (
            "def _modules_root():\n"
            "    current = os.path.abspath('./')\n"
            "    for _ in range(64):\n"
            "        if os.path.exists(os.path.join(current, 'tilt_modules')):\n"
            "            return current\n"
            "        current = os.path.dirname(current)\n"
            "    fail('no tilt_modules above ' + os.path.abspath('./'))\n"
            "root = _modules_root()\n")})
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q", str(work)], check=True)
    subprocess.run([*git, "-C", str(work), "add", "."], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-qm", "x"], check=True)
    bare = tmp_path / "exts.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    monkeypatch.setenv("DEVLOOP_EXTENSIONS_REPO", str(bare))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    result = tiltfile('load("ext://walker", "root")\nprint(root)\n')
    data = tmp_path / "data" / "devloop"
    assert result.output == (str(data),)
    checkout = data / "tilt_modules" / import_path(str(bare))
    assert (checkout / "walker" / "Tiltfile").is_file()
    assert str(checkout / "walker" / "Tiltfile") in result.plan.config_files


@pytest.mark.parametrize(("url", "path"), [
    ("https://github.com/tilt-dev/tilt-extensions", "github.com/tilt-dev/tilt-extensions"),
    ("https://github.com/org/repo.git", "github.com/org/repo"),
    ("git@github.com:org/repo.git", "github.com/org/repo"),
    ("/srv/git/exts.git/", "srv/git/exts"),
])
def test_import_path_of_a_repository(url: str, path: str) -> None:
    assert import_path(url) == path
