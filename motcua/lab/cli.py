"""``motcua lab``: the simulated ward network on this machine (root)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

from ..access import lab_cache, lab_home, read_inventory_source
from ..certs import ops
from . import Lab, ca, demo
from .dossier import write_fault as dossier_fault
from .gear.server import write_clock as gear_clock
from .gear.server import write_fault as gear_fault


def _lab(args: argparse.Namespace) -> Lab:
    return Lab(Path(args.inventory), Path(args.home), Path(args.cache))


def cmd_lab_up(args: argparse.Namespace) -> int:
    lab = _lab(args)
    lab.up()
    _print_status(lab.status())
    return 0


def cmd_lab_down(args: argparse.Namespace) -> int:
    _lab(args).down(purge=args.purge)
    return 0


def _print_status(rows: list[dict[str, object]]) -> None:
    width = max([len("name"), *(len(str(row["name"])) for row in rows)])
    print(f"{'kind':<11} {'name':<{width}} {'address':<22} {'state':<21} pid")
    for row in rows:
        kind, name, address, state = (str(row[k]) for k in ("kind", "name", "address", "state"))
        print(f"{kind:<11} {name:<{width}} {address:<22} {state:<21} {row['pid'] or ''}")


def cmd_lab_status(args: argparse.Namespace) -> int:
    rows = _lab(args).status()
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("lab: not up")
    else:
        _print_status(rows)
    return 0 if rows and all(r["state"] in ("up", "reserved", "vacant") for r in rows) else 3


def cmd_lab_gear_minute(args: argparse.Namespace) -> int:
    lab = _lab(args)
    seconds = None if args.seconds in ("real", "60") else args.seconds
    try:
        result = gear_clock(
            lab.home / "gear" / "clock.json", float(seconds) if seconds is not None else None, held=args.hold
        )
    except ValueError as exc:
        print(f"motcua lab gear-minute: {exc}", file=sys.stderr)
        return 2
    print(f"a gear minute lasts {result.get('minute_seconds', 60.0):g} s (for timers armed from now on)")
    if args.hold:
        print("the gear's clock is held: no revert timer runs out until `motcua lab gear-minute` without --hold")
    return 0


def cmd_lab_fault(args: argparse.Namespace) -> int:
    lab = _lab(args)
    if args.fault is None and args.target != "site-offline":
        print(f"motcua lab fault {args.target}: which fault? (see --help)", file=sys.stderr)
        return 2
    fault = None if args.fault == "clear" else (args.fault or "on")
    if args.target == "dossier":
        try:
            result = dossier_fault(lab.home / "dossier" / "faults.json", fault, args.value, args.path, args.site)
        except ValueError as exc:
            print(f"motcua lab fault dossier: {exc}", file=sys.stderr)
            return 2
        shown = {k: v for k, v in result.items() if k != "withdrawn"}
        print(f"dossier: {shown or 'no fault'}")
    elif args.target == "site-offline":
        if not args.site or args.fault not in (None, "on", "clear"):
            print("motcua lab fault site-offline: --site CODE, and nothing (cut) or clear", file=sys.stderr)
            return 2
        print(lab.site_offline(args.site, offline=fault is not None))
    elif args.target == "gear":
        if not args.device:
            print("motcua lab fault gear: --device NAME is required", file=sys.stderr)
            return 2
        result = gear_fault(lab.home / "gear" / "faults.json", args.device, fault, args.value, args.once)
        print(f"{args.device}: {result or 'no fault'}")
    else:
        if not args.device or args.fault not in ("down", "clear"):
            print(f"motcua lab fault {args.target}: --device NAME and down|clear", file=sys.stderr)
            return 2
        print(lab.stop_host(args.device) if fault else "run `motcua lab up` to start stopped hosts again")
    return 0


def cmd_lab_desk(args: argparse.Namespace) -> int:
    lab = _lab(args)
    if args.lab_command == "move":
        print(lab.move(args.host, args.to))
    elif args.lab_command == "vacate":
        print(lab.vacate(args.host))
    else:
        print(lab.reinstate(args.host))
    return 0


def cmd_lab_sign(args: argparse.Namespace) -> int:
    """The lab's national-CA stand-in issues what the ledger has requested (the CA's side of the flow)."""
    source = read_inventory_source(Path(args.inventory))
    _registry, ledger = ops.load(source)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    signed = 0
    for cert in ledger.certificates:
        csr = ledger.csr_path(cert)
        if cert.status != "requested" or not csr.is_file() or (args.sites and cert.site not in args.sites.split(",")):
            continue
        pem = ca.sign_request(ledger.store / "ca", csr.read_bytes(), days=args.days, usage=cert.type)
        target = out / f"{cert.site}-{cert.label}.pem"
        target.write_bytes(pem)
        print(f"{target}: {cert.key}, valid {args.days:g} days")
        signed += 1
    if not signed:
        print("no request to sign (status requested, with its CSR in the store)")
    return 0


CHANNELS = ("zalo", "zns", "sms", "email", "webhook", "telegram")


def notification_line(item: dict) -> dict[str, object] | None:
    """A message the sink received as {time, channel, to, text, status}; None for what is not one (a fault)."""
    kind = str(item.get("kind"))
    if kind not in CHANNELS:
        return None
    if kind == "webhook":
        payload = item.get("payload") or {}
        names = sorted({a.get("labels", {}).get("alertname", "?") for a in payload.get("alerts", [])})
        to, text, status = item.get("receiver"), ", ".join(names), payload.get("status")
    elif kind == "email":
        to, text = ", ".join(item.get("to") or []), str(item.get("subject") or "")
        status = "resolved" if "RESOLVED" in text else "firing"
    elif kind == "zns":
        to, text = item.get("to"), str(item.get("text") or "")
        status = "resolved" if "ĐÃ KHẮC PHỤC" in text else "firing"
    else:
        to, text = item.get("to", item.get("chat_id")), str(item.get("text") or "")
        status = "resolved" if any(w in text for w in ("RESOLVED", "DA KHAC PHUC")) else "firing"
    return {"time": item["time"], "channel": kind, "to": to, "text": text, "status": status}


def cmd_lab_notifications(args: argparse.Namespace) -> int:
    items = _lab(args).notifications()
    if args.format == "json":  # one JSON object a line, every channel alike
        lines = [line for line in map(notification_line, items) if line is not None][-args.last :]
        for line in lines:
            print(json.dumps(line, ensure_ascii=False))
        return 0
    items = [i for i in items if i.get("kind") in CHANNELS][-args.last :]
    if args.json:
        print(json.dumps(items, ensure_ascii=False, indent=2))
        return 0
    for item in items:
        when = datetime.fromtimestamp(float(item["time"])).strftime("%H:%M:%S")  # type: ignore[arg-type]
        if item["kind"] == "webhook":
            payload = item["payload"]
            names = sorted({a["labels"].get("alertname", "?") for a in payload.get("alerts", [])})  # type: ignore[union-attr]
            what = f"{payload.get('status')}: {', '.join(names)}"  # type: ignore[union-attr]
            print(f"{when} webhook  {item['receiver']}: {what}")
        elif item["kind"] in ("zalo", "zns", "sms"):
            first = str(item.get("text") or "").splitlines()[:1]
            print(f"{when} {item['kind']:<8} {item['to']}: {first[0] if first else ''}")
        elif item["kind"] == "telegram":
            first = str(item.get("text") or "").splitlines()[:1]
            print(f"{when} telegram chat {item['chat_id']}: {first[0] if first else ''}")
        else:
            print(f"{when} e-mail   {', '.join(item['to'])}: {item['subject']}")  # type: ignore[arg-type]
    if not items:
        print("no notifications yet (the lab's Alertmanager sends them here: playbooks/monitoring.yml)")
    return 0


def cmd_lab_demo(args: argparse.Namespace) -> int:
    """`make demo`: every step on the lab, then where to look."""
    home = Path(args.home)
    log_dir = home / "demo"
    try:
        results = demo.run(
            demo.steps(args.inventory, home), log_dir, env={**demo.demo_env(), "MOTCUA_LAB_HOME": str(home)}
        )
    except demo.DemoError as exc:
        print(demo.summary(exc.results), file=sys.stderr)  # type: ignore[attr-defined]
        raise
    paths = Lab(Path(args.inventory), home).paths
    print(f"\nThe demo's steps (logs in {log_dir}):\n{demo.summary(results)}\n")
    print("Go-live readiness of the lab's wards: readiness/readiness.html (docs/readiness.md).")
    print(f"The lab stays up for practice: 'motcua lab status', 'ssh -F {paths.ssh_config} w26740-pc01',")
    print("The monitoring pair: Prometheus https://127.79.0.10:9090/ and https://127.79.0.13:9090/, Alertmanager")
    print("https://127.79.0.10:9093/ and https://127.79.0.13:9093/ (one cluster; user operator, the password in")
    print(f"{home}/web/operator-password, the lab CA {home}/ca/ca.pem), 'motcua lab notifications'.")
    print("The duty board (docs/board.md): https://127.79.0.10:9443/ and https://127.79.0.13:9443/ - user operator")
    print(f"(may silence) or viewer (looks only), the passwords in {home}/web/operator-password and viewer-password;")
    print("'make lab-down' to stop it. Training guide: docs/lab.md")
    return 0


def add_parser(sub) -> None:
    home, cache = lab_home(), lab_cache()

    lab = sub.add_parser("lab", help="the simulated ward network on this machine (root)")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True)
    for name, func, text in (
        ("up", cmd_lab_up, "bring the lab up (harmless when it is up; restarts what is down)"),
        ("demo", cmd_lab_demo, "make demo: lab up, smoke test, counters, certificates, monitoring, gear, readiness"),
        ("down", cmd_lab_down, "stop everything the lab started and unmount its overlays"),
        ("status", cmd_lab_status, "each host and service with its address and state"),
        ("fault", cmd_lab_fault, "break something on purpose (training, tests)"),
        ("gear-minute", cmd_lab_gear_minute, "how many seconds a minute of the gear's revert timers lasts"),
        ("notifications", cmd_lab_notifications, "what the lab's monitoring sent (Zalo, ZNS, SMS, e-mail, webhooks)"),
        ("sign-requests", cmd_lab_sign, "the lab's national-CA stand-in issues the ledger's requests into a folder"),
        ("move", cmd_lab_desk, "carry a counter PC to a vacant desk: its disk boots there on the new address"),
        ("vacate", cmd_lab_desk, "free a counter desk for a PC that moves in (its own PC is set aside)"),
        ("reinstate", cmd_lab_desk, "put a vacant desk's set-aside PC back"),
    ):
        p = lab_sub.add_parser(name, help=text)
        p.add_argument("--inventory", default="inventory/lab", help="lab inventory (default: inventory/lab)")
        p.add_argument("--home", default=str(home), help=f"lab state (default: $MOTCUA_LAB_HOME or {home})")
        p.add_argument(
            "--cache", default=str(cache), help=f"image and package cache (default: $MOTCUA_LAB_CACHE or {cache})"
        )
        p.set_defaults(func=func)
        if name == "gear-minute":
            p.add_argument("seconds", help="seconds per lab minute (0.1-3600), or real (60)")
            p.add_argument("--hold", action="store_true",
                           help="no timer runs out until the clock is set again without --hold")  # fmt: skip
        if name == "down":
            p.add_argument(
                "--purge", action="store_true", help="also delete the hosts' changes (fresh hosts next time)"
            )
        if name in ("status", "notifications"):
            p.add_argument("--json", action="store_true")
        if name == "notifications":
            p.add_argument("--last", type=int, default=30, help="how many (default: 30)")
            p.add_argument("--format", choices=("text", "json"), default="text",
                           help="json: one object a line - time, channel, to, text, status")  # fmt: skip
        if name == "sign-requests":
            p.add_argument("--out", required=True, help="folder for the issued certificates (PEM with the CA)")
            p.add_argument("--days", type=float, default=730, help="validity in days (default: 730)")
            p.add_argument("--sites", help="comma-separated site codes (default: all)")
        if name in ("move", "vacate", "reinstate"):
            p.add_argument("host", help="counter PC (desk) name, e.g. w26740-pc02")
        if name == "move":
            p.add_argument("to", help="the vacant desk it moves to, e.g. ttpv-pc02")
        if name == "fault":
            p.add_argument("target", choices=("dossier", "gear", "counter", "monitoring", "site-offline"))
            p.add_argument(
                "fault",
                nargs="?",
                help="dossier: down, slow, http500, wrong-content, expired-cert, untrusted-cert, reset, hang, "
                "stale (the reporting API's old data), paging-broken, backlog (--site; --value dossiers), "
                "intake-stopped (--site); "
                "gear: refuse-login, drop-mid-change, slow, lockout-on-acl; "
                "counter, monitoring: down (the host stops); "
                "site-offline (--site): none (the line is cut); any: clear",
            )
            p.add_argument("--site", help="site-offline, dossier backlog and intake-stopped: the site code, e.g. 26740")
            p.add_argument("--device", help="gear, counter or monitoring host name, e.g. w26740-sw01, dx-mon02")
            p.add_argument("--value", type=float,
                           help="seconds for slow, how old for stale, dossiers in a backlog; "
                           "config lines before drop-mid-change")  # fmt: skip
            p.add_argument("--path", help="dossier: limit the fault to this path, e.g. /api/health")
            p.add_argument("--once", action="store_true", help="gear: clear the fault after it fired once")
