"""motcua-board: the duty board (docs/board.md), served from the monitoring hosts."""

from __future__ import annotations

import sys

from ..core.runner import arguments, run
from .app import Board

NAME = "motcua-board"


def main(argv: list[str] | None = None) -> int:
    parser = arguments(NAME, __doc__ or NAME, "127.0.0.1:9443", "/etc/motcua/board.yml")
    return run(NAME, parser.parse_args(argv), Board.from_file)


if __name__ == "__main__":
    sys.exit(main())
