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


# What --credentials-stdin accepts, and the environment variable each one stands for.
STDIN_CREDENTIALS = {
    "user": "MOTCUA_GEAR_USER",
    "key_file": "MOTCUA_GEAR_KEY_FILE",
    "password": "MOTCUA_GEAR_PASSWORD",
    "enable_secret": "MOTCUA_GEAR_ENABLE_SECRET",
}


def stdin_credentials(text: str) -> dict[str, str]:
    """The gear credentials given on stdin (one JSON object), as the environment variables they replace.

    The playbook passes the password and the enable secret this way: an environment
    variable set by a task is part of the ``/bin/sh -c`` command line under the linear
    strategy, where ``ps`` and ``-vvv`` show it; stdin is neither.
    """
    try:
        given = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NetgearError(f"--credentials-stdin: stdin is not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(given, dict):
        raise NetgearError("--credentials-stdin: stdin must hold one JSON object")
    unknown = sorted(set(given) - set(STDIN_CREDENTIALS))
    if unknown:
        raise NetgearError(
            f"--credentials-stdin: unknown field(s) {', '.join(unknown)} (known: {', '.join(STDIN_CREDENTIALS)})"
        )
    wrong = sorted(key for key, value in given.items() if value is not None and not isinstance(value, str))
    if wrong:
        raise NetgearError(f"--credentials-stdin: {', '.join(wrong)} must be text")
    return {STDIN_CREDENTIALS[key]: value for key, value in given.items() if value}


def _setup(args: argparse.Namespace):
    source, devices = _devices(args)
    env = dict(os.environ)
    if getattr(args, "credentials_stdin", False):
        env.update(stdin_credentials(sys.stdin.read()))
    return source, devices, GearAccess.for_inventory(source, timeout=args.timeout, env=env)


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
    return _report(outcomes, args, "restored")


def _journal_root(args: argparse.Namespace, lab: bool) -> Path:
    return Path(args.dir) if args.dir else default_backup_dir(lab)


def _report(outcomes: list[Outcome], args: argparse.Namespace, verb: str, extra: dict | None = None) -> int:
    results = {o.device.name: {"site": o.device.site, "ok": o.ok, **(o.value or {}), "error": o.error}
               for o in outcomes}  # fmt: skip
    if args.json:
        _emit_json({**(extra or {}), "devices": results})
    else:
        for name, result in results.items():
            detail = {k: v for k, v in result.items() if k not in ("site", "ok", "error")}
            print(f"{name} ({result['site']}): {verb} {detail or ''}" if result["ok"]
                  else f"{name} ({result['site']}): NOT {verb}: {result['error']}")  # fmt: skip
    return 0 if all(o.ok for o in outcomes) else 1


def cmd_arm(args: argparse.Namespace) -> int:
    from .safety import arm

    source, devices, access = _setup(args)
    outcomes = arm(devices, access, _journal_root(args, source.lab), Path(args.backup), args.minutes, args.workers,
                   progress=not args.quiet)  # fmt: skip
    return _report(outcomes, args, "armed")


def cmd_confirm(args: argparse.Namespace) -> int:
    from .safety import confirm

    source, devices, access = _setup(args)
    return _report(confirm(devices, access, _journal_root(args, source.lab), args.workers, progress=not args.quiet),
                   args, "confirmed")  # fmt: skip


def cmd_revert(args: argparse.Namespace) -> int:
    from .safety import revert

    source, devices, access = _setup(args)
    return _report(revert(devices, access, _journal_root(args, source.lab), workers=args.workers,
                          progress=not args.quiet), args, "reverted")  # fmt: skip


def cmd_recover(args: argparse.Namespace) -> int:
    from .safety import recover

    source, devices, access = _setup(args)
    found, outcomes = recover(devices, access, _journal_root(args, source.lab), args.workers, progress=not args.quiet)
    keys = ("started", "operator", "controller", "backup")
    interrupted = {site: {k: j[k] for k in keys} for site, j in found.items()}
    if not args.json:
        if not found:
            print("no interrupted change: every site's journal is closed")
        for site, j in interrupted.items():
            print(f"site {site}: a change started {j['started']} by {j['operator']} on {j['controller']} "
                  f"was interrupted; putting it back to {j['backup']}")  # fmt: skip
    return _report(outcomes, args, "recovered", {"interrupted": interrupted})


def cmd_journal(args: argparse.Namespace) -> int:
    from .safety import read_journal

    source, devices = _devices(args)
    root = _journal_root(args, source.lab)
    journals = {}
    for site in sorted({d.site for d in devices}):
        journal = read_journal(root, site)
        if journal is not None:
            journals[site] = journal
    if args.json:
        _emit_json(journals)
    else:
        for site, j in journals.items():
            print(f"site {site}: {j['state']:<12} started {j['started']} by {j['operator']}"
                  f"{', closed ' + j['closed'] if j.get('closed') else ''}; backup {j['backup']}")  # fmt: skip
        if not journals:
            print(f"no change journal in {root}")
    return 1 if any(j["state"] == "open" for j in journals.values()) else 0


def cmd_history(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from .history import history, show

    source = read_inventory_source(Path(args.inventory))
    (device,) = select_devices(source.load(), source.lab, [args.device], None)
    root = Path(args.dir) if args.dir else default_backup_dir(source.lab)
    if args.show:
        print(show(root, device.site, device.name, args.show), end="")
        return 0
    changes = history(root, device.site, device.name, args.limit)
    if args.json:
        _emit_json({"device": device.name, "site": device.site, "changes": [asdict(c) for c in changes]})
        return 0
    if not changes:
        print(f"{device.name} (site {device.site}): no backup in {root} yet")
        return 0
    print(f"{device.name} (site {device.site}): {len(changes)} change(s), newest first")
    for c in changes:
        print(f"  {c.commit[:10]}  {c.when}  {c.author:<12}  +{c.added} -{c.removed}  {c.message}")
    print(f"what one changed: motcua netgear history {device.name} --show COMMIT")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    """<device>.cfg per device: its intent as config text. With --running, each device is read first (a
    session per device, as diff does): its managed ports' extra lines are undone, and whether it has the
    intended SNMPv3 user is reported (``snmp_user``: ok or missing; IOS never prints it in the config)."""
    from .config import render_config
    from .ops import read_states, snmp_drift

    if args.running:
        _source, devices, access = _setup(args)
        outcomes = read_states(devices, access, args.workers, progress=not args.quiet)
    else:
        _source, devices = _devices(args)
        outcomes = [Outcome(device, True, None) for device in devices]
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, dict[str, str]] = {}
    for outcome in outcomes:
        device, state = outcome.device, outcome.value
        path = out / f"{device.name}.cfg"
        if not outcome.ok:  # nothing to apply from: no file (a stale one would be applied blind)
            path.unlink(missing_ok=True)
            written[device.name] = {"error": outcome.error or "?"}
            continue
        text = render_config(device.intent, state["running"] if state else None)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            write_atomic(path, text)
        written[device.name] = {"file": str(path)}
        if state:
            missing = any(d.sign == "+" for d in snmp_drift(device, state["snmp_users"]))
            written[device.name]["snmp_user"] = "missing" if missing else "ok"
    if args.json:
        _emit_json(written)
    else:
        for name, entry in written.items():
            snmp = f" (SNMPv3 user {entry['snmp_user']})" if "snmp_user" in entry else ""
            print(f"{name}: {entry['file'] + snmp if 'file' in entry else 'FAILED: ' + entry['error']}")
    return 1 if any("error" in entry for entry in written.values()) else 0


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
        ("arm", cmd_arm, "open each site's change journal, then arm every device's revert timer (before a change)"),
        ("confirm", cmd_confirm, "confirm each device's change (configure confirm), save it, close the journal"),
        ("revert", cmd_revert, "put each site back to its journal's pre-change backup (revert now, or replace)"),
        ("recover", cmd_recover, "sites whose last change was interrupted (open journal): put back to their backup"),
        ("journal", cmd_journal, "each site's change journal: open (interrupted or running) or how it closed"),
        ("render", cmd_render, "write each device's intent as IOS config text (what the playbook applies)"),
    ):
        p = gear_sub.add_parser(name, help=text, description=text)
        p.add_argument("-i", "--inventory", default="inventory/lab", help="inventory (default: inventory/lab)")
        p.add_argument("--hosts", help="comma-separated device names (default: every router and switch)")
        p.add_argument("--sites", help="comma-separated site codes")
        p.add_argument("--workers", type=int, default=32, help="devices at a time (default: 32; 1 = one by one)")
        p.add_argument("--timeout", type=float, default=20.0, help="seconds per step of a session (default: 20)")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        p.add_argument(
            "--credentials-stdin",
            action="store_true",
            help="read the gear credentials as one JSON object on stdin (user, key_file, password, "
            "enable_secret) instead of $MOTCUA_GEAR_*: what the playbook does, so no secret is on a command line",
        )
        p.set_defaults(func=func)
        if name == "backup":
            p.add_argument("--dir", help="backup tree (default: $MOTCUA_NETGEAR_BACKUP_DIR, or the lab home's)")
            p.add_argument("--reason", default="on-demand", choices=("on-demand", "pre-change", "scheduled"))
        if name == "diff":
            p.add_argument("-v", "--verbose", action="store_true", help="list compliant devices too")
        if name == "restore":
            p.add_argument("--from", dest="source", required=True, help="a backup run directory or one .cfg file")
        if name in ("arm", "confirm", "revert", "recover", "journal"):
            p.add_argument("--dir", help="backup tree holding journal/ (default: $MOTCUA_NETGEAR_BACKUP_DIR, "
                           "or the lab home's)")  # fmt: skip
        if name == "render":
            p.add_argument("--dir", required=True, help="where to write <device>.cfg")
            p.add_argument("--running", action="store_true", help="read each device's running config first, so "
                           "that a managed port's lines the intent lacks are undone (a session each)")  # fmt: skip
        if name == "arm":
            p.add_argument("--backup", required=True, help="the pre-change backup run the journal names")
            p.add_argument("--minutes", type=int, default=10, help="revert timer, 1-120 minutes (default: 10)")
    text = "who changed one device's config and when: its backups as commits in the site's git repository"
    p = gear_sub.add_parser("history", help=text, description=text)
    p.add_argument("device", help="a router or switch, e.g. w26740-sw01")
    p.add_argument("-i", "--inventory", default="inventory/lab", help="inventory (default: inventory/lab)")
    p.add_argument("--dir", help="backup tree (default: $MOTCUA_NETGEAR_BACKUP_DIR, or the lab home's)")
    p.add_argument("-n", "--limit", type=int, default=20, help="newest N changes (default: 20)")
    p.add_argument("--show", metavar="COMMIT", help="print what that commit changed in the device's config")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_history)
    p = gear_sub.add_parser(
        "hash-secret", help="read a password (stdin or prompt), print its IOS type 9 hash for the vault"
    )
    p.set_defaults(func=cmd_hash_secret)
