"""`motcua certs`: the sites' digital certificates (chứng thư số) from the ledger."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from ..access import read_inventory_source
from ..durable import write_atomic
from . import ops

ROOT = Path(__file__).resolve().parents[2]
STATUS_VI = {"requested": "đã yêu cầu", "issued": "đã cấp", "installed": "đã cài", "revoked": "đã thu hồi"}


def _now(args: argparse.Namespace) -> dt.datetime:
    if getattr(args, "now", None):
        return dt.datetime.fromisoformat(args.now).astimezone(dt.UTC)
    return dt.datetime.now(dt.UTC)


def _load(args: argparse.Namespace):
    source = read_inventory_source(Path(args.inventory))
    registry, ledger = ops.load(source)
    return source, registry, ledger


def _sites(args: argparse.Namespace) -> list[str] | None:
    return [s.strip() for s in args.sites.split(",") if s.strip()] if getattr(args, "sites", None) else None


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in [headers, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_check(args: argparse.Namespace) -> int:
    _source, _registry, ledger = _load(args)
    counts: dict[str, int] = {}
    for cert in ledger.certificates:
        counts[cert.status] = counts.get(cert.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    print(f"{ledger.path}: OK: {len(ledger.certificates)} certificates ({summary})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    _source, _registry, ledger = _load(args)
    now = _now(args)
    certs = ledger.for_sites(_sites(args))
    if args.json:
        out = []
        for cert in certs:
            entry = cert.as_entry()
            entry["days_left"] = None if cert.not_after is None else round(cert.days_left(now) or 0, 1)
            out.append(entry)
        json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    rows = []
    for cert in certs:
        left = cert.days_left(now)
        rows.append(
            [
                cert.key,
                cert.type,
                f"{cert.status} / {STATUS_VI[cert.status]}",
                cert.token_serial or "-",
                cert.not_after.strftime("%Y-%m-%d") if cert.not_after else "-",
                "-" if left is None else f"{left:.0f}",
                cert.holder,
            ]
        )
    print(
        _table(
            rows,
            ["certificate", "type", "status / trạng thái", "token", "not after", "days / ngày", "holder / chủ thể"],
        )
    )
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    source = read_inventory_source(Path(args.inventory))
    if source.certificates is None:
        empty: dict[str, object] = {"ledger": None, "hosts": {}, "site_files": {}, "site_revoked": {}}
        json.dump(
            {
                **empty,
                "exporter_sources": [],
                "exporter_files": [],
                "exporter_sources_on_controller": [],
                "trust_files": [],
            },
            sys.stdout,
        )
        return 0
    registry, ledger = ops.load(source)
    json.dump(ops.plan(registry, ledger, _sites(args)), sys.stdout, ensure_ascii=False)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    _source, registry, ledger = _load(args)
    batch, problems = ops.export_batch(registry, ledger, _sites(args))
    if problems:
        print(f"motcua certs export: nothing written; {len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    if not batch.rows:
        print("nothing to export: no certificate is waiting for registration (status requested)")
        return 0
    out = Path(args.out) if args.out else ledger.store / "exports" / f"{_now(args):%Y-%m-%d}-dang-ky-chung-thu-so.csv"
    workbook = out.with_suffix(".xlsx")
    write_atomic(out, batch.csv())
    write_atomic(workbook, batch.xlsx())
    print(f"{out}, {workbook.name}: {len(batch.rows)} requests / yêu cầu cấp chứng thư số")
    return 0


CERT_SUFFIXES = (".pem", ".crt", ".cer", ".der")


def cmd_import(args: argparse.Namespace) -> int:
    source = read_inventory_source(Path(args.inventory))
    files = []
    for given in map(Path, args.files):  # a folder stands for the certificates in it (as the CA returns them)
        files += sorted(f for f in given.iterdir() if f.suffix in CERT_SUFFIXES) if given.is_dir() else [given]
    if not files:  # only folders were given, and they hold nothing: a batch the CA returned empty
        print(f"no certificate ({', '.join(CERT_SUFFIXES)}) in {', '.join(args.files)}: nothing to import")
        return 0
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ops.CertError(f"no such file: {', '.join(missing)}")
    if args.cert and len(files) != 1:
        raise ops.CertError("--cert names the certificate of one file; give one file")
    with ops.changing(source) as (_registry, ledger):
        ledger, results = ops.import_files(ledger, files, _now(args), args.cert)
    refused = [r for r in results if not r.ok]
    for result in results:
        who = result.cert.key if result.cert else "?"
        if result.ok:
            print(f"{result.file}: {who}: accepted / đã nhận")
        else:
            print(f"{result.file}: {who}: REFUSED / TỪ CHỐI, nothing stored:", file=sys.stderr)
            for problem in result.problems:
                print(f"  - {problem}", file=sys.stderr)
        for warning in result.warnings:
            print(f"  ! {warning}", file=sys.stderr)
    print(f"{len(results) - len(refused)} accepted, {len(refused)} refused; ledger {ledger.path}")
    return 1 if refused else 0


def cmd_expiring(args: argparse.Namespace) -> int:
    _source, _registry, ledger = _load(args)
    now = _now(args)
    certs = ledger.expiring(now, args.days, _sites(args))
    if args.json:
        json.dump(
            [{**c.as_entry(), "days_left": round(c.days_left(now) or 0, 1)} for c in certs],
            sys.stdout,
            ensure_ascii=False,
            indent=2,
        )
        print()
        return 0
    days = ledger.renew_days if args.days is None else args.days
    if not certs:
        print(f"no certificate ends within {days} days / không có chứng thư số nào hết hạn trong {days} ngày")
        return 0
    print(f"{len(certs)} certificate(s) end within {days} days / chứng thư số sắp hết hạn:")
    for cert in certs:
        left = cert.days_left(now) or 0
        print(f"  {cert.key}  {cert.not_after:%Y-%m-%d}  {left:.0f} days  {cert.holder}")
    print(f"renew them with: motcua certs renew -i {args.inventory} --days {days}")
    return 0


def cmd_renew(args: argparse.Namespace) -> int:
    """Re-request what ends within N days: new key and request on the token, then the registration export."""
    source, registry, ledger = _load(args)
    now = _now(args)
    chosen = ledger.expiring(now, args.days, _sites(args))
    if not chosen:
        print("nothing to renew / không có chứng thư số cần gia hạn")
        return 0
    hosts = sorted({f"{registry.sites[c.site].host_prefix}-{c.host}" for c in chosen})
    for cert in chosen:
        ends = f"{cert.not_after:%Y-%m-%d}" if cert.not_after else "?"
        print(f"renew {cert.key}: generation {cert.generation} -> {cert.generation + 1} (ends {ends})")
    if args.dry_run:
        return 0
    with ops.changing(source) as (_registry, ledger):  # what expires, read again under the lock
        chosen = ledger.expiring(now, args.days, _sites(args))
        ledger = ops.mark_renewal(ledger, chosen)
    argv = [
        str(Path(sys.executable).with_name("ansible-playbook")),
        "-i",
        str(source.config_file.parent),
        str(ROOT / "playbooks" / "certificates.yml"),
        "--tags",
        "certificates_request",
        "--limit",
        ",".join(hosts),
    ]
    print("running: " + " ".join(argv), flush=True)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    done = subprocess.run(argv, env=env, check=False)
    if done.returncode != 0:
        print(f"motcua certs renew: the playbook failed (exit {done.returncode}); the ledger marks them requested, "
              "re-run the command above", file=sys.stderr)  # fmt: skip
        return done.returncode
    export = argparse.Namespace(**{**vars(args), "out": args.out})
    export.sites = ",".join(sorted({c.site for c in chosen}))
    return cmd_export(export)


def cmd_record(args: argparse.Namespace) -> int:
    source = read_inventory_source(Path(args.inventory))
    results = json.loads(Path(args.results).read_text()) if args.results != "-" else json.load(sys.stdin)
    if not isinstance(results, list):
        raise ops.CertError("record takes a JSON list of {key, token_serial?, installed?}")
    with ops.changing(source) as (_registry, ledger):
        try:
            ledger, changes = ops.record(ledger, results)
        except ValueError as exc:  # the playbook's results contradict the ledger (another token)
            raise ops.CertError(str(exc)) from None
    print(json.dumps({"changed": bool(changes), "changes": changes}, ensure_ascii=False))
    return 0


def add_parser(sub) -> None:
    certs = sub.add_parser("certs", help="digital certificates: ledger, registration export, import, renewal")
    certs_sub = certs.add_subparsers(dest="certs_command", required=True)
    for name, func, text in (
        ("check", cmd_check, "validate the certificate ledger against the registry"),
        ("list", cmd_list, "every certificate with its status and days left"),
        ("export", cmd_export, "the registration batch for the CA (CSV, Vietnamese headers) with every request"),
        ("import", cmd_import, "check issued certificates (chain, key, subject, validity) and store the good ones"),
        ("expiring", cmd_expiring, "certificates that end within N days (default: the ledger's renew_days, 30)"),
        ("renew", cmd_renew, "re-request what ends within N days: new key and CSR on the token, then the export"),
        ("plan", cmd_plan, "JSON for playbooks/certificates.yml: per host, what to request and install"),
        ("record", cmd_record, "write the playbook's results back to the ledger (JSON list)"),
    ):
        p = certs_sub.add_parser(name, help=text, description=text)
        p.add_argument("-i", "--inventory", default="inventory/lab", help="inventory (default: inventory/lab)")
        p.set_defaults(func=func)
        if name in ("list", "export", "expiring", "renew", "plan"):
            p.add_argument("--sites", help="comma-separated site codes (default: all)")
        if name in ("list", "expiring"):
            p.add_argument("--json", action="store_true")
        if name in ("list", "import", "expiring", "renew", "export"):
            p.add_argument("--now", help=argparse.SUPPRESS)  # tests: judge validity at another time
        if name in ("expiring", "renew"):
            p.add_argument("--days", type=int, help="window in days (default: the ledger's renew_days)")
        if name in ("export", "renew"):
            p.add_argument(
                "--out", help="CSV file, the XLSX beside it (default: <store>/exports/<date>-dang-ky-chung-thu-so.csv)"
            )
        if name == "renew":
            p.add_argument("--dry-run", action="store_true", help="only list what would be renewed")
        if name == "import":
            text = "issued certificates (PEM or DER; a PEM may carry its chain), or folders of them"
            p.add_argument("files", nargs="+", help=text)
            p.add_argument("--cert", metavar="SITE/ID", help="the ledger entry the one file is for (default: by key)")
        if name == "record":
            p.add_argument("results", help="JSON file, or - for stdin")
