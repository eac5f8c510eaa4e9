"""The monitoring pair (playbooks/monitoring.yml) on the lab's dx-mon01 and dx-mon02, end to end.

One provisioning run for the module with a duty roster whose shifts are
written around the current time, then: what listens where, the scrape
targets and their labels, a second run that changes nothing, check mode that
reports nothing and then exactly a drift, a bad roster and a config amtool
refuses both leaving the running config untouched, and the outage path: the
dossier stand-in goes down -> Prometheus -> Alertmanager -> the webhook and
the on-duty person's Zalo and the lead's SMS (not the off-duty one's) -> resolved
when it comes back, once with both monitoring hosts up; the same with one of them
stopped mid-outage and started again; and the dead man's switch: a stopped
monitoring host reaches the lead by SMS.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
import testinfra
import yaml
from ansible_collections.motcua.ops.plugins.filter.metric_value import metric_value
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from PIL import Image

from motcua.lab import make_plan
from motcua.lab.dossier import write_fault
from motcua.lab.procs import poll as wait_for
from motcua.monitoring import dashboards
from tests.conftest import CORPUS, LAB_HOME, ROOT, changed_tasks, plane_open, recap, run

pytestmark = pytest.mark.lab
PLAYBOOK = "playbooks/monitoring.yml"
MON = "dx-mon01"
MON2 = "dx-mon02"
PROMETHEUS = "https://127.79.0.10:9090"
ALERTMANAGERS = {MON: "https://127.79.0.10:9093", MON2: "https://127.79.0.13:9093"}
SINK = "http://127.79.0.25"
ZALO = {"lead.e2e": "8470000000000002001", "on.duty": "8470000000000002002", "off.duty": "8470000000000002003"}
LEAD_PHONE = "0900002001"


def now_roster(path) -> dict:
    """A roster in a time zone where it is about noon now: on.duty has the system 08:00-16:00."""
    utc = datetime.now(UTC)
    offset = 12 - utc.hour
    zone = f"Etc/GMT{-offset:+d}"
    today = (utc + timedelta(hours=offset)).date()
    last = today + timedelta(days=13)
    dates = f"{today}..{last}"
    roster = {
        "window": {"start": str(today), "end": str(last)},
        "timezone": zone,
        "allow_other_timezone": True,  # a zone where it is about noon now, whatever the time here
        "lead": "lead.e2e",
        "people": [
            {"id": "lead.e2e", "name": "Trần Thị Lãnh Đạo", "zalo": ZALO["lead.e2e"], "phone": LEAD_PHONE},
            {"id": "on.duty", "name": "Nguyễn Văn Trực", "zalo": ZALO["on.duty"]},
            {"id": "off.duty", "name": "Lê Văn Nghỉ", "zalo": ZALO["off.duty"]},
            {"id": "ward.duty", "name": "Phạm Thị Phường", "email": "ward.duty@lab.motcua.invalid"},
        ],
        "shifts": [
            {"person": "on.duty", "scope": "system", "dates": dates, "hours": "08:00-16:00"},
            {"person": "off.duty", "scope": "system", "dates": dates, "hours": "16:00-08:00"},
            {"person": "off.duty", "scope": "system", "dates": str(today), "hours": "00:00-08:00"},
            {"person": "ward.duty", "scope": "all", "dates": dates, "hours": "07:00-18:00"},
        ],
    }
    path.write_text(yaml.safe_dump(roster, allow_unicode=True), encoding="utf-8")
    return roster


@pytest.fixture(scope="module")
def roster_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("duty") / "duty.yml"
    now_roster(path)
    return path


def playbook(roster_file, *args: str):
    return run(
        [
            "ansible-playbook",
            "-i",
            "inventory/lab",
            PLAYBOOK,
            "-e",
            f"monitoring_alertmanager_duty_roster={roster_file}",
            *args,
        ],
        timeout=900,
    )


@pytest.fixture(scope="module")
def fresh_check(lab, roster_file):
    """dx-mon01 fresh from the image, then a check run on it: it must not fail, nor change anything."""
    lab.reset_host(MON)
    lab.up()
    result = playbook(roster_file, "--check", "--diff")
    mon = testinfra.get_host(f"ssh://{MON}", ssh_config=str(lab.ssh_dir / "config"))
    return result, mon.exists("prometheus"), mon.file("/etc/prometheus/alertmanager.yml").exists


@pytest.fixture(scope="module")
def monitored(lab, roster_file, fresh_check):
    result = playbook(roster_file)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return result


def test_check_mode_on_a_fresh_host_reports_and_changes_nothing(fresh_check):
    result, installed, configured = fresh_check
    assert result.returncode == 0, result.stdout[-6000:]
    assert recap(result)[MON]["changed"] > 0 and recap(result)[MON]["failed"] == 0
    assert "Alertmanager | config from the duty roster" in result.stdout
    assert not installed and not configured  # nothing was installed or written


@pytest.fixture(scope="module")
def mon(lab):
    return testinfra.get_host(f"ssh://{MON}", ssh_config=str(lab.ssh_dir / "config"))


def get_json(url: str, timeout: float = 5.0):
    with plane_open(url, timeout=timeout) as response:
        return json.loads(response.read())


def query(expr: str) -> list[dict]:
    data = get_json(f"{PROMETHEUS}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert data["status"] == "success", data
    return data["data"]["result"]


def test_services_listen_on_the_management_address_only(monitored, mon):
    listening = mon.run("ss -Hltnp").stdout
    for port, name in (
        (9090, "prometheus"),
        (9093, "alertmanager"),
        (9115, "blackbox"),
        (9111, "dossier"),
        (9112, "certificate"),
        (9096, "notification bridge"),
        (9443, "duty board"),
        (9100, "node exporter (textfile collector)"),
        (9094, "alertmanager cluster (gossip with dx-mon02)"),
    ):
        assert f"127.79.0.10:{port} " in listening, name
        assert f"0.0.0.0:{port} " not in listening and f"*:{port} " not in listening, name
    # (The lab's hosts share the machine's loopback: dx-mon02's sockets show here too, on its own address.)
    gossip = set(re.findall(r"(\S+):9094 ", mon.run("ss -Hlunp").stdout + listening))
    assert gossip == {"127.79.0.10", "127.79.0.13"}, gossip
    for unit in ("prometheus", "prometheus-alertmanager", "prometheus-blackbox-exporter", "motcua-dossier-exporter",
                 "motcua-notify-exporter", "motcua-board-exporter", "prometheus-node-exporter"):  # fmt: skip
        assert mon.service(unit).is_running and mon.service(unit).is_enabled, unit


def test_targets_from_the_inventory_with_site_labels(monitored):
    def targets():
        # Each job is scraped on its own schedule after a fresh start: wait until each has answered once.
        active = get_json(f"{PROMETHEUS}/api/v1/targets")["data"]["activeTargets"]
        up = {t["labels"]["job"] for t in active if t["health"] == "up"}
        return active if {"dossier", "certificate", "gear", "self"} <= up else None

    active = wait_for(targets, 30, "the first scrape of the dossier, certificate, gear and self jobs")
    by_job: dict[str, list[dict]] = {}
    for target in active:
        by_job.setdefault(target["labels"]["job"], []).append(target["labels"])
    assert len(by_job["node"]) == len(by_job["counter"]) == 8
    assert len(by_job["gear"]) == 12  # 5 routers, 7 switches of the lab's 4 sites
    pc = next(t for t in by_job["counter"] if t["instance"] == "w26740-pc01")
    assert pc["site"] == "26740" and pc["ward"] == "Phường Sài Gòn" and pc["region"] == "hcm"
    assert pc["phase"] == "steady" and pc["team"] == "dx-hcm" and pc["scope"] == "site"
    rt = next(t for t in by_job["gear"] if t["instance"] == "ttpv-rt01")
    assert rt["phase"] == "hypercare" and rt["role"] == "router"
    up = {t["labels"]["job"] for t in active if t["health"] == "up"}
    assert {"dossier", "certificate", "gear", "self"} <= up
    # The registry's sites as series, and the gear reachable through blackbox.
    assert len(query("motcua_site_info")) == 4
    wait_for(lambda: len(query('probe_success{job="gear"} == 1')) == 12, 30, "every lab device probed")
    # The lab's NTP servers keep every counter's chrony synchronised (no ClockNotSynchronised in the lab).
    wait_for(
        lambda: len(query('motcua_counter_clock_synchronized{job="counter"} == 1')) == 8, 120, "every counter in sync"
    )


def plain_status(url: str, authorization: str | None = None, verify: bool = True) -> int | str:
    """The HTTP status of a GET without the operator's credentials (or with the given header)."""
    context = ssl.create_default_context(cafile=str(LAB_HOME / "ca" / "ca.pem")) if verify else None
    request = urllib.request.Request(url, headers={"Authorization": authorization} if authorization else {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:  # noqa: S310 - lab loopback
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError as exc:
        return type(exc).__name__


def test_the_monitoring_plane_is_locked_and_prometheus_still_scrapes_everything(monitored, lab):
    """TLS from the lab CA and basic auth on Prometheus, Alertmanager, the bridge and every exporter: no
    credentials or a wrong password -> 401, plain HTTP gets nothing; Prometheus scrapes every target with
    its credentials (every target up)."""
    import base64

    counter = next(h for h in make_plan(ROOT / "inventory" / "lab", LAB_HOME).counters if h.name == "w26740-pc01")
    wrong = "Basic " + base64.b64encode(b"operator:not-the-password-at-all").decode()
    unknown = "Basic " + base64.b64encode(b"intruder:whatever-it-is-12345").decode()
    services = {
        "Prometheus": f"{PROMETHEUS}/api/v1/targets",
        "Alertmanager (API)": f"{ALERTMANAGERS[MON]}/api/v2/silences",
        "Alertmanager (dx-mon02)": f"{ALERTMANAGERS[MON2]}/api/v2/status",
        "notification bridge": "https://127.79.0.10:9096/metrics",
        "dossier exporter": "https://127.79.0.10:9111/metrics",
        "certificate exporter": "https://127.79.0.10:9112/metrics",
        "blackbox exporter": "https://127.79.0.10:9115/metrics",
        "node exporter (monitoring host)": "https://127.79.0.10:9100/metrics",
        "node exporter (counter)": f"https://{counter.address}:9100/metrics",
        "counter exporter": f"https://{counter.address}:9110/metrics",
    }
    for name, url in services.items():
        assert plain_status(url) == 401, name
        assert plain_status(url, wrong) == 401, name
        assert plain_status(url, unknown) == 401, name
        assert plain_status(url.replace("https://", "http://")) not in (200, 401), name  # TLS only
        with plane_open(url) as response:
            assert response.status == 200, name
    # Nobody without credentials silences an outage.
    body = json.dumps(
        {
            "matchers": [{"name": "site", "value": "26740", "isRegex": False}],
            "createdBy": "x",
            "comment": "x",
            "startsAt": "2026-01-01T00:00:00Z",
            "endsAt": "2036-01-01T00:00:00Z",
        }
    ).encode()
    request = urllib.request.Request(f"{ALERTMANAGERS[MON]}/api/v2/silences", data=body, method="POST",  # noqa: S310
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    context = ssl.create_default_context(cafile=str(LAB_HOME / "ca" / "ca.pem"))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5, context=context)  # noqa: S310 - lab loopback
    assert refused.value.code == 401
    # Prometheus itself gets in everywhere: every target of every job up, on both hosts of the pair.
    for prometheus in (PROMETHEUS, "https://127.79.0.13:9090"):

        def down(base=prometheus):
            active = get_json(f"{base}/api/v1/targets")["data"]["activeTargets"]
            bad = [(t["labels"]["job"], t["labels"].get("instance"), t.get("lastError")) for t in active
                   if t["health"] != "up"]  # fmt: skip
            return None if not bad and active else bad or ["no targets"]

        deadline = time.monotonic() + 60
        while (bad := down()) and time.monotonic() < deadline:
            time.sleep(2)
        assert not bad, f"{prometheus}: targets not up: {bad}"


def test_the_monitoring_hosts_firewall_admits_the_dx_centre_and_the_peer_only(monitored, mon, tmp_path):
    """Written on both hosts with the lab's ranges and each one's peer; loaded by the real nft in a namespace
    of the test's own (lab hosts share the machine's and may not load it; tests/roles/test_monitoring_firewall.py
    tries the rules from admitted and refused addresses)."""
    ruleset = mon.file("/etc/nftables.conf").content_string
    assert "policy drop" in ruleset and "elements = { 127.79.0.0/24 }" in ruleset
    assert "elements = { 127.79.0.13 }" in ruleset and "th dport 9094 accept" in ruleset
    assert "tcp dport { 9090, 9093, 9096, 9100, 9111, 9112, 9115, 9443 } accept" in ruleset
    (tmp_path / "nftables.conf").write_text(ruleset)
    result = subprocess.run(["unshare", "--net", "nft", "-c", "-f", str(tmp_path / "nftables.conf")],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert mon.service("nftables").is_enabled is False  # a container: written, not loaded


def test_second_run_changes_nothing(monitored, roster_file):
    result = playbook(roster_file)
    assert result.returncode == 0, result.stdout[-4000:]
    assert recap(result)[MON]["changed"] == 0, changed_tasks(result, MON)


def test_check_mode_reports_nothing_but_exactly_the_drift(monitored, mon, roster_file):
    # One check run: the drifted file's task is the only change it reports on the drifted host,
    # and the other host (not drifted) reports nothing.
    mon.run("sed -i 's/phase: steady/phase: cut-over/' /etc/prometheus/file_sd/node.yml")
    try:
        result = playbook(roster_file, "--check", "--diff")
        assert result.returncode == 0, result.stdout[-4000:]
        assert changed_tasks(result, MON) == ["Prometheus | scrape targets"]
        assert recap(result)[MON2]["changed"] == 0, changed_tasks(result, MON2)
        assert "-  labels: {instance: w26740-pc01" in result.stdout and "phase: cut-over" in result.stdout
    finally:
        result = playbook(roster_file, "--tags", "monitoring_prometheus_configure")
    assert changed_tasks(result, MON) == ["Prometheus | scrape targets"]
    assert "cut-over" not in mon.file("/etc/prometheus/file_sd/node.yml").content_string


def test_bad_roster_stops_the_run_before_any_config_is_written(monitored, mon):
    before = mon.file("/etc/prometheus/alertmanager.yml").sha256sum
    bad = CORPUS / "duty" / "overlapping-shifts.yml"
    result = playbook(bad)
    assert result.returncode != 0
    assert "overlaps shift 1" in result.stdout and "overlapping-shifts.yml:16" in result.stdout
    assert "changed: [dx-mon01]" not in result.stdout
    assert mon.file("/etc/prometheus/alertmanager.yml").sha256sum == before


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            {"motcua_web_users": {"monitoring": "m" * 20, "operator": "too-short"}},
            "motcua_web_users.operator: the password must be 16 characters or more",
        ),
        ({"motcua_web_users": {"operator": "o" * 20}}, "motcua_web_users: no password for monitoring"),
        ({"motcua_web_tls_cert_file": "/nonexistent/dx-mon01.crt"}, "motcua_web_tls_cert_file must name a file"),
    ],
    ids=["short-password", "no-monitoring-user", "no-certificate"],
)
def test_bad_plane_credentials_stop_the_run_before_any_host_changes(monitored, mon, roster_file, bad, message):
    before = mon.file("/etc/motcua/web/web-config.yml").sha256sum
    result = playbook(roster_file, "-e", json.dumps(bad))
    assert result.returncode != 0
    assert message in result.stdout + result.stderr, result.stdout[-3000:] + result.stderr[-2000:]
    assert "too-short" not in result.stdout + result.stderr  # a password is never printed
    assert "changed: [dx-mon01]" not in result.stdout
    assert mon.file("/etc/motcua/web/web-config.yml").sha256sum == before


def test_configs_pass_promtool_and_amtool_on_the_host(monitored, mon):
    for command in (
        "promtool check config /etc/prometheus/prometheus.yml",
        "promtool check rules /etc/prometheus/rules.d/motcua.yml",
        "amtool check-config /etc/prometheus/alertmanager.yml",
        "prometheus-blackbox-exporter --config.check --config.file=/etc/prometheus/blackbox.yml",
    ):
        result = mon.run(command)
        assert result.rc == 0, f"{command}: {result.stdout}{result.stderr}"


@pytest.mark.parametrize(
    ("bad", "file", "task", "unit"),
    [
        # promtool refuses the scrape interval; amtool refuses the webhook URL.
        (
            {"monitoring_prometheus_scrape_interval": "15 seconds"},
            "/etc/prometheus/prometheus.yml",
            "Prometheus | staged copy checked by promtool",
            "prometheus",
        ),
        (
            {"monitoring_alertmanager_webhooks": [{"name": "x", "url": "not a url"}]},
            "/etc/prometheus/alertmanager.yml",
            "Alertmanager | staged copy checked by amtool",
            "prometheus-alertmanager",
        ),
    ],
    ids=["promtool", "amtool"],
)
def test_a_refused_config_leaves_the_running_one(monitored, mon, roster_file, bad, file, task, unit):
    # On one host: the refusal is per host. The run changed nothing before it stopped,
    # so no run is needed afterwards to put the good config back.
    before = mon.file(file).sha256sum
    result = playbook(roster_file, "-e", json.dumps(bad), "--limit", MON)
    assert result.returncode != 0
    assert f"TASK [monitoring_{unit.split('-')[-1]} : {task}]" in result.stdout
    assert recap(result)[MON]["changed"] == 0, result.stdout[-3000:]
    assert mon.file(file).sha256sum == before
    assert mon.service(unit).is_running


def staging_left(mon) -> list[str]:
    """Staging directories the roles left behind (they remove theirs on success and failure)."""
    return mon.run("find /tmp -maxdepth 1 -name 'motcua-prometheus.*' -o -name 'motcua-alertmanager.*'").stdout.split()


@pytest.mark.parametrize(
    ("role", "source", "broken", "live", "task", "refusal"),
    [
        # A notification template Go's text/template cannot parse: it went live before amtool
        # checked the config (which names it) - and the next restart would have lost every route.
        (
            "monitoring_alertmanager",
            "files/motcua.tmpl",
            ('{{ define "motcua.subject" -}}', '{{ define "motcua.subject" -}}{{ if }}'),
            "/etc/prometheus/alertmanager_templates/motcua.tmpl",
            "Alertmanager | staged copy checked by amtool",
            "FAILED: template",
        ),
        # A target label name Prometheus refuses: file_sd files were never checked, and
        # Prometheus keeps the file's old targets with no more than a line in its log.
        (
            "monitoring_prometheus",
            "templates/file_sd/site.yml.j2",
            ("scope: site}", "scope: site, bad-label: x}"),
            "/etc/prometheus/file_sd/node.yml",
            "Prometheus | staged copy checked by promtool",
            '"bad-label" is not a valid label name',
        ),
    ],
    ids=["alertmanager-template", "prometheus-file-sd"],
)
def test_a_staged_file_the_check_refuses_never_goes_live(
    monitored, mon, roster_file, tmp_path, role, source, broken, live, task, refusal
):
    """The role renders every file into a staging directory and checks it there as a whole;
    a refused one stops the run with the live files as they were (a copy of the role with one
    broken file, found first beside a copy of the playbook)."""
    playbooks = tmp_path / "playbooks"
    shutil.copytree(ROOT / "playbooks", playbooks)
    shutil.copytree(ROOT / "roles" / role, playbooks / "roles" / role)
    path = playbooks / "roles" / role / source
    text = path.read_text(encoding="utf-8")
    assert broken[0] in text, f"stale case: {broken[0]!r} is not in {source}"
    path.write_text(text.replace(broken[0], broken[1], 1), encoding="utf-8")
    before = mon.file(live).sha256sum
    result = run(
        ["ansible-playbook", "-i", "inventory/lab", str(playbooks / "monitoring.yml"), "--tags", role,
         "--limit", MON, "-e", f"monitoring_alertmanager_duty_roster={roster_file}"],
        timeout=600,
    )  # fmt: skip
    assert result.returncode != 0
    assert f"TASK [{role} : {task}]" in result.stdout and refusal in result.stdout, result.stdout[-4000:]
    assert mon.file(live).sha256sum == before
    assert "changed: [dx-mon01]" not in result.stdout
    assert staging_left(mon) == []  # removed on failure too
    # The check mode run finds the same refusal.
    result = run(
        ["ansible-playbook", "-i", "inventory/lab", str(playbooks / "monitoring.yml"), "--tags", role, "--check",
         "--limit", MON, "-e", f"monitoring_alertmanager_duty_roster={roster_file}"],
        timeout=600,
    )  # fmt: skip
    assert result.returncode != 0 and refusal in result.stdout


def test_a_reload_prometheus_refuses_fails_the_run(monitored, mon, roster_file):
    """A config promtool passed can still fail to load: here a hand-written rule file dropped
    into rules.d beside ours. The handler reads prometheus_config_last_reload_successful after
    the reload and fails the run, saying so. Prometheus applies a config in parts (storage, web,
    scrape, notifier, discovery, then rules): the failed part, the rules, stays as it was and the
    service keeps running."""
    mon.run("printf 'groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: up ==\n' "
            "> /etc/prometheus/rules.d/hand-written.yml")  # fmt: skip
    try:
        result = playbook(roster_file, "--tags", "monitoring_prometheus", "--limit", MON,
                          "-e", "monitoring_prometheus_scrape_interval=20s")  # fmt: skip
        assert result.returncode != 0
        assert "RUNNING HANDLER [monitoring_prometheus : Prometheus | the new config is running]" in result.stdout, (
            result.stdout[-4000:]
        )
        assert "Prometheus did not load the whole new config" in result.stdout, result.stdout[-4000:]
        assert own_metric("prometheus_config_last_reload_successful") == 0
        assert mon.service("prometheus").is_running
        rules = [r["name"] for g in get_json(f"{PROMETHEUS}/api/v1/rules")["data"]["groups"] for r in g["rules"]]
        assert "CounterDown" in rules and "X" not in rules  # the rules it had
    finally:
        mon.run("rm -f /etc/prometheus/rules.d/hand-written.yml")
        result = playbook(roster_file, "--tags", "monitoring_prometheus", "--limit", MON)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "Prometheus | the new config is running" in result.stdout
    assert own_metric("prometheus_config_last_reload_successful") == 1
    assert get_json(f"{PROMETHEUS}/api/v1/status/config")["data"]["yaml"].count("scrape_interval: 2s")


def own_metric(name: str) -> float | None:
    """A sample from Prometheus' own /metrics page, read directly (a query would wait for a scrape)."""
    with plane_open(f"{PROMETHEUS}/metrics", timeout=5) as response:
        return metric_value(response.read().decode(), name)


def notifications(since: int = 0) -> list[dict]:
    return get_json(f"{SINK}/notifications?since={since}")


def test_dossier_outage_reaches_the_on_duty_person_and_resolves(lab, monitored, mon):
    faults = lab.home / "dossier" / "faults.json"
    alertmanager_pid = mon.run("systemctl show -p MainPID --value prometheus-alertmanager").stdout.strip()
    write_fault(faults, None)
    wait_for(
        lambda: query("prometheus_notifications_alertmanagers_discovered >= 1"), 30, "Prometheus to find Alertmanager"
    )
    wait_for(lambda: query('motcua_dossier_probe_success{job="dossier"} == 1'), 30, "the portal to be up")
    wait_for(lambda: not query('ALERTS{alertname="DossierSystemDown"}'), 60, "no dossier alert before the fault")
    start = len(notifications())

    def sent(status: str):
        def check():
            for item in notifications(start):
                if item["kind"] != "webhook":
                    continue
                payload = item["payload"]
                for alert in payload["alerts"]:
                    if alert["labels"]["alertname"] == "DossierSystemDown" and alert["status"] == status:
                        return item
            return None

        return check

    write_fault(faults, "down")
    try:
        fired = wait_for(sent("firing"), 90, "the DossierSystemDown webhook")
        alert = next(a for a in fired["payload"]["alerts"] if a["labels"]["alertname"] == "DossierSystemDown")
        assert alert["labels"]["scope"] == "system" and alert["labels"]["severity"] == "critical"
        assert alert["annotations"]["summary_vi"].startswith("Hệ thống giải quyết TTHC không truy cập được")
        assert alert["annotations"]["runbook_url"].endswith("/dossier-system-down.md")

        def to(kind, who, status="CẢNH BÁO"):
            return [
                n
                for n in notifications(start)
                if n["kind"] == kind and n["to"] == who and "DossierSystemDown" in n["text"] and status in n["text"]
            ]

        # Through the bridge: Zalo to the person on duty, SMS (one segment) to the lead for a critical alert.
        zalo = wait_for(lambda: to("zalo", ZALO["on.duty"]), 30, "Zalo to the person on duty")
        assert zalo[0]["text"].startswith("🔴 CẢNH BÁO / FIRING: DossierSystemDown")
        sms = wait_for(lambda: to("sms", LEAD_PHONE, "CANH BAO"), 30, "SMS to the lead (critical)")
        assert len(sms[0]["text"]) <= 160 and sms[0]["text"].startswith("MOTCUA CANH BAO: DossierSystemDown")
    finally:
        write_fault(faults, None)
    wait_for(sent("resolved"), 90, "the resolved webhook")
    wait_for(lambda: to("zalo", ZALO["on.duty"], "ĐÃ KHẮC PHỤC"), 30, "the resolved Zalo message")
    wait_for(lambda: to("sms", LEAD_PHONE, "DA KHAC PHUC"), 30, "the resolved SMS")
    # Exactly one of each: Alertmanager's repeats within the bridge's window are not delivered twice.
    assert len(to("zalo", ZALO["on.duty"])) == 1 and len(to("sms", LEAD_PHONE, "CANH BAO")) == 1
    # Every notification went out from the same Alertmanager process (none crashed on the way).
    assert mon.run("systemctl show -p MainPID --value prometheus-alertmanager").stdout.strip() == alertmanager_pid
    assert not [n for n in notifications(start) if n.get("to") == ZALO["off.duty"]]


def cluster_members(host: str) -> int:
    try:
        return len(get_json(f"{ALERTMANAGERS[host]}/api/v2/status")["cluster"]["peers"])
    except OSError:
        return 0


def answered(expr: str) -> list[dict]:
    """A query's result; nothing while Prometheus is not answering (a host just started)."""
    try:
        return query(expr)
    except OSError:
        return []


def watchdogs(host: str) -> list[str]:
    try:
        alerts = get_json(
            f"{ALERTMANAGERS[host]}/api/v2/alerts?" + urllib.parse.urlencode({"filter": 'alertname="Watchdog"'})
        )
    except OSError:
        return []
    return sorted(a["labels"]["origin"] for a in alerts)


def alert_mails(start: int, alertname: str, status: str) -> list[dict]:
    """The e-mails about ``alertname`` since notification ``start``, firing or resolved."""
    marker = "FIRING" if status == "firing" else "RESOLVED"
    return [
        n for n in notifications(start) if n["kind"] == "email" and alertname in n["subject"] and marker in n["subject"]
    ]


def messages(start: int, kind: str, who: str, alertname: str, status: str) -> list[dict]:
    return [
        n
        for n in notifications(start)
        if n["kind"] == kind and n.get("to") == who and alertname in n["text"] and status in n["text"]
    ]


def test_the_alertmanagers_form_one_cluster_and_both_watchdogs_arrive(monitored):
    wait_for(lambda: cluster_members(MON) == 2 and cluster_members(MON2) == 2, 60, "a cluster of two")
    for host in ALERTMANAGERS:
        wait_for(lambda host=host: watchdogs(host) == [MON, MON2], 60, f"both Watchdogs in {host}'s Alertmanager")
    # Both Prometheus send every alert to both Alertmanagers, without their replica label: one alert each.
    discovered = query("prometheus_notifications_alertmanagers_discovered")
    assert discovered and float(discovered[0]["value"][1]) == 2
    # The Watchdog reaches each bridge from both hosts, and each forwards its own to the external heartbeat.
    for address in ("127.79.0.10", "127.79.0.13"):
        with plane_open(f"https://{address}:9096/metrics", timeout=5) as response:
            text = response.read().decode()
        seen = dict(
            re.findall(r'^motcua_notify_heartbeat_last_timestamp_seconds\{origin="([^"]+)"\} (\S+)$', text, re.M)
        )
        assert set(seen) == {MON, MON2} and all(float(v) > 0 for v in seen.values()), (address, seen)
    pings = {n["check"] for n in notifications() if n["kind"] == "heartbeat"}
    assert pings >= {MON, MON2}


def test_one_monitoring_host_stopped_mid_outage_pages_once_and_resolves_once(lab, monitored):
    """dx-mon01 stops as the dossier system goes down: dx-mon02 alone pages; dx-mon01 comes back during the
    outage (gossip gives it what was sent) and nothing is sent twice, firing or resolved."""
    faults = lab.home / "dossier" / "faults.json"
    wait_for(lambda: cluster_members(MON2) == 2, 60, "a cluster of two")
    wait_for(lambda: not query('ALERTS{alertname="DossierSystemDown"}'), 60, "no dossier alert before the fault")
    start = len(notifications())
    lab.stop_host(MON)
    write_fault(faults, "http500")  # down for the probes, its port still open for `lab up`
    try:
        wait_for(lambda: messages(start, "zalo", ZALO["on.duty"], "DossierSystemDown", "CẢNH BÁO"), 90,
                 "Zalo from dx-mon02 alone")  # fmt: skip
        wait_for(lambda: messages(start, "sms", LEAD_PHONE, "DossierSystemDown", "CANH BAO"), 30, "SMS to the lead")
        lab.up()  # dx-mon01 is back mid-outage
        wait_for(lambda: cluster_members(MON) == 2 and cluster_members(MON2) == 2, 90, "the cluster whole again")
        wait_for(lambda: answered('ALERTS{alertname="DossierSystemDown", alertstate="firing"}'), 60,
                 "dx-mon01's Prometheus firing too")  # fmt: skip
        time.sleep(15)  # a few group intervals at the lab's pace: time for a duplicate to show
    finally:
        write_fault(faults, None)
    wait_for(lambda: messages(start, "zalo", ZALO["on.duty"], "DossierSystemDown", "ĐÃ KHẮC PHỤC"), 90,
             "the resolved Zalo message")  # fmt: skip
    wait_for(lambda: messages(start, "sms", LEAD_PHONE, "DossierSystemDown", "DA KHAC PHUC"), 30, "the resolved SMS")
    time.sleep(15)
    for kind, who, statuses in (("zalo", ZALO["on.duty"], ("CẢNH BÁO", "ĐÃ KHẮC PHỤC")),
                                ("sms", LEAD_PHONE, ("CANH BAO", "DA KHAC PHUC"))):  # fmt: skip
        for status in statuses:
            found = messages(start, kind, who, "DossierSystemDown", status)
            assert len(found) == 1, (kind, status, [n["text"][:80] for n in found])


def test_a_stopped_monitoring_host_reaches_the_lead_by_sms(lab, monitored):
    """The dead man's switch: dx-mon02 stops with nothing else wrong; dx-mon01's bridge no longer hears its
    Watchdog and raises MonitoringPeerSilent, which reaches the lead by SMS; back up, it resolves."""
    wait_for(lambda: cluster_members(MON) == 2, 90, "a cluster of two")
    start = len(notifications())
    lab.stop_host(MON2)
    try:
        sms = wait_for(lambda: messages(start, "sms", LEAD_PHONE, "MonitoringPeerSilent", "CANH BAO"), 90,
                       "the dead man's switch SMS")  # fmt: skip
        assert "dx-mon02" in sms[0]["text"] and len(sms[0]["text"]) <= 160
        alerts = get_json(f"{ALERTMANAGERS[MON]}/api/v2/alerts?" + urllib.parse.urlencode(
            {"filter": 'alertname="MonitoringPeerSilent"'}))  # fmt: skip
        assert [(a["labels"]["peer"], a["labels"]["reporter"]) for a in alerts] == [(MON2, MON)]
    finally:
        lab.up()
    wait_for(lambda: messages(start, "sms", LEAD_PHONE, "MonitoringPeerSilent", "DA KHAC PHUC"), 90,
             "the resolved SMS")  # fmt: skip
    wait_for(lambda: cluster_members(MON) == 2 and cluster_members(MON2) == 2, 90, "the cluster whole again")
    assert len(messages(start, "sms", LEAD_PHONE, "MonitoringPeerSilent", "CANH BAO")) == 1


def test_the_dossier_exporter_reads_the_records_and_prometheus_records_the_rates(monitored, mon):
    """dx-mon01's dossier exporter reads the stand-in's reporting API with the token only it can read, keeps
    its store, and Prometheus has each lab site's figures and the rates recorded from them; the stand-in's
    normal flow raises no dossier alert."""
    wait_for(lambda: answered('motcua_dossier_records_up{job="dossier"} == 1'), 90, "the records read")
    sites = {s["metric"]["site"] for s in answered('motcua_dossiers_received{job="dossier", window="7d"} > 0')}
    assert sites == {"25747", "26732", "26740", "ttpv"}, sites
    assert not answered('motcua_dossier_records_invalid{job="dossier"} > 0')
    wait_for(lambda: answered('window:motcua_dossiers_on_time:ratio{window="7d"} > 0'), 30, "the city's on-time rate")
    assert answered('site_window:motcua_dossiers_online:ratio{site="26740", window="7d"}')
    for share in ("paid_online", "digitised_intake", "digitised_result", "satisfied"):  # Decision 766's inputs
        assert answered(f'site_window:motcua_dossiers_{share}:ratio{{site="26740", window="7d"}}'), share
    token, directory = mon.file("/etc/motcua/dossier/api-token"), mon.file("/etc/motcua/dossier")
    assert (token.mode, token.user, directory.mode) == (0o640, "root", 0o700)
    assert mon.file("/var/lib/motcua-dossier-records/records.sqlite").mode == 0o600
    assert not answered('ALERTS{alertname=~"Dossiers.*|DossierIntakeStopped|DossierRecords.*"}')


def test_the_daily_dossier_report_is_kept_on_both_hosts_and_mailed_by_one(monitored, mon, lab):
    """The report's timer (the cut-off plus 10 minutes, Vietnam's time) on both hosts; run now, each
    host writes the day's HTML, XLSX and CSV from its own store, and only dx-mon01 e-mails them."""
    wait_for(lambda: answered('motcua_dossier_records_up{job="dossier"} == 1'), 90, "the records read")
    mon2 = testinfra.get_host(f"ssh://{MON2}", ssh_config=str(lab.ssh_dir / "config"))
    timer = mon.file("/etc/systemd/system/motcua-dossier-report.timer").content_string
    assert "OnCalendar=*-*-* 17:10:00 Asia/Ho_Chi_Minh" in timer and "Persistent=true" in timer
    before = len(notifications())
    for host in (mon, mon2):
        assert host.service("motcua-dossier-report.timer").is_enabled
        run_once = host.run("systemctl start motcua-dossier-report.service")
        assert run_once.rc == 0, host.run("journalctl -u motcua-dossier-report.service -n 30 --no-pager").stdout
        listing = host.run("ls /var/lib/motcua/reports/dossiers").stdout.split()
        day = max(name.removeprefix("ho-so-").split(".")[0] for name in listing)
        assert {f"ho-so-{day}.{ext}" for ext in ("html", "xlsx", "csv")} <= set(listing), listing
        page = host.file(f"/var/lib/motcua/reports/dossiers/ho-so-{day}.html")
        assert (page.user, page.mode) == ("motcua-exporter", 0o640)
        text = page.content_string
        assert "Phường Sài Gòn" in text and "Sở Tư pháp" in text and "SỐ LIỆU CŨ" not in text
    wait_for(lambda: [n for n in notifications(before) if n["kind"] == "email" and "Hồ sơ ngày" in n["subject"]],
             30, "the report's e-mail")  # fmt: skip
    time.sleep(2)  # a second e-mail (from dx-mon02) would have arrived by now
    mails = [n for n in notifications(before) if n["kind"] == "email" and "Hồ sơ ngày" in n["subject"]]
    assert len(mails) == 1, mails
    assert mails[0]["to"] == ["bao-cao@lab.motcua.invalid"]
    assert sorted(mails[0]["attachments"]) == [f"ho-so-{day}.{ext}" for ext in ("csv", "html", "xlsx")]


def test_a_report_that_cannot_be_written_is_an_alert_until_a_run_succeeds(monitored, mon):
    """Each run of the report is recorded for the textfile collector by its unit (ExecStopPost=, as root): a run
    that fails (here its directory is read-only) raises DossierReportFailed; the next good run ends it."""
    directory = "/var/lib/motcua/reports/dossiers"
    wait_for(lambda: answered('motcua_dossier_records_up{job="dossier"} == 1'), 90, "the records read")
    assert mon.run("systemctl start motcua-dossier-report.service").rc == 0
    wait_for(lambda: answered('motcua_dossier_report_last_run_success{job="self"} == 1'), 60, "a good run recorded")
    mon.run(f"chmod 0500 {directory}")
    try:
        assert mon.run("systemctl start motcua-dossier-report.service").rc != 0
        log = mon.run("journalctl -u motcua-dossier-report.service -n 20 --no-pager").stdout
        assert "not written" in log and "Permission denied" in log, log
        firing = wait_for(lambda: answered('ALERTS{alertname="DossierReportFailed", alertstate="firing"}'), 90,
                          "DossierReportFailed")  # fmt: skip
        assert firing[0]["metric"]["severity"] == "warning" and firing[0]["metric"]["scope"] == "system"
        assert answered('motcua_dossier_report_last_success_timestamp_seconds{job="self"} > 0')  # the good run's
    finally:
        mon.run(f"chmod 0750 {directory}")
    assert mon.run("systemctl start motcua-dossier-report.service").rc == 0
    wait_for(lambda: not answered('ALERTS{alertname="DossierReportFailed"}'), 90, "DossierReportFailed to end")
    page = mon.file(directory)
    assert (page.user, page.mode) == ("motcua-exporter", 0o750)


def test_a_dossier_backlog_at_one_ward_reaches_its_person_on_duty_and_clears(lab, monitored):
    """`motcua lab fault dossier backlog --site 26740 --value 12`: twelve dossiers pile up overdue at one ward.
    The exporter reads them, DossiersOverdue fires for that ward alone and its e-mail reaches the ward's person
    on duty; withdrawn (the fault cleared), they leave the figures and the alert resolves."""
    faults = lab.home / "dossier" / "faults.json"
    wait_for(lambda: answered('motcua_dossier_records_up{job="dossier"} == 1'), 90, "the records read")
    assert not answered('ALERTS{alertname="DossiersOverdue"}')
    start = len(notifications())

    def mail(status: str):
        return alert_mails(start, "DossiersOverdue", status)

    write_fault(faults, "backlog", seconds=12, site="26740")
    try:
        sent = wait_for(lambda: mail("firing"), 120, "the DossiersOverdue e-mail")[0]
        assert sent["to"] == ["ward.duty@lab.motcua.invalid"] and "Phường Sài Gòn" in sent["subject"]
        # The e-mail may come from the pair's other Prometheus, whose exporter read the backlog first.
        firing = wait_for(lambda: query('ALERTS{alertname="DossiersOverdue", alertstate="firing"}'), 60,
                          "DossiersOverdue firing in this Prometheus too")  # fmt: skip
        assert [a["metric"]["site"] for a in firing] == ["26740"]  # the other wards' flow is as usual
        overdue = query('motcua_dossiers_open{job="dossier", site="26740", state="overdue"}')
        assert float(overdue[0]["value"][1]) >= 12
    finally:
        write_fault(faults, None)
    wait_for(lambda: mail("resolved"), 120, "the resolved e-mail")
    wait_for(lambda: float(query('motcua_dossiers_open{job="dossier", site="26740", state="overdue"}')[0]["value"][1])
             < 10, 60, "the withdrawn dossiers out of this Prometheus' figures")  # fmt: skip
    assert not answered('ALERTS{alertname="DossiersOnTimeRateLow"}')  # withdrawn dossiers are never late


@pytest.mark.parametrize("name", sorted(dashboards.DASHBOARDS))
def test_every_dashboard_query_runs_on_the_lab_prometheus(monitored, name):
    board = dashboards.DASHBOARDS[name]()
    wait_for(lambda: query("motcua_site_info"), 30, "the first rule evaluation")
    answered = 0
    for title, expr in dashboards.expressions(board):
        result = query(dashboards.substitute(expr, site="26740"))  # fails on a PromQL error
        answered += bool(result)
        assert isinstance(result, list), title
    assert answered >= len(list(dashboards.expressions(board))) // 2, "most panels should show data in the lab"


def test_dashboards_on_the_monitoring_host(monitored, mon):
    for name in dashboards.render():
        assert mon.file(f"/var/lib/motcua/dashboards/{name}").exists
    # Grafana's provisioning: the pair's Prometheus (this host's the default) and the dashboards' folder.
    sources = yaml.safe_load(mon.file("/etc/grafana/provisioning/datasources/motcua.yml").content_string)
    assert [(s["url"], s["isDefault"]) for s in sources["datasources"]] == [
        ("https://127.79.0.10:9090", True), ("https://127.79.0.13:9090", False)]  # fmt: skip
    secrets = sources["datasources"][0]["secureJsonData"]
    assert secrets["basicAuthPassword"] == "$__file{/etc/motcua/web/monitoring.password}"
    providers = yaml.safe_load(mon.file("/etc/grafana/provisioning/dashboards/motcua.yml").content_string)
    assert providers["providers"][0]["options"]["path"] == "/var/lib/motcua/dashboards"


def test_a_stopped_printer_reaches_the_person_on_duty_for_that_ward(lab, monitored):
    """A site alert: routed by the site to the ward's shift (e-mail), at the steady phase's pace."""
    counter = testinfra.get_host("ssh://w26740-pc01", ssh_config=str(lab.ssh_dir / "config"))
    queue = counter.check_output("LC_ALL=C lpstat -e | head -1")
    assert queue, "the counter has no printer queue (playbooks/counters.yml provisions them)"
    wait_for(
        lambda: query("prometheus_notifications_alertmanagers_discovered >= 1"), 30, "Prometheus to find Alertmanager"
    )
    start = len(notifications())

    def mail(status: str):
        return alert_mails(start, "PrinterStopped", status)

    counter.run(f"cupsdisable {queue}")
    try:
        sent = wait_for(lambda: mail("firing"), 90, "the PrinterStopped e-mail")[0]
        assert sent["to"] == ["ward.duty@lab.motcua.invalid"]
        assert "Phường Sài Gòn" in sent["subject"] and queue in sent["body"]
        firing = query(f'ALERTS{{alertname="PrinterStopped", alertstate="firing", printer="{queue}"}}')
        assert firing and firing[0]["metric"]["site"] == "26740" and firing[0]["metric"]["phase"] == "steady"
    finally:
        counter.run(f"cupsenable {queue}")
    wait_for(lambda: mail("resolved"), 120, "the resolved e-mail")


HIDDEN_BY_SITE_OFFLINE = ("CounterDown", "SwitchUnreachable", "PrinterStopped", "PrinterJobsStuck", "ScannerMissing",
                          "TokenMissing", "ExporterDown", "DossierUnreachableFromSite")  # fmt: skip


def test_a_ward_whose_line_is_cut_is_one_alert_for_its_person_on_duty(lab, monitored):
    """`motcua lab fault site-offline --site 26740`: its routers, switches and counters stop answering (packets
    dropped). One SiteOffline reaches the person on duty for the ward, from the pair once; the counters' and
    switches' alerts fire in Prometheus but Alertmanager inhibits them; nothing about another site."""
    site, person = "26740", "ward.duty@lab.motcua.invalid"
    wait_for(lambda: answered(f'max(probe_success{{job="gear", role="router", site="{site}"}}) == 1'), 60,
             "the ward's router answering")  # fmt: skip
    wait_for(lambda: not answered(f'ALERTS{{site="{site}", alertstate="firing"}}'), 90, "no alert of the ward firing")
    start = len(notifications())

    def mail(alertname: str, marker: str) -> list[dict]:
        return [n for n in notifications(start)
                if n["kind"] == "email" and alertname in n["subject"] and marker in n["subject"]]  # fmt: skip

    print(lab.site_offline(site))
    try:
        sent = wait_for(lambda: mail("SiteOffline", "FIRING"), 90, "the SiteOffline e-mail")
        assert sent[0]["to"] == [person] and "Phường Sài Gòn" in sent[0]["subject"]
        below = f'ALERTS{{site="{site}", alertstate="firing", alertname=~"CounterDown|SwitchUnreachable"}}'
        wait_for(lambda: {h["metric"]["alertname"] for h in answered(below)} == {"CounterDown", "SwitchUnreachable"},
                 90, "the counters' and switches' alerts firing in Prometheus")  # fmt: skip

        def suppressed() -> list[dict]:
            query_ = urllib.parse.urlencode({"filter": f'site="{site}"'})
            alerts = get_json(f"{ALERTMANAGERS[MON]}/api/v2/alerts?{query_}")
            return [a for a in alerts if a["labels"]["alertname"] in HIDDEN_BY_SITE_OFFLINE]

        wait_for(lambda: suppressed() and all(a["status"]["inhibitedBy"] for a in suppressed()), 60,
                 "Alertmanager inhibiting them")  # fmt: skip
        time.sleep(10)  # the phase's group interval: time for anything uninhibited to go out
    finally:
        print(lab.site_offline(site, offline=False))
    wait_for(lambda: mail("SiteOffline", "RESOLVED"), 120, "the resolved SiteOffline e-mail")
    assert len(mail("SiteOffline", "FIRING")) == 1  # both Prometheus saw it: one message
    for item in notifications(start):
        if item["kind"] == "email":
            assert not any(name in item["subject"] for name in HIDDEN_BY_SITE_OFFLINE), item["subject"]
        elif item["kind"] == "webhook":
            for alert in item["payload"]["alerts"]:
                labels = alert["labels"]
                if "site" in labels:  # a site's alert: only this ward's SiteOffline
                    assert (labels["alertname"], labels["site"]) == ("SiteOffline", site), labels


# ---------------------------------------------------------------- the duty board (docs/board.md)
BOARDS = {MON: "https://127.79.0.10:9443", MON2: "https://127.79.0.13:9443"}
ARTEFACTS = ROOT / "reports" / "board"


def board(path: str, user: str | None = "viewer", form: dict | None = None, host: str = MON) -> tuple[int, str, dict]:
    """A page of a lab monitoring host's duty board, as ``user`` (None: no credentials), redirects not followed."""
    headers = {}
    if user:
        password = (LAB_HOME / "web" / f"{user}-password").read_text().strip()
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(BOARDS[host] + path, data=data, headers=headers)  # noqa: S310 - the lab

    class Keep(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    context = ssl.create_default_context(cafile=str(LAB_HOME / "ca" / "ca.pem"))
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), Keep)
    try:
        with opener.open(request, timeout=10) as resp:
            return resp.status, resp.read().decode(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


def tile_level(code: str, host: str = MON) -> str:
    match = re.search(rf'data-site="{code}" data-level="(\w+)"', board("/", host=host)[1])
    assert match, f"no tile for {code}"
    return match.group(1)


def screenshot(tmp_path, width: int, height: int) -> Image.Image:
    """The city view in Debian's headless Chromium, as the viewer, kept in reports/board/ (the test's artefact).
    Chromium trusts exactly dx-mon01's key (its SPKI hash): the lab CA is not in its store."""
    cert = x509.load_pem_x509_certificate((LAB_HOME / "web" / f"{MON}.crt").read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pin = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    password = (LAB_HOME / "web" / "viewer-password").read_text().strip()
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / f"city-{width}x{height}.png"
    shot.unlink(missing_ok=True)
    browser = shutil.which("chromium")
    assert browser, "Debian's chromium package is missing (requirements-apt.txt)"
    url = f"https://viewer:{urllib.parse.quote(password, safe='')}@127.79.0.10:9443/"
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={width},{height}",
         f"--user-data-dir={tmp_path / f'profile-{width}'}", f"--ignore-certificate-errors-spki-list={pin}",
         f"--screenshot={shot}", url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (width, height)
    return image


def colour_pixels(image: Image.Image, rgb: tuple[int, int, int]) -> int:
    return sum(1 for p in image.getdata() if all(abs(a - b) <= 8 for a, b in zip(p, rgb, strict=True)))


def repair_silences(host: str = MON) -> list[dict]:
    """The silences in force that the board test sets (any left by an earlier run that stopped half-way too)."""
    return [s for s in get_json(f"{ALERTMANAGERS[host]}/api/v2/silences")
            if s["status"]["state"] == "active" and "under repair" in s["comment"]]  # fmt: skip


def expire_silence(silence_id: str) -> None:
    expire = f"{ALERTMANAGERS[MON]}/api/v2/silence/{silence_id}"
    with plane_open(urllib.request.Request(expire, method="DELETE")):  # noqa: S310 - the lab's plane
        pass


def test_the_duty_board_shows_a_stopped_counter_who_is_on_duty_and_silences_it(lab, monitored, tmp_path):
    """The board on both monitoring hosts: a counter stopped turns its site's tile amber (CounterDown is a warning)
    within the refresh; the site's page names the counter, its runbook and the ward's person on duty; a silence
    from the board reaches Alertmanager with the operator as author; screenshots for a phone and a wall screen."""
    listed = {row["name"]: row for row in lab.status() if row["kind"] == "board"}
    assert {name.split()[1] for name in listed} == {MON, MON2}
    assert all(row["state"] == "up" for row in listed.values()), listed
    assert board("/", user=None)[0] == 401
    for host in BOARDS:
        status, page, _ = board("/", host=host)
        assert status == 200 and "Không đọc được" not in page
        for code in ("ttpv", "26740", "25747", "26732"):
            assert f'data-site="{code}"' in page
    site, counter = "25747", "w25747-pc02"
    for left in repair_silences():  # an earlier run's, stopped half-way: it would hide the alert
        expire_silence(left["id"])
    wait_for(lambda: tile_level(site) == "ok", 90, f"the {site} tile green")
    phone, wall = screenshot(tmp_path, 360, 800), screenshot(tmp_path, 1920, 1080)
    for image in (phone, wall):
        # Four green tiles (each about 80 x 34 px or more) and the "ok" count badge.
        assert colour_pixels(image, (0x1E, 0x8E, 0x3E)) > 4 * 2000, image.size

    silence_ids: list[str] = []
    print(lab.stop_host(counter))
    try:
        wait_for(lambda: tile_level(site) == "warning", 90, f"the {site} tile amber (CounterDown)")
        page = board(f"/site/{site}")[1]
        assert re.search(rf'data-host="{counter}" data-level="warning"', page), page[-3000:]
        assert 'href="/runbook/counter-down"' in page and "Đang trực / now" in page and "Phạm Thị Phường" in page
        # The ward's dossiers today, as the dossier exporter reads them from the stand-in's reporting API.
        figures = dict(re.findall(r'<td data-figure="(\w+)">(\d+)</td>', page))
        assert set(figures) == {"received", "on_time", "late", "not_due", "overdue", "paused"}, page[-3000:]
        runbook = board("/runbook/counter-down")[1]
        assert "<h2>CounterDown" in runbook and "```" not in runbook

        viewer_form = board(f"/site/{site}")[1]
        assert 'action="/silence"' not in viewer_form
        token = re.search(r'name="token" value="(\w+)"', board(f"/site/{site}", "operator")[1]).group(1)
        form = {"token": token, "site": site, "host": counter, "for": "30m",
                "comment": "máy quầy đang sửa / under repair"}  # fmt: skip
        assert board("/silence", "viewer", form)[0] == 403
        assert board("/silence", "operator", {**form, "comment": ""})[0] == 400
        status, _, headers = board("/silence", "operator", form)
        assert status == 303, headers
        mine = repair_silences()  # dx-mon01's board wrote it to dx-mon01's Alertmanager
        silence_ids = [s["id"] for s in mine]
        assert len(mine) == 1 and mine[0]["createdBy"] == "operator"
        wait_for(lambda: repair_silences(MON2), 30, "the silence gossiped to dx-mon02's Alertmanager")
        assert {m["name"]: m["value"] for m in mine[0]["matchers"]} == {"instance": counter}
        wait_for(lambda: tile_level(site) == "ok", 60, "the silenced counter no longer colouring the tile")
        assert re.search(rf'data-host="{counter}" data-level="silenced"', board(f"/site/{site}")[1])
    finally:
        lab.up()
        for silence_id in silence_ids:
            expire_silence(silence_id)

    # dx-mon01's Alertmanager stopped: its board still answers, from dx-mon02's, and says so.
    mon1 = testinfra.get_host(f"ssh://{MON}", ssh_config=str(lab.ssh_dir / "config"))
    mon1.run("systemctl stop prometheus-alertmanager")
    try:
        page = wait_for(lambda: (p := board("/")[1]) and "Alertmanager 127.79.0.13:9093" in p and p, 30,
                        "dx-mon01's board reading dx-mon02's Alertmanager")  # fmt: skip
        assert "Không đọc được Alertmanager" not in page
    finally:
        mon1.run("systemctl start prometheus-alertmanager")
    wait_for(lambda: "Alertmanager 127.79.0.10:9093" in board("/")[1], 60, "dx-mon01's board back on its own")
    wait_for(lambda: tile_level(site) == "ok", 90, f"{counter} back")


def backfill(mon_host: str, series: dict[str, str], samples: list[tuple[int, float]], out) -> None:
    """Give a monitoring host's Prometheus the history it would hold in production: OpenMetrics made into
    TSDB blocks by promtool (Debian's, on this machine), put into its data directory; Prometheus loads
    new blocks by itself within a minute (overlapping its head is allowed since 2.39)."""
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(series.items()) if k != "__name__")
    name = series["__name__"]
    text = [f"# TYPE {name} gauge"] + [f"{name}{{{labels}}} {v:g} {t}" for t, v in samples] + ["# EOF"]
    (out / "history.om").write_text("\n".join(text) + "\n")
    made = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(out / "history.om"),
                           str(out / "blocks")], capture_output=True, text=True)  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    tar = subprocess.run(["tar", "-C", str(out / "blocks"), "-c", "."], capture_output=True, check=True).stdout
    put = subprocess.run(["ssh", "-F", str(LAB_HOME / "ssh" / "config"), mon_host,
                          "tar -C /var/lib/prometheus/metrics2 -x --no-same-owner"
                          " && chown -R prometheus:prometheus /var/lib/prometheus/metrics2"],
                         input=tar, capture_output=True, timeout=60)  # fmt: skip
    assert put.returncode == 0, put.stderr.decode()


HISTORY = 'motcua_dossiers_received{job="dossier", site="26732", window="today"}'


def test_intake_stopped_at_a_ward_reaches_its_person_on_duty(lab, monitored, tmp_path):
    """`motcua lab fault dossier intake-stopped --site 26732`: Côn Đảo receives nobody. DossierIntakeStopped
    compares the last hour with the same hour yesterday and a week ago, which a lab Prometheus started
    minutes ago does not hold: dx-mon01's is given them (backfilled: 5 received at this hour yesterday, and
    an hour ago what the exporter reads now). The alert fires for that site alone and its e-mail reaches the
    ward's person on duty. The lab's rules count Côn Đảo open around the clock (inventory/lab/group_vars/
    monitoring.yml; the registry keeps its real hours), so this holds whatever the hour CI runs. Last in
    this module: the backfilled hour ends ten minutes on, and the alert with it."""
    faults = lab.home / "dossier" / "faults.json"
    wait_for(lambda: answered('motcua_dossier_records_up{job="dossier"} == 1'), 90, "the records read")
    assert not answered('ALERTS{alertname="DossierIntakeStopped"}')  # the stand-in's usual flow raises none
    start = len(notifications())
    write_fault(faults, "intake-stopped", site="26732")
    try:
        since = time.time()
        wait_for(lambda: answered(f'motcua_dossier_records_last_success_timestamp_seconds{{job="dossier"}} > {since}'),
                 60, "a read of the records after the fault")  # fmt: skip
        (now_series,) = query(HISTORY)
        received = float(now_series["value"][1])
        now = int(time.time())
        usual_until = now - 86400 + 600  # "at this hour yesterday" holds for ten minutes from now
        yesterday = [(t, 0 if t < now - 88200 else 5) for t in range(now - 91800, usual_until, 60)]
        yesterday += [(t, 0) for t in range(usual_until, usual_until + 600, 60)]  # then nothing: it ends
        hour_ago = [(t, received) for t in range(now - 4200, now - 3600 + 660, 60)]
        backfill(MON, now_series["metric"], yesterday + hour_ago, tmp_path)
        # Prometheus looks for new blocks once a minute; then the rules, `for` and the e-mail take seconds.
        wait_for(lambda: answered(f"{HISTORY} offset 1d"), 180, "Prometheus to load the backfilled blocks")
        sent = wait_for(lambda: alert_mails(start, "DossierIntakeStopped", "firing"), 120,
                        "the DossierIntakeStopped e-mail once the history is loaded")[0]  # fmt: skip
        assert sent["to"] == ["ward.duty@lab.motcua.invalid"] and "Côn Đảo" in sent["subject"], sent
        firing = query('ALERTS{alertname="DossierIntakeStopped", alertstate="firing"}')
        assert [a["metric"]["site"] for a in firing] == ["26732"]  # the other sites: no history, not judged
    finally:
        write_fault(faults, None)
