"""``motcua validate`` and ``motcua summary``: the site registry checked and summarised."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from . import ADDRESS_SPACES, PHASES, REGIONS, Registry, check_registry
from .loader import ward_codes
from .official import MISMATCH_FIELD, RECORD_NAME, accept

DEFAULT_REGISTRY = "inventory/hcmc/registry"


def _add_registry_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--registry",
        default=DEFAULT_REGISTRY,
        help=f"registry directory (default: {DEFAULT_REGISTRY})",
    )


def cmd_validate(args: argparse.Namespace) -> int:
    registry, problems = check_registry(args.registry)
    if args.format == "json":
        json.dump(
            {"valid": not problems, "problems": [p.as_dict() for p in problems]},
            sys.stdout,
            ensure_ascii=False,
            indent=2,
        )
        print()
    elif problems:
        noun = "problem" if len(problems) == 1 else "problems"
        print(f"{args.registry}: INVALID, {len(problems)} {noun}:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
    else:
        assert registry is not None
        hosts = sum(1 for _ in registry.hosts())
        print(
            f"{args.registry}: OK: {len(registry.ward_sites)} wards, "
            f"{len(registry.centre_sites)} centres, {hosts} hosts"
        )
    return 1 if problems else 0


def summary_lines(registry: Registry, address_space: str) -> list[str]:
    """A human summary of the registry: counts by kind, region, phase, role."""
    lab = address_space == "lab"
    sites = list(registry.sites.values())
    roles = Counter(h.group for h in registry.hosts())
    lines = [
        f"Registry {registry.path} ({address_space} addresses)",
        f"  sites: {len(sites)}  ({len(registry.ward_sites)} wards, {len(registry.centre_sites)} centres)",
        "  ward types: "
        + ", ".join(f"{t} {n}" for t, n in sorted(Counter(s.ward_type for s in registry.ward_sites).items())),
        "  regions: " + ", ".join(f"{REGIONS[r]} {sum(1 for s in sites if s.region == r)}" for r in REGIONS),
        "  phases: " + ", ".join(f"{p} {sum(1 for s in sites if s.phase == p)}" for p in PHASES),
        "  hosts: " + ", ".join(f"{g} {n}" for g, n in sorted(roles.items())) + f"  (total {sum(roles.values())})",
        "",
        f"  {'site':<7} {'name':<58} {'region':<6} {'phase':<14} {'subnet':<16} counters",
    ]
    for site in sorted(sites, key=lambda s: (s.kind == "ward", s.code)):
        subnet = site.lab_subnet if lab else site.subnet
        lines.append(
            f"  {site.code:<7} {site.name[:58]:<58} {site.region:<6} {site.phase:<14} {subnet!s:<16} {site.counters}"
        )
    return lines


def cmd_summary(args: argparse.Namespace) -> int:
    registry = registry_or_report(args.registry)
    if registry is None:
        return 1
    if args.sites:
        registry = registry.subset(args.sites.split(","))
    print("\n".join(summary_lines(registry, args.address_space)))
    return 0


def cmd_accept_wards(args: argparse.Namespace) -> int:
    """Record wards.csv as the official list, after a decision changed it (everything else must validate)."""
    codes, problems = ward_codes(args.registry)
    _registry, others = check_registry(args.registry)
    problems += [p for p in others if p.field != MISMATCH_FIELD and p not in problems]
    if problems:
        print(f"{args.registry}: not accepted, {len(problems)} other problem(s) first:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    try:
        record = accept(Path(args.registry), args.note, codes)
    except ValueError as exc:
        print(f"motcua accept-wards: {exc}", file=sys.stderr)
        return 2
    print(f"{Path(args.registry) / RECORD_NAME}: the official list is now {record['count']} units "
          f"({record['accepted']}: {record['note']})")  # fmt: skip
    return 0


def registry_or_report(path: str) -> Registry | None:
    """The valid registry at ``path``; None after printing every problem (exit 1)."""
    registry, problems = check_registry(path)
    if problems or registry is None:
        cmd_validate(argparse.Namespace(registry=path, format="text"))
        return None
    return registry


def add_registry_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--registry", default=DEFAULT_REGISTRY, help=f"registry directory (default: {DEFAULT_REGISTRY})"
    )


def add_parser(sub) -> None:
    p = sub.add_parser("validate", help="validate the site registry; exit 1 and list every problem if invalid")
    add_registry_arg(p)
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("summary", help="print a summary of the registry (counts, sites, subnets)")
    add_registry_arg(p)
    p.add_argument("--address-space", choices=ADDRESS_SPACES, default="production")
    p.add_argument("--sites", help="comma-separated site codes (default: all)")
    p.set_defaults(func=cmd_summary)

    text = "record wards.csv as the official list after a decision changed it (the note says which)"
    p = sub.add_parser("accept-wards", help=text, description=text)
    add_registry_arg(p)
    p.add_argument(
        "--note", required=True, help='the decision and its date, e.g. "Nghị quyết 1685/NQ-UBTVQH15, 16/6/2025"'
    )
    p.set_defaults(func=cmd_accept_wards)
