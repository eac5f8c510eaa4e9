"""Go-live readiness: judging a counter's probe, the site verdict, and the report files."""

from __future__ import annotations

import csv
import io
import json
import subprocess

import pytest

from motcua.cli import main
from motcua.readiness import checks
from motcua.readiness.report import as_csv, as_html, as_json, as_metrics, write_report
from motcua_exporters.pull.apply import Outcome, textfile_text

NOW = 1_800_000_000.0
DAY = 86400
EXPECTED = checks.Expected(printers=("w26740-pr01",), scanners=1, officials=("nguyenvana", "tranthib"))


def metrics(
    printer_state="idle", accepting=1, stuck=0, scanners=1, tokens=1, cert_days=400, portal=1, synced=1, offset=0.01
):
    lines = [
        "# HELP motcua_counter_printers Printer queues.",
        "# TYPE motcua_counter_printers gauge",
        "motcua_counter_printers 1",
        "# TYPE motcua_counter_printer_state gauge",
        *(f'motcua_counter_printer_state{{printer="w26740-pr01",state="{s}"}} {int(s == printer_state)}'
          for s in ("idle", "processing", "stopped")),
        "# TYPE motcua_counter_printer_accepting_jobs gauge",
        f'motcua_counter_printer_accepting_jobs{{printer="w26740-pr01"}} {accepting}',
        "# TYPE motcua_counter_printer_stuck_jobs gauge",
        f'motcua_counter_printer_stuck_jobs{{printer="w26740-pr01"}} {stuck}',
        "# TYPE motcua_counter_scanners gauge",
        f"motcua_counter_scanners {scanners}",
        "# TYPE motcua_counter_tokens gauge",
        f"motcua_counter_tokens {tokens}",
        "# TYPE motcua_counter_token_certificate_not_after_timestamp_seconds gauge",
        *([f'motcua_counter_token_certificate_not_after_timestamp_seconds{{token="motcua-26740",id="01",'
           f'subject="UBND phuong Sai Gon"}} {NOW + cert_days * DAY}'] if cert_days is not None else []),
        "# TYPE motcua_counter_portal_success gauge",
        f"motcua_counter_portal_success {portal}",
        "# TYPE motcua_counter_portal_failure gauge",
        f'motcua_counter_portal_failure{{reason="refused"}} {1 - portal}',
        "# TYPE motcua_counter_clock_synchronized gauge",
        f"motcua_counter_clock_synchronized {synced}",
        "# TYPE motcua_counter_clock_offset_seconds gauge",
        f"motcua_counter_clock_offset_seconds {offset}",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def probe_output(services_down=(), config=True, accounts=("nguyenvana", "tranthib"), metrics_text=None, virt="none",
                 pull=""):  # fmt: skip
    services = [f"{u} {'inactive' if u in services_down else 'active'}" for u in checks.SERVICES]
    return "\n".join([
        "## services", *services,
        "## virt", virt,
        "## config", "present" if config else "missing",
        "## pull", *pull.splitlines(),
        "## accounts", *accounts,
        "## metrics", metrics() if metrics_text is None else metrics_text,
    ])  # fmt: skip


def statuses(results):
    return {r.check: r.status for r in results}


def test_a_ready_counter_passes_every_check():
    results = checks.judge_counter("w26740-pc01", probe_output(), EXPECTED, NOW)
    assert statuses(results) == dict.fromkeys(
        ["reachable", "provisioned", "config", "accounts", "printer", "scanner", "token", "dossier", "clock"], "ok"
    )


OLD, NEW = "a" * 40, "b" * 40


def pulled(reason: str = "", applied: str = NEW, fetched: str = NEW) -> str:
    """A counter's pull textfile as the pull writes it (motcua_exporters.pull.apply)."""
    done = Outcome(started=NOW - 30, ring="canary", ended=NOW, reason=reason, fetched=fetched, applied=applied,
                   tasks={} if reason else {"ok": 90, "changed": 0})  # fmt: skip
    return textfile_text(done, NOW - 3600)


@pytest.mark.parametrize(
    ("pull", "ring_commit", "status", "detail"),
    [
        ("", NEW, "ok", "push-provisioned"),  # never pulled: provisioned by push
        (pulled(), NEW, "ok", f"{NEW[:12]} (ring/canary)"),
        (pulled(), "", "ok", f"{NEW[:12]} (ring/canary)"),  # no signed repository on this controller
        (pulled(applied=OLD, fetched=OLD), NEW, "warn", f"behind: runs {OLD[:12]}, ring/canary names {NEW[:12]}"),
        (pulled("apply", applied=OLD), NEW, "warn", f"the last pull failed (apply); đang chạy / runs {OLD[:12]}"),
        (pulled("locked", applied=NEW), NEW, "ok", f"{NEW[:12]} (ring/canary)"),  # a push held the lock
        ("motcua_pull_last_run_success{oops 1\n", NEW, "warn", "motcua_pull.prom"),
    ],
    ids=["never", "current", "unknown-ring-commit", "behind", "failed", "locked", "garbled"],
)
def test_the_configuration_a_counter_pulled_is_judged_against_its_ring(pull, ring_commit, status, detail):
    expected = checks.Expected(EXPECTED.printers, EXPECTED.scanners, EXPECTED.officials, "canary", ring_commit)
    results = {r.check: r for r in checks.judge_counter("w26740-pc01", probe_output(pull=pull), expected, NOW)}
    assert results["config"].status == status and detail in results["config"].detail, results["config"]
    assert all(r.status == "ok" for c, r in results.items() if c != "config")


@pytest.mark.parametrize(
    ("probe", "check", "status", "detail"),
    [
        (
            probe_output(metrics_text=metrics(printer_state="stopped")),
            "printer",
            "fail",
            "w26740-pr01: đã dừng / stopped",
        ),
        (probe_output(metrics_text=metrics(accepting=0)), "printer", "fail", "not accepting jobs"),
        (probe_output(metrics_text=metrics(stuck=2)), "printer", "warn", "stuck jobs"),
        (probe_output(metrics_text=metrics(scanners=0)), "scanner", "fail", "no scanner found"),
        (probe_output(metrics_text=metrics(tokens=0)), "token", "fail", "no token present"),
        (probe_output(metrics_text=metrics(cert_days=None)), "token", "fail", "no certificate on the token"),
        (probe_output(metrics_text=metrics(cert_days=12)), "token", "warn", "certificate expires in 12 days"),
        (probe_output(metrics_text=metrics(cert_days=30)), "token", "warn", "expires in 30 days"),
        (probe_output(metrics_text=metrics(cert_days=-1)), "token", "fail", "certificate expired"),
        (probe_output(metrics_text=metrics(portal=0)), "dossier", "fail", "unreachable from the counter: refused"),
        (probe_output(metrics_text=metrics(synced=0)), "clock", "fail", "not synchronised"),
        (probe_output(metrics_text=metrics(offset=-2.5)), "clock", "warn", "offset 2.50 s"),
        (probe_output(services_down=("cups",)), "provisioned", "fail", "cups không chạy / not running"),
        (probe_output(config=False), "provisioned", "fail", "counter-exporter.yml thiếu / missing"),
        (probe_output(accounts=("nguyenvana",)), "accounts", "fail", "no account: tranthib"),
    ],
)
def test_each_problem_is_judged_and_named(probe, check, status, detail):
    results = {r.check: r for r in checks.judge_counter("w26740-pc01", probe, EXPECTED, NOW)}
    assert results[check].status == status and detail in results[check].detail, results[check]
    assert all(r.status == "ok" for c, r in results.items() if c != check)


def test_a_container_needs_no_firewall_but_a_real_counter_does():
    lab = {
        r.check: r
        for r in checks.judge_counter("pc", probe_output(("nftables",), virt="systemd-nspawn"), EXPECTED, NOW)
    }
    assert lab["provisioned"].status == "ok"
    real = {r.check: r for r in checks.judge_counter("pc", probe_output(("nftables",)), EXPECTED, NOW)}
    assert real["provisioned"].status == "fail" and "nftables" in real["provisioned"].detail


def test_a_counter_exporter_that_does_not_answer_fails_its_checks():
    probe = probe_output(metrics_text="FAILED after 10.00s: <urlopen error [Errno 111] Connection refused>")
    results = {r.check: r for r in checks.judge_counter("w26740-pc01", probe, EXPECTED, NOW)}
    assert results["provisioned"].status == "ok"
    for check in ("printer", "scanner", "token", "dossier", "clock"):
        assert results[check].status == "fail" and "Connection refused" in results[check].detail


def sites():
    green = checks.SiteReadiness(
        "26740", "Phường Sài Gòn", checks.judge_counter("w26740-pc01", probe_output(), EXPECTED, NOW)
    )
    green.results += [checks.Result("switch", "ok", "", "w26740-sw01")]
    amber = checks.SiteReadiness(
        "25747", "Phường Tân Định",
        checks.judge_counter("w25747-pc01", probe_output(metrics_text=metrics(cert_days=10)), EXPECTED, NOW),
    )  # fmt: skip
    red = checks.SiteReadiness(
        "26732", "Phường Bến Thành",
        checks.judge_counter("w26732-pc01", probe_output(metrics_text=metrics(printer_state="stopped")), EXPECTED, NOW)
        + checks.judge_counter("w26732-pc02", probe_output(metrics_text=metrics(cert_days=10)), EXPECTED, NOW),
    )  # fmt: skip
    return [green, amber, red]


def test_the_verdict_is_the_worst_check():
    green, amber, red = sites()
    assert (green.verdict, amber.verdict, red.verdict) == ("green", "amber", "red")
    assert red.check_status("printer") == "fail" and red.check_status("token") == "warn"
    assert red.check_status("switch") is None
    assert checks.SiteReadiness("99999", "empty").verdict == "red"  # nothing checked is not ready


def test_one_certificate_per_site_is_enough():
    holder = checks.judge_counter("w26740-pc01", probe_output(), EXPECTED, NOW)
    other = checks.judge_counter("w26740-pc02", probe_output(metrics_text=metrics(cert_days=None)), EXPECTED, NOW)
    site = checks.SiteReadiness("26740", "Phường Sài Gòn", holder + other)
    checks.settle_tokens(site)
    token = next(r for r in site.results if r.check == "token" and r.host == "w26740-pc02")
    assert token.status == "ok" and "the site's certificate is on w26740-pc01" in token.detail
    assert site.verdict == "green"
    # No counter of the site holds one: every counter's failure stands.
    none = checks.SiteReadiness("26740", "Phường Sài Gòn", [
        *checks.judge_counter("w26740-pc01", probe_output(metrics_text=metrics(cert_days=None)), EXPECTED, NOW),
        *checks.judge_counter("w26740-pc02", probe_output(metrics_text=metrics(tokens=0)), EXPECTED, NOW),
    ])  # fmt: skip
    checks.settle_tokens(none)
    assert [r.status for r in none.results if r.check == "token"] == ["fail", "fail"]
    # An expiring one is still the site's: amber, and the other counter is fine.
    expiring = checks.SiteReadiness("26740", "Phường Sài Gòn", [
        *checks.judge_counter("w26740-pc01", probe_output(metrics_text=metrics(cert_days=5)), EXPECTED, NOW),
        *checks.judge_counter("w26740-pc02", probe_output(metrics_text=metrics(cert_days=None)), EXPECTED, NOW),
    ])  # fmt: skip
    checks.settle_tokens(expiring)
    assert expiring.verdict == "amber"
    # A counter that did not answer (or whose exporter did not) is no certificate's holder.
    unknown = checks.SiteReadiness("26740", "Phường Sài Gòn", [
        *checks.judge_counter("w26740-pc01", probe_output(metrics_text="FAILED after 10.00s: refused"), EXPECTED, NOW),
        *checks.judge_counter("w26740-pc02", probe_output(metrics_text=metrics(cert_days=None)), EXPECTED, NOW),
    ])  # fmt: skip
    checks.settle_tokens(unknown)
    assert [(r.host, r.status) for r in unknown.results if r.check == "token"] == [
        ("w26740-pc01", "fail"), ("w26740-pc02", "fail")]  # fmt: skip


def test_report_files(tmp_path):
    data = sites()
    payload = json.loads(as_json(data, "2027-01-01T08:00:00+07:00"))
    assert payload["counts"] == {"green": 1, "amber": 1, "red": 1}
    red = next(s for s in payload["sites"] if s["site"] == "26732")
    assert [(p["host"], p["check"], p["status"]) for p in red["problems"]] == [
        ("w26732-pc01", "printer", "fail"), ("w26732-pc02", "token", "warn")]  # fmt: skip
    text = as_csv(data)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:3] == ["Mã đơn vị / site", "Tên / name", "Kết luận / verdict"]
    assert [r[2] for r in rows[1:]] == ["green", "amber", "red"]
    assert "w26732-pc01: Máy in / printer: w26740-pr01: đã dừng / stopped" in rows[3][-1]
    prom = as_metrics(data, NOW)
    assert 'motcua_readiness_site_verdict{site="26732",verdict="red"} 1' in prom
    assert 'motcua_readiness_site_verdict{site="26732",verdict="green"} 0' in prom
    assert 'motcua_readiness_site_info{site="26732",name="Phường Bến Thành"} 1' in prom
    assert 'motcua_readiness_check{site="26732",check="printer"} 0' in prom
    assert 'motcua_readiness_check{site="26740",check="switch"} 1' in prom
    page = as_html(data, "2027-01-01T08:00:00+07:00", "lab inventory")
    assert page.index('data-site="26732"') < page.index('data-site="25747"') < page.index('data-site="26740"')
    assert "Chưa sẵn sàng / not ready" in page and "Máy in / printer — w26740-pr01: đã dừng / stopped" in page
    written = write_report(tmp_path / "r", data, "2027-01-01T08:00:00+07:00", NOW, "lab inventory")
    assert sorted(p.rsplit("/", 1)[1] for p in written.values()) == [
        "motcua_readiness.prom", "readiness.csv", "readiness.html", "readiness.json"]  # fmt: skip


def test_metrics_file_is_valid_for_prometheus(tmp_path):
    path = tmp_path / "motcua_readiness.prom"
    path.write_text(as_metrics(sites(), NOW))
    done = subprocess.run(["promtool", "check", "metrics"], input=path.read_text(), capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_bad_input_is_refused_before_any_connection(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["readiness", "--sites", "99999", "--out", str(out)]) == 2
    assert "motcua readiness: unknown site(s): 99999" in capsys.readouterr().err
    assert main(["readiness", "--sites", "26740", "--roster", str(tmp_path / "none.yml"), "--out", str(out)]) == 2
    assert "none.yml: roster not found" in capsys.readouterr().err
    bad = tmp_path / "roster.yml"
    bad.write_text("staff:\n  - {staff_id: X-1, full_name: Nguyễn Văn A, site: '99999', role: tiep_nhan}\n")
    assert main(["readiness", "--sites", "26740", "--roster", str(bad), "--out", str(out)]) == 2
    assert "roster.yml:2: staff X-1: field site: unknown site '99999'" in capsys.readouterr().err
    assert not out.exists()  # nothing was checked or written


def test_a_connection_dropped_before_authentication_is_tried_once_more(tmp_path):
    """sshd closes a connection before authentication when it sheds load (MaxStartups) or restarts: the
    probe tries once more; a refused connection is not tried again."""
    import socket
    import threading

    from motcua.access import PcAccess, Target

    known = tmp_path / "known_hosts"
    known.write_text("")
    access = PcAccess("root", None, known, timeout=3.0)
    listener = socket.create_server(("127.83.0.1", 22))
    listener.settimeout(0.2)
    accepted: list[int] = []
    done = threading.Event()

    def drop() -> None:  # as sshd does when it sheds the connection: closed before its banner
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(1)
            conn.close()

    thread = threading.Thread(target=drop, daemon=True)
    thread.start()
    try:
        results = checks.probe_counter(Target("w26740-pc01", "26740", "counter", "127.83.0.1"), access, EXPECTED,
                                       retry_pause=0.1)  # fmt: skip
    finally:
        done.set()
        thread.join(timeout=5)
        listener.close()
    assert len(accepted) == 2
    reachable = next(r for r in results if r.check == "reachable")
    assert reachable.status == checks.FAIL and "unreachable" in reachable.detail
    # Nothing listening: refused at once, one attempt.
    refused = checks.probe_counter(Target("w26740-pc02", "26740", "counter", "127.83.0.2"), access, EXPECTED,
                                   retry_pause=5.0)  # fmt: skip
    assert "unreachable" in next(r for r in refused if r.check == "reachable").detail
