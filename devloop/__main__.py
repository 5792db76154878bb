"""`python -m devloop` and the `devloop` command.

Loading the command line takes a fifth of a second; a Ctrl-C that comes meanwhile, or
while its arguments are read, ends it as quietly as one that comes once it runs (status
130), not with a traceback of imports.
"""

from __future__ import annotations

import sys

# What `devloop` returns when Ctrl-C stopped it (128 + SIGINT, as a shell reports it).
INTERRUPTED = 130


def main() -> int:
    try:
        from devloop.cli import main as run

        return run()
    except KeyboardInterrupt:  # before the command's own handling of Ctrl-C took over
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
