"""motcua-dossier-exporter: probes the dossier system (Hệ thống thông tin giải quyết TTHC)."""

from __future__ import annotations

import sys

from ..core.runner import arguments, run
from .exporter import DossierExporter

NAME = "motcua-dossier-exporter"


def main(argv: list[str] | None = None) -> int:
    parser = arguments(NAME, __doc__ or NAME, "127.0.0.1:9111", "/etc/motcua/dossier-exporter.yml")
    return run(NAME, parser.parse_args(argv), DossierExporter.from_file)


if __name__ == "__main__":
    sys.exit(main())
