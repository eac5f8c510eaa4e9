"""motcua-board as it runs on a monitoring host: its console script over HTTPS with basic auth, reading a real
Prometheus (Debian's; recording rules stand for the dossier probe and the readiness results) and a real
Alertmanager (Debian's, with motcua's topology inhibition), its data file rendered from the lab registry and
duty roster by the controller's code (motcua.monitoring.alertmanager.board_data)."""

from __future__ import annotations

import base64
import datetime as dt
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
from pathlib import Path

import bcrypt
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from motcua.lab import ca
from motcua.lab.procs import spawn, stop, wait_for_port
from motcua.monitoring import rules as motcua_rules
from motcua.monitoring.alertmanager import board_data
from motcua.monitoring.rules import ALERTS, inhibit_rules, runbook_url
from motcua.registry import load_registry
from motcua.rosters.duty import load_duty_roster, moved

from ..conftest import BIN, ROOT
from ..exporters.conftest import free_port

LAB_SITES = ["ttpv", "26740", "25747", "26732"]
RULES = {a.name: a for a in ALERTS}
PASSWORDS = {"viewer": "viewer-password-0123", "operator": "operator-password-0123"}


def shifted_roster(tmp_path: Path) -> Path:
    """The lab's duty roster moved so that its window starts yesterday (the board shows who is on duty now)."""
    text = (ROOT / "inventory/lab/duty.yml").read_text(encoding="utf-8")
    path = tmp_path / "duty.yml"
    path.write_text(moved(text, dt.date.today() - dt.timedelta(days=1)), encoding="utf-8")
    return path


def series(name: str, value: float, **labels: str) -> dict:
    """A recording rule standing for an exporter's series: ``name{job="dossier", labels...} value``."""
    expr = f"vector({value})"
    for key, label in {"job": "dossier", **labels}.items():
        expr = f'label_replace({expr}, "{key}", "{label}", "", "")'
    return {"record": name, "expr": expr}


def dossier_rules(site: str, received: int, on_time: int, late: int, overdue: int) -> list[dict]:
    """The dossier exporter's figures of one site today (motcua_exporters.dossier.metrics), as Prometheus has them."""
    return [
        series("motcua_dossiers_received", received, site=site, window="today"),
        series("motcua_dossiers_finished", on_time, site=site, window="today", verdict="on_time"),
        series("motcua_dossiers_finished", late, site=site, window="today", verdict="late"),
        series("motcua_dossiers_open", overdue, site=site, state="overdue"),
    ]


OLD, NEW = "a" * 40, "b" * 40


def pull_rules() -> list[dict]:
    """26740's counters as they pull (docs/pull.md): pc01 on its ring's previous commit, pc02 on the ring's; ttpv's
    pc01 failed its last pull; the pull source's ring, and motcua's own recording rule of the counters behind."""
    node = {"job": "node", "ring": "canary"}
    return [
        series("motcua_pull_source_ring_commit_info", 1, job="pull-source", ring="canary", commit=NEW),
        series("motcua_pull_applied_commit_info", 1, instance="w26740-pc01", commit=OLD, **node),
        series("motcua_pull_applied_commit_info", 1, instance="w26740-pc02", commit=NEW, **node),
        series("motcua_pull_applied_commit_info", 1, instance="ttpv-pc01", commit=NEW, **node),
        series("motcua_pull_last_run_success", 1, instance="w26740-pc01", job="node"),
        series("motcua_pull_last_run_success", 1, instance="w26740-pc02", job="node"),
        series("motcua_pull_last_run_success", 0, instance="ttpv-pc01", job="node"),
        *motcua_rules.pull_rules(),
    ]


def start(argv: list[str], log: Path, port: int, procs: list):
    proc = spawn(Path(argv[0]).name, "board-test", argv, log)
    procs.append(proc)
    assert wait_for_port("127.0.0.1", port, 20), log.read_text()
    return proc


class Client:
    def __init__(self, base: str, context: ssl.SSLContext):
        self.base, self.context = base, context

    def call(self, path: str, user: str | None = "viewer", form: dict | None = None) -> tuple[int, str, dict]:
        headers = {}
        if user:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers=headers)  # noqa: S310 - loopback

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self.context), NoRedirect)
        try:
            with opener.open(request, timeout=10) as resp:
                return resp.status, resp.read().decode(), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(), dict(exc.headers)


def am_call(url: str, method: str = "GET", body: object = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 - loopback
        text = resp.read().decode()
    return json.loads(text) if text.strip() else None


def poll(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def plane(tmp_path_factory):
    """A real Alertmanager and Prometheus on loopback, and the board reading them (first member: a dead port)."""
    tmp = tmp_path_factory.mktemp("board")
    procs: list = []
    try:
        registry = load_registry(ROOT / "inventory/hcmc/registry").subset(LAB_SITES, max_counters=2)
        data = board_data(registry, load_duty_roster(shifted_roster(tmp), registry))
        next(site for site in data["sites"] if site["code"] == "26732")["phase"] = "cut-over"  # a tile's phase mark
        (tmp / "data.yml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

        am_port = free_port()
        (tmp / "am.yml").write_text(
            yaml.safe_dump(
                {
                    "route": {"receiver": "none", "group_wait": "1s"},
                    "receivers": [{"name": "none"}],
                    "inhibit_rules": inhibit_rules(),
                }
            )
        )
        am_argv = [
            "/usr/bin/prometheus-alertmanager",
            f"--config.file={tmp / 'am.yml'}",
            f"--storage.path={tmp / 'am'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ]
        am = start(am_argv, tmp / "am.log", am_port, procs)

        prom_port = free_port()
        rules = {
            "groups": [
                {
                    "name": "stand-ins",
                    "interval": "1s",
                    "rules": [
                        {
                            "record": "motcua_dossier_probe_success",
                            "expr": 'label_replace(vector(1), "job", "dossier", "", "")',
                        },
                        {
                            "record": "motcua_dossier_probe_duration_seconds",
                            "expr": 'label_replace(vector(0.42), "job", "dossier", "", "")',
                        },
                        {
                            "record": "motcua_dossier_probe_tls_not_after_timestamp_seconds",
                            "expr": 'label_replace(vector(time() + 40 * 86400), "job", "dossier", "", "")',
                        },
                        {
                            "record": "motcua_readiness_site_verdict",
                            "expr": 'label_replace(label_replace(vector(1), "site", "26740", "", ""),'
                            ' "verdict", "amber", "", "")',
                        },
                        *dossier_rules("26740", received=12, on_time=5, late=1, overdue=2),
                        *pull_rules(),
                    ],
                }
            ]
        }
        (tmp / "rules.yml").write_text(yaml.safe_dump(rules))
        (tmp / "prometheus.yml").write_text(
            yaml.safe_dump({"global": {"evaluation_interval": "1s"}, "rule_files": [str(tmp / "rules.yml")]})
        )
        prom_argv = [
            "/usr/bin/prometheus",
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'prom'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ]
        start(prom_argv, tmp / "prom.log", prom_port, procs)

        ca.ensure_lab_ca(tmp / "ca", "127.0.0.1")
        ca.issue_web_certificates(tmp / "ca", tmp / "web", {"board": "127.0.0.1"})
        users = {u: bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode() for u, p in PASSWORDS.items()}
        (tmp / "web.yml").write_text(
            yaml.safe_dump(
                {
                    "tls_server_config": {
                        "cert_file": str(tmp / "web/board.crt"),
                        "key_file": str(tmp / "web/board.key"),
                    },
                    "basic_auth_users": users,
                }
            )
        )
        dead = f"http://127.0.0.1:{free_port()}/"
        config = {
            "data_file": str(tmp / "data.yml"),
            "runbook_dir": str(ROOT / "docs/runbooks"),
            "prometheus": [f"http://127.0.0.1:{prom_port}/"],
            "alertmanager": [dead, f"http://127.0.0.1:{am_port}/"],
            "refresh": "2s",
            "timeout": "1s",
            "viewers": ["viewer"],
            "silencers": ["operator"],
        }
        (tmp / "board.yml").write_text(yaml.safe_dump(config))
        board_port = free_port()
        start(
            [
                str(BIN / "motcua-board"),
                f"--config.file={tmp / 'board.yml'}",
                f"--web.listen-address=127.0.0.1:{board_port}",
                f"--web.config.file={tmp / 'web.yml'}",
            ],
            tmp / "board.log",
            board_port,
            procs,
        )
        context = ssl.create_default_context(cafile=str(tmp / "ca/ca.pem"))
        context.check_hostname = False  # the certificate names 127.0.0.1 as an IP address; urllib checks the host name
        client = Client(f"https://127.0.0.1:{board_port}", context)
        # Prometheus' rules have run once (the dossier system is known).
        poll(lambda: "0.42 s" in client.call("/")[1], 30, "the board's first read of Prometheus")
        yield {
            "client": client,
            "am": f"http://127.0.0.1:{am_port}/",
            "am_proc": am,
            "dead": dead,
            "tmp": tmp,
            "port": board_port,
        }
    finally:  # also when the set-up fails half-way: nothing it started is left running
        stop(procs)


def raise_alerts(am: str, *alerts: tuple[str, str, str, str, str]) -> None:
    now = dt.datetime.now(dt.UTC)
    body = []
    for name, site, instance, severity, role in alerts:
        labels = {"alertname": name, "site": site, "severity": severity, "role": role, "scope": "site"}
        if instance:
            labels["instance"] = instance
        body.append(
            {
                "labels": labels,
                "startsAt": now.isoformat(),
                "endsAt": (now + dt.timedelta(minutes=10)).isoformat(),
                "annotations": {
                    "summary_vi": f"{name} tại {site}",
                    "summary_en": f"{name} at {site}",
                    "runbook_url": runbook_url(RULES[name], "docs/runbooks"),
                },
            }
        )
    am_call(am + "api/v2/alerts", "POST", body)


def page_with(client: Client, path: str, needle: str, timeout: float = 15) -> str:
    """The page once it holds ``needle`` (the board reads the pair every 2 s here)."""

    def check():
        page = client.call(path)[1]
        return page if needle in page else None

    return poll(check, timeout, f"{needle!r} on {path}")


def tile(page: str, code: str) -> str:
    match = re.search(rf'<a class="tile ([^"]*)" data-site="{code}" data-level="(\w+)"', page)
    assert match, f"no tile for {code}"
    return match.group(2)


def test_nobody_without_credentials_and_a_viewer_sees_every_site_and_the_dossier_system(plane):
    client = plane["client"]
    assert client.call("/", user=None)[0] == 401
    status, page, headers = client.call("/")
    assert status == 200 and headers["Cache-Control"] == "no-store"
    for code in LAB_SITES:
        assert tile(page, code) == "ok"
    assert "hoạt động / up" in page and "0.42 s" in page and "40 ngày / days" in page
    assert "4 bình thường / ok" in page
    # The source it used: the pair's second Alertmanager (the first does not answer).
    assert f"Alertmanager {plane['am'].split('/')[2]}" in page and "Prometheus 127.0.0.1:" in page
    assert "Không đọc được" not in page
    # The readiness verdict from Prometheus.
    assert 'title="sẵn sàng / readiness: amber"' in page
    assert page.count('title="giai đoạn / phase: cut-over">C</span>') == 1  # 26732's; steady is unmarked
    # A refresh without a full reload: the main part alone.
    partial = client.call("/?partial=1")[1]
    assert partial.lstrip().startswith("<div") and "<html" not in partial


def test_a_counter_down_turns_its_site_critical_and_the_site_page_names_it_its_runbook_and_the_person_on_duty(plane):
    client = plane["client"]
    raise_alerts(plane["am"], ("CounterDown", "26740", "w26740-pc02", "critical", "counter"))
    poll(lambda: tile(client.call("/")[1], "26740") == "critical", 15, "the 26740 tile to turn critical")
    status, page, _ = client.call("/site/26740")
    assert status == 200
    assert re.search(r'data-host="w26740-pc02" data-level="critical"', page)
    assert 'href="/runbook/counter-down"' in page
    # The person on duty for 26740 now (team dx-hcm) with Zalo and phone; the roster's shifts cover 07:00-18:00.
    hour = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).hour
    if 7 <= hour < 18:
        assert "Đang trực / now" in page and ("Hoàng Văn Dũng" in page or "Nguyễn Văn An" in page)
    else:
        assert "Không có ca trực lúc này" in page and "Trần Thị Lan" in page and "Ca sau / next" in page
    # The site's dossier indicators today, from Prometheus.
    figures = dict(re.findall(r'<td data-figure="(\w+)">(\d+)</td>', page))
    assert figures == {"received": "12", "on_time": "5", "late": "1", "not_due": "0", "overdue": "2", "paused": "0"}
    assert "data-figure=" not in client.call("/site/26732")[1]  # no figures for a site the exporter has none of
    # Each counter's pulled configuration, from Prometheus: behind its ring, current; a counter that never pulled.
    rows = dict(re.findall(r'<tr data-host="([\w-]+)"(.*?)</tr>', page, re.S))
    config = {host: m.group(1) for host, row in rows.items() if (m := re.search(r'data-config="(\w+)"', row))}
    assert config == {"w26740-pc01": "behind", "w26740-pc02": "current"}, page
    assert f"<code>{OLD[:12]}</code>" in page
    assert 'data-config="failed"' in client.call("/site/ttpv")[1]
    assert '<span class="muted">push</span>' in client.call("/site/25747")[1]
    runbook = client.call("/runbook/counter-down")[1]
    assert "<h2>CounterDown" in runbook and "<pre><code>motcua fleet diag" in runbook and "```" not in runbook
    alerts = client.call("/alerts?severity=critical")[1]
    assert "CounterDown" in alerts and 'href="/site/26740"' in alerts
    assert "CounterDown" not in client.call("/alerts?region=bd")[1]


def test_a_site_offline_is_one_critical_tile_its_counters_hidden_by_alertmanager(plane):
    client = plane["client"]
    raise_alerts(
        plane["am"],
        ("SiteOffline", "25747", "", "critical", "router"),
        ("CounterDown", "25747", "w25747-pc01", "critical", "counter"),
    )
    poll(lambda: tile(client.call("/")[1], "25747") == "offline", 15, "the 25747 tile to show offline")
    page = page_with(client, "/site/25747", "bị ẩn")
    assert re.search(r'data-host="w25747-pc01" data-level="unreachable"', page)
    assert page.count('<span class="lvl c-critical">SiteOffline') == 1 and 'c-critical">CounterDown' not in page


def test_a_viewer_cannot_silence_bad_silences_are_refused_and_a_silencer_silences_with_their_name(plane):
    client = plane["client"]
    page = client.call("/site/26740", user="operator")[1]
    token = re.search(r'name="token" value="(\w+)"', page).group(1)
    assert 'name="token"' not in client.call("/site/26740")[1]  # a viewer gets no form
    good = {"token": token, "site": "26740", "host": "w26740-pc02", "for": "2h", "comment": "thay nguồn / new PSU"}
    assert client.call("/silence", "viewer", good)[0] == 403
    assert client.call("/silence", "operator", {**good, "comment": " "})[0] == 400
    past = (dt.datetime.now() - dt.timedelta(hours=1)).isoformat(timespec="minutes")
    status, text, _ = client.call(
        "/silence", "operator", {**{k: v for k, v in good.items() if k != "for"}, "until": past}
    )
    assert status == 400 and "đã qua" in text
    assert client.call("/silence", "operator", {**good, "token": "forged"})[0] == 403
    assert client.call("/silence", "operator", {**good, "host": "w25747-pc01"})[0] == 400  # not 26740's
    assert not [s for s in am_call(plane["am"] + "api/v2/silences") if s["status"]["state"] != "expired"]
    status, _, headers = client.call("/silence", "operator", good)
    assert status == 303 and headers["Location"] == "/site/26740?silenced=1"
    (silence,) = am_call(plane["am"] + "api/v2/silences")
    assert silence["createdBy"] == "operator" and silence["comment"].startswith("thay nguồn / new PSU")
    assert silence["matchers"][0]["name"] == "instance" and silence["matchers"][0]["value"] == "w26740-pc02"
    page = page_with(client, "/site/26740", "thay nguồn")
    assert re.search(r'data-host="w26740-pc02" data-level="silenced"', page)
    alerts = client.call("/alerts")[1]  # city-wide: who silenced what, until when
    assert re.search(
        r"<td>instance=w26740-pc02</td>\s*<td>operator</td><td>thay nguồn / new PSU \[duty board\]</td>", alerts
    )
    assert tile(client.call("/")[1], "26740") == "ok"


def test_a_browser_refreshes_the_page_part_without_a_reload(plane, tmp_path):
    """Debian's headless Chromium opens the city view and lets its script run for 7 s of the page's time: the main
    part is fetched again (refresh: 2 s) and replaced, and the page without JavaScript reloads itself."""
    cert = x509.load_pem_x509_certificate((plane["tmp"] / "web/board.crt").read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pin = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    url = f"https://viewer:{urllib.parse.quote(PASSWORDS['viewer'], safe='')}@127.0.0.1:{plane['port']}/"
    done = subprocess.run(
        [shutil.which("chromium") or "chromium", "--headless", "--no-sandbox", "--disable-gpu",
         f"--user-data-dir={tmp_path / 'profile'}", f"--ignore-certificate-errors-spki-list={pin}",
         "--virtual-time-budget=7000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r'<body data-refreshed="\d+">', done.stdout), done.stdout[:3000]
    assert done.stdout.count('<main id="main">') == 1 and 'data-site="26740"' in done.stdout  # replaced, not nested
    assert '<noscript><meta http-equiv="refresh" content="8"></noscript>' in client_page(plane)


def client_page(plane) -> str:
    return plane["client"].call("/")[1]


def test_unknown_site_and_runbook_are_a_clear_404(plane):
    client = plane["client"]
    status, page, _ = client.call("/site/99999")
    assert status == 404 and "Không có đơn vị mã “99999”" in page
    assert client.call("/runbook/..%2Fetc%2Fpasswd")[0] == 404


def test_with_no_alertmanager_answering_the_board_still_answers_and_says_its_data_is_stale(plane):
    client = plane["client"]
    stop([plane["am_proc"]])
    page = page_with(client, "/", "Không đọc được Alertmanager")
    assert "dữ liệu cảnh báo cũ" in page and "c-stale" in page
    assert "Không đọc được Prometheus" not in page
