"""``motcua netgear``: backup, diff, verify and restore the routers and switches.

Exit status: 0 all well; 1 drift found, or a device failed (named in the
output); 2 bad input (nothing was done).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

from ..access import GearAccess, LabPaths, lab_home, names, read_inventory_source
from ..durable import write_atomic
from ..parallel import Outcome
from .config import render_drift
from .devices import NetgearError, select_devices


def default_backup_dir(lab: bool) -> Path:
    if os.environ.get("MOTCUA_NETGEAR_BACKUP_DIR"):
        return Path(os.environ["MOTCUA_NETGEAR_BACKUP_DIR"])
    if lab:
        return LabPaths(lab_home()).netgear_backups
    return Path("/var/backups/motcua/netgear")


def _devices(args: argparse.Namespace):
    source = read_inventory_source(Path(args.inventory))
    registry = source.load()
    devices = select_devices(registry, source.lab, names(args.hosts), names(args.sites))
    if not devices:
        raise NetgearError("no router or switch selected")
    return source, devices


def _setup(args: argparse.Namespace):
    source, devices = _devices(args)
    return source, devices, GearAccess.for_inventory(source, timeout=args.timeout)


def _failures(outcomes: list[Outcome]) -> list[str]:
    return [f"  {o.device.name} ({o.device.site}): {o.error}" for o in outcomes if not o.ok]


def _emit_json(payload: object) -> None:
    json.dump(payload, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


def cmd_backup(args: argparse.Namespace) -> int:
    from .ops import backup

    source, devices, access = _setup(args)
    root = Path(args.dir) if args.dir else default_backup_dir(source.lab)
    run = backup(devices, access, root, args.reason, args.workers, progress=not args.quiet)
    manifest = run.manifest()
    if args.json:
        _emit_json({"directory": str(run.directory), **manifest})
    else:
        changed = {n: e for n, e in manifest["devices"].items() if e.get("changed_lines")}
        print(f"backup of {len(devices)} device(s) in {run.directory}: {len(devices) - len(run.failed)} saved, "
              f"{len(run.failed)} failed, {len(changed)} changed since their previous backup")  # fmt: skip
        for name, entry in changed.items():
            print(f"  {name}: {entry['changed_lines']} line(s) changed (diff: {entry['file'][:-4]}.diff)")
        for line in _failures(run.outcomes):
            print(line)
    return 1 if run.failed else 0


def site_summary(outcomes: list[Outcome]) -> list[dict]:
    """One row per site: devices, compliant, drifted, unreachable, drifted lines."""
    rows: dict[str, dict] = defaultdict(lambda: {"devices": 0, "compliant": 0, "drifted": 0, "failed": 0, "lines": 0})
    for outcome in outcomes:
        row = rows[outcome.device.site]
        row["devices"] += 1
        if not outcome.ok:
            row["failed"] += 1
        elif outcome.value:
            row["drifted"] += 1
            row["lines"] += len(outcome.value)
        else:
            row["compliant"] += 1
    return [{"site": site, **row} for site, row in rows.items()]


def cmd_diff(args: argparse.Namespace) -> int:
    from .ops import diff

    _source, devices, access = _setup(args)
    outcomes = diff(devices, access, args.workers, progress=not args.quiet)
    summary = site_summary(outcomes)
    if args.json:
        _emit_json(
            {
                "sites": summary,
                "devices": {
                    o.device.name: {
                        "site": o.device.site,
                        "ok": o.ok,
                        "error": o.error,
                        "drift": [{"parent": d.parent, "sign": d.sign, "line": d.line} for d in o.value or []],
                    }
                    for o in outcomes
                },
            }
        )
    else:
        for outcome in outcomes:
            if outcome.ok and (outcome.value or args.verbose):
                print(render_drift(outcome.device.name, outcome.value), end="")
        print(f"\n{'site':<8} {'devices':>7} {'compliant':>9} {'drifted':>7} {'failed':>6} {'lines':>5}")
        for row in summary:
            print(f"{row['site']:<8} {row['devices']:>7} {row['compliant']:>9} {row['drifted']:>7} "
                  f"{row['failed']:>6} {row['lines']:>5}")  # fmt: skip
        for line in _failures(outcomes):
            print(line)
    return 1 if any(not o.ok or o.value for o in outcomes) else 0


def cmd_verify(args: argparse.Namespace) -> int:
    from .ops import verify

    _source, devices, access = _setup(args)
    outcomes = verify(devices, access, args.workers, progress=not args.quiet)
    results = {
        o.device.name: {"site": o.device.site, "verified": o.ok and not o.value, "problems": o.value or [],
                        "error": o.error}
        for o in outcomes
    }  # fmt: skip
    if args.json:
        _emit_json(results)
    else:
        for name, result in results.items():
            state = "verified" if result["verified"] else "NOT verified"
            print(f"{name}: {state}")
            for problem in result["problems"] + ([result["error"]] if result["error"] else []):
                print(f"  - {problem}")
    return 0 if all(r["verified"] for r in results.values()) else 1


def cmd_restore(args: argparse.Namespace) -> int:
    from .ops import restore

    _source, devices, access = _setup(args)
    source = Path(args.source)
    if not source.exists():
        raise NetgearError(f"--from {source}: no such backup")
    outcomes = restore(devices, access, source, args.workers, progress=not args.quiet)
    results = {o.device.name: {"site": o.device.site, "restored": o.ok, **(o.value or {}), "error": o.error}
               for o in outcomes}  # fmt: skip
    if args.json:
        _emit_json(results)
    else:
        for name, result in results.items():
            if result["restored"]:
                print(f"{name}: restored from {result['backup']} ({result['commands']} command(s))")
            else:
                print(f"{name}: NOT restored: {result['error']}")
    return 0 if all(r["restored"] for r in results.values()) else 1


def cmd_render(args: argparse.Namespace) -> int:
    from .config import RENDERED_PARTS, render_config

    _source, devices = _devices(args)
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, dict[str, str]] = {}
    for device in devices:
        for part in RENDERED_PARTS:
            path = out / f"{device.name}-{part}.cfg"
            text = render_config(device.intent, part)
            if not path.exists() or path.read_text() != text:
                write_atomic(path, text)
            written.setdefault(device.name, {})[part] = str(path)
    if args.json:
        _emit_json(written)
    else:
        for name, parts in written.items():
            print(f"{name}: {', '.join(parts.values())}")
    return 0


def cmd_hash_secret(args: argparse.Namespace) -> int:
    import getpass

    from .secrets import type9_hash

    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    try:
        print(type9_hash(password))
    except ValueError as exc:
        raise NetgearError(str(exc)) from None
    return 0


def add_parser(sub) -> None:
    gear = sub.add_parser("netgear", help="routers and switches: backup, drift against the registry, verify, restore")
    gear_sub = gear.add_subparsers(dest="netgear_command", required=True)
    for name, func, text in (
        ("backup", cmd_backup, "save running configs into a dated tree, with a diff against the previous backup"),
        ("diff", cmd_diff, "drift of each device against the config the registry intends; a summary per site"),
        ("verify", cmd_verify, "log in afresh and check the intended VLANs, ports and SNMPv3 user (exit 1 if not)"),
        ("restore", cmd_restore, "put devices back to a backup run (or file) and check they match it"),
    ):
        p = gear_sub.add_parser(name, help=text, description=text)
        p.add_argument("-i", "--inventory", default="inventory/lab", help="inventory (default: inventory/lab)")
        p.add_argument("--hosts", help="comma-separated device names (default: every router and switch)")
        p.add_argument("--sites", help="comma-separated site codes")
        p.add_argument("--workers", type=int, default=32, help="devices at a time (default: 32; 1 = one by one)")
        p.add_argument("--timeout", type=float, default=20.0, help="seconds per step of a session (default: 20)")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        p.set_defaults(func=func)
        if name == "backup":
            p.add_argument("--dir", help="backup tree (default: $MOTCUA_NETGEAR_BACKUP_DIR, or the lab home's)")
            p.add_argument("--reason", default="on-demand", choices=("on-demand", "pre-change", "scheduled"))
        if name == "diff":
            p.add_argument("-v", "--verbose", action="store_true", help="list compliant devices too")
        if name == "restore":
            p.add_argument("--from", dest="source", required=True, help="a backup run directory or one .cfg file")
    text = "write each device's managed base config and VLANs as IOS config text (what the playbook applies)"
    p = gear_sub.add_parser("render", help=text, description=text)
    p.add_argument("-i", "--inventory", default="inventory/lab", help="inventory (default: inventory/lab)")
    p.add_argument("--hosts", help="comma-separated device names (default: every router and switch)")
    p.add_argument("--sites", help="comma-separated site codes")
    p.add_argument("--dir", required=True, help="where to write <device>-base.cfg and <device>-vlans.cfg")
    p.add_argument("--json", action="store_true", help="machine-readable output: the files per device")
    p.set_defaults(func=cmd_render)
    p = gear_sub.add_parser(
        "hash-secret", help="read a password (stdin or prompt), print its IOS type 9 hash for the vault"
    )
    p.set_defaults(func=cmd_hash_secret)
