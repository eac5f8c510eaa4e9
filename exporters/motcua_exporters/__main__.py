"""``python3 -m motcua_exporters NAME [flags]`` (or ``python3 motcua-exporters.pyz NAME``): NAME is
dossier, counter, certificate, notify (the notification bridge) or board (the duty board), or dossier-report (the daily
dossier report), or pull (a counter's pull of its configuration, docs/pull.md), or pull-source (what the counters pull,
served to them). Counter PCs and the monitoring hosts run them this way from one zip file."""

from __future__ import annotations

import importlib
import sys

EXPORTERS = ("dossier", "counter", "certificate", "notify", "board")
# Tools beside the exporters, run from the same zip: name -> module with main(argv).
TOOLS = {
    "dossier-report": "motcua_exporters.dossier.report",
    "pull": "motcua_exporters.pull.apply",
    "pull-source": "motcua_exporters.pull.source",
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in (*EXPORTERS, *TOOLS):
        print(f"usage: motcua_exporters {{{','.join((*EXPORTERS, *TOOLS))}}} [--help]", file=sys.stderr)
        return 2
    cli = importlib.import_module(TOOLS.get(args[0], f"motcua_exporters.{args[0]}.cli"))
    return cli.main(args[1:])


if __name__ == "__main__":
    sys.exit(main())
