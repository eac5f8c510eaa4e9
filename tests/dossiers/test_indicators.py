"""Processing indicators (motcua/dossiers/indicators.py) over the corpus' export, at a fixed time."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from motcua.dossiers.export import read_export
from motcua.times import TZ
from motcua_exporters.dossier.indicators import CITY, NOT_RECORDED, by_agency, summarise, windows
from motcua_exporters.dossier.records import STATUSES, Dossier, legal_limit, lookup

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


# ---------------------------------------------------------------- the rules of a limit (docs/kpis.md)


def at(day: int, hour: int = 17, minute: int = 0, month: int = 12) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=TZ)


def one(received: dt.datetime, due: dt.datetime | None, finished: dt.datetime | None, status: str) -> Dossier:
    return Dossier(code="X1", site="26740", agency=None, procedure_code="1.0", procedure_name="", field="",
                   channel="direct", received_at=received, due_at=due, finished_at=finished, returned_at=None,
                   status=status)  # fmt: skip


def test_a_result_at_the_limit_itself_is_on_time_and_a_second_later_is_late():
    assert one(at(1, 8), at(2), at(2), "finished").on_time() is True
    assert one(at(1, 8), at(2), at(2) + dt.timedelta(seconds=1), "finished").on_time() is False


@pytest.mark.parametrize(
    ("due", "ends"),
    [
        (at(5), at(8, 0)),  # Saturday 5 Dec 17:00 -> the end of Monday 7 Dec (00:00 on the 8th)
        (at(6, 9), at(8, 0)),  # Sunday
        (at(4), at(4)),  # a Friday limit is the recorded time
        (at(2, 12, month=9), at(4, 0, month=9)),  # Quốc khánh (Wednesday 2 Sep 2026) -> end of Thursday
        (at(1, 12, month=5), at(5, 0, month=5)),  # Friday 1 May, then a weekend -> end of Monday 4 May
        (at(31, 17, month=12), at(31, 17, month=12)),  # Thursday 31 Dec: an ordinary day
    ],
    ids=["saturday", "sunday", "friday", "national-day", "labour-day-then-weekend", "new-years-eve"],
)
def test_a_limit_on_a_day_off_runs_to_the_end_of_the_next_working_day(due, ends):
    """Civil Code 2015, Article 148(5) and (6)."""
    assert legal_limit(due) == ends
    late_on_monday = one(due - dt.timedelta(days=1), due, at(7, 16), "finished")
    assert late_on_monday.limit == ends


def test_a_dossier_due_on_saturday_and_finished_on_monday_is_on_time_but_not_on_tuesday():
    assert one(at(3, 8), at(5), at(7, 16), "finished").on_time() is True
    assert one(at(3, 8), at(5), at(8, 8), "finished").on_time() is False
    due_saturday = one(at(3, 8), at(5), None, "in_progress")
    assert not due_saturday.overdue(at(7, 23)) and due_saturday.overdue(at(8, 1))


def test_a_dossier_awaiting_the_applicants_documents_is_not_overdue_while_its_clock_is_stopped():
    """Decree 61/2018/NĐ-CP, Article 19 (dossiers that need more documents): the applicant holds it; the
    system records the limit again when the documents come."""
    paused = one(at(1, 8), at(2), None, "paused")
    assert not paused.overdue(at(6, 11))
    today = summarise([paused], at(6, 11))[CITY]["today"]
    assert (today.open_paused, today.open_overdue, today.open_not_due) == (1, 0, 0)
    assert not today.late_by_reason
    again = replace(paused, status="in_progress", due_at=at(4))  # the documents came: a new limit
    assert summarise([again], at(6, 11))[CITY]["today"].open_overdue == 1


@pytest.mark.parametrize("spelling", ["Chờ bổ sung", "Yêu cầu bổ sung", "Tạm dừng"])
def test_the_systems_spellings_of_a_paused_dossier(spelling):
    assert lookup(STATUSES, spelling) == "paused"
