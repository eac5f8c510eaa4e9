"""The `motcua` command: thin argument parsing over the library."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

from .inventory import ADDRESS_SPACES, build_inventory
from .registry import PHASES, REGIONS, Registry, check_registry

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
    registry, problems = check_registry(args.registry)
    if problems or registry is None:
        return cmd_validate(argparse.Namespace(registry=args.registry, format="text"))
    if args.sites:
        registry = registry.subset(args.sites.split(","))
    print("\n".join(summary_lines(registry, args.address_space)))
    return 0


def cmd_inventory(args: argparse.Namespace) -> int:
    registry, problems = check_registry(args.registry)
    if problems or registry is None:
        return cmd_validate(argparse.Namespace(registry=args.registry, format="text"))
    inventory = build_inventory(registry, args.address_space)
    if args.host:
        print(json.dumps(inventory.hostvars.get(args.host, {}), ensure_ascii=False, indent=2))
    else:
        print(json.dumps(inventory.as_ansible_json(), ensure_ascii=False, indent=2 if args.pretty else None))
    return 0


def cmd_roster_validate(args: argparse.Namespace) -> int:
    from .roster import accounts_by_site, check_roster

    registry, problems = check_registry(args.registry)
    if problems or registry is None:
        return cmd_validate(argparse.Namespace(registry=args.registry, format="text"))
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
    from datetime import datetime

    from .monitoring.duty import SYSTEM, check_duty_roster

    registry, problems = check_registry(args.registry)
    if problems or registry is None:
        return cmd_validate(argparse.Namespace(registry=args.registry, format="text"))
    registry = registry.subset(args.sites.split(",") if args.sites else None)
    roster, problems = check_duty_roster(args.roster, registry)
    if problems or roster is None:
        print(f"{args.roster}: INVALID, {len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    if args.who:
        when = (
            datetime.fromisoformat(args.at) if args.at else datetime.now(ZoneInfo(roster.timezone)).replace(tzinfo=None)
        )
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


def cmd_dashboards(args: argparse.Namespace) -> int:
    from .monitoring.dashboards import write

    written = write(Path(args.output))
    print(
        f"{args.output}: {len(written)} dashboard(s) written"
        + (f": {', '.join(p.name for p in written)}" if written else ", all up to date")
    )
    return 0


def cmd_bundle_exporters(args: argparse.Namespace) -> int:
    from .bundle import write_bundle

    changed = write_bundle(Path(args.output))
    print(f"{args.output}: {'written' if changed else 'unchanged'}")
    return 0


def _lab(args: argparse.Namespace):
    from .lab import Lab

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


def cmd_lab_fault(args: argparse.Namespace) -> int:
    from .lab.dossier import write_fault as dossier_fault
    from .lab.gear.server import write_fault as gear_fault

    lab = _lab(args)
    fault = None if args.fault == "clear" else args.fault
    if args.target == "dossier":
        result = dossier_fault(lab.home / "dossier" / "faults.json", fault, args.value, args.path)
        print(f"dossier: {result or 'no fault'}")
    elif args.target == "gear":
        if not args.device:
            print("motcua lab fault gear: --device NAME is required", file=sys.stderr)
            return 2
        result = gear_fault(lab.home / "gear" / "faults.json", args.device, fault, args.value, args.once)
        print(f"{args.device}: {result or 'no fault'}")
    else:
        if not args.device or args.fault not in ("down", "clear"):
            print("motcua lab fault counter: --device NAME and down|clear", file=sys.stderr)
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
    from .certs import ops
    from .inventory import read_inventory_source
    from .lab import ca

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


def cmd_lab_notifications(args: argparse.Namespace) -> int:
    from datetime import datetime

    items = _lab(args).notifications()[-args.last :]
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
        elif item["kind"] == "telegram":
            first = str(item.get("text") or "").splitlines()[:1]
            print(f"{when} telegram chat {item['chat_id']}: {first[0] if first else ''}")
        else:
            print(f"{when} e-mail   {', '.join(item['to'])}: {item['subject']}")  # type: ignore[arg-type]
    if not items:
        print("no notifications yet (the lab's Alertmanager sends them here: playbooks/monitoring.yml)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="motcua",
        description="Tools for HCMC's one-stop-shop fleet (motcua-ops).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="validate the site registry; exit 1 and list every problem if invalid")
    _add_registry_arg(p)
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("summary", help="print a summary of the registry (counts, sites, subnets)")
    _add_registry_arg(p)
    p.add_argument("--address-space", choices=ADDRESS_SPACES, default="production")
    p.add_argument("--sites", help="comma-separated site codes (default: all)")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("inventory", help="print the Ansible inventory as JSON (script-inventory format)")
    _add_registry_arg(p)
    p.add_argument("--address-space", choices=ADDRESS_SPACES, default="production")
    p.add_argument("--list", action="store_true", help="the whole inventory (default)")
    p.add_argument("--host", help="the variables of one host")
    p.add_argument("--pretty", action="store_true", help="indent the JSON")
    p.set_defaults(func=cmd_inventory)

    p = sub.add_parser("roster", help="check an officials' roster (YAML or CSV) against the registry")
    p.add_argument("roster", help="roster file, e.g. inventory/lab/roster.yml")
    _add_registry_arg(p)
    p.set_defaults(func=cmd_roster_validate)

    p = sub.add_parser("duty", help="check a duty roster for the launch window; --who: who is on duty for a site")
    p.add_argument("roster", help="duty roster file, e.g. inventory/lab/duty.yml")
    _add_registry_arg(p)
    p.add_argument("--sites", help="comma-separated site codes the roster must cover (default: all)")
    p.add_argument("--who", metavar="SITE", help="a site code, or 'system' for the dossier system")
    p.add_argument("--at", help="local time, e.g. 2025-07-02T08:00 (default: now)")
    p.set_defaults(func=cmd_duty)

    p = sub.add_parser("dashboards", help="write the Grafana dashboards (JSON) into a directory")
    p.add_argument("output", help="e.g. roles/monitoring_dashboards/files")
    p.set_defaults(func=cmd_dashboards)

    p = sub.add_parser("bundle-exporters", help="write the exporters as one zip file for counter PCs (python3 FILE)")
    p.add_argument("output", help="e.g. .cache/motcua-exporters.pyz")
    p.set_defaults(func=cmd_bundle_exporters)

    from .netgear.cli import add_parser as add_netgear_parser

    add_netgear_parser(sub)

    from .certs.cli import add_parser as add_certs_parser

    add_certs_parser(sub)

    from .fleet.cli import add_parser as add_fleet_parser

    add_fleet_parser(sub)

    from .readiness.cli import add_parser as add_readiness_parser

    add_readiness_parser(sub)

    from .silences import add_parser as add_silence_parser

    add_silence_parser(sub)

    from .relocation import add_parser as add_relocation_parser

    add_relocation_parser(sub)

    from .lab.lab import DEFAULT_CACHE, DEFAULT_HOME

    lab = sub.add_parser("lab", help="the simulated ward network on this machine (root)")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True)
    for name, func, text in (
        ("up", cmd_lab_up, "bring the lab up (harmless when it is up; restarts what is down)"),
        ("down", cmd_lab_down, "stop everything the lab started and unmount its overlays"),
        ("status", cmd_lab_status, "each host and service with its address and state"),
        ("fault", cmd_lab_fault, "break something on purpose (training, tests)"),
        ("notifications", cmd_lab_notifications, "what the lab's Alertmanager sent (e-mail, Telegram, webhooks)"),
        ("sign-requests", cmd_lab_sign, "the lab's national-CA stand-in issues the ledger's requests into a folder"),
        ("move", cmd_lab_desk, "carry a counter PC to a vacant desk: its disk boots there on the new address"),
        ("vacate", cmd_lab_desk, "free a counter desk for a PC that moves in (its own PC is set aside)"),
        ("reinstate", cmd_lab_desk, "put a vacant desk's set-aside PC back"),
    ):
        p = lab_sub.add_parser(name, help=text)
        p.add_argument("--inventory", default="inventory/lab", help="lab inventory (default: inventory/lab)")
        p.add_argument("--home", default=str(DEFAULT_HOME), help=f"lab state (default: {DEFAULT_HOME})")
        p.add_argument(
            "--cache", default=str(DEFAULT_CACHE), help=f"image and package cache (default: {DEFAULT_CACHE})"
        )
        p.set_defaults(func=func)
        if name == "down":
            p.add_argument(
                "--purge", action="store_true", help="also delete the hosts' changes (fresh hosts next time)"
            )
        if name in ("status", "notifications"):
            p.add_argument("--json", action="store_true")
        if name == "notifications":
            p.add_argument("--last", type=int, default=30, help="how many (default: 30)")
        if name == "sign-requests":
            p.add_argument("--out", required=True, help="folder for the issued certificates (PEM with the CA)")
            p.add_argument("--days", type=float, default=730, help="validity in days (default: 730)")
            p.add_argument("--sites", help="comma-separated site codes (default: all)")
        if name in ("move", "vacate", "reinstate"):
            p.add_argument("host", help="counter PC (desk) name, e.g. w26740-pc02")
        if name == "move":
            p.add_argument("to", help="the vacant desk it moves to, e.g. ttpv-pc02")
        if name == "fault":
            p.add_argument("target", choices=("dossier", "gear", "counter"))
            p.add_argument(
                "fault",
                help="dossier: down, slow, http500, wrong-content, expired-cert, untrusted-cert, reset, hang; "
                "gear: refuse-login, drop-mid-change, slow; counter: down; any: clear",
            )
            p.add_argument("--device", help="gear or counter host name, e.g. w26740-sw01")
            p.add_argument("--value", type=float, help="seconds for slow; config lines before drop-mid-change")
            p.add_argument("--path", help="dossier: limit the fault to this path, e.g. /api/health")
            p.add_argument("--once", action="store_true", help="gear: clear the fault after it fired once")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(args, "registry"):
        args.registry = str(Path(args.registry))
    from .certs.ops import CertError
    from .fleet.tools import FleetError
    from .lab.lab import LabError
    from .netgear.fleet import NetgearError
    from .readiness.cli import ReadinessError
    from .relocate import MoveError
    from .silences import SilenceError
    from .validation import InputError

    # A tool's own input error, printed under the tool's name.
    tools = {NetgearError: "netgear", CertError: "certs", FleetError: "fleet", ReadinessError: "readiness",
             SilenceError: "silence", MoveError: "relocation"}  # fmt: skip
    try:
        return args.func(args)
    except tuple(tools) as exc:
        print(f"motcua {tools[type(exc)]}: {exc}", file=sys.stderr)
        return 2
    except InputError as exc:
        print(f"motcua: {exc}", file=sys.stderr)
        return 2
    except KeyError as exc:
        print(f"motcua: {exc.args[0]}", file=sys.stderr)
        return 2
    except (LabError, ValueError) as exc:
        print(f"motcua: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
