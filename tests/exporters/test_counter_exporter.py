"""The counter exporter on this machine: what a failing check looks like, and parsing CUPS' answers.

Every check against the real CUPS, SANE, SoftHSM2 and chrony of a counter PC is
in tests/integration/test_counters.py (the lab); here the exporter runs beside
the dossier stand-in, with a check whose tool is missing.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from motcua.lab.dossier import write_fault
from motcua_exporters.counter.checks import parse_c_date

from .conftest import promtool_check

SCRIPT = "motcua-counter-exporter"


@pytest.fixture(scope="module")
def exporter(start_exporter, dossier_standin, tmp_path_factory):
    scans = tmp_path_factory.mktemp("scans")
    config = f"""
checks:
  portal:
    url: {dossier_standin["https"]}/
    ca_file: {dossier_standin["ca"]}
    interval: 1s
    expect: {{body_contains: ["Hệ thống thông tin"]}}
  scan_storage: {{paths: ["{scans}"], interval: 1s}}
  token: {{module: /nonexistent/pkcs11.so, interval: 1s}}
"""
    running = start_exporter(SCRIPT, config)
    running.wait_for("motcua_counter_portal_success 1")
    running.wait_for('motcua_counter_check_success{check="token"}')
    return running


def test_a_failing_check_is_reported_and_the_others_still_answer(exporter):
    text = exporter.metrics()
    assert 'motcua_counter_check_success{check="token"} 0' in text
    assert "motcua_counter_tokens" not in text.replace("# HELP motcua_counter_tokens", "").replace(
        "# TYPE motcua_counter_tokens", ""
    )
    assert 'motcua_counter_check_success{check="portal"} 1' in text
    assert 'motcua_counter_check_success{check="scan_storage"} 1' in text
    assert 'motcua_counter_exporter_check_runs_total{check="token",result="failure"}' in text
    assert "PKCS#11 module /nonexistent/pkcs11.so is missing" in exporter.log.read_text()
    promtool_check(text)


def test_portal_outage_from_this_counter(exporter, dossier_standin):
    write_fault(dossier_standin["faults"], "http500")
    try:
        text = exporter.wait_for('motcua_counter_portal_failure{reason="http_status"} 1')
        assert "motcua_counter_portal_http_status_code 500" in text and "motcua_counter_portal_success 0" in text
        # The check itself worked: it is the portal that failed.
        assert 'motcua_counter_check_success{check="portal"} 1' in text
    finally:
        write_fault(dossier_standin["faults"], None)
    exporter.wait_for("motcua_counter_portal_success 1")


def test_check_age_grows_between_runs_of_a_slow_check(exporter):
    ages = []
    for _ in range(2):
        text = exporter.metrics()
        wanted = 'motcua_counter_check_last_run_timestamp_seconds{check="scan_storage"}'
        line = next(x for x in text.splitlines() if x.startswith(wanted))
        ages.append(time.time() - float(line.rsplit(" ", 1)[1]))
    assert all(0 <= age < 5 for age in ages)


def test_lpstat_dates_in_the_c_locale():
    # As `LC_ALL=C lpstat -o` prints them (recorded on a lab counter).
    line_date = "Tue Nov 24 01:00:03 2026"
    assert parse_c_date(line_date) == dt.datetime(2026, 11, 24, 1, 0, 3).timestamp()
    with pytest.raises(ValueError):
        parse_c_date("Thg 11 24 01:00:03 2026")  # a Vietnamese-locale date is refused, not misread


def test_a_reload_never_leaves_an_old_check_running(monkeypatch):
    """A check still running when a reload stops it (longer than stop() waits) ends with its generation."""
    import threading

    from motcua_exporters.counter import exporter as counter_exporter
    from motcua_exporters.counter.checks import Check

    class Slow(Check):
        def __init__(self, delay: float):
            super().__init__("portal", 0.05, 10.0)
            self.delay, self.runs = delay, 0

        def run(self):
            self.runs += 1
            time.sleep(self.delay)
            return {}

    old, new = Slow(6.0), Slow(0.01)
    running = counter_exporter.CounterExporter([old])
    running.start()
    time.sleep(0.3)  # the old check is in its first (6 s) run
    monkeypatch.setattr(counter_exporter.config_module, "load", lambda _path: [new])
    running.reload(Path("/nonexistent/counter-exporter.yml"))  # stop() gives up waiting after 5 s
    time.sleep(2)  # the old run has ended by now
    try:
        assert old.runs == 1, "the old check ran again after the reload"
        assert new.runs > 10
        assert len([t for t in threading.enumerate() if t.name == "check portal" and t.is_alive()]) == 1
    finally:
        running.stop()
