"""``motcua dossiers report``: processing indicators of a dossier export, per site or agency and city-wide.

Exit status: 0 the report was written; 2 bad input (the export is refused whole, every problem listed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

from motcua_exporters.dossier.indicators import CITY, RATES, Figures, by_agency, summarise
from motcua_exporters.dossier.metrics import as_metrics
from motcua_exporters.dossier.source import Api, DossierRecordError, DossierSourceError, RecordStore

from ..access import read_inventory_source
from ..durable import write_atomic
from ..errors import ToolError
from ..times import TZ, local
from ..validation.problems import InputError
from .export import as_problems, read_export

WINDOWS = ("today", "7d", "month")
COLUMNS = (  # (header, width, value)
    ("tiếp nhận/received", 18, lambda f: f.received),
    ("đúng hạn/on time", 16, lambda f: f.finished_on_time),
    ("trễ hạn/late", 12, lambda f: f.finished_late),
    ("đang xử lý/open", 15, lambda f: f.open_not_due),
    ("quá hạn/overdue", 15, lambda f: f.open_overdue),
    ("chờ bổ sung/paused", 18, lambda f: f.open_paused),
    ("tỷ lệ đúng hạn/on-time", 22, lambda f: _percent(f.on_time_rate)),
    ("trực tuyến/online", 17, lambda f: _percent(f.online_share)),
)


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def _table(result: dict[str, dict[str, Figures]], window: str, names: dict[str, str]) -> list[str]:
    scopes = sorted((s for s in result if s != CITY), key=lambda s: (-result[s][window].open_overdue, s))
    width = max([len(names.get(s, s)) for s in scopes] + [22])
    lines = [f"{'':<8} {'':<{width}} " + " ".join(f"{h:>{w}}" for h, w, _ in COLUMNS)]
    for scope in [*scopes, CITY]:
        figures = result[scope][window]
        label = "toàn thành phố / city" if scope == CITY else names.get(scope, "")
        lines.append(f"{'' if scope == CITY else scope:<8} {label:<{width}} "
                     + " ".join(f"{value(figures)!s:>{w}}" for _h, w, value in COLUMNS))  # fmt: skip
    return lines


def _secret(path: str | None, variable: str) -> str:
    """The API token: from a file (0600, as the vault writes it) or the environment, never an argument."""
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ToolError(f"--token-file {path}: {exc.strerror}") from None
    value = os.environ.get(variable, "")
    if not value:
        raise ToolError(f"the reporting API needs a token: --token-file FILE or ${variable}")
    return value


def _from_api(args: argparse.Namespace, sites) -> tuple[list, str]:
    """The records read since the store's last run, merged into it: (dossiers, where they came from)."""
    token = _secret(args.token_file, "MOTCUA_DOSSIER_API_TOKEN")
    try:
        api = Api(args.api, token, Path(args.ca_file) if args.ca_file else None, timeout=args.timeout)
        store = RecordStore(Path(args.store))
        read, changed = store.update(api)
        dossiers = store.dossiers(sites)
    except DossierSourceError as exc:
        raise ToolError(str(exc)) from None
    except DossierRecordError as exc:
        raise InputError(as_problems(exc.problems), exc.what) from None
    return (
        dossiers,
        f"{args.api}: {read} records read, {changed} new or changed; {len(dossiers)} dossiers in {args.store}",
    )


def cmd_report(args: argparse.Namespace) -> int:
    source = read_inventory_source(Path(args.inventory))
    registry = source.load()
    if args.export:
        dossiers, encoding = read_export(Path(args.export), registry.sites)
        origin = f"{args.export}: {len(dossiers)} dossiers ({encoding})"
    else:
        dossiers, origin = _from_api(args, registry.sites)
    now = local(dt.datetime.fromisoformat(args.now)) if args.now else dt.datetime.now(TZ)
    key = by_agency if args.by == "agency" else (lambda d: d.site)
    result = summarise(dossiers, now, key)
    names = {code: site.name for code, site in registry.sites.items()} if args.by == "site" else {}
    print(f"{origin}; at {now:%d/%m/%Y %H:%M}; window {args.window}")
    print("\n".join(_table(result, args.window, names)))
    city = result[CITY][args.window]
    for title, counter in (("lý do chậm / why late", city.late_by_reason), ("bước chậm / step", city.late_by_step)):
        if counter:
            print(f"{title}: " + "; ".join(f"{reason} {count}" for reason, count in counter.most_common(5)))
    if args.textfile:
        text = as_metrics(dossiers, now, registry.sites, top=args.top)
        write_atomic(Path(args.textfile), text, mode=0o644)
        print(f"metrics: {args.textfile}", file=sys.stderr)
    if args.json:
        data = {
            "created": now.isoformat(timespec="seconds"),
            "source": str(args.export or args.api),
            "by": args.by,
            "rates": list(RATES),
            "scopes": {scope: {w: f.as_dict() for w, f in spans.items()} for scope, spans in result.items()},
        }
        Path(args.json).write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"json: {args.json}", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    text = "dossier processing: received, on time, late, overdue and why, from a dossier system's export"
    p = sub.add_parser("dossiers", help=text, description=text)
    actions = p.add_subparsers(dest="action", required=True)
    r = actions.add_parser("report", help="indicators per site (or agency) and city-wide, from an export or the API")
    source = r.add_mutually_exclusive_group(required=True)
    source.add_argument("--export", help="CSV or XLSX export of dossier records (docs/dossiers.md: its columns)")
    source.add_argument("--api", help="the reporting API's records URL (docs/dossiers.md, 'The reporting API')")
    r.add_argument("--token-file", help="--api: file holding its token (else $MOTCUA_DOSSIER_API_TOKEN)")
    r.add_argument("--ca-file", help="--api: CA bundle for its HTTPS certificate (default: the system's)")
    r.add_argument(
        "--store",
        default="dossiers/records.sqlite",
        help="--api: the records read so far; each run asks only for what changed (default: %(default)s)",
    )
    r.add_argument("--timeout", type=float, default=30.0, help="--api: seconds per page (default: 30)")
    r.add_argument("-i", "--inventory", default="inventory/hcmc", help="inventory whose registry names the sites")
    r.add_argument("--by", choices=("site", "agency"), default="site", help="one row per site or per agency")
    r.add_argument("--window", choices=WINDOWS, default="today", help="today, the last 7 days, or the month so far")
    r.add_argument("--json", help="also write every scope and window as JSON to this file")
    r.add_argument(
        "--textfile", help="also write the figures as Prometheus metrics (node_exporter's textfile collector)"
    )
    r.add_argument("--top", type=int, default=20, help="--textfile: agencies, procedures and reasons kept by name")
    r.add_argument("--now", help="judge at this time (ISO 8601, Vietnam's time unless an offset is given)")
    r.set_defaults(func=cmd_report)
