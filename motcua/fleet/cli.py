"""`motcua fleet`: diagnostic bundles and allow-listed remediations on counter PCs (fabric)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..access import PcAccess, Target, names, read_inventory_source
from ..parallel import Outcome, run_each
from . import tools


def _targets(args: argparse.Namespace) -> tuple[list[Target], PcAccess, Path]:
    source = read_inventory_source(Path(args.inventory))
    registry = source.load()
    targets = tools.select_targets(registry, source.lab, names(args.hosts), names(args.sites), names(args.roles))
    return targets, PcAccess.for_inventory(source, args.timeout), tools.run_log_path(source)


def _summary(outcomes: list[Outcome], what: str) -> int:
    failed = [o for o in outcomes if not o.ok]
    width = max([len(o.device.name) for o in outcomes] + [4])
    print(f"{'host':<{width}}  site   result / kết quả  seconds  detail")
    for o in outcomes:
        verdict = "ok / đạt" if o.ok else "FAILED / LỖI"
        detail = o.error if not o.ok else ""
        print(f"{o.device.name:<{width}}  {o.device.site:<5}  {verdict:<16}  {o.seconds:7.1f}  {detail}")
    print(f"{what}: {len(outcomes) - len(failed)} ok, {len(failed)} failed")
    if failed:
        print("retry just those: --hosts " + ",".join(o.device.name for o in failed))
    return 1 if failed else 0


def cmd_actions(_args: argparse.Namespace) -> int:
    for name, summary in tools.REMEDIES.items():
        print(
            f"{name:<16} {summary}\n{'':<16} runs: sudo -n {tools.REMEDY_WRAPPER} {name} (the action, then its check)"
        )
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    targets, access, log = _targets(args)
    outcomes = run_each(
        targets,
        lambda t: tools.remedy(t, access, args.action),
        args.workers,
        label=args.action,
        progress=not args.quiet,
    )
    tools.log_run(log, access, f"exec {args.action}", outcomes)
    if args.json:
        json.dump({o.device.name: {"ok": o.ok, "error": o.error, "result": o.value} for o in outcomes}, sys.stdout,
                  ensure_ascii=False, indent=2)  # fmt: skip
        print()
        return 0 if all(o.ok for o in outcomes) else 1
    return _summary(outcomes, args.action)


def cmd_diag(args: argparse.Namespace) -> int:
    targets, access, log = _targets(args)
    outcomes = run_each(
        targets, lambda t: tools.collect(t, access), args.workers, label="diag", progress=not args.quiet
    )
    tools.log_run(log, access, "diag", outcomes)
    scope = args.hosts.replace(",", "+") if args.hosts and len(targets) == 1 else f"{len(targets)}-hosts"
    if args.sites and not args.hosts:
        scope = "site-" + args.sites.replace(",", "+")
    out = Path(args.out) if args.out else Path.cwd() / "diag"
    bundle = tools.write_bundle(out, scope, outcomes)
    code = _summary(outcomes, "diag")
    print(f"bundle / gói chẩn đoán: {bundle}")
    return code


def add_parser(sub) -> None:
    fleet = sub.add_parser("fleet", help="counter PCs: diagnostic bundles and allow-listed remediations")
    fleet_sub = fleet.add_subparsers(dest="fleet_command", required=True)
    p = fleet_sub.add_parser("actions", help="the remediations `exec` may run, with their checks")
    p.set_defaults(func=cmd_actions)
    for name, func, text in (
        ("diag", cmd_diag, "collect logs, printer queues, token state, clock and network checks into a tarball"),
        ("exec", cmd_exec, "run one allow-listed remediation on the chosen hosts, then check it worked"),
    ):
        p = fleet_sub.add_parser(name, help=text, description=text)
        if name == "exec":
            p.add_argument("action", choices=sorted(tools.REMEDIES), help="see `motcua fleet actions`")
        p.add_argument("-i", "--inventory", default="inventory/lab", help="inventory (default: inventory/lab)")
        p.add_argument("--hosts", help="comma-separated host names, e.g. w26740-pc01")
        p.add_argument("--sites", help="comma-separated site codes (their counters)")
        p.add_argument("--roles", help="counter and/or kiosk: every such PC of the inventory (or of --sites)")
        p.add_argument("--workers", type=int, default=16, help="hosts at a time (default: 16)")
        p.add_argument("--timeout", type=float, default=30.0, help="seconds per connection and command (default: 30)")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        p.set_defaults(func=func)
        if name == "diag":
            p.add_argument("--out", help="folder for the bundle (default: ./diag)")
        else:
            p.add_argument("--json", action="store_true")
