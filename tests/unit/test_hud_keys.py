"""Key decoding, and reading keys from a real pseudo-terminal in cbreak mode."""

from __future__ import annotations

import os
import queue
import termios

import pytest

from devloop.hud import keys as k


@pytest.mark.parametrize(("data", "expected"), [
    (b"j", ["j"]),
    (b"jjk", ["j", "j", "k"]),
    (b"\x1b[A\x1b[B", [k.UP, k.DOWN]),
    (b"\x1bOA\x1bOB", [k.UP, k.DOWN]),
    (b"\r", [k.ENTER]),
    (b"\n", [k.ENTER]),
    (b"\x03", [k.CTRL_C]),
    (b"\x1b", [k.ESCAPE]),
    (b"\x1b[5~q", [k.PAGE_UP, "q"]),
    (b"\x1b[1;5Aq", ["q"]),  # ctrl-up: unknown, skipped whole
    ("é".encode(), ["é"]),
    (b"\x01", []),
])
def test_decode(data, expected):
    assert k.decode(data) == expected


def test_reads_keys_from_a_terminal_and_restores_its_mode_on_stop():
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        assert before[3] & termios.ICANON
        got: queue.Queue[str] = queue.Queue()
        reader = k.TerminalKeys(slave)
        reader.start(got.put)
        assert not termios.tcgetattr(slave)[3] & (termios.ICANON | termios.ECHO)
        os.write(master, b"j\x1b[Bq")
        assert [got.get(timeout=10) for _ in range(3)] == ["j", k.DOWN, "q"]
        reader.stop()
        assert termios.tcgetattr(slave) == before
        reader.stop()  # twice is harmless
    finally:
        os.close(master)
        os.close(slave)
