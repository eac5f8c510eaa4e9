"""The indicators as metrics (motcua_exporters/dossier/metrics.py): promtool accepts them, and their
cardinality stays bounded however many agencies, procedures and reasons the records name."""

from __future__ import annotations

import datetime as dt
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from motcua.cli import main
from motcua.dossiers.export import read_export
from motcua.times import TZ
from motcua_exporters.dossier.metrics import as_metrics

GOOD = Path(__file__).parent.parent / "corpus" / "dossiers" / "good.csv"
NOW = dt.datetime(2026, 12, 6, 11, 0, tzinfo=TZ)


def promtool_check(text: str) -> None:
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def dossiers():
    return read_export(GOOD)[0]


def test_the_metrics_pass_promtool_and_hold_the_figures(dossiers):
    text = as_metrics(dossiers, NOW, ["26740", "25747", "ttpv"])
    promtool_check(text)
    received = [line for line in text.splitlines() if line.startswith("motcua_dossiers_received{") and "7d" in line]
    assert sum(float(line.split()[-1]) for line in received) == 4  # city-wide: the sum over the sites
    assert 'motcua_dossiers_finished{site="26740",window="today",verdict="late"} 1' in text
    assert 'motcua_dossiers_open{site="26740",state="overdue"} 1' in text
    assert 'motcua_dossiers_agency_open{agency="SXD",state="not_due"} 0' in text
    assert "scope=" not in text  # the dossier exporter's targets carry scope: the metrics must not
    assert 'motcua_dossiers_late_by_reason{reason="Thiếu cán bộ"} 1' in text
    assert f"motcua_dossiers_last_update_timestamp_seconds {NOW.timestamp():.0f}" in text
    # Decision 766's inputs, 26740 over 7 days: H01, H02 (paid online), H03 (not paid online) received;
    # H01 and H02 finished, H01's result digitised; both rated, H01 satisfied.
    samples = [line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#")]
    week = {name.split("{")[0].removeprefix("motcua_dossiers_"): float(value) for name, value in samples
            if 'site="26740",window="7d"' in name}  # fmt: skip
    wanted = {"payment_recorded": 2, "paid_online": 1, "digitised_intake": 2, "digitised_result": 1, "rated": 2,
              "satisfied": 1}  # fmt: skip
    assert {name: week[name] for name in wanted} == wanted
    assert 'motcua_dossiers_agency_rated{agency="SXD",window="month"} 0' in text


def test_a_site_the_registry_does_not_name_gets_no_series(dossiers):
    text = as_metrics(dossiers, NOW, ["26740"])
    assert 'site="25747"' not in text and 'site="26740"' in text


def test_cardinality_is_bounded_by_top_and_labels_are_escaped(dossiers):
    template = next(d for d in dossiers if d.code.endswith("26740-H03"))  # overdue
    many = [replace(template, code=f"X{i}", agency=f"SO{i % 40}", procedure_code=f"P{i % 50}",
                    overdue_reason=f'lý do "{i % 30}"\\n') for i in range(200)]  # fmt: skip
    text = as_metrics(many, NOW, ["26740"], top=5)
    promtool_check(text)
    agencies = {line.split('agency="')[1].split('"')[0] for line in text.splitlines() if 'agency="' in line}
    assert len(agencies) == 6 and "other" in agencies
    procedures = [line for line in text.splitlines() if line.startswith("motcua_dossiers_overdue_by_procedure{")]
    assert len(procedures) == 6 and sum(int(line.split()[-1]) for line in procedures) == 200
    reasons = [line for line in text.splitlines() if line.startswith("motcua_dossiers_late_by_reason{")]
    assert len(reasons) == 6
    assert r'reason="lý do \"0\"\\n"' in text


def test_the_report_writes_the_textfile(tmp_path, capsys):
    out = tmp_path / "motcua_dossiers.prom"
    argv = ["dossiers", "report", "--export", str(GOOD), "--now", "2026-12-06T11:00", "--textfile", str(out)]
    assert main(argv) == 0
    promtool_check(out.read_text(encoding="utf-8"))
    assert 'motcua_dossiers_open{site="26740",state="overdue"} 1' in out.read_text(encoding="utf-8")
