"""Which changed paths are never a change to the project: VCS and cache directories, and the
temporary and backup files editors and tools write next to the files they edit.

One table per kind of noise, each entry saying who writes it, so a new editor's habit is
one line here and one row in tests/unit/test_file_filters.py.
"""

from __future__ import annotations

import fnmatch
import os
import re

# Directories whose contents never feed a build or a local_resource.
IGNORED_DIRS = frozenset({
    ".git", ".hg", ".svn", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
    ".venv", ".idea", ".tox",
})
# A path under these (relative parts) is ignored too.
IGNORED_SUBPATHS = (("node_modules", ".cache"),)

# Glob patterns of file names, with who writes them.
TEMP_FILE_GLOBS: tuple[tuple[str, str], ...] = (
    ("*.swp", "vim swap"), ("*.swo", "vim swap"), ("*.swx", "vim swap"),
    ("*.swpx", "vim swap"), ("4913", "vim's write test"),
    ("*~", "backup (vim, emacs, nano)"), (".#*", "emacs lock"), ("#*#", "emacs autosave"),
    ("*___jb_tmp___", "JetBrains safe write"), ("*___jb_old___", "JetBrains safe write"),
    ("*.kate-swp", "Kate swap"), (".goutputstream-*", "GNOME save"),
    ("*.tmp", "temporary file"), (".DS_Store", "macOS Finder"),
)
# Regular expressions for names that a glob cannot pin down.
TEMP_FILE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # GNU sed -i writes the new content to sed + 6 random characters, then renames it.
    (re.compile(r"^sed[A-Za-z0-9]{6}$"), "sed -i"),
)


def temp_file_reason(name: str) -> str:
    """Who writes a file of this name as a temporary or backup file; '' for a real file."""
    for glob, who in TEMP_FILE_GLOBS:
        if fnmatch.fnmatchcase(name, glob):
            return who
    for pattern, who in TEMP_FILE_PATTERNS:
        if pattern.match(name):
            return who
    return ""


def is_noise(path: str) -> bool:
    """Whether a change to `path` is never a change to the project."""
    parts = path.split(os.sep)
    if any(part in IGNORED_DIRS for part in parts[:-1]) or parts[-1] in IGNORED_DIRS:
        return True
    for sub in IGNORED_SUBPATHS:
        for i in range(len(parts) - len(sub) + 1):
            if tuple(parts[i:i + len(sub)]) == sub:
                return True
    return bool(temp_file_reason(parts[-1]))
