"""Editor temp/backup files, VCS and cache directories are never changes (engine/filters.py)."""

from __future__ import annotations

import os

import pytest

from devloop.engine.filters import is_noise, temp_file_reason


@pytest.mark.parametrize(("name", "who"), [
    ("sedAb12Cd", "sed -i"),
    ("sed3xYz9q", "sed -i"),
    (".app.py.swp", "vim swap"),
    (".app.py.swo", "vim swap"),
    ("4913", "vim's write test"),
    ("app.py~", "backup (vim, emacs, nano)"),
    (".#app.py", "emacs lock"),
    ("#app.py#", "emacs autosave"),
    ("app.py___jb_tmp___", "JetBrains safe write"),
    ("app.py___jb_old___", "JetBrains safe write"),
    ("app.py.kate-swp", "Kate swap"),
    (".goutputstream-ABC123", "GNOME save"),
    (".DS_Store", "macOS Finder"),
])
def test_editor_temp_files_name_who_writes_them(name, who):
    assert temp_file_reason(name) == who


@pytest.mark.parametrize("name", [
    "app.py", "sed.py", "sediment", "sedAb12", "sedAb12Cde", "Dockerfile", "4914",
    "requirements.txt", "notes.swp.md", "#notes", "jb_tmp.py",
])
def test_real_files_are_not_temp_files(name):
    assert temp_file_reason(name) == ""


@pytest.mark.parametrize(("path", "noise"), [
    ("/p/.git/index", True),
    ("/p/src/__pycache__/app.cpython-311.pyc", True),
    ("/p/node_modules/.cache/x", True),
    ("/p/node_modules/left-pad/index.js", False),
    ("/p/.venv/lib/site.py", True),
    ("/p/src/sedQw3rTy", True),
    ("/p/src/app.py", False),
    ("/p/src/app.py~", True),
    ("/p/.github/workflows/ci.yml", False),
])
def test_paths_under_ignored_directories_or_with_temp_names_are_noise(path, noise):
    assert is_noise(path.replace("/", os.sep)) is noise
