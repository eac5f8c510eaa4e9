"""``motcua dashboards`` and ``motcua bundle-exporters``: monitoring artefacts the roles install."""

from __future__ import annotations

import argparse
from pathlib import Path

from .bundle import write_bundle
from .dashboards import write


def cmd_dashboards(args: argparse.Namespace) -> int:
    written = write(Path(args.output))
    print(
        f"{args.output}: {len(written)} dashboard(s) written"
        + (f": {', '.join(p.name for p in written)}" if written else ", all up to date")
    )
    return 0


def cmd_bundle_exporters(args: argparse.Namespace) -> int:
    changed = write_bundle(Path(args.output))
    print(f"{args.output}: {'written' if changed else 'unchanged'}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("dashboards", help="write the Grafana dashboards (JSON) into a directory")
    p.add_argument("output", help="e.g. roles/monitoring_dashboards/files")
    p.set_defaults(func=cmd_dashboards)

    p = sub.add_parser("bundle-exporters", help="write the exporters as one zip file for counter PCs (python3 FILE)")
    p.add_argument("output", help="e.g. .cache/motcua-exporters.pyz")
    p.set_defaults(func=cmd_bundle_exporters)
