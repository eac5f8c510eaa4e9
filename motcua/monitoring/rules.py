"""Prometheus alert rules and the inhibition that follows the sites' topology.

Each alert is data (:data:`ALERTS`): its expression, how long it must hold
(a pace class, so the lab can run every alert fast with one setting), its
severity and scope, what in a site it is about (its topology role) and a
Vietnamese and an English summary. :func:`rule_groups` renders them with the
site-information series generated from the registry; :func:`inhibit_rules`
derives Alertmanager's inhibition from the same roles.

Labels every site-level alert carries (from the scrape targets or the join
with ``motcua_site_info``): site, ward, region, phase, team, role, scope.
Alertmanager routes on site and phase, and inhibits on site and instance.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..hours import Opening, describe, opening_condition, parse_opening
from ..registry import Registry
from ..registry.model import PARENT_ROLE

SCOPE_SYSTEM = "system"  # the dossier system and the monitoring itself: city-wide
SCOPE_SITE = "site"
ESCALATION_ALERT = "EscalateToLead"
SITE_LABELS = ("site", "ward", "region", "phase", "team")
SITE_INFO = "motcua_site_info"
# Production pace; the lab sets shorter ones (inventory/lab/group_vars/monitoring.yml).
DEFAULT_FOR = {"fast": "30s", "short": "2m", "medium": "5m", "long": "15m", "escalate": "30m"}
_BY_SITE = ", ".join(SITE_LABELS)
_JOIN_SITE = f"* on (site) group_left (ward, region, phase, team) {SITE_INFO}"
# Dossier processing: judged only while the exporter's last read of the records worked (else the figures
# are an old read's: DossierRecordsFailing says so). Intake is judged at a site only while it has been
# open for the whole last hour (motcua_site_open_hour, from the registry's opening hours, so the hour
# compared with other days' is all open), and the records' staleness only while most shops are open.
_RECORDS_FRESH = 'and on (instance) (motcua_dossier_records_up{job="dossier"} == 1)'
SITE_OPEN = "motcua_site_open"
SITE_OPEN_HOUR = "motcua_site_open_hour"
_MOST_SITES_OPEN = f"and on () (count({SITE_OPEN}) > count({SITE_INFO}) / 2)"
# Their thresholds (monitoring_prometheus_dossier_thresholds overrides): overdue dossiers at a site; their
# growth in an hour; intake at the same hour a week ago that makes none now unusual; the day's on-time target
# and the finished dossiers it needs to judge; hours without any record updated before the source is stale.
DOSSIER_THRESHOLDS = {"overdue": 10, "growth": 3, "usual_intake": 3, "on_time_target": 0.95, "on_time_minimum": 5,
                      "stale_hours": 2}  # fmt: skip
# A counter that pulls (docs/pull.md) and has not applied its configuration for this long: about 12
# of its pulls (every 30 minutes) have failed or not run.
PULL_STALE_HOURS = 6
# A counter still on an older commit this long after its ring's branch moved (the pull source says when):
# about four of its pulls since; the stale and failing alerts cover a counter whose pulls do not succeed.
PULL_BEHIND_HOURS = 2
# Counters whose applied commit is not the one their ring names at the pull source (job pull-source),
# judged only for rings the source serves: a series per counter behind, labels of its node target.
PULL_BEHIND = "instance:motcua_pull_commit:behind"
# A role whose alert means "unreachable" hides the alerts of the roles below it.
UNREACHABLE_ALERTS = {"router": "SiteOffline", "counter": "CounterDown"}
# Monitoring roles below the registry's device roles.
MONITORED_PARENTS = {"token": "counter", "exporter": "counter", "site-link": "router"}


def _received_in_hour(hours_ago: int = 0) -> str:
    """PromQL: the dossiers each site received in the hour that ended ``hours_ago`` hours ago, from the
    exporter's count for today, which starts again at midnight: across midnight, what the hour held
    before it (the day's last count less the count an hour before) plus what came since."""
    count = 'motcua_dossiers_received{job="dossier", window="today"}'
    at, before = (f" offset {hours_ago}h" if hours_ago else ""), f" offset {hours_ago + 1}h"
    return (f"(({count}{at} - {count}{before}) >= 0"
            f" or ({count}{at} + max_over_time({count}[1h]{at}) - {count}{before}))")  # fmt: skip


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    pace: str  # a DEFAULT_FOR key
    severity: str  # critical | warning
    scope: str  # system | site
    # What it is about: router, switch, counter, printer, scanner, token, exporter, site-link, dossier, notify.
    role: str
    summary_vi: str
    summary_en: str
    set_scope: bool = True  # False: the scope label comes from the target (alerts on every job)
    labels: tuple[tuple[str, str], ...] = ()  # more labels (templated like the annotations)

    @property
    def slug(self) -> str:
        out = []
        for ch in self.name:
            if ch.isupper() and out:
                out.append("-")
            out.append(ch.lower())
        return "".join(out).replace("-t-l-s", "-tls")


WATCHDOG = "Watchdog"
# The replica label each Prometheus of the monitoring pair adds (external_labels) and drops from
# the alerts it sends, so that both copies of an alert are one alert in the Alertmanager cluster.
REPLICA_LABEL = "monitor"

ALERTS: tuple[Alert, ...] = (
    # ---- the monitoring itself: the dead man's switch and the pair
    Alert(
        WATCHDOG,
        "vector(1)",
        "",
        "none",
        SCOPE_SYSTEM,
        "monitoring",
        "Luôn phát: máy giám sát {{ $externalLabels.monitor }} còn chạy (tín hiệu sống cho máy kia)",
        "Always firing: monitoring host {{ $externalLabels.monitor }} is alive (the heartbeat its peer watches)",
        labels=(("origin", "{{ $externalLabels.monitor }}"),),
    ),
    Alert(
        "AlertmanagerClusterDegraded",
        'max by (instance) (alertmanager_cluster_members{job="self"}) < MONITORING_HOSTS',
        # Longer than the dead man's switch takes: a host that died is MonitoringPeerSilent (which hides this).
        "medium",
        "warning",
        SCOPE_SYSTEM,
        "monitoring",
        "Alertmanager {{ $labels.instance }} chỉ thấy {{ $value }} thành viên cụm: một máy giám sát đã mất",
        "Alertmanager {{ $labels.instance }} sees {{ $value }} cluster member(s): a monitoring host is gone",
    ),
    # ---- the dossier system, city-wide (probed from the DX Centre)
    Alert(
        "DossierSystemDown",
        'motcua_dossier_probe_success{job="dossier"} == 0',
        "fast",
        "critical",
        SCOPE_SYSTEM,
        "dossier",
        "Hệ thống giải quyết TTHC không truy cập được ({{ $labels.target }}: {{ $labels.reason }})",
        "The dossier system is down ({{ $labels.target }})",
    ),
    Alert(
        "DossierSystemSlow",
        'motcua_dossier_probe_duration_seconds{job="dossier"} > 3 and on (instance, target) motcua_dossier_probe_success{job="dossier"} == 1',
        "medium",
        "warning",
        SCOPE_SYSTEM,
        "dossier",
        "Hệ thống giải quyết TTHC phản hồi chậm: {{ $value | humanizeDuration }} ({{ $labels.target }})",
        "The dossier system is slow: {{ $value | humanizeDuration }} ({{ $labels.target }})",
    ),
    Alert(
        "DossierTLSCertificateExpiring",
        '(motcua_dossier_probe_tls_not_after_timestamp_seconds{job="dossier"} - time()) < 21 * 86400',
        "long",
        "warning",
        SCOPE_SYSTEM,
        "dossier",
        "Chứng chỉ TLS của hệ thống giải quyết TTHC hết hạn sau {{ $value | humanizeDuration }}",
        "The dossier system's TLS certificate expires in {{ $value | humanizeDuration }}",
    ),
    # ---- a site
    Alert(
        "SiteOffline",
        f'max by ({_BY_SITE}) (probe_success{{job="gear", role="router"}}) == 0',
        # Faster than what it hides (CounterDown, SwitchUnreachable: short), so that its inhibition is in
        # place before they would fire: one alert for a ward whose line is cut.
        "fast",
        "critical",
        SCOPE_SITE,
        "router",
        "Mất kết nối tới điểm {{ $labels.ward }} ({{ $labels.site }}): không tới được router",
        "Site {{ $labels.ward }} ({{ $labels.site }}) is offline: its router does not answer",
    ),
    Alert(
        "SwitchUnreachable",
        'probe_success{job="gear", role="switch"} == 0',
        "short",
        "warning",
        SCOPE_SITE,
        "switch",
        "Không tới được switch {{ $labels.instance }} tại {{ $labels.ward }}",
        "Switch {{ $labels.instance }} at {{ $labels.ward }} does not answer",
    ),
    Alert(
        "DossierUnreachableFromSite",
        f'count by ({_BY_SITE}) (motcua_counter_portal_success{{job="counter"}} == 0)'
        f' / count by ({_BY_SITE}) (motcua_counter_portal_success{{job="counter"}}) >= 0.5',
        "medium",
        "warning",
        SCOPE_SITE,
        "site-link",
        "Quầy tại {{ $labels.ward }} không vào được hệ thống giải quyết TTHC (hệ thống vẫn hoạt động)",
        "Counters at {{ $labels.ward }} cannot reach the dossier system (it is up city-wide)",
    ),
    # ---- a counter PC and what hangs on it
    Alert(
        "CounterDown",
        'up{job="node"} == 0',
        "short",
        "warning",
        SCOPE_SITE,
        "counter",
        "Máy tính quầy {{ $labels.instance }} tại {{ $labels.ward }} không phản hồi",
        "Counter PC {{ $labels.instance }} at {{ $labels.ward }} is down",
        set_scope=False,
    ),
    # ---- the notification bridge (motcua-notify, on the monitoring host)
    Alert(
        "NotificationsUndelivered",
        'increase(motcua_notify_dead_letters_total{job="self"}[15m]) > 0',
        "fast",
        "critical",
        SCOPE_SYSTEM,
        "notify",
        "Có thông báo không gửi được qua kênh nào cho {{ $labels.receiver }} (Zalo, ZNS, SMS)",
        "A notification for {{ $labels.receiver }} could not be delivered on any channel (Zalo, ZNS, SMS)",
    ),
    Alert(
        "NotificationsDelayed",
        'motcua_notify_oldest_pending_age_seconds{job="self"} > 300',
        "short",
        "warning",
        SCOPE_SYSTEM,
        "notify",
        "Thông báo chờ gửi đã hơn {{ $value | humanizeDuration }} (nhà cung cấp lỗi hoặc giới hạn tốc độ)",
        "Notifications have waited {{ $value | humanizeDuration }} to be delivered (a provider failing or rate-limiting)",
    ),
    Alert(
        "ExporterDown",
        'up{job!~"node|gear"} == 0 unless on (instance) up{job="node"} == 0',
        "short",
        "warning",
        SCOPE_SITE,
        "exporter",
        "Bộ thu thập {{ $labels.job }} trên {{ $labels.instance }} không trả lời (máy vẫn chạy)",
        "The {{ $labels.job }} exporter on {{ $labels.instance }} is down (the host is up)",
        set_scope=False,
    ),
    Alert(
        "PrinterStopped",
        'motcua_counter_printer_state{job="counter", state="stopped"} == 1'
        ' or motcua_counter_printer_accepting_jobs{job="counter"} == 0',
        "medium",
        "warning",
        SCOPE_SITE,
        "printer",
        "Máy in {{ $labels.printer }} của quầy {{ $labels.instance }} ({{ $labels.ward }}) đã dừng",
        "Printer {{ $labels.printer }} of counter {{ $labels.instance }} ({{ $labels.ward }}) has stopped",
    ),
    Alert(
        "PrinterJobsStuck",
        'motcua_counter_printer_stuck_jobs{job="counter"} > 0',
        "medium",
        "warning",
        SCOPE_SITE,
        "printer",
        "{{ $value }} lệnh in bị kẹt trên máy in {{ $labels.printer }} ({{ $labels.instance }})",
        "{{ $value }} print jobs stuck on {{ $labels.printer }} ({{ $labels.instance }})",
    ),
    Alert(
        "ScannerMissing",
        'motcua_counter_scanners{job="counter"} == 0',
        "long",
        "warning",
        SCOPE_SITE,
        "scanner",
        "Quầy {{ $labels.instance }} ({{ $labels.ward }}) không thấy máy quét",
        "Counter {{ $labels.instance }} ({{ $labels.ward }}) sees no scanner",
    ),
    Alert(
        "TokenMissing",
        'motcua_counter_tokens{job="counter"} == 0',
        "medium",
        "warning",
        SCOPE_SITE,
        "token",
        "Quầy {{ $labels.instance }} ({{ $labels.ward }}) không thấy USB token chữ ký số",
        "Counter {{ $labels.instance }} ({{ $labels.ward }}) sees no signing token",
    ),
    Alert(
        "CounterCheckFailing",
        'motcua_counter_check_success{job="counter"} == 0',
        "long",
        "warning",
        SCOPE_SITE,
        "exporter",
        "Không kiểm tra được {{ $labels.check }} trên quầy {{ $labels.instance }}",
        "The {{ $labels.check }} check fails on counter {{ $labels.instance }}",
    ),
    Alert(
        "ClockSkew",
        'abs(motcua_counter_clock_offset_seconds{job="counter"}) > 1',
        "medium",
        "warning",
        SCOPE_SITE,
        "counter",
        "Đồng hồ quầy {{ $labels.instance }} lệch {{ $value | humanizeDuration }} (chữ ký số cần giờ đúng)",
        "Clock of counter {{ $labels.instance }} is off by {{ $value | humanizeDuration }} (signing needs the right time)",
    ),
    Alert(
        "ClockNotSynchronised",
        'motcua_counter_clock_synchronized{job="counter"} == 0',
        "long",
        "warning",
        SCOPE_SITE,
        "counter",
        "Đồng hồ quầy {{ $labels.instance }} không đồng bộ NTP",
        "Clock of counter {{ $labels.instance }} is not synchronised",
    ),
    Alert(
        "DiskNearlyFull",
        'node_filesystem_avail_bytes{job="node", fstype!~"tmpfs|ramfs|squashfs|overlay"}'
        ' / node_filesystem_size_bytes{job="node", fstype!~"tmpfs|ramfs|squashfs|overlay"} < 0.10',
        "long",
        "warning",
        SCOPE_SITE,
        "counter",
        "Ổ đĩa {{ $labels.mountpoint }} của {{ $labels.instance }} sắp đầy (còn {{ $value | humanizePercentage }})",
        "Disk {{ $labels.mountpoint }} of {{ $labels.instance }} is nearly full ({{ $value | humanizePercentage }} free)",
        set_scope=False,
    ),
    Alert(
        "ScanStorageNearlyFull",
        'motcua_counter_scans_free_bytes{job="counter"} / motcua_counter_scans_size_bytes{job="counter"} < 0.10',
        "long",
        "warning",
        SCOPE_SITE,
        "counter",
        "Thư mục lưu bản quét trên {{ $labels.instance }} sắp đầy (còn {{ $value | humanizePercentage }})",
        "Scan storage on {{ $labels.instance }} is nearly full ({{ $value | humanizePercentage }} free)",
    ),
    # ---- a counter that configures itself (docs/pull.md): its pull's own report, through node_exporter
    Alert(
        "CounterConfigPullFailing",
        # A pull that found a push holding the lock (locked) tries again at its next run: not a failure.
        '(motcua_pull_last_run_success{job="node"} == 0)'
        ' * on (instance) group_left (reason) motcua_pull_last_run_failure_info{job="node", reason!="locked"}',
        "long",
        "warning",
        SCOPE_SITE,
        "counter",
        "Máy quầy {{ $labels.instance }} không tự áp dụng được cấu hình đã ký (lỗi: {{ $labels.reason }})",
        "Counter {{ $labels.instance }} fails to apply its signed configuration (reason: {{ $labels.reason }})",
        set_scope=False,
    ),
    Alert(
        "CounterConfigBehind",
        f"{PULL_BEHIND} and on (ring) (time() - max by (ring)"
        ' (motcua_pull_source_ring_changed_timestamp_seconds{job="pull-source"})'
        f" > {PULL_BEHIND_HOURS} * 3600)",
        "long",
        "warning",
        SCOPE_SITE,
        "counter",
        "Máy quầy {{ $labels.instance }} vẫn chạy cấu hình cũ ({{ $labels.commit }}) dù vòng {{ $labels.ring }}"
        f" đã chuyển sang bản mới từ hơn {PULL_BEHIND_HOURS} giờ trước",
        "Counter {{ $labels.instance }} still runs configuration {{ $labels.commit }} although ring"
        f" {{{{ $labels.ring }}}} moved on over {PULL_BEHIND_HOURS} hours ago",
        set_scope=False,
    ),
    Alert(
        "CounterConfigStale",
        f'(time() - motcua_pull_last_success_timestamp_seconds{{job="node"}} > {PULL_STALE_HOURS} * 3600)'
        ' and motcua_pull_last_success_timestamp_seconds{job="node"} > 0',
        "long",
        "warning",
        SCOPE_SITE,
        "counter",
        "Máy quầy {{ $labels.instance }} đã {{ $value | humanizeDuration }} không tự cập nhật cấu hình thành công",
        "Counter {{ $labels.instance }} has not applied its configuration for {{ $value | humanizeDuration }}",
        set_scope=False,
    ),
    # ---- the ward's signing certificate (certificate exporter, and the token on each counter)
    Alert(
        "WardCertificateExpiresIn30Days",
        f'((motcua_certificate_not_after_timestamp_seconds{{job="certificate"}} - time()) < 30 * 86400 >= 7 * 86400) {_JOIN_SITE}'
        ' or (motcua_counter_token_certificate_not_after_timestamp_seconds{job="counter"} - time()) < 30 * 86400 >= 7 * 86400',
        "long",
        "warning",
        SCOPE_SITE,
        "token",
        "Chứng thư số của {{ $labels.ward }} ({{ $labels.subject }}) hết hạn sau {{ $value | humanizeDuration }}",
        "The certificate of {{ $labels.ward }} ({{ $labels.subject }}) expires in {{ $value | humanizeDuration }}",
    ),
    Alert(
        "WardCertificateExpiresIn7Days",
        f'((motcua_certificate_not_after_timestamp_seconds{{job="certificate"}} - time()) < 7 * 86400 >= 0) {_JOIN_SITE}'
        ' or (motcua_counter_token_certificate_not_after_timestamp_seconds{job="counter"} - time()) < 7 * 86400 >= 0',
        "long",
        "critical",
        SCOPE_SITE,
        "token",
        "Chứng thư số của {{ $labels.ward }} ({{ $labels.subject }}) chỉ còn {{ $value | humanizeDuration }}: gia hạn ngay",
        "The certificate of {{ $labels.ward }} ({{ $labels.subject }}) expires in {{ $value | humanizeDuration }}: renew now",
    ),
    Alert(
        "WardCertificateExpired",
        f'((motcua_certificate_not_after_timestamp_seconds{{job="certificate"}} - time()) < 0) {_JOIN_SITE}'
        ' or (motcua_counter_token_certificate_not_after_timestamp_seconds{job="counter"} - time()) < 0',
        "fast",
        "critical",
        SCOPE_SITE,
        "token",
        "Chứng thư số của {{ $labels.ward }} ({{ $labels.subject }}) ĐÃ HẾT HẠN: không ký số được",
        "The certificate of {{ $labels.ward }} ({{ $labels.subject }}) HAS EXPIRED: signing fails",
    ),
    Alert(
        "CertificateSourceUnreadable",
        f'(motcua_certificate_source_up{{job="certificate"}} == 0) {_JOIN_SITE}',
        "medium",
        "warning",
        SCOPE_SITE,
        "token",
        "Không đọc được chứng thư số {{ $labels.source }} của {{ $labels.ward }}",
        "Cannot read certificate source {{ $labels.source }} of {{ $labels.ward }}",
    ),
    # ---- dossier processing (the dossier exporter's records: docs/dossiers.md); judged only on a fresh read
    Alert(
        "DossiersOverdue",
        f'(motcua_dossiers_open{{job="dossier", state="overdue"}} >= DOSSIER_OVERDUE {_RECORDS_FRESH}) {_JOIN_SITE}',
        "medium",
        "warning",
        SCOPE_SITE,
        "dossiers",
        "{{ $labels.ward }} có {{ $value }} hồ sơ quá hạn chưa giải quyết",
        "{{ $labels.ward }} holds {{ $value }} overdue dossiers",
    ),
    Alert(
        "DossiersOverdueGrowing",
        f'((motcua_dossiers_open{{job="dossier", state="overdue"}}'
        f' - motcua_dossiers_open{{job="dossier", state="overdue"}} offset 1h >= DOSSIER_GROWTH)'
        f' and deriv(motcua_dossiers_open{{job="dossier", state="overdue"}}[15m]) > 0 {_RECORDS_FRESH}) {_JOIN_SITE}',
        "medium",
        "warning",
        SCOPE_SITE,
        "dossiers",
        "Hồ sơ quá hạn của {{ $labels.ward }} tăng thêm {{ $value }} trong 1 giờ qua và vẫn đang tăng",
        "{{ $labels.ward }}'s overdue dossiers grew by {{ $value }} in the last hour and are still growing",
    ),
    Alert(
        "DossierIntakeStopped",
        f"(({_received_in_hour()} == 0)"
        f" and ({_received_in_hour(24)} >= DOSSIER_USUAL_INTAKE"
        f" or {_received_in_hour(7 * 24)} >= DOSSIER_USUAL_INTAKE)"
        f" {_RECORDS_FRESH} and on (site) {SITE_OPEN_HOUR}) {_JOIN_SITE}",
        "short",
        "warning",
        SCOPE_SITE,
        "dossiers",
        "{{ $labels.ward }} không tiếp nhận hồ sơ nào trong 1 giờ qua (cùng giờ hôm qua hoặc tuần trước có tiếp nhận)",
        "{{ $labels.ward }} received no dossier in the last hour (it did at this hour yesterday or a week ago)",
    ),
    Alert(
        "DossiersOnTimeRateLow",
        '(site_window:motcua_dossiers_on_time:ratio{window="today"} < DOSSIER_ON_TIME_TARGET'
        ' and on (site) sum by (site) (motcua_dossiers_finished{job="dossier", window="today",'
        ' verdict=~"on_time|late"}) >= DOSSIER_ON_TIME_MINIMUM'
        f' and on () (motcua_dossier_records_up{{job="dossier"}} == 1)) {_JOIN_SITE}',
        "long",
        "warning",
        SCOPE_SITE,
        "dossiers",
        "Tỷ lệ giải quyết đúng hạn hôm nay của {{ $labels.ward }} chỉ {{ $value | humanizePercentage }}",
        "{{ $labels.ward }}'s on-time rate today is {{ $value | humanizePercentage }}",
    ),
    Alert(
        "DossierRecordsFailing",
        'motcua_dossier_records_up{job="dossier"} == 0',
        "medium",
        "warning",
        SCOPE_SYSTEM,
        "dossiers",
        "Không đọc được số liệu hồ sơ từ hệ thống (API báo cáo): số liệu đang hiển thị là của lần đọc trước",
        "The dossier records cannot be read (reporting API): the figures shown are the last good read's",
    ),
    Alert(
        "DossierRecordsStale",
        '(time() - motcua_dossier_records_newest_update_timestamp_seconds{job="dossier"}) > DOSSIER_STALE_HOURS * 3600'
        f' and on (instance) motcua_dossier_records_up{{job="dossier"}} == 1 {_MOST_SITES_OPEN}',
        "long",
        "warning",
        SCOPE_SYSTEM,
        "dossiers",
        "API báo cáo trả dữ liệu cũ: không có hồ sơ nào được cập nhật trong {{ $value | humanizeDuration }}",
        "The reporting API answers with old data: no dossier updated for {{ $value | humanizeDuration }}",
    ),
    # ---- the daily dossier report (its unit's ExecStopPost= records each run in the textfile collector)
    Alert(
        "DossierReportFailed",
        'motcua_dossier_report_last_run_success{job="self"} == 0',
        "short",
        "warning",
        SCOPE_SYSTEM,
        "dossiers",
        "Báo cáo hồ sơ hằng ngày trên {{ $labels.instance }} không ghi hoặc không gửi được",
        "The daily dossier report on {{ $labels.instance }} was not written or not sent",
    ),
    Alert(
        "DossierReportNotRun",
        '(time() - motcua_dossier_report_last_run_timestamp_seconds{job="self"}) > 26 * 3600',
        "long",
        "warning",
        SCOPE_SYSTEM,
        "dossiers",
        "Báo cáo hồ sơ hằng ngày trên {{ $labels.instance }} không chạy từ {{ $value | humanizeDuration }}",
        "The daily dossier report on {{ $labels.instance }} has not run for {{ $value | humanizeDuration }}",
    ),
    # ---- escalation: a critical alert nobody has fixed reaches the DX Centre lead
    Alert(
        ESCALATION_ALERT,
        'label_replace(max without (alertstate) (ALERTS{alertstate="firing", severity="critical", alertname!="EscalateToLead"}),'
        ' "escalated", "$1", "alertname", "(.*)")',
        "escalate",
        "critical",
        SCOPE_SITE,
        "escalation",
        "Chuyển lên lãnh đạo trực: {{ $labels.escalated }} chưa được khắc phục ({{ $labels.ward }})",
        "Escalated to the DX Centre lead: {{ $labels.escalated }} is not fixed ({{ $labels.ward }})",
        set_scope=False,
    ),
)


# Raised outside Prometheus: by the notification bridge's dead man's switch (motcua-notify, its
# heartbeat section), in the Alertmanager of the host that still runs. Not a rule; a runbook.
BRIDGE_ALERTS: tuple[Alert, ...] = (
    Alert(
        "MonitoringPeerSilent",
        "",
        "",
        "critical",
        SCOPE_SYSTEM,
        "monitoring",
        "Mất tín hiệu từ máy giám sát {peer}: không còn dự phòng nếu {reporter} hỏng",
        "Monitoring host {peer} is silent: nothing backs up {reporter} if it fails",
    ),
)


def alert_names() -> list[str]:
    return [a.name for a in ALERTS]


def runbook_url(alert: Alert, runbook_base: str) -> str:
    return f"{runbook_base.rstrip('/')}/{alert.slug}.md"


def _alert_rule(
    alert: Alert, durations: dict[str, str], runbook_base: str, values: dict[str, str]
) -> dict[str, object]:
    labels = {"severity": alert.severity, "role": alert.role}
    if alert.set_scope:
        labels["scope"] = alert.scope
    labels.update(alert.labels)
    summary = f"{alert.summary_vi} / {alert.summary_en}"
    expr = alert.expr
    for name, value in values.items():
        expr = expr.replace(name, value)
    rule: dict[str, object] = {"alert": alert.name, "expr": expr}
    if alert.pace:
        rule["for"] = durations[alert.pace]
    rule["labels"] = labels
    rule["annotations"] = {
        "summary": summary,
        "summary_vi": alert.summary_vi,
        "summary_en": alert.summary_en,
        "runbook_url": runbook_url(alert, runbook_base),
    }
    return rule


def site_info_rules(registry: Registry, opening: dict[str, Opening] | None = None) -> list[dict[str, object]]:
    """One ``motcua_site_info`` series per site: the registry's labels, for joins and dashboards, and its
    opening hours (``opening`` replaces a site's hours from the registry: the lab's, so that a test can
    judge intake at any hour)."""
    return [
        {
            "record": SITE_INFO,
            "expr": "vector(1)",
            "labels": {
                "site": site.code,
                "ward": site.name,
                "kind": site.kind,
                "region": site.region,
                "phase": site.phase,
                "team": site.team,
                "opening_hours": describe((opening or {}).get(site.code, site.opening_hours)),
            },
        }
        for site in registry.sites.values()
    ]


def opening_rules(registry: Registry, opening: dict[str, Opening] | None = None) -> list[dict[str, object]]:
    """For each set of opening hours the sites have, ``motcua_site_open`` (a series per site while it is
    open) and ``motcua_site_open_hour`` (while it has been open for the whole last hour). They head the
    alerts' group: rules of one group are evaluated in order, so the alerts see them at the same instant
    (from another group they would be a round late, at opening and at closing)."""
    hours = [(opening or {}).get(site.code, site.opening_hours) for site in registry.sites.values()]
    kinds = {describe(h): h for h in hours}
    return [
        {"record": record,
         "expr": f'{SITE_INFO}{{opening_hours="{text}"}} and on () ({opening_condition(h, settled)})'}
        for record, settled in ((SITE_OPEN, 0), (SITE_OPEN_HOUR, 60))
        for text, h in sorted(kinds.items())
    ]  # fmt: skip


def dossier_rules() -> list[dict[str, object]]:
    """The rates of docs/dossiers.md, per site, per agency and city-wide, for each window: a rate with
    nothing to judge (no dossier finished, none received) has no series, never 0."""
    out: list[dict[str, object]] = []
    for level, family in (("site", "motcua_dossiers"), ("agency", "motcua_dossiers_agency"), ("", "motcua_dossiers")):
        by = f"{level}, window" if level else "window"
        prefix = f"{level}_window" if level else "window"
        out += [
            {
                "record": f"{prefix}:motcua_dossiers_on_time:ratio",
                "expr": f'sum by ({by}) ({family}_finished{{verdict="on_time"}})'
                f' / (sum by ({by}) ({family}_finished{{verdict=~"on_time|late"}}) > 0)',
            },
            {
                "record": f"{prefix}:motcua_dossiers_online:ratio",
                "expr": f"sum by ({by}) ({family}_online) / (sum by ({by}) ({family}_received) > 0)",
            },
            # Decision 766's digitisation, online-payment and satisfaction shares (docs/kpis.md)
            {
                "record": f"{prefix}:motcua_dossiers_paid_online:ratio",
                "expr": f"sum by ({by}) ({family}_paid_online) / (sum by ({by}) ({family}_payment_recorded) > 0)",
            },
            {
                "record": f"{prefix}:motcua_dossiers_digitised_intake:ratio",
                "expr": f"sum by ({by}) ({family}_digitised_intake) / (sum by ({by}) ({family}_received) > 0)",
            },
            {
                "record": f"{prefix}:motcua_dossiers_digitised_result:ratio",
                "expr": f"sum by ({by}) ({family}_digitised_result) / (sum by ({by}) ({family}_finished) > 0)",
            },
            {
                "record": f"{prefix}:motcua_dossiers_satisfied:ratio",
                "expr": f"sum by ({by}) ({family}_satisfied) / (sum by ({by}) ({family}_rated) > 0)",
            },
        ]
    out += [
        {"record": "window:motcua_dossiers_received:sum", "expr": "sum by (window) (motcua_dossiers_received)"},
        {"record": "state:motcua_dossiers_open:sum", "expr": "sum by (state) (motcua_dossiers_open)"},
    ]
    return out


def pull_rules() -> list[dict[str, object]]:
    """Counters that pull (docs/pull.md): which of them run another commit than their ring's at the
    pull source (the duty board and CounterConfigBehind read it)."""
    return [
        {
            "record": PULL_BEHIND,
            "expr": 'motcua_pull_applied_commit_info{job="node"}'
            ' unless on (ring, commit) motcua_pull_source_ring_commit_info{job="pull-source"}'
            ' and on (ring) motcua_pull_source_ring_commit_info{job="pull-source"}',
        }
    ]


def rule_groups(
    registry: Registry,
    durations: dict[str, str] | None = None,
    runbook_base: str = "docs/runbooks",
    dossier_thresholds: dict[str, float] | None = None,
    opening_hours: dict[str, dict[str, str]] | None = None,
) -> dict[str, object]:
    """The rules file: site information, the dossier rates, then every alert. ``opening_hours`` (site
    code -> hours as sites.yml writes them) replaces those sites' hours from the registry."""
    pace = {**DEFAULT_FOR, **(durations or {})}
    unknown = set(pace) - set(DEFAULT_FOR)
    if unknown:
        raise ValueError(f"unknown alert pace(s): {', '.join(sorted(unknown))} (known: {', '.join(DEFAULT_FOR)})")
    thresholds = {**DOSSIER_THRESHOLDS, **(dossier_thresholds or {})}
    unknown = set(thresholds) - set(DOSSIER_THRESHOLDS)
    if unknown:
        raise ValueError(f"unknown dossier threshold(s): {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(DOSSIER_THRESHOLDS)})")  # fmt: skip
    for name, value in thresholds.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"dossier threshold {name}: a number of 0 or more, not {value!r}")
    values = {f"DOSSIER_{name.upper()}": f"{value:g}" for name, value in thresholds.items()}
    values["MONITORING_HOSTS"] = str(sum(1 for host in registry.dx_hosts if host.role == "monitoring"))
    opening: dict[str, Opening] = {}
    for code, raw in (opening_hours or {}).items():
        if str(code) not in registry.sites:
            raise ValueError(f"opening hours of site {code}: not a site of this inventory")
        if not isinstance(raw, dict):
            raise ValueError(f"opening hours of site {code}: a mapping of weekdays to hours, not {raw!r}")
        parsed, problems = parse_opening(raw)
        if problems:
            raise ValueError(f"opening hours of site {code}: {problems[0][1]}")
        opening[str(code)] = parsed
    return {
        "groups": [
            {"name": "motcua_sites", "rules": site_info_rules(registry, opening)},
            {"name": "motcua_dossiers", "rules": dossier_rules()},
            {
                "name": "motcua_alerts",
                "rules": [
                    *opening_rules(registry, opening),
                    *[_alert_rule(a, pace, runbook_base, values) for a in ALERTS],
                ],
            },
            {"name": "motcua_pull", "rules": pull_rules()},
        ]
    }


def _descendants(role: str) -> list[str]:
    parents = {**PARENT_ROLE, **MONITORED_PARENTS}
    out: list[str] = []
    frontier = [role]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in out:
                out.append(child)
                frontier.append(child)
    return sorted(out)


def inhibit_rules() -> list[dict[str, object]]:
    """Inhibition from the topology: an unreachable device hides the alerts below it.

    A site whose routers are all unreachable (SiteOffline) leaves one alert:
    its switches', counters', printers', scanners' and tokens' alerts wait.
    A counter that is down hides its token's and exporter's alerts. The
    dossier system down city-wide hides the per-site "cannot reach it" and "its records cannot be read".
    A graver certificate alert hides the milder one for the same certificate.
    """
    out: list[dict[str, object]] = []
    for role, alertname in UNREACHABLE_ALERTS.items():
        below = _descendants(role)
        out.append(
            {
                "source_matchers": [f'alertname="{alertname}"'],
                "target_matchers": [f'role=~"{"|".join(below)}"'],
                "equal": ["site"] if role == "router" else ["site", "instance"],
            }
        )
    out.append(
        {
            "source_matchers": ['alertname="MonitoringPeerSilent"'],
            "target_matchers": ['alertname="AlertmanagerClusterDegraded"'],
            "equal": [],
        }
    )
    out.append(
        {
            "source_matchers": ['alertname="DossierSystemDown"'],
            "target_matchers": ['alertname=~"DossierSystemSlow|DossierUnreachableFromSite|DossierRecordsFailing"'],
            "equal": [],
        }
    )
    out.append(  # a counter whose pulls fail is behind too: the failure says why
        {
            "source_matchers": ['alertname=~"CounterConfigPullFailing|CounterConfigStale"'],
            "target_matchers": ['alertname="CounterConfigBehind"'],
            "equal": ["instance"],
        }
    )
    out.append(  # a ward whose line is cut receives nothing: one alert, the cause
        {
            "source_matchers": ['alertname="SiteOffline"'],
            "target_matchers": ['alertname="DossierIntakeStopped"'],
            "equal": ["site"],
        }
    )
    for graver, milder in (
        ("WardCertificateExpired", "WardCertificateExpiresIn7Days|WardCertificateExpiresIn30Days"),
        ("WardCertificateExpiresIn7Days", "WardCertificateExpiresIn30Days"),
    ):
        out.append(
            {
                "source_matchers": [f'alertname="{graver}"'],
                "target_matchers": [f'alertname=~"{milder}"'],
                "equal": ["site", "subject"],
            }
        )
    return out
