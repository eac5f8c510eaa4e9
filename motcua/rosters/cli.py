"""``motcua roster`` (officials' roster) and ``motcua duty`` (the duty roster, and who is on duty)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

from ..errors import ToolError
from ..registry.cli import add_registry_arg, registry_or_report
from .duty import SYSTEM, check_duty_roster
from .officials import accounts_by_site, check_roster


def _local_time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date and time like 2025-07-02T08:00") from None


def cmd_roster_validate(args: argparse.Namespace) -> int:
    registry = registry_or_report(args.registry)
    if registry is None:
        return 1
    officials, problems = check_roster(args.roster, registry)
    if problems:
        print(f"{args.roster}: INVALID, {len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    sites = accounts_by_site(officials)
    print(f"{args.roster}: OK: {len(officials)} officials at {len(sites)} sites")
    return 0


def cmd_duty(args: argparse.Namespace) -> int:
    registry = registry_or_report(args.registry)
    if registry is None:
        return 1
    registry = registry.subset(args.sites.split(",") if args.sites else None)
    roster, problems = check_duty_roster(args.roster, registry)
    if problems or roster is None:
        print(f"{args.roster}: INVALID, {len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    if args.who:
        if args.who != SYSTEM and args.who not in registry.sites:
            raise ToolError(f"--who {args.who}: not a site of the registry (a site code, or {SYSTEM})")
        zone = ZoneInfo(roster.timezone)
        when = args.at or datetime.now(zone)
        if when.tzinfo is not None:  # a time with an offset: the roster's local time then
            when = when.astimezone(zone).replace(tzinfo=None)
        site = None if args.who == SYSTEM else args.who
        people = roster.on_duty(site, when)
        for person in people or [roster.lead]:
            contact = ", ".join(str(c) for c in (person.phone, person.email, person.telegram_chat_id) if c)
            print(f"{person.name} ({person.id}){'' if people else ' - nobody on duty: the lead'}: {contact}")
        return 0
    first, last = roster.window
    print(
        f"{args.roster}: OK: {len(roster.shifts)} shifts, {len(roster.people)} people, "
        f"{first}..{last} ({roster.timezone}), every site's opening hours and the dossier system covered; "
        f"lead {roster.lead.name}"
    )
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("roster", help="check an officials' roster (YAML or CSV) against the registry")
    p.add_argument("roster", help="roster file, e.g. inventory/lab/roster.yml")
    add_registry_arg(p)
    p.set_defaults(func=cmd_roster_validate)

    p = sub.add_parser("duty", help="check a duty roster for the launch window; --who: who is on duty for a site")
    p.add_argument("roster", help="duty roster file, e.g. inventory/lab/duty.yml")
    add_registry_arg(p)
    p.add_argument("--sites", help="comma-separated site codes the roster must cover (default: all)")
    p.add_argument("--who", metavar="SITE", help="a site code, or 'system' for the dossier system")
    p.add_argument("--at", type=_local_time, help="local time, e.g. 2025-07-02T08:00, or with an offset (default: now)")
    p.set_defaults(func=cmd_duty)
