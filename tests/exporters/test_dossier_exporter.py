"""The dossier exporter against the lab's dossier stand-in, under every fault switch."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import time
from dataclasses import replace

import bcrypt
import pytest

from motcua.lab.dossier import write_fault
from tests.conftest import STANDIN_ADDRESS, STANDIN_HTTPS

from .conftest import promtool_check, tls_client

SCRIPT = "motcua-dossier-exporter"


pytestmark = pytest.mark.usefixtures("clear_dossier_fault")


def config_for(standin, interval: str = "1s", timeout: str = "0.8s", extra_target: str = "") -> str:
    return f"""
interval: {interval}
timeout: {timeout}
tls:
  ca_file: {standin["ca"]}
targets:
  - name: portal
    url: {standin["https"]}/
    expect:
      body_contains: ["Hệ thống thông tin giải quyết thủ tục hành chính"]
  - name: login
    url: {standin["https"]}/dang-nhap
    expect: {{body_contains: ['id="form-dang-nhap"']}}
  - name: api-health
    url: {standin["https"]}/api/health
    labels: {{kind: api}}
    expect:
      json: {{path: status, equals: UP}}
  - name: portal-http
    url: {standin["http"]}/
{extra_target}
probe:
  allow_urls: ["{standin["https"]}/"]
statistics:
  adapter: thong-ke-json
  url: {standin["https"]}/api/thong-ke
  interval: 5s
"""


@pytest.fixture(scope="module")
def exporter(start_exporter, dossier_standin):
    write_fault(dossier_standin["faults"], None)
    running = start_exporter(SCRIPT, config_for(dossier_standin))
    for target in ("portal", "login", "portal-http"):
        running.wait_for(f'motcua_dossier_probe_success{{target="{target}"}} 1')
    running.wait_for('motcua_dossier_probe_success{target="api-health",kind="api"} 1')
    running.wait_for("motcua_dossier_statistics_up 1")
    return running


def value(text: str, series: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_healthy_targets_statistics_and_promtool(exporter):
    text = exporter.wait_for('motcua_dossier_agency_info{agency="so-tp",name="Sở Tư pháp"} 1')
    for target in ("portal", "login", "portal-http"):
        assert value(text, f'motcua_dossier_probe_success{{target="{target}"}}') == 1
        assert value(text, f'motcua_dossier_probe_http_status_code{{target="{target}"}}') == 200
        assert (
            value(text, f'motcua_dossier_probe_last_success_timestamp_seconds{{target="{target}"}}') > time.time() - 60
        )
    assert value(text, 'motcua_dossier_probe_success{target="api-health",kind="api"}') == 1
    assert value(text, 'motcua_dossier_probe_phase_duration_seconds{target="portal",phase="tls"}') > 0
    assert value(text, 'motcua_dossier_probe_phase_duration_seconds{target="portal-http",phase="tls"}') == 0
    # The lab certificate is valid for a year or more; plain HTTP has none.
    assert (
        value(text, 'motcua_dossier_probe_tls_not_after_timestamp_seconds{target="portal"}') > time.time() + 300 * 86400
    )
    assert 'motcua_dossier_probe_tls_not_after_timestamp_seconds{target="portal-http"}' not in text
    assert not re.search(r"^motcua_dossier_probe_failure\{.*\} 1$", text, re.M)  # every reason 0
    assert value(text, "motcua_dossier_statistics_up") == 1
    assert value(text, 'motcua_dossier_agency_received_total{agency="26740"}') >= 1000
    assert value(text, 'motcua_dossier_agency_overdue{agency="so-tp"}') is not None
    assert "_created" not in text
    promtool_check(text)


# fault, options, the reason the portal probe gives, its HTTP status
FAULTS = [
    ("down", {}, "refused", 0),
    ("slow", {"seconds": 3}, "timeout", 0),
    ("http500", {}, "http_status", 500),
    ("wrong-content", {}, "body", 200),
    ("expired-cert", {}, "tls_verify", 0),
    ("untrusted-cert", {}, "tls_verify", 0),
    ("reset", {}, "reset", 0),
    ("hang", {}, "timeout", 0),
]


@pytest.mark.parametrize(("fault", "options", "reason", "status"), FAULTS, ids=[f[0] for f in FAULTS])
def test_each_fault_is_reported_and_metrics_keep_answering(exporter, dossier_standin, fault, options, reason, status):
    write_fault(dossier_standin["faults"], fault, **options)
    text = exporter.wait_for(f'motcua_dossier_probe_failure{{target="portal",reason="{reason}"}} 1')
    assert value(text, 'motcua_dossier_probe_success{target="portal"}') == 0
    assert value(text, 'motcua_dossier_probe_http_status_code{target="portal"}') == status
    if fault == "wrong-content":
        assert 'motcua_dossier_probe_failure{target="api-health",kind="api",reason="json"} 1' in text
        exporter.wait_for("motcua_dossier_statistics_up 0", timeout=15)
    if fault == "expired-cert":
        # The certificate is read even though it fails verification, so the alert can say when it expired.
        assert value(text, 'motcua_dossier_probe_tls_not_after_timestamp_seconds{target="portal"}') < time.time()
    if fault in ("expired-cert", "untrusted-cert"):
        assert value(text, 'motcua_dossier_probe_success{target="portal-http"}') == 1  # plain HTTP is unaffected
    # While the target misbehaves the exporter serves at once, every time.
    for _ in range(5):
        status_code, page = exporter.get("/metrics", timeout=5)
        assert status_code == 200 and "motcua_dossier_probe_success" in page
    promtool_check(page)
    assert exporter.alive()
    write_fault(dossier_standin["faults"], None)
    exporter.wait_for('motcua_dossier_probe_success{target="portal"} 1')
    assert not re.search(r'^motcua_dossier_probe_failure\{target="portal",.*\} 1$', exporter.metrics(), re.M)


def test_probe_endpoint_from_this_vantage_point(exporter, dossier_standin):
    status, text = exporter.get("/probe?target=api-health")
    assert status == 200 and value(text, "motcua_dossier_probe_success") == 1
    promtool_check(text)
    # A URL under probe.allow_urls, checked like a configured target (module=).
    status, text = exporter.get(f"/probe?target={dossier_standin['https']}/dang-nhap&module=login")
    assert status == 200 and value(text, "motcua_dossier_probe_success") == 1
    status, text = exporter.get(f"/probe?target={dossier_standin['https']}/&module=login")
    assert value(text, "motcua_dossier_probe_success") == 0 and 'reason="body"' in text
    # Without module=, the URL is trusted through the config's tls.ca_file (the lab CA), not the system store.
    status, text = exporter.get(f"/probe?target={dossier_standin['https']}/api/health")
    assert status == 200 and value(text, "motcua_dossier_probe_success") == 1, text
    # The scrape's own timeout bounds the probe.
    write_fault(dossier_standin["faults"], "hang")
    status, text = exporter.get("/probe?target=portal", headers={"X-Prometheus-Scrape-Timeout-Seconds": "1.5"})
    assert status == 200 and 'reason="timeout"' in text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "target= is required"),
        ("?target=https://example.org/", "neither a configured target nor under probe.allow_urls"),
        ("?target=nosuch", "neither a configured target"),
        ("?target={standin}/x&module=nosuch", "unknown module"),  # the stand-in: an allowed URL
    ],
)
def test_probe_endpoint_refuses_what_it_may_not_fetch(exporter, query, message):
    query = query.replace("{standin}", f"https://{STANDIN_ADDRESS}:{STANDIN_HTTPS}")
    status, text = exporter.get(f"/probe{query}")
    assert status == 400 and message in text


def test_tls_and_basic_auth(start_exporter, dossier_standin, tmp_path):
    ca_dir = dossier_standin["root"] / "ca"
    hashed = bcrypt.hashpw(b"s3cret-for-test", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {ca_dir / 'server.pem'}\n  key_file: {ca_dir / 'server.key'}\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    running = start_exporter(SCRIPT, config_for(dossier_standin), "--web.config.file", str(web), scheme="https")
    context = tls_client(dossier_standin["ca"])
    assert running.get("/metrics", context=context)[0] == 401
    wrong = base64.b64encode(b"prometheus:nope").decode()
    assert running.get("/metrics", context=context, headers={"Authorization": f"Basic {wrong}"})[0] == 401
    good = {"Authorization": "Basic " + base64.b64encode(b"prometheus:s3cret-for-test").decode()}
    status, text = running.get("/metrics", context=context, headers=good)
    assert status == 200 and "motcua_dossier_exporter_targets 4" in text
    with pytest.raises(OSError):  # plain HTTP to a TLS listener gets nothing usable
        replace(running, base=running.base.replace("https", "http")).get("/metrics", timeout=3)
    # A changed file is read again without a restart (as exporter-toolkit does): the new password works,
    # the old one no longer does; a file that does not load keeps the last good config.
    rehashed = bcrypt.hashpw(b"rotated-secret", bcrypt.gensalt(rounds=4)).decode()
    web.write_text(web.read_text().replace(hashed, rehashed))
    rotated = {"Authorization": "Basic " + base64.b64encode(b"prometheus:rotated-secret").decode()}
    deadline = time.monotonic() + 10
    while running.get("/metrics", context=context, headers=rotated)[0] != 200:
        assert time.monotonic() < deadline, running.log.read_text()
        time.sleep(0.3)
    assert running.get("/metrics", context=context, headers=good)[0] == 401
    web.write_text("basic_auth_users:\n  prometheus: plain-text-is-refused\n")
    time.sleep(1.5)
    assert running.get("/metrics", context=context, headers=rotated)[0] == 200
    assert running.get("/metrics", context=context)[0] == 401
    assert "does not load; keeping the last good one" in running.log.read_text()


def test_reload_applies_a_good_config_and_keeps_running_on_a_bad_one(start_exporter, dossier_standin):
    extra = f"  - name: health-http\n    url: {dossier_standin['http']}/api/health\n"
    running = start_exporter(SCRIPT, config_for(dossier_standin))
    running.config.write_text(config_for(dossier_standin, extra_target=extra))
    os.kill(running.proc.pid, signal.SIGHUP)
    running.wait_for('motcua_dossier_probe_success{target="health-http"} 1')
    running.config.write_text("targets: []\n")
    os.kill(running.proc.pid, signal.SIGHUP)
    text = running.wait_for("motcua_exporter_config_last_reload_successful 0")
    assert "motcua_dossier_exporter_targets 5" in text and running.alive()
    assert "reload refused, keeping the running config" in running.log.read_text()
    # SIGUSR1: every thread's stack into the log, and the exporter runs on.
    os.kill(running.proc.pid, signal.SIGUSR1)
    # The dump is written thread by thread: wait for the part looked for, not only its first line.
    deadline = time.monotonic() + 5

    def dumped() -> bool:
        log = running.log.read_text()
        return "Current thread" in log and "Thread 0x" in log and "in run_forever" in log

    while not dumped() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert dumped(), running.log.read_text()[-3000:]
    assert running.alive() and running.get("/metrics")[0] == 200


def test_a_fault_inside_the_exporter_is_logged_and_the_next_round_runs(dossier_standin, tmp_path, monkeypatch, caplog):
    """A round that raises (a bug, not a failing target) never ends its loop: the probe reports reason
    "error" instead of raising, a loop that meets an error anyway logs it and probes again on time."""
    import motcua_exporters.core.httpprobe as httpprobe
    import motcua_exporters.dossier.exporter as module
    from motcua_exporters.core.httpprobe import ProbeSpec

    def broken_context(*_args, **_kwargs):
        raise RuntimeError("broken TLS context")

    with monkeypatch.context() as patched:
        patched.setattr(httpprobe, "tls_context", broken_context)
        result = asyncio.run(httpprobe.probe(ProbeSpec(f"{dossier_standin['https']}/", timeout=2)))
    assert (result.success, result.reason) == (False, "error")
    assert "RuntimeError: broken TLS context" in result.detail

    calls: dict[str, int] = {}
    real_probe = module.probe

    async def flaky(spec):  # the first call for each URL raises, as a bug in a round would
        calls[spec.url] = calls.get(spec.url, 0) + 1
        if calls[spec.url] == 1:
            raise RuntimeError(f"round bug for {spec.url}")
        return await real_probe(spec)

    monkeypatch.setattr(module, "probe", flaky)
    config = tmp_path / "dossier.yml"
    config.write_text(config_for(dossier_standin))  # statistics again after 5 s
    exporter = module.DossierExporter.from_file(config)
    caplog.set_level("ERROR", logger="dossier")
    exporter.start()
    try:
        deadline = time.monotonic() + 15
        page = ""
        while time.monotonic() < deadline:
            page = exporter.metrics(None).body
            if 'motcua_dossier_probe_success{target="portal"} 1' in page and "motcua_dossier_statistics_up 1" in page:
                break
            time.sleep(0.2)
        assert 'motcua_dossier_probe_success{target="portal"} 1' in page, page[-2000:]
        assert "motcua_dossier_statistics_up 1" in page
    finally:
        exporter.stop()
    logged = caplog.text
    assert "probe round of portal failed" in logged and "statistics round failed" in logged
    assert "RuntimeError: round bug for" in logged  # with its traceback
    assert "stopped:" not in logged  # no loop ended


def records_config(standin, store, token_file=None, sites=("26740",)) -> str:
    return (
        config_for(standin)
        + f"""
records:
  url: {standin["https"]}/api/ho-so
  token_file: {token_file or standin["token"]}
  store: {store}
  sites: [{", ".join(f'"{s}"' for s in sites)}]
  interval: 5s
  timeout: 3s
  page_size: 50
"""
    )


def test_records_become_the_indicators_and_a_failing_source_keeps_the_last_figures(
    start_exporter, dossier_standin, clear_dossier_fault, tmp_path
):
    """The exporter reads the stand-in's records (every page of 50), stores them (0600) and serves the
    indicators per site and city-wide; the unit the registry does not have is left out and counted. While
    the API answers HTTP 500 the figures stay those of the last good read (never zero dossiers), the read
    is counted as failed and records_up says 0; back, it reads again."""
    store = tmp_path / "records.sqlite"
    running = start_exporter(SCRIPT, records_config(dossier_standin, store))
    text = running.wait_for("motcua_dossier_records_up 1", timeout=30)
    stored = value(text, "motcua_dossier_records_stored")
    assert stored and stored > 50  # more than one page
    assert value(text, "motcua_dossier_records_invalid") > 0  # so-tp's records: not a site of this registry
    assert oct(store.stat().st_mode & 0o777) == "0o600"
    ward = value(text, 'motcua_dossiers_received{site="26740",window="month"}')
    assert ward and 'site="so-tp"' not in text  # so-tp's dossiers are not counted
    assert value(text, "motcua_dossier_records_newest_update_timestamp_seconds") > time.time() - 86400 * 11
    promtool_check(text)

    write_fault(dossier_standin["faults"], "http500")
    failed = running.wait_for('motcua_dossier_records_reads_total{result="http"}', timeout=20)
    failed = running.wait_for("motcua_dossier_records_up 0", timeout=20)
    assert value(failed, 'motcua_dossiers_received{site="26740",window="month"}') == ward
    assert value(failed, "motcua_dossier_records_stored") == stored
    assert "reporting API" in running.log.read_text() and "HTTP 500" in running.log.read_text()
    write_fault(dossier_standin["faults"], None)
    running.wait_for("motcua_dossier_records_up 1", timeout=20)


def test_paging_that_loops_is_told_apart_and_no_figures_are_made_up(
    start_exporter, dossier_standin, clear_dossier_fault, tmp_path
):
    """A first read (many pages) whose every page is the first again: counted as a paging failure after the
    second page, records_up 0, and no dossier figures at all (never zero dossiers); then a good read."""
    write_fault(dossier_standin["faults"], "paging-broken")
    running = start_exporter(SCRIPT, records_config(dossier_standin, tmp_path / "records.sqlite"))
    failed = running.wait_for('motcua_dossier_records_reads_total{result="paging"} 1', timeout=20)
    assert value(failed, "motcua_dossier_records_up") == 0
    assert "motcua_dossiers_received{" not in failed
    assert "the API's paging is broken" in running.log.read_text()
    write_fault(dossier_standin["faults"], None)
    text = running.wait_for("motcua_dossier_records_up 1", timeout=20)
    assert value(text, 'motcua_dossiers_received{site="26740",window="month"}') > 0


def test_stale_records_are_read_and_show_as_old_never_as_no_dossiers(
    start_exporter, dossier_standin, clear_dossier_fault, tmp_path
):
    """The reporting API answers as the system stood 3 hours ago: the read succeeds (records_up 1), the newest
    update says how old the data is (what DossierRecordsStale alerts on), and the figures are there."""
    write_fault(dossier_standin["faults"], "stale", seconds=3 * 3600)
    running = start_exporter(SCRIPT, records_config(dossier_standin, tmp_path / "records.sqlite"))
    text = running.wait_for("motcua_dossier_records_up 1", timeout=30)
    assert value(text, "motcua_dossier_records_newest_update_timestamp_seconds") < time.time() - 3 * 3600 + 60
    assert value(text, 'motcua_dossiers_received{site="26740",window="month"}') > 0


def test_a_refused_token_is_told_apart(start_exporter, dossier_standin, clear_dossier_fault, tmp_path):
    token = tmp_path / "token"
    token.write_text("not-the-lab-token\n")
    token.chmod(0o600)
    running = start_exporter(SCRIPT, records_config(dossier_standin, tmp_path / "records.sqlite", token_file=token))
    text = running.wait_for('motcua_dossier_records_reads_total{result="refused"}', timeout=20)
    assert value(text, "motcua_dossier_records_up") == 0
    assert "motcua_dossiers_received" not in text  # never read: no figures, not zeros
    assert not (tmp_path / "records.sqlite").exists()
    token.write_text(dossier_standin["token"].read_text())  # a rotated token is read at the next round
    running.wait_for("motcua_dossier_records_up 1", timeout=20)
