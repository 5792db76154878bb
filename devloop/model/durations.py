"""Durations as people type them on the command line."""

from __future__ import annotations


def parse_duration(text: str) -> float:
    """'30m', '90s', '1h30m', or plain seconds."""
    text = text.strip()
    if not text:
        raise ValueError("empty duration")
    if text.replace(".", "", 1).isdigit():
        return float(text)
    total, number = 0.0, ""
    units = {"h": 3600, "m": 60, "s": 1}
    for char in text:
        if char.isdigit() or char == ".":
            number += char
        elif char in units and number:
            total += float(number) * units[char]
            number = ""
        else:
            raise ValueError(f"invalid duration {text!r}")
    if number:
        raise ValueError(f"invalid duration {text!r}: missing unit")
    return total
