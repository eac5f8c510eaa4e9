"""The daily dossier report (báo cáo tiến độ giải quyết hồ sơ hằng ngày): one day's figures per ward
and unit and per agency, judged at a fixed time of the day, beside the day before at the same time.

What it holds, for each site the registry names and each agency of the city centre:

- received, finished on time, finished late in the day (midnight to the cut-off), dossiers open and
  overdue at the cut-off, the on-time rate of the day, and the reason most of its late and overdue
  dossiers give; each count with its change from the day before, judged at the same time of day
  (what the day added, not a rolling window: Monday's figures are Monday's);
- the day's worst ten: the sites and agencies with the most overdue dossiers open (then the lowest
  on-time rate, then the most finished late), only those with an overdue or late dossier at all;
- the ten dossiers overdue longest, with their procedure, limit, reason and step: what to chase.

The report is written as HTML (people read it in the e-mail and on the monitoring host), XLSX (every
figure a number, for the spreadsheet the centre keeps) and CSV (for programs), Vietnamese first with
English beside. The figures are :mod:`.indicators`' (one definition of each).
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..core.spreadsheet import csv_document, xlsx_document
from .indicators import CITY, NOT_RECORDED, Figures, by_agency, overdue_at, summarise
from .records import TZ, Dossier

WORST = 10
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Unit:
    kind: str  # site | agency | city
    code: str
    name: str
    today: Figures
    yesterday: Figures

    @property
    def label(self) -> str:
        return f"{self.code} {self.name}".strip() if self.kind != "city" else self.name

    @property
    def main_reason(self) -> str:
        reasons = [(r, n) for r, n in self.today.late_by_reason.most_common() if r != NOT_RECORDED]
        if not reasons and self.today.late_by_reason:
            reasons = self.today.late_by_reason.most_common(1)
        return f"{reasons[0][0]} ({reasons[0][1]})" if reasons else ""


@dataclass(frozen=True)
class Overdue:
    dossier: Dossier
    unit: str  # the site, and the agency where there is one
    days: float  # past its limit at the cut-off


@dataclass(frozen=True)
class DailyReport:
    day: dt.date
    cutoff: dt.datetime
    sites: list[Unit]
    agencies: list[Unit]
    city: Unit
    worst: list[Unit]
    overdue: list[Overdue]
    source: str  # where the records came from, and how many

    @property
    def stem(self) -> str:
        return f"ho-so-{self.day:%Y-%m-%d}"


def _figures(result: dict[str, dict[str, Figures]], scope: str) -> Figures:
    return result.get(scope, {}).get("today") or Figures()


def build(
    dossiers: Iterable[Dossier],
    cutoff: dt.datetime,
    sites: Mapping[str, str],
    agencies: Mapping[str, str] | None = None,
    source: str = "",
    worst: int = WORST,
) -> DailyReport:
    """The report of ``cutoff``'s day, judged at ``cutoff`` (and the day before at the same time).
    ``sites``: code -> name of every site reported (a site with no dossier is still a row);
    ``agencies``: code -> name of agencies named even with no dossier (any other agency met is added)."""
    cutoff = cutoff.astimezone(TZ)
    dossiers = list(dossiers)
    wanted = set(sites)
    mine = [d for d in dossiers if d.site in wanted]
    per_site = summarise(mine, cutoff), summarise(mine, cutoff - DAY)
    per_agency = summarise(mine, cutoff, by_agency), summarise(mine, cutoff - DAY, by_agency)
    names = dict(agencies or {})
    for code in sorted({d.agency for d in mine if d.agency}):
        names.setdefault(code, code)
    site_units = [Unit("site", c, n, _figures(per_site[0], c), _figures(per_site[1], c)) for c, n in sites.items()]
    agency_units = [Unit("agency", c, n if n != c else "", _figures(per_agency[0], c), _figures(per_agency[1], c))
                    for c, n in sorted(names.items())]  # fmt: skip
    city = Unit("city", CITY, "Toàn thành phố / City", _figures(per_site[0], CITY), _figures(per_site[1], CITY))

    def badness(unit: Unit) -> tuple:
        f = unit.today
        rate = f.on_time_rate if f.on_time_rate is not None else 1.0
        return (-f.open_overdue, rate, -f.finished_late, unit.kind, unit.code)

    ranked = [u for u in site_units + agency_units if u.today.open_overdue or u.today.finished_late]
    late = [
        Overdue(d, f"{d.site} / {d.agency}" if d.agency else d.site, (cutoff - d.limit).total_seconds() / 86400)
        for d in mine
        if overdue_at(d, cutoff)
    ]
    late.sort(key=lambda o: (-o.days, o.dossier.code))
    return DailyReport(cutoff.date(), cutoff, site_units, agency_units, city, sorted(ranked, key=badness)[:worst],
                       late[:worst], source)  # fmt: skip


# ---- the table every format shares

HEADER = (
    "Loại / Kind",
    "Mã / Code",
    "Tên / Name",
    "Tiếp nhận / Received",
    "± hôm qua / vs yesterday",
    "Đúng hạn / On time",
    "± hôm qua / vs yesterday",
    "Trễ hạn / Late",
    "± hôm qua / vs yesterday",
    "Quá hạn đang xử lý / Overdue open",
    "± hôm qua / vs yesterday",
    "Tỷ lệ đúng hạn / On-time rate",
    "Hôm qua / Yesterday",
    "Lý do chậm chính / Main reason late",
)
KINDS = {"site": "Phường, xã, đặc khu / Ward", "agency": "Sở, ngành / Agency", "city": "Toàn thành phố / City"}
COUNTS = ("received", "finished_on_time", "finished_late", "open_overdue")


def _rate(rate: float | None) -> float | str:
    return "" if rate is None else round(rate * 100, 1)


def _row(unit: Unit) -> list[object]:
    row: list[object] = [KINDS[unit.kind], "" if unit.kind == "city" else unit.code, unit.name]
    for name in COUNTS:
        now, before = getattr(unit.today, name), getattr(unit.yesterday, name)
        row += [now, now - before]
    return [*row, _rate(unit.today.on_time_rate), _rate(unit.yesterday.on_time_rate), unit.main_reason]


def rows(report: DailyReport) -> list[list[object]]:
    return [_row(u) for u in [*report.sites, *report.agencies, report.city]]


def as_csv(report: DailyReport) -> str:
    return csv_document(HEADER, [[str(c) for c in r] for r in rows(report)])


def as_xlsx(report: DailyReport) -> bytes:
    return xlsx_document(HEADER, rows(report), sheet=f"Hồ sơ {report.day:%d-%m-%Y}")


# ---- HTML: one self-contained page (inline style, no script), readable on a phone

_STYLE = """
body{font-family:system-ui,"Segoe UI",Roboto,Arial,sans-serif;margin:0 auto;max-width:1100px;padding:12px;color:#1d2733}
h1{font-size:1.35em;margin:.2em 0}h2{font-size:1.1em;margin:1.2em 0 .4em}p.meta{color:#566;margin:.2em 0}
.wrap{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{border:1px solid #d5dbe1;padding:4px 6px;text-align:right;white-space:nowrap}
th{background:#eef2f6;position:sticky;top:0}td.l,th.l{text-align:left;white-space:normal}
tr.city td{font-weight:600;background:#f6f8fa}.up{color:#b3261e}.down{color:#1b6e34}.bad{background:#fdecea}
.tiles{display:flex;flex-wrap:wrap;gap:8px}
.tile{border:1px solid #d5dbe1;border-radius:6px;padding:6px 10px;min-width:140px}
.tile b{display:block;font-size:1.4em}small{color:#566}
"""


def _delta(value: int, worse_when_up: bool) -> str:
    if not value:
        return "<small>±0</small>"
    cls = ("up" if value > 0 else "down") if worse_when_up else ("down" if value > 0 else "up")
    return f'<span class="{cls}">{value:+d}</span>'


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1%}"


def _table(units: list[Unit]) -> str:
    head = ("<tr><th class=l>Mã / Code</th><th class=l>Tên / Name</th><th>Tiếp nhận<br><small>Received</small></th>"
            "<th>Đúng hạn<br><small>On time</small></th><th>Trễ hạn<br><small>Late</small></th>"
            "<th>Quá hạn<br><small>Overdue open</small></th><th>Tỷ lệ đúng hạn<br><small>On-time rate</small></th>"
            "<th class=l>Lý do chậm chính<br><small>Main reason late</small></th></tr>")  # fmt: skip
    body = []
    for unit in units:
        t, y = unit.today, unit.yesterday
        worse = {"received": False, "finished_on_time": False, "finished_late": True, "open_overdue": True}
        cells = "".join(f"<td>{getattr(t, n)} {_delta(getattr(t, n) - getattr(y, n), worse[n])}</td>" for n in COUNTS)
        cls = ' class="city"' if unit.kind == "city" else (' class="bad"' if t.open_overdue else "")
        body.append(
            f"<tr{cls}><td class=l>{html.escape('' if unit.kind == 'city' else unit.code)}</td>"
            f"<td class=l>{html.escape(unit.name)}</td>{cells}"
            f"<td>{_percent(t.on_time_rate)} <small>({_percent(y.on_time_rate)})</small></td>"
            f"<td class=l>{html.escape(unit.main_reason)}</td></tr>"
        )
    return f'<div class="wrap"><table>{head}{"".join(body)}</table></div>'


def as_html(report: DailyReport) -> str:
    c, y = report.city.today, report.city.yesterday
    tiles = "".join(
        f'<div class="tile"><small>{label}</small><b>{value}</b>{extra}</div>'
        for label, value, extra in (
            ("Tiếp nhận / Received", c.received, _delta(c.received - y.received, False)),
            ("Đúng hạn / On time", c.finished_on_time, _delta(c.finished_on_time - y.finished_on_time, False)),
            ("Trễ hạn / Late", c.finished_late, _delta(c.finished_late - y.finished_late, True)),
            ("Quá hạn đang xử lý / Overdue open", c.open_overdue, _delta(c.open_overdue - y.open_overdue, True)),
            ("Tỷ lệ đúng hạn / On-time rate", _percent(c.on_time_rate), f"<small>hôm qua / yesterday "
             f"{_percent(y.on_time_rate)}</small>"),
        )
    )  # fmt: skip
    worst = (
        _table(report.worst)
        if report.worst
        else "<p>Không có đơn vị nào có hồ sơ quá hạn hay trễ hạn. / No unit has an overdue or late dossier.</p>"
    )
    overdue = "".join(
        f"<tr><td class=l>{html.escape(o.dossier.code)}</td><td class=l>{html.escape(o.unit)}</td>"
        f"<td class=l>{html.escape(o.dossier.procedure_name or o.dossier.procedure_code)}</td>"
        f"<td>{o.dossier.due_at:%d/%m/%Y %H:%M}</td><td>{o.days:.1f}</td>"
        f"<td class=l>{html.escape(o.dossier.overdue_reason or NOT_RECORDED)}</td>"
        f"<td class=l>{html.escape(o.dossier.late_step or NOT_RECORDED)}</td></tr>"
        for o in report.overdue
        if o.dossier.due_at is not None
    )
    overdue_table = (
        '<div class="wrap"><table><tr><th class=l>Mã hồ sơ / Dossier</th><th class=l>Đơn vị / Unit</th>'
        "<th class=l>Thủ tục / Procedure</th><th>Hạn / Due</th><th>Số ngày quá hạn / Days over</th>"
        f"<th class=l>Lý do / Reason</th><th class=l>Bước / Step</th></tr>{overdue}</table></div>"
        if overdue
        else "<p>Không có hồ sơ quá hạn. / No overdue dossier.</p>"
    )
    agencies = f"<h2>Theo sở, ngành / By agency</h2>{_table(report.agencies)}" if report.agencies else ""
    return (
        f'<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Báo cáo hồ sơ {report.day:%d/%m/%Y} / Dossier report</title><style>{_STYLE}</style></head><body>"
        f"<h1>Báo cáo tiến độ giải quyết hồ sơ ngày {report.day:%d/%m/%Y}<br>"
        f"<small>Dossier processing report, {report.day:%d %B %Y}</small></h1>"
        f'<p class="meta">Số liệu tính đến {report.cutoff:%H:%M} ngày {report.cutoff:%d/%m/%Y}, so với cùng giờ '
        f"hôm qua / Figures as of {report.cutoff:%H:%M}, against the same time yesterday. "
        f"Nguồn / Source: {html.escape(report.source)}</p>"
        f'<div class="tiles">{tiles}</div>'
        f"<h2>Mười đơn vị chậm nhất / The ten units furthest behind</h2>{worst}"
        f"<h2>Mười hồ sơ quá hạn lâu nhất / The ten dossiers overdue longest</h2>{overdue_table}"
        f"<h2>Theo phường, xã, đặc khu / By ward and unit</h2>{_table([*report.sites, report.city])}"
        f"{agencies}"
        "<p class=meta>motcua-ops · các số liệu theo docs/dossiers.md / figures as defined in docs/dossiers.md</p>"
        "</body></html>\n"
    )


def subject(report: DailyReport) -> str:
    c = report.city.today
    return (f"[motcua] Hồ sơ ngày {report.day:%d/%m/%Y}: {c.received} tiếp nhận, {c.open_overdue} quá hạn, "
            f"đúng hạn {_percent(c.on_time_rate)} / Dossiers {report.day:%Y-%m-%d}")  # fmt: skip


def text_summary(report: DailyReport) -> str:
    """The plain-text part of the e-mail (and what a mail client without HTML shows)."""
    c = report.city.today
    lines = [
        f"Báo cáo tiến độ giải quyết hồ sơ ngày {report.day:%d/%m/%Y} (đến {report.cutoff:%H:%M}) / "
        f"Dossier processing report {report.day:%Y-%m-%d} (as of {report.cutoff:%H:%M})",
        f"Tiếp nhận / received {c.received}; đúng hạn / on time {c.finished_on_time}; trễ hạn / late "
        f"{c.finished_late}; quá hạn / overdue open {c.open_overdue}; "
        f"tỷ lệ đúng hạn / on-time {_percent(c.on_time_rate)}",
        "",
        "Chậm nhất / furthest behind:",
        *(
            f"  {u.label}: {u.today.open_overdue} quá hạn / overdue, {_percent(u.today.on_time_rate)} đúng hạn"
            for u in report.worst
        ),
        "",
        "Chi tiết trong tệp đính kèm (HTML, XLSX, CSV). / Details in the attached files.",
    ]
    return "\n".join(lines) + "\n"
