"""The `motcua` command: each package's ``cli.add_parser`` adds its commands; main runs one.

A tool's refusal (:class:`~motcua.errors.ToolError`) is printed under the command's
name and an invalid input file (:class:`~motcua.validation.InputError`) with every
problem; both exit 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from .certs import cli as certs_cli
from .dossiers import cli as dossiers_cli
from .errors import ToolError
from .fleet import cli as fleet_cli
from .inventory import cli as inventory_cli
from .lab import cli as lab_cli
from .monitoring import cli as monitoring_cli
from .netgear import cli as netgear_cli
from .pull import cli as pull_cli
from .readiness import cli as readiness_cli
from .registry import cli as registry_cli
from .relocation import cli as relocation_cli
from .rosters import cli as rosters_cli
from .silences import cli as silences_cli
from .validation import InputError

# In the order `motcua --help` lists them.
COMMANDS = (
    registry_cli,
    inventory_cli,
    rosters_cli,
    monitoring_cli,
    netgear_cli,
    certs_cli,
    fleet_cli,
    pull_cli,
    readiness_cli,
    dossiers_cli,
    silences_cli,
    relocation_cli,
    lab_cli,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="motcua", description="Tools for HCMC's one-stop-shop fleet (motcua-ops).")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ToolError as exc:
        print(f"motcua {args.command}: {exc}", file=sys.stderr)
        return 2
    except InputError as exc:
        print(f"motcua: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
