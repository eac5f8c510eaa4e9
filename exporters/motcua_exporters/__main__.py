"""``python3 -m motcua_exporters NAME [flags]`` (or ``python3 motcua-exporters.pyz NAME``): NAME is
dossier, counter, certificate or notify (the notification bridge). Counter PCs run the
exporters this way from one zip file."""

from __future__ import annotations

import importlib
import sys

EXPORTERS = ("dossier", "counter", "certificate", "notify")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in EXPORTERS:
        print(f"usage: motcua_exporters {{{','.join(EXPORTERS)}}} [--help]", file=sys.stderr)
        return 2
    cli = importlib.import_module(f"motcua_exporters.{args[0]}.cli")
    return cli.main(args[1:])


if __name__ == "__main__":
    sys.exit(main())
