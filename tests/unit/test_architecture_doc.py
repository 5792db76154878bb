"""docs/architecture.md cannot go stale: the files it names exist, and its layer picture is the
import-linter contract's."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text()


def test_every_file_the_architecture_names_exists():
    named = set(re.findall(r"`((?:devloop|web|docs|tests)/[\w./-]+)`", DOC))
    named |= {path for path in re.findall(r"\b((?:devloop|web)/[\w/]+\.(?:py|js))\b", DOC)}
    assert named, "the document names no file"
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert missing == []


def test_the_layer_picture_is_the_import_contract():
    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = contract["contracts"][0]["layers"]
    picture = DOC.split("```")[1]
    shown = [line.split()[0] for line in picture.splitlines() if line.startswith("devloop.")]
    assert shown == [layer.split(" : ")[0].split()[0] for layer in layers]
    for layer in layers:  # the packages sharing a layer are on its line
        names = [name.strip().removeprefix("devloop.") for name in layer.split(":")]
        line = next(line for line in picture.splitlines() if line.startswith(
            layer.split(" : ")[0]))
        assert all(name in line for name in names), (layer, line)
