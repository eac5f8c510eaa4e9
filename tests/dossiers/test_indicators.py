"""Processing indicators (motcua/dossiers/indicators.py) over the corpus' export, at a fixed time."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from motcua.dossiers.export import read_export
from motcua.times import TZ
from motcua_exporters.dossier.indicators import CITY, NOT_RECORDED, by_agency, summarise, windows

GOOD = Path(__file__).parent.parent / "corpus" / "dossiers" / "good.csv"
NOW = dt.datetime(2026, 12, 6, 11, 0, tzinfo=TZ)


@pytest.fixture(scope="module")
def dossiers():
    return read_export(GOOD)[0]


def test_windows_are_today_the_last_seven_days_and_the_month_in_vietnams_time():
    utc = dt.datetime(2026, 12, 5, 20, 0, tzinfo=dt.UTC)  # 03:00 on the 6th in Hồ Chí Minh City
    today, week, month = windows(utc)
    assert (today.start, week.start, month.start) == (
        dt.datetime(2026, 12, 6, tzinfo=TZ),
        dt.datetime(2026, 11, 30, tzinfo=TZ),
        dt.datetime(2026, 12, 1, tzinfo=TZ),
    )
    assert today.end == utc


def test_today_city_wide(dossiers):
    today = summarise(dossiers, NOW)[CITY]["today"]
    assert (today.received, today.finished_on_time, today.finished_late) == (1, 0, 1)
    assert (today.open_not_due, today.open_overdue) == (1, 1)  # the withdrawn one is neither
    assert today.on_time_rate == 0.0
    assert dict(today.late_by_reason) == {"Thiếu cán bộ": 1, "Chờ xác minh": 1}
    assert dict(today.late_by_step) == {"Thẩm định": 1, "Phê duyệt": 1}


def test_the_last_seven_days_city_wide(dossiers):
    week = summarise(dossiers, NOW)[CITY]["7d"]
    assert week.received == 4
    assert (week.on_time_rate, week.online_share, week.paid_online_share) == (0.5, 0.5, 2 / 3)
    assert (week.digitised_intake_share, week.digitised_result_share, week.satisfaction_rate) == (0.75, 0.5, 0.5)
    assert week.as_dict()["late_by_reason"] == {"Thiếu cán bộ": 1, "Chờ xác minh": 1}


def test_per_site_and_per_agency(dossiers):
    per_site = summarise(dossiers, NOW)
    assert set(per_site) == {CITY, "26740", "25747", "ttpv"}
    assert per_site["26740"]["month"].open_overdue == 1
    assert per_site["25747"]["today"].open_not_due == 1
    per_agency = summarise(dossiers, NOW, key=by_agency)
    assert set(per_agency) == {CITY, "SXD"}  # ward dossiers have no agency
    month = per_agency["SXD"]["month"]
    assert month.received == 0 and month.on_time_rate is None and month.online_share is None  # nothing: no rate
    november = summarise(dossiers, dt.datetime(2026, 11, 30, 12, 0, tzinfo=TZ), key=by_agency)["SXD"]["month"]
    assert (november.received, november.finished_on_time, november.on_time_rate) == (2, 1, 1.0)
    assert november.open_overdue == 0  # the withdrawn dossier is not overdue


def test_an_overdue_dossier_without_a_recorded_reason_is_counted_as_not_recorded(dossiers):
    silent = [replace(d, overdue_reason=None, late_step=None) if d.code.endswith("H03") else d for d in dossiers]
    today = summarise(silent, NOW)[CITY]["today"]
    assert today.late_by_reason[NOT_RECORDED] == 1 and today.late_by_step[NOT_RECORDED] == 1
