"""Grafana dashboards (JSON model, schema 39) for the on-duty staff.

Four dashboards, titles in Vietnamese with English beside:
  - city overview: the dossier system, every site's status in one table, what is firing
  - ward drill-down: one site's counters, printers, token, portal, clock, certificate
  - dossier system: availability, latency by phase, the statistics API
  - dossier processing: Decision 766's figures (docs/kpis.md) for the city, each ward and each
    agency over today, 7 days or the month; why late, which procedures

Written by ``motcua dashboards DIR`` into roles/monitoring_dashboards/files/
(a test keeps the committed files equal to what this module writes). Every
PromQL expression here is run against the lab's Prometheus by the tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ..durable import write_atomic

SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# What Grafana puts in place of its variables; the tests substitute the same.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "15s"}


class _Panels:
    """Lays panels out left to right, top to bottom on Grafana's 24-column grid."""

    def __init__(self) -> None:
        self.panels: list[dict[str, object]] = []
        self.x = self.y = self.row_height = 0

    def add(self, kind: str, title: str, targets: list[tuple[str, str]], w: int, h: int, **options: object) -> None:
        if self.x + w > 24:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel: dict[str, object] = {
            "id": len(self.panels) + 1,
            "type": kind,
            "title": title,
            "datasource": DATASOURCE,
            "gridPos": {"x": self.x, "y": self.y, "w": w, "h": h},
            "targets": [
                {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
                | ({"format": "table", "instant": True} if kind == "table" else {})
                for i, (expr, legend) in enumerate(targets)
            ],
        }
        panel.update(options)
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)

    def stat(self, title: str, expr: str, w: int, field_config: dict[str, object] | None = None) -> None:
        """One number, four rows high; coloured by ``field_config``'s thresholds when given."""
        self.add("stat", title, [(expr, "")], w, 4, **({"fieldConfig": field_config} if field_config else {}))


def _thresholds(*steps: tuple[str, float | None]) -> dict[str, object]:
    return {
        "defaults": {
            "thresholds": {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]},
            "color": {"mode": "thresholds"},
        },
        "overrides": [],
    }


UP_DOWN = _thresholds(("red", None), ("green", 1))
ZERO_GOOD = _thresholds(("green", None), ("red", 1))
# A site's readiness verdict (a state set) as one number for a table cell: 2 ready, 1 attention, 0 not ready.
READINESS_LEVEL = (
    'max by (site) (motcua_readiness_site_verdict{verdict="green"}) * 2'
    ' + max by (site) (motcua_readiness_site_verdict{verdict="amber"})'
)


def _dashboard(uid: str, title: str, panels: _Panels, variables: list[dict[str, object]], refresh: str = "30s"):
    return {
        "uid": uid,
        "title": title,
        "tags": ["motcua"],
        "timezone": "Asia/Ho_Chi_Minh",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": False,
        "refresh": refresh,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Nguồn dữ liệu / Data source",
                    "type": "datasource",
                    "query": "prometheus",
                },
                *variables,
            ]
        },
        "panels": panels.panels,
    }


def city_overview() -> dict[str, object]:
    p = _Panels()
    p.stat("Hệ thống giải quyết TTHC / Dossier system", 'min(motcua_dossier_probe_success{job="dossier"})', 6, UP_DOWN)
    p.stat(
        "Điểm mất kết nối / Sites offline",
        'count(max by (site) (probe_success{job="gear", role="router"}) == 0) or vector(0)',
        6,
        ZERO_GOOD,
    )
    p.stat("Máy quầy không phản hồi / Counter PCs down", 'count(up{job="node"} == 0) or vector(0)', 6, ZERO_GOOD)
    p.stat(
        "Cảnh báo đang phát / Alerts firing",
        'count(ALERTS{alertstate="firing", alertname!="Watchdog"}) or vector(0)',
        6,
        ZERO_GOOD,
    )
    p.add(
        "table",
        "Tình trạng từng điểm / Every site",
        [
            ("motcua_site_info", "site"),
            ('max by (site) (probe_success{job="gear", role="router"})', "reachable"),
            ('sum by (site) (up{job="node"}) / count by (site) (up{job="node"})', "counters_up"),
            ('count by (site) (ALERTS{alertstate="firing", scope="site"})', "alerts"),
            # playbooks/golive_check.yml's verdict (docs/readiness.md) as 2 ready, 1 attention, 0 not ready.
            (READINESS_LEVEL, "readiness"),
        ],
        24,
        14,
        transformations=[
            {"id": "joinByField", "options": {"byField": "site", "mode": "outer"}},
            {
                "id": "organize",
                "options": {
                    "excludeByName": {f"Time{n}": True for n in ("", " 1", " 2", " 3", " 4", " 5")},
                    "renameByName": {
                        "site": "Mã / Code",
                        "ward": "Điểm / Site",
                        "region": "Khu vực / Region",
                        "phase": "Giai đoạn / Phase",
                        "Value #B": "Kết nối / Reachable",
                        "Value #C": "Quầy hoạt động / Counters up",
                        "Value #D": "Cảnh báo / Alerts",
                        "Value #E": "Sẵn sàng (2 đạt, 1 lưu ý, 0 chưa) / Readiness (2 ready, 1 attention, 0 not)",
                    },
                },
            },
        ],
    )
    p.add(
        "table",
        "Cảnh báo đang phát / Firing alerts",
        [('ALERTS{alertstate="firing", alertname!="Watchdog"}', "")],
        24,
        10,
    )
    return _dashboard("motcua-city", "Một cửa TP.HCM - Tổng quan / City overview", p, [])


def ward_drilldown() -> dict[str, object]:
    p = _Panels()
    sel = 'site="$site"'
    p.stat("Router", f'max(probe_success{{job="gear", role="router", {sel}}})', 4, UP_DOWN)
    p.stat("Máy quầy hoạt động / Counters up", f'sum(up{{job="node", {sel}}}) or vector(0)', 5)
    p.stat(
        "Vào được hệ thống / Portal reachable",
        f'min(motcua_counter_portal_success{{job="counter", {sel}}})',
        5,
        UP_DOWN,
    )
    p.stat(
        "Chứng thư số còn (ngày) / Certificate days left",
        f"min((motcua_counter_token_certificate_not_after_timestamp_seconds{{{sel}}} - time()) / 86400)"
        f' or min((motcua_certificate_not_after_timestamp_seconds{{job="certificate", {sel}}} - time()) / 86400)',
        5,
        _thresholds(("red", None), ("orange", 7), ("green", 30)),
    )
    p.stat("Cảnh báo / Alerts", f'count(ALERTS{{alertstate="firing", {sel}}}) or vector(0)', 5, ZERO_GOOD)
    p.add(
        "table",
        "Máy quầy / Counter PCs",
        [
            (f'up{{job="node", {sel}}}', "up"),
            (f'motcua_counter_tokens{{job="counter", {sel}}}', "tokens"),
            (f'motcua_counter_scanners{{job="counter", {sel}}}', "scanners"),
            (f'motcua_counter_portal_success{{job="counter", {sel}}}', "portal"),
            (f'motcua_counter_clock_offset_seconds{{job="counter", {sel}}}', "clock"),
        ],
        24,
        8,
        transformations=[{"id": "joinByField", "options": {"byField": "instance", "mode": "outer"}}],
    )
    p.add(
        "timeseries",
        "Máy in / Printers: jobs, stuck",
        [
            (f'motcua_counter_printer_jobs{{job="counter", {sel}}}', "{{instance}} {{printer}}"),
            (f'motcua_counter_printer_stuck_jobs{{job="counter", {sel}}}', "{{instance}} {{printer}} stuck"),
        ],
        12,
        8,
    )
    p.add(
        "timeseries",
        "Thời gian truy cập hệ thống từ quầy / Portal from the counters (s)",
        [(f'motcua_counter_portal_duration_seconds{{job="counter", {sel}}}', "{{instance}}")],
        12,
        8,
    )
    p.add(
        "timeseries",
        "Độ lệch đồng hồ / Clock offset (s)",
        [(f'motcua_counter_clock_offset_seconds{{job="counter", {sel}}}', "{{instance}}")],
        12,
        8,
    )
    p.add(
        "timeseries",
        "Dung lượng trống / Free space",
        [
            (
                f'node_filesystem_avail_bytes{{job="node", {sel}, mountpoint="/"}}'
                f' / node_filesystem_size_bytes{{job="node", {sel}, mountpoint="/"}}',
                "{{instance}} /",
            ),
            (
                f'motcua_counter_scans_free_bytes{{job="counter", {sel}}}'
                f' / motcua_counter_scans_size_bytes{{job="counter", {sel}}}',
                "{{instance}} scans",
            ),
        ],
        12,
        8,
    )
    site = {
        "name": "site",
        "label": "Điểm / Site",
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": "label_values(motcua_site_info, site)", "refId": "site"},
        "refresh": 1,
        "sort": 1,
    }
    return _dashboard("motcua-ward", "Một cửa TP.HCM - Từng điểm / Ward drill-down", p, [site])


def dossier_system() -> dict[str, object]:
    p = _Panels()
    p.stat(
        "Sẵn sàng / Availability ($__range)",
        'avg(avg_over_time(motcua_dossier_probe_success{job="dossier"}[$__range]))',
        8,
        _thresholds(("red", None), ("orange", 0.99), ("green", 0.999)),
    )
    p.stat(
        "Chứng chỉ TLS còn (ngày) / TLS certificate days left",
        'min((motcua_dossier_probe_tls_not_after_timestamp_seconds{job="dossier"} - time()) / 86400)',
        8,
        _thresholds(("red", None), ("orange", 7), ("green", 21)),
    )
    p.stat("Hồ sơ quá hạn / Overdue dossiers", 'sum(motcua_dossier_agency_overdue{job="dossier"})', 8)
    p.add(
        "timeseries",
        "Truy cập được / Up",
        [('motcua_dossier_probe_success{job="dossier"}', "{{target}}")],
        12,
        8,
    )
    p.add(
        "timeseries",
        "Thời gian phản hồi theo giai đoạn / Latency by phase (s)",
        [('motcua_dossier_probe_phase_duration_seconds{job="dossier"}', "{{target}} {{phase}}")],
        12,
        8,
        options={"tooltip": {"mode": "multi"}},
        fieldConfig={"defaults": {"custom": {"stacking": {"mode": "normal"}}}, "overrides": []},
    )
    p.add(
        "timeseries",
        "Thời gian phản hồi / Latency (s)",
        [('motcua_dossier_probe_duration_seconds{job="dossier"}', "{{target}}")],
        12,
        8,
    )
    p.add(
        "timeseries",
        "Hồ sơ tiếp nhận mỗi giờ / Dossiers received per hour",
        [('sum(increase(motcua_dossier_agency_received_total{job="dossier"}[1h]))', "received")],
        12,
        8,
    )
    p.add(
        "table",
        "Lỗi gần nhất / Current failures",
        [('motcua_dossier_probe_failure{job="dossier"} == 1', "")],
        24,
        6,
    )
    return _dashboard("motcua-dossier", "Một cửa TP.HCM - Hệ thống giải quyết TTHC / Dossier system", p, [])


def _share(level: str, rate: str) -> str:
    return f'{level}_window:motcua_dossiers_{rate}:ratio{{window="$window"}}'


# The columns of the per-ward and per-agency tables: (PromQL of the level's family or prefix, header).
_PROCESSING_COLUMNS = (
    ('sum by ({by}) ({family}_received{{window="$window"}})', "Tiếp nhận / Received"),
    ('sum by ({by}) ({family}_finished{{window="$window", verdict="on_time"}})', "Đúng hạn / On time"),
    ('sum by ({by}) ({family}_finished{{window="$window", verdict="late"}})', "Trễ hạn / Late"),
    ('sum by ({by}) ({family}_open{{state="overdue"}})', "Quá hạn đang xử lý / Overdue open"),
    ('sum by ({by}) ({family}_open{{state="paused"}})', "Chờ bổ sung / Paused"),
    ("{rate_on_time}", "Tỷ lệ đúng hạn / On-time rate"),
    ("{rate_online}", "Trực tuyến / Online"),
    ("{rate_paid}", "Thanh toán trực tuyến / Paid online"),
    ("{rate_digitised}", "Số hóa khi tiếp nhận / Digitised at intake"),
    ("{rate_result}", "Kết quả số hóa / Digitised results"),
    ("{rate_satisfied}", "Hài lòng / Satisfied"),
)


def _processing_table(level: str) -> list[tuple[str, str]]:
    family = "motcua_dossiers" if level == "site" else "motcua_dossiers_agency"
    rates = {
        "rate_on_time": _share(level, "on_time"),
        "rate_online": _share(level, "online"),
        "rate_paid": _share(level, "paid_online"),
        "rate_digitised": _share(level, "digitised_intake"),
        "rate_result": _share(level, "digitised_result"),
        "rate_satisfied": _share(level, "satisfied"),
    }
    targets = [("motcua_site_info", "site")] if level == "site" else []
    for expr, _header in _PROCESSING_COLUMNS:
        targets.append((expr.format(by=level, family=family, **rates), level))
    return targets


def _processing_organize(level: str) -> list[dict[str, object]]:
    first = 2 if level == "site" else 1  # the site table's first query is motcua_site_info (its labels)
    rename: dict[str, str] = {f"Value #{chr(ord('A') + first - 1 + i)}": header
                              for i, (_expr, header) in enumerate(_PROCESSING_COLUMNS)}  # fmt: skip
    rename.update({"site": "Mã / Code", "ward": "Điểm / Site", "agency": "Cơ quan / Agency"})
    hidden = {f"Time{n}": True for n in ("", *(f" {i}" for i in range(1, 13)))}
    hidden.update({"Value #A": True} if level == "site" else {})
    hidden.update({"kind": True, "team": True, "phase": True, "region": True, "__name__": True})
    return [
        {"id": "joinByField", "options": {"byField": level, "mode": "outer"}},
        {"id": "organize", "options": {"excludeByName": hidden, "renameByName": rename}},
    ]


def dossier_processing() -> dict[str, object]:
    """Decision 766's processing figures (docs/kpis.md), over the window chosen: the city, each ward and each
    agency, and why dossiers are late."""
    p = _Panels()
    percent = {"defaults": {"unit": "percentunit", "min": 0, "max": 1}, "overrides": []}
    on_time = _thresholds(("red", None), ("orange", 0.9), ("green", 0.95))
    on_time["defaults"].update(percent["defaults"])  # type: ignore[union-attr]
    p.stat("Tiếp nhận / Received", 'sum(motcua_dossiers_received{window="$window"})', 4)
    p.stat(
        "Tỷ lệ đúng hạn / On-time rate",
        'window:motcua_dossiers_on_time:ratio{window="$window"}',
        4,
        on_time,
    )
    p.stat("Quá hạn đang xử lý / Overdue open", 'sum(motcua_dossiers_open{state="overdue"})', 4, ZERO_GOOD)
    p.stat("Trực tuyến / Online", 'window:motcua_dossiers_online:ratio{window="$window"}', 4, percent)
    digitised = 'window:motcua_dossiers_digitised_intake:ratio{window="$window"}'
    p.stat("Số hóa khi tiếp nhận / Digitised at intake", digitised, 4, percent)
    p.stat("Hài lòng / Satisfied", 'window:motcua_dossiers_satisfied:ratio{window="$window"}', 4, percent)
    p.add("table", "Từng phường, xã, đặc khu / Each ward and unit", _processing_table("site"), 24, 14,
          transformations=_processing_organize("site"))  # fmt: skip
    p.add("table", "Từng sở, ngành tại Trung tâm / Each agency at the city centre", _processing_table("agency"), 24, 8,
          transformations=_processing_organize("agency"))  # fmt: skip
    p.add("table", "Lý do chậm (7 ngày) / Why late (7 days)", [("motcua_dossiers_late_by_reason", "{{reason}}")], 12, 8)
    p.add("table", "Thủ tục có hồ sơ quá hạn / Procedures with overdue dossiers",
          [("motcua_dossiers_overdue_by_procedure", "{{procedure}}")], 12, 8)  # fmt: skip
    p.add(
        "timeseries",
        "Hồ sơ quá hạn theo thời gian / Overdue dossiers over time",
        [('sum(motcua_dossiers_open{state="overdue"})', "overdue"), ('sum(motcua_dossiers_open{state="paused"})',
                                                                       "paused")],
        24,
        8,
    )  # fmt: skip
    window = {
        "name": "window",
        "label": "Khoảng thời gian / Window",
        "type": "custom",
        "query": "today,7d,month",
        "current": {"text": "today", "value": "today"},
        "options": [{"text": w, "value": w, "selected": w == "today"} for w in ("today", "7d", "month")],
    }
    return _dashboard("motcua-dossier-processing", "Một cửa TP.HCM - Giải quyết hồ sơ / Dossier processing", p,
                      [window], refresh="1m")  # fmt: skip


DASHBOARDS = {
    "city-overview": city_overview,
    "ward": ward_drilldown,
    "dossier-system": dossier_system,
    "dossier-processing": dossier_processing,
}


def render() -> dict[str, str]:
    """File name -> JSON text, byte-stable."""
    return {
        f"motcua-{name}.json": json.dumps(build(), ensure_ascii=False, indent=2) + "\n"
        for name, build in DASHBOARDS.items()
    }


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render().items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            write_atomic(path, text)
            written.append(path)
    return written


def expressions(dashboard: dict[str, object]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) of every query in a dashboard."""
    for panel in dashboard["panels"]:  # type: ignore[union-attr]
        for target in panel["targets"]:
            yield panel["title"], target["expr"]


def substitute(expr: str, site: str, window: str = "7d") -> str:
    """An expression as Grafana sends it, for a given site (and dossier window)."""
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return expr.replace("$site", site).replace("$window", window)
