"""motcua-certificate-exporter: when the wards' and the city's certificates expire."""

from __future__ import annotations

import sys

from ..core.runner import arguments, run
from .exporter import CertificateExporter

NAME = "motcua-certificate-exporter"


def main(argv: list[str] | None = None) -> int:
    parser = arguments(NAME, __doc__ or NAME, "127.0.0.1:9112", "/etc/motcua/certificate-exporter.yml")
    return run(NAME, parser.parse_args(argv), CertificateExporter.from_file)


if __name__ == "__main__":
    sys.exit(main())
