"""The readiness report: an HTML grid of every site, CSV, JSON, and Prometheus metrics per site."""

from __future__ import annotations

import html
import json
from pathlib import Path

from ..durable import write_atomic
from ..spreadsheet import csv_document
from .checks import CHECKS, FAIL, OK, WARN, SiteReadiness

COLOURS = {"green": "#1e8e3e", "amber": "#f29900", "red": "#d93025"}
LABELS = {"green": "Sẵn sàng / ready", "amber": "Cần lưu ý / attention", "red": "Chưa sẵn sàng / not ready"}
CELL = {OK: "✔", WARN: "!", FAIL: "✘", None: "·"}
# The verdicts, best first (the report lists the worst first).
LEVEL = {"green": 2, "amber": 1, "red": 0}


def counts(sites: list[SiteReadiness]) -> dict[str, int]:
    """How many sites are green, amber and red."""
    return {v: sum(s.verdict == v for s in sites) for v in LEVEL}


def as_json(sites: list[SiteReadiness], created: str) -> str:
    payload = {"created": created, "counts": counts(sites), "sites": [s.as_dict() for s in sites]}
    return json.dumps(payload, ensure_ascii=False, indent=1) + "\n"


def as_csv(sites: list[SiteReadiness]) -> str:
    """The sites as a spreadsheet's rows (every cell text, a byte-order mark: motcua.spreadsheet)."""
    rows = []
    for s in sites:
        problems = "; ".join(f"{r.host or s.code}: {CHECKS[r.check]}: {r.detail}".rstrip(": ") for r in s.problems())
        rows.append([s.code, s.name, s.verdict, *(s.check_status(c) or "" for c in CHECKS), problems])
    header = ["Mã đơn vị / site", "Tên / name", "Kết luận / verdict", *CHECKS, "Lỗi / problems"]
    return csv_document(header, rows, lineterminator="\n")


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def as_metrics(sites: list[SiteReadiness], created_ts: float) -> str:
    """Prometheus text format, for node exporter's textfile collector on the monitoring host.

    The verdict is a state set (one series per verdict, 1 for the site's), the site's name an
    info series, each check 1/0, and when the checks ran a timestamp.
    """
    lines = [
        "# HELP motcua_readiness_site_verdict Go-live verdict of the site: 1 for its verdict (green, amber, red).",
        "# TYPE motcua_readiness_site_verdict gauge",
    ]
    for s in sites:
        lines += [
            f'motcua_readiness_site_verdict{{site="{s.code}",verdict="{v}"}} {int(s.verdict == v)}' for v in LEVEL
        ]
    lines += ["# HELP motcua_readiness_site_info The site the readiness checks judged, with its name.",
              "# TYPE motcua_readiness_site_info gauge"]  # fmt: skip
    lines += [f'motcua_readiness_site_info{{site="{s.code}",name="{_escape_label(s.name)}"}} 1' for s in sites]
    lines += [
        "# HELP motcua_readiness_check 1 when the check passed at every host of the site, 0 when it did not.",
        "# TYPE motcua_readiness_check gauge",
    ]
    for s in sites:
        for check in CHECKS:
            status = s.check_status(check)
            if status is not None:
                lines.append(f'motcua_readiness_check{{site="{s.code}",check="{check}"}} {int(status == OK)}')
    lines += [
        "# HELP motcua_readiness_last_run_timestamp_seconds When the readiness checks ran (Unix time).",
        "# TYPE motcua_readiness_last_run_timestamp_seconds gauge",
        f"motcua_readiness_last_run_timestamp_seconds {created_ts:.0f}",
    ]
    return "\n".join(lines) + "\n"


_CSS = """
body { font-family: "Noto Sans", "DejaVu Sans", sans-serif; margin: 24px; color: #202124; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
.meta { color: #5f6368; margin-bottom: 16px; }
.counts span { display: inline-block; padding: 4px 12px; margin-right: 8px; border-radius: 12px; color: #fff; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 10px; margin-top: 16px; }
.site { border-radius: 8px; padding: 10px 12px; color: #fff; min-height: 74px; }
.site h2 { font-size: 15px; margin: 0; }
.site .name { font-size: 13px; opacity: .95; }
.site .checks { font-family: "DejaVu Sans Mono", monospace; font-size: 13px; margin-top: 4px; }
.site ul { margin: 6px 0 0; padding-left: 18px; font-size: 12px; }
.green { background: #1e8e3e; } .amber { background: #f29900; } .red { background: #d93025; }
table.legend { border-collapse: collapse; margin-top: 20px; font-size: 13px; }
table.legend td { padding: 2px 10px 2px 0; }
"""


def as_html(sites: list[SiteReadiness], created: str, scope: str) -> str:
    tally = counts(sites)
    cards = []
    for s in sorted(sites, key=lambda s: (LEVEL[s.verdict], s.code)):  # red first: what needs people
        marks = " ".join(f"{i}{CELL[s.check_status(c)]}" for i, c in enumerate(CHECKS, 1))
        items = "".join(
            f"<li>{html.escape(r.host or s.code)}: {html.escape(CHECKS[r.check])}"
            + (f" — {html.escape(r.detail)}" if r.detail else "")
            + "</li>"
            for r in s.problems()[:8]
        )
        more = len(s.problems()) - 8
        if more > 0:
            items += f"<li>… và {more} lỗi khác / and {more} more</li>"
        cards.append(
            f'<div class="site {s.verdict}" data-site="{html.escape(s.code)}" data-verdict="{s.verdict}">'
            f"<h2>{html.escape(s.code)} · {html.escape(LABELS[s.verdict])}</h2>"
            f'<div class="name">{html.escape(s.name)}</div>'
            f'<div class="checks" title="{html.escape(" | ".join(CHECKS.values()))}">{marks}</div>'
            + (f"<ul>{items}</ul>" if items else "")
            + "</div>"
        )
    legend = "".join(
        f"<tr><td>{i + 1}.</td><td>{html.escape(label)}</td></tr>" for i, label in enumerate(CHECKS.values())
    )
    badges = "".join(
        f'<span style="background:{COLOURS[v]}">{html.escape(LABELS[v])}: {tally[v]}</span>' for v in LEVEL
    )
    return f"""<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8">
<title>Sẵn sàng vận hành / Go-live readiness — {html.escape(scope)}</title>
<style>{_CSS}</style></head>
<body>
<h1>Kiểm tra sẵn sàng vận hành các Trung tâm một cửa / Go-live readiness of the one-stop shops</h1>
<div class="meta">{html.escape(scope)} · {len(sites)} đơn vị / sites · {html.escape(created)}</div>
<div class="counts">{badges}</div>
<div class="grid">
{chr(10).join(cards)}
</div>
<table class="legend"><tr><td colspan="2"><b>Thứ tự các kiểm tra / checks, in order</b>
(✔ đạt / passed, ! cần lưu ý / attention, ✘ lỗi / failed, · không áp dụng / not checked)</td></tr>
{legend}</table>
</body></html>
"""


def write_report(out_dir: Path, sites: list[SiteReadiness], created: str, created_ts: float, scope: str) -> dict:
    """readiness.html, .csv, .json and .prom in ``out_dir`` (each replaced whole)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "html": ("readiness.html", as_html(sites, created, scope)),
        "csv": ("readiness.csv", as_csv(sites)),
        "json": ("readiness.json", as_json(sites, created)),
        "metrics": ("motcua_readiness.prom", as_metrics(sites, created_ts)),
    }
    written = {}
    for kind, (name, text) in files.items():
        path = out_dir / name
        write_atomic(path, text)
        written[kind] = str(path)
    return written


__all__ = ["FAIL", "OK", "WARN", "as_csv", "as_html", "as_json", "as_metrics", "write_report"]
