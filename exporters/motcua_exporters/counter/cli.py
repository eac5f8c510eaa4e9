"""motcua-counter-exporter: the health of one counter PC (printers, scanner, token, portal, clock, disk)."""

from __future__ import annotations

import sys

from ..core.runner import arguments, run
from .exporter import CounterExporter

NAME = "motcua-counter-exporter"


def main(argv: list[str] | None = None) -> int:
    parser = arguments(NAME, __doc__ or NAME, "127.0.0.1:9110", "/etc/motcua/counter-exporter.yml")
    return run(NAME, parser.parse_args(argv), CounterExporter.from_file)


if __name__ == "__main__":
    sys.exit(main())
