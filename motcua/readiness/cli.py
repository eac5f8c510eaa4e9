"""``motcua readiness``: each site's go-live verdict from live checks, as HTML, CSV, JSON and metrics.

Exit status: 0 no site red (amber ones are listed); 1 a site is red; 2 bad input (nothing was checked).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from ..access import GearAccess, PcAccess, names, read_inventory_source
from ..errors import ToolError
from ..parallel import run_each
from ..times import TZ
from ..validation import InputError
from . import checks
from .report import LABELS, counts, write_report


class ReadinessError(ToolError):
    """Readiness refused its input (nothing was checked)."""


def run_readiness(args: argparse.Namespace) -> tuple[list[checks.SiteReadiness], dict]:
    from ..fleet import tools
    from ..rosters.officials import load_roster, usernames_by_site

    inventory = Path(args.inventory)
    source = read_inventory_source(inventory)
    registry = source.load()
    codes = names(args.sites) or [c for c, s in registry.sites.items() if s.hosts_by_role("counter")]
    unknown = sorted(set(codes) - set(registry.sites))
    if unknown:
        raise ReadinessError(f"unknown site(s): {', '.join(unknown)}")
    roster_path = Path(args.roster) if args.roster else source.config_file.parent / "roster.yml"
    if not roster_path.is_file():
        raise ReadinessError(f"{roster_path}: roster not found (--roster FILE): the accounts check needs it")
    try:
        officials = load_roster(roster_path, registry)
    except InputError as exc:
        raise ReadinessError(str(exc)) from None
    usernames = usernames_by_site(officials)
    targets = tools.select_targets(registry, source.lab, sites=codes)
    access = PcAccess.for_inventory(source, args.timeout)
    # The commit each pull ring names now, from the signed repository where this controller keeps it.
    from ..pull.cli import state_dir
    from ..pull.status import ring_commits

    rings = ring_commits(state_dir(source.lab, None) / "repo.git", registry.pull.rings if registry.pull else ())
    expected = {code: checks.expected_for(registry, code, usernames, rings) for code in codes}
    now = time.time() if args.now is None else args.now
    outcomes = run_each(
        targets,
        lambda t: checks.probe_counter(t, access, expected[t.site], now),
        args.workers,
        label="counters",
        progress=not args.quiet,
    )
    sites = {code: checks.SiteReadiness(code, registry.sites[code].name) for code in codes}
    for outcome in outcomes:
        if outcome.ok:
            sites[outcome.device.site].results += outcome.value
        else:  # the probe itself broke: that counter fails everything
            sites[outcome.device.site].results.append(
                checks.Result("reachable", checks.FAIL, outcome.error or "", outcome.device.name)
            )
    with_counters = {t.site for t in targets}
    for code, site in sites.items():
        checks.settle_tokens(site)
        if code not in with_counters:
            site.results.append(checks.Result("reachable", checks.FAIL, "không có máy quầy / no counter PC", None))
    if not args.no_gear:
        from ..netgear import ops
        from ..netgear.devices import select_devices

        devices = select_devices(registry, source.lab, sites=codes)
        gear = ops.diff(devices, GearAccess.for_inventory(source, timeout=args.timeout), args.workers,
                        progress=not args.quiet)  # fmt: skip
        for result, outcome in zip(checks.gear_results(gear), gear, strict=True):
            sites[outcome.device.site].results.append(result)
    created = dt.datetime.fromtimestamp(now, TZ)
    scope = f"{source.config_file.parent.name} inventory"
    written = write_report(Path(args.out), list(sites.values()), created.isoformat(timespec="seconds"), now, scope)
    return list(sites.values()), written


def cmd_readiness(args: argparse.Namespace) -> int:
    sites, written = run_readiness(args)
    width = max([len(s.name) for s in sites] + [10])
    print(f"{'site':<6} {'name':<{width}}  verdict / kết luận          problems")
    for s in sorted(sites, key=lambda s: s.code):
        problems = "; ".join(f"{r.host or s.code} {r.check}" for r in s.problems())
        print(f"{s.code:<6} {s.name:<{width}}  {s.verdict:<5} {LABELS[s.verdict]:<22}  {problems}")
    tally = counts(sites)
    print(f"{len(sites)} site(s): {tally['green']} green, {tally['amber']} amber, {tally['red']} red")
    for kind, path in written.items():
        print(f"{kind}: {path}")
    red = [s.code for s in sites if s.verdict == "red"]
    if red:
        print("not ready / chưa sẵn sàng: " + ",".join(red), file=sys.stderr)
    return 1 if red else 0


def add_parser(sub) -> None:
    text = "go-live readiness of each site from live checks: an HTML grid, CSV, JSON and metrics"
    p = sub.add_parser("readiness", help=text, description=text)
    p.add_argument("-i", "--inventory", default="inventory/lab", help="inventory (default: inventory/lab)")
    p.add_argument("--sites", help="comma-separated site codes (default: every site with counters)")
    p.add_argument("--roster", help="officials' roster (default: roster.yml beside the inventory's motcua.yml)")
    p.add_argument("--out", default="readiness", help="folder for the report files (default: ./readiness)")
    p.add_argument("--no-gear", action="store_true", help="skip the routers' and switches' compliance check")
    p.add_argument("--workers", type=int, default=16, help="hosts at a time (default: 16)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per connection and command (default: 30)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--now", type=float, default=None, help=argparse.SUPPRESS)  # tests: judge at another time
    p.set_defaults(func=cmd_readiness)
