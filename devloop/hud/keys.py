"""Key presses from the terminal: raw bytes read in a thread, decoded into key names.

The terminal goes into cbreak mode (no line buffering, no echo; Ctrl-C still raises SIGINT,
so a stuck UI can always be interrupted) and its previous mode is restored on stop, which the
UI calls from a `finally`. Why a thread: reading stdin blocks; the thread is the one seam,
woken for shutdown through a pipe rather than by polling.
"""

from __future__ import annotations

import contextlib
import os
import select
import termios
import threading
import tty
from collections.abc import Callable
from typing import Any, Protocol

UP, DOWN, LEFT, RIGHT = "up", "down", "left", "right"
PAGE_UP, PAGE_DOWN, HOME, END = "page_up", "page_down", "home", "end"
ENTER, ESCAPE, CTRL_C, BACKSPACE = "enter", "escape", "ctrl-c", "backspace"

_SEQUENCES = {b"[A": UP, b"[B": DOWN, b"[C": RIGHT, b"[D": LEFT, b"OA": UP, b"OB": DOWN,
              b"OC": RIGHT, b"OD": LEFT, b"[5~": PAGE_UP, b"[6~": PAGE_DOWN, b"[H": HOME,
              b"[F": END, b"OH": HOME, b"OF": END, b"[1~": HOME, b"[4~": END}
_SINGLE = {b"\r": ENTER, b"\n": ENTER, b"\x03": CTRL_C, b"\x7f": BACKSPACE, b"\x08": BACKSPACE}

# Largest chunk read at once; a paste longer than this simply arrives in several reads.
READ_CHUNK = 1024


def decode(data: bytes) -> list[str]:
    """Key names for a chunk of terminal input: arrows and friends by name, printable
    characters as themselves. Unknown escape sequences are skipped whole."""
    keys: list[str] = []
    i = 0
    while i < len(data):
        byte = data[i:i + 1]
        if byte == b"\x1b":
            rest = data[i + 1:]
            if rest[:1] in (b"[", b"O") and len(rest) > 1:
                end = 1
                # CSI parameters run until a final byte in 0x40..0x7e.
                while end < len(rest) and not 0x40 <= rest[end] <= 0x7E:
                    end += 1
                sequence = rest[:end + 1]
                name = _SEQUENCES.get(sequence)
                if name:
                    keys.append(name)
                i += 1 + len(sequence)
                continue
            keys.append(ESCAPE)
            i += 1
            continue
        if byte in _SINGLE:
            keys.append(_SINGLE[byte])
            i += 1
            continue
        # A UTF-8 character is 1 to 4 bytes; the lead byte says how many.
        lead = data[i]
        size = 1 if lead < 0xC0 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
        char = data[i:i + size].decode("utf-8", errors="replace")
        if char.isprintable():
            keys.append(char)
        i += size
    return keys


class KeySource(Protocol):
    """Where the UI gets key names from; `deliver` may be called from another thread."""

    def start(self, deliver: Callable[[str], None]) -> None: ...

    def stop(self) -> None: ...


class TerminalKeys:
    """Reads keys from a terminal file descriptor (normally stdin) in a daemon thread."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._saved: list[Any] | None = None
        self._wake_read, self._wake_write = -1, -1
        self._thread: threading.Thread | None = None

    def start(self, deliver: Callable[[str], None]) -> None:
        self._saved = termios.tcgetattr(self.fd)
        try:
            tty.setcbreak(self.fd, termios.TCSANOW)
            self._wake_read, self._wake_write = os.pipe()
            self._thread = threading.Thread(target=self._read, args=(deliver,),
                                            name="hud-keys", daemon=True)
            self._thread.start()
        except BaseException:
            self.stop()
            raise

    def _read(self, deliver: Callable[[str], None]) -> None:
        while True:
            ready, _, _ = select.select([self.fd, self._wake_read], [], [])
            if self._wake_read in ready:
                return
            try:
                data = os.read(self.fd, READ_CHUNK)
            except OSError:  # the terminal went away
                return
            if not data:
                return
            for key in decode(data):
                deliver(key)

    def stop(self) -> None:
        """Stop the thread and give the terminal back its mode; safe to call twice."""
        if self._wake_write >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_write, b"x")
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for fd in (self._wake_read, self._wake_write):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._wake_read, self._wake_write = -1, -1
        if self._saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None
