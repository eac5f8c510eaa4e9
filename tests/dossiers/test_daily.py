"""The daily dossier report: figures of hand-built days with known answers, its three files, the config
it refuses, and the e-mail as the lab's mail relay (motcua.lab.sink) receives it."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from motcua.lab.procs import spawn, stop, wait_for_port
from motcua_exporters.dossier import daily, report
from motcua_exporters.dossier.records import TZ, Dossier
from tests.exporters.conftest import free_port

CUTOFF = dt.datetime(2026, 12, 4, 17, 0, tzinfo=TZ)  # a Friday
SITES = {"26740": "Phường Sài Gòn", "26732": "Phường Tân Định", "25747": "Phường Thủ Đức", "ttpv": "Trung tâm"}


def dossier(code: str, site: str, received: str, due: str | None, finished: str | None = None, *,
            agency: str | None = None, status: str | None = None, reason: str | None = None,
            step: str | None = None) -> Dossier:  # fmt: skip
    def at(text: str | None) -> dt.datetime | None:
        return dt.datetime.fromisoformat(text).replace(tzinfo=TZ) if text else None

    return Dossier(code, site, agency, "1.001", "Đăng ký khai sinh", "Hộ tịch", "direct", at(received), at(due),
                   at(finished), None, status or ("finished" if finished else "in_progress"),
                   overdue_reason=reason, late_step=step)  # fmt: skip


@pytest.fixture
def day() -> list[Dossier]:
    return [
        # 26740: today 3 received; one finished on time, one late; one overdue since Monday.
        dossier("A1", "26740", "2026-12-04 08:00", "2026-12-08 17:00", "2026-12-04 10:00"),
        dossier("A2", "26740", "2026-12-04 09:00", "2026-12-10 17:00"),
        dossier("A3", "26740", "2026-12-04 09:30", "2026-12-09 17:00"),
        dossier(
            "A4",
            "26740",
            "2026-11-25 08:00",
            "2026-12-02 17:00",
            "2026-12-04 11:00",
            reason="Thiếu cán bộ",
            step="Xử lý",
        ),
        dossier("A5", "26740", "2026-11-24 08:00", "2026-11-30 17:00", reason="Chờ xác minh", step="Thẩm định"),
        # Yesterday at 26740: 1 received, 1 finished late; A5 was overdue then too.
        dossier("A6", "26740", "2026-12-03 08:00", "2026-12-09 17:00"),
        dossier("A7", "26740", "2026-11-20 08:00", "2026-11-27 17:00", "2026-12-03 09:00", reason="Thiếu cán bộ"),
        # 26732: quiet, nothing overdue; finished exactly at its limit counts as on time.
        dossier("B1", "26732", "2026-12-01 08:00", "2026-12-04 10:00", "2026-12-04 10:00"),
        # The city centre's agency so-tp: one overdue since Tuesday with no reason recorded.
        dossier("C1", "ttpv", "2026-11-28 08:00", "2026-12-01 17:00", agency="so-tp"),
        # Received after the cut-off: not in the day's figures.
        dossier("A8", "26740", "2026-12-04 17:30", "2026-12-10 17:00"),
        # Withdrawn: neither open nor judged.
        dossier("A9", "26740", "2026-11-20 08:00", "2026-11-25 17:00", status="withdrawn"),
        # A site the report does not cover.
        dossier("Z1", "99999", "2026-12-04 08:00", "2026-11-25 17:00"),
    ]


def unit(units, code):
    return next(u for u in units if u.code == code)


def test_the_days_figures_against_the_day_before_at_the_same_time(day):
    built = daily.build(day, CUTOFF, SITES, {"so-tp": "Sở Tư pháp", "so-xd": "Sở Xây dựng"}, "test")
    ward = unit(built.sites, "26740")
    t, y = ward.today, ward.yesterday
    assert (t.received, t.finished_on_time, t.finished_late, t.open_overdue) == (3, 1, 1, 1)
    assert (y.received, y.finished_on_time, y.finished_late, y.open_overdue) == (1, 0, 1, 2)  # A4 and A5 then
    assert t.on_time_rate == 0.5 and y.on_time_rate == 0.0
    assert ward.main_reason == "Thiếu cán bộ (1)" or ward.main_reason == "Chờ xác minh (1)"
    quiet = unit(built.sites, "26732").today
    assert (quiet.finished_on_time, quiet.finished_late, quiet.open_overdue) == (1, 0, 0)
    assert [u.code for u in built.sites] == list(SITES)  # every site, in the registry's order
    assert {u.code for u in built.agencies} == {"so-tp", "so-xd"}  # named ones even without a dossier
    assert unit(built.agencies, "so-tp").today.open_overdue == 1
    city = built.city.today
    assert (city.received, city.open_overdue) == (3, 2)  # Z1's site is not reported, A8 came after the cut-off
    # The worst: the most overdue first, then the lowest on-time rate (none judged counts as 100 %), then the
    # most finished late; quiet units are not listed.
    assert [(u.kind, u.code) for u in built.worst] == [("site", "26740"), ("agency", "so-tp"), ("site", "ttpv")]
    # Overdue longest first: A5 (due 30/11) then C1 (due 1/12).
    assert [o.dossier.code for o in built.overdue] == ["A5", "C1"]
    assert round(built.overdue[0].days, 2) == 4.0 and built.overdue[1].unit == "ttpv / so-tp"


def test_the_html_the_csv_and_the_xlsx(day, tmp_path):
    built = daily.build(day, CUTOFF, SITES, {"so-tp": "Sở Tư pháp"}, "12 hồ sơ / dossiers")
    page = daily.as_html(built)
    assert "<script" not in page and 'name="viewport"' in page
    assert "Báo cáo tiến độ giải quyết hồ sơ ngày 04/12/2026" in page and "Dossier processing report" in page
    assert "Mười hồ sơ quá hạn lâu nhất" in page and "A5" in page and "Chờ xác minh" in page
    assert '<span class="down">+2</span>' in page  # 26740 received 3 against 1: more, and not worse (green)
    rows = daily.rows(built)
    header = list(daily.HEADER)
    by_code = {r[1]: dict(zip(header, r, strict=True)) for r in rows}
    ward = by_code["26740"]
    assert (ward["Tiếp nhận / Received"], ward["Quá hạn đang xử lý / Overdue open"]) == (3, 1)
    assert ward["Tỷ lệ đúng hạn / On-time rate"] == 50.0 and ward["Hôm qua / Yesterday"] == 0.0
    assert list(by_code)[-1] == ""  # the city's row last
    text = daily.as_csv(built)
    assert text.startswith("\ufeffLoại / Kind,") and "Phường Sài Gòn" in text
    book = tmp_path / "r.xlsx"
    book.write_bytes(daily.as_xlsx(built))
    with zipfile.ZipFile(book) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    assert '<c r="D2" s="2"><v>3</v></c>' in sheet  # 26740's received: a number, not text
    assert "Phường Sài Gòn" in sheet


def config_text(tmp_path: Path, store: Path, mail: str = "") -> Path:
    path = tmp_path / "report.yml"
    path.write_text(
        f"store: {store}\noutput_dir: {tmp_path / 'out'}\ncutoff: '17:00'\nkeep_days: 30\n"
        + "sites:\n" + "".join(f"  '{c}': {n}\n" for c, n in SITES.items())
        + "agencies: {so-tp: Sở Tư pháp}\n" + mail,
        encoding="utf-8",
    )  # fmt: skip
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("sites: {}\n", "sites: must map the codes reported to their names"),
        ("sites: {'Bad Code': x}\n", "sites.Bad Code: must be a code"),
        ("sites: {'26740': x}\ncutoff: '5pm'\n", "cutoff: must be HH:MM"),
        ("sites: {'26740': x}\nmail: {smarthost: relay, from: a@b.vn, to: [x@y.vn]}\n", "mail.smarthost: must be"),
        ("sites: {'26740': x}\nmail: {smarthost: 'relay:25', from: a@b.vn, to: []}\n", "mail.to: must list"),
        ("sites: {'26740': x}\nmail: {smarthost: 'relay:25', from: a@b.vn, to: [nobody]}\n", "mail.to[0]: must be"),
        (
            "sites: {'26740': x}\nmail: {smarthost: 'relay:25', from: a@b.vn, to: [x@y.vn], auth_username: u}\n",
            "auth_username and auth_password_file go together",
        ),
        ("sites: {'26740': x}\nsend_at: '17:00'\n", "send_at"),
    ],
    ids=["no-sites", "bad-site", "bad-cutoff", "no-port", "no-recipient", "bad-recipient", "half-auth", "unknown-key"],
)
def test_a_config_that_cannot_be_used_is_refused_naming_the_key(tmp_path, body, message):
    path = tmp_path / "bad.yml"
    path.write_text(f"store: {tmp_path / 'records.json'}\noutput_dir: {tmp_path}\n{body}", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "motcua_exporters", "dossier-report", "--config.file", str(path),
                             "--check-config"], capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert str(path) in result.stderr and message in result.stderr


def api_item(d: Dossier) -> dict:
    """The record as the reporting API gives it (api_format), so the store holds what the exporter keeps."""

    def iso(value):
        return value.isoformat(timespec="seconds") if value else None

    status = {"finished": "da_giai_quyet", "in_progress": "dang_xu_ly", "withdrawn": "rut_ho_so"}[d.status]
    return {"ma_ho_so": d.code, "ma_don_vi": d.site, "ma_co_quan": d.agency, "ma_thu_tuc": d.procedure_code,
            "ten_thu_tuc": d.procedure_name, "linh_vuc": d.field, "kenh": "truc_tiep",
            "ngay_tiep_nhan": iso(d.received_at), "han_xu_ly": iso(d.due_at), "ngay_co_ket_qua": iso(d.finished_at),
            "ngay_tra_ket_qua": None, "trang_thai": status, "ly_do_qua_han": d.overdue_reason,
            "buoc_qua_han": d.late_step, "cap_nhat_luc": "2026-12-04T16:55:00+07:00"}  # fmt: skip


@pytest.fixture
def store(tmp_path, day) -> Path:
    """A store in the format before SQLite (one JSON document): the report converts it in place."""
    path = tmp_path / "records.json"
    items = {d.code: api_item(d) for d in day if d.site != "99999"}
    path.write_text(json.dumps({"high_water": "2026-12-04T16:55:00+07:00", "items": items}), encoding="utf-8")
    return path


@pytest.fixture
def relay(tmp_path):
    """The lab's mail relay stand-in (motcua.lab.sink), on loopback: what it received, as JSON lines."""
    http, smtp = free_port(), free_port()
    log = tmp_path / "sink.jsonl"
    argv = [sys.executable, "-m", "motcua.lab.sink", "--address", "127.0.0.1", "--http-port", str(http),
            "--smtp-port", str(smtp), "--log", str(log)]  # fmt: skip
    proc = spawn("sink", "sink", argv, tmp_path / "sink.log")
    assert wait_for_port("127.0.0.1", smtp, 15), (tmp_path / "sink.log").read_text()
    yield smtp, log
    stop([proc])


def test_the_report_is_written_kept_pruned_and_sent_with_its_files(tmp_path, store, relay):
    port, log = relay
    mail = f"mail: {{smarthost: '127.0.0.1:{port}', from: bao-cao@lab.motcua.invalid, to: [dx@lab.motcua.invalid, " \
           "truc@lab.motcua.invalid], require_tls: false}\n"  # fmt: skip
    config = config_text(tmp_path, store, mail)
    out = tmp_path / "out"
    out.mkdir()
    old = out / "ho-so-2026-10-01.html"
    old.write_text("old")
    past = time.time() - 40 * 86400
    os.utime(old, (past, past))
    result = subprocess.run([sys.executable, "-m", "motcua_exporters", "dossier-report", "--config.file", str(config),
                             "--day", "2026-12-04"], capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == ["ho-so-2026-12-04.csv", "ho-so-2026-12-04.html", "ho-so-2026-12-04.xlsx"]  # the old one pruned
    page = (out / "ho-so-2026-12-04.html").read_text(encoding="utf-8")
    assert "11 hồ sơ / dossiers" in page and "SỐ LIỆU CŨ" not in page
    sent = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(sent) == 1 and sent[0]["kind"] == "email", sent
    message = sent[0]
    assert message["to"] == ["dx@lab.motcua.invalid", "truc@lab.motcua.invalid"]
    assert message["subject"].startswith("[motcua] Hồ sơ ngày 04/12/2026: 3 tiếp nhận, 2 quá hạn")
    assert sorted(message["attachments"]) == written
    # A stale store is said so, and a relay that is down fails the run after the files are written.
    assert store.read_bytes()[:16] == b"SQLite format 3\x00"  # the old JSON store, converted in place
    with contextlib.closing(sqlite3.connect(store)) as db, db:
        db.execute("UPDATE meta SET value = '2026-12-03T08:00:00+07:00' WHERE key = 'high_water'")
        db.execute("UPDATE meta SET value = '' WHERE key = 'read_at'")
    config.write_text(config.read_text().replace(f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}"))
    result = subprocess.run([sys.executable, "-m", "motcua_exporters", "dossier-report", "--config.file", str(config),
                             "--day", "2026-12-04"], capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 1 and "not sent to dx@lab.motcua.invalid" in result.stderr, result.stderr
    assert "SỐ LIỆU CŨ" in (out / "ho-so-2026-12-04.html").read_text(encoding="utf-8")


def test_the_day_reported_is_the_last_whose_cut_off_has_passed(tmp_path, store):
    config = report.load(config_text(tmp_path, store))
    assert report.report_day(config, dt.datetime(2026, 12, 4, 17, 5, tzinfo=TZ)) == dt.date(2026, 12, 4)
    assert report.report_day(config, dt.datetime(2026, 12, 4, 16, 59, tzinfo=TZ)) == dt.date(2026, 12, 3)
    # 09:30 UTC is 16:30 in Hồ Chí Minh City: before the cut-off.
    assert report.report_day(config, dt.datetime(2026, 12, 4, 9, 30, tzinfo=dt.UTC)) == dt.date(2026, 12, 3)


def record(textfile: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`dossier-report --record-run`, as the unit's ExecStopPost= runs it (systemd's variables in env)."""
    clean = {k: v for k, v in os.environ.items() if k not in ("SERVICE_RESULT", "EXIT_STATUS")}
    argv = [sys.executable, "-m", "motcua_exporters", "dossier-report", "--record-run", "--textfile", str(textfile)]
    return subprocess.run(argv, env={**clean, **env}, capture_output=True, text=True, timeout=60)


def samples(textfile: Path) -> dict[str, float]:
    """The file's samples, by name without motcua_dossier_report_."""
    lines = [line.split() for line in textfile.read_text().splitlines() if line[:1] != "#"]
    return {name.removeprefix("motcua_dossier_report_"): float(value) for name, value in lines}


def test_each_run_is_recorded_for_the_textfile_collector_and_a_failure_keeps_the_last_success(tmp_path):
    from tests.dossiers.test_metrics import promtool_check

    textfile = tmp_path / "motcua_dossier_report.prom"
    assert record(textfile, SERVICE_RESULT="success", EXIT_STATUS="0").returncode == 0
    first = samples(textfile)
    assert (first["last_run_success"], first["last_run_exit_status"]) == (1, 0)
    assert abs(first["last_success_timestamp_seconds"] - time.time()) < 60
    promtool_check(textfile.read_text())
    time.sleep(1.1)
    assert record(textfile, SERVICE_RESULT="exit-code", EXIT_STATUS="1").returncode == 0
    failed = samples(textfile)
    assert (failed["last_run_success"], failed["last_run_exit_status"]) == (0, 1)
    assert failed["last_run_timestamp_seconds"] > first["last_run_timestamp_seconds"]
    assert failed["last_success_timestamp_seconds"] == first["last_success_timestamp_seconds"]  # kept
    assert record(textfile, SERVICE_RESULT="signal", EXIT_STATUS="TERM").returncode == 0  # killed: no number
    assert samples(textfile)["last_run_exit_status"] == -1
    assert textfile.stat().st_mode & 0o777 == 0o644  # node_exporter (another user) reads it


def test_recording_a_run_outside_systemd_is_refused(tmp_path):
    result = record(tmp_path / "x.prom")
    assert result.returncode == 2 and "no $SERVICE_RESULT" in result.stderr
    assert not (tmp_path / "x.prom").exists()


@pytest.mark.parametrize(
    ("read_at", "stale"),
    [
        ("2026-12-06T17:05:00+07:00", False),  # a Sunday: nothing updated since Saturday, yet read just now
        ("2026-12-06T14:00:00+07:00", True),  # the exporter stopped reading three hours before the cut-off
        (None, True),  # a store from before read_at was kept: its newest update (Friday) decides
    ],
    ids=["quiet-day-read-now", "not-read-since-14h", "old-store"],
)
def test_a_quiet_day_is_not_stale_a_source_not_read_is(tmp_path, store, read_at, stale):
    """STALE means the source was not read before the cut-off, not that nothing happened (a Sunday)."""
    data = json.loads(store.read_text())
    if read_at:
        data["read_at"] = read_at
    store.write_text(json.dumps(data))
    made = report.make(report.load(config_text(tmp_path, store)), dt.date(2026, 12, 6))
    assert ("SỐ LIỆU CŨ" in made.source) is stale, made.source
