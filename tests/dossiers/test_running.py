"""running.Running against metrics.as_metrics: the same text from the same dossiers at the same time,
whatever order the records came in, changed, taken out, across midnight and the month's end, and with
times ahead of the clock."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace

import pytest

from motcua.times import TZ
from motcua_exporters.dossier.indicators import keep_from
from motcua_exporters.dossier.metrics import as_metrics
from motcua_exporters.dossier.records import Dossier, check
from motcua_exporters.dossier.running import ClockWentBackError, Running, forgetting

SITES = ["26740", "25747", "26732", "ttpv"]
AGENCIES = ["so-tu-phap", "so-xay-dung", "so-tai-chinh", "cong-an"]
START = dt.datetime(2026, 11, 20, 8, 0, tzinfo=TZ)


def random_dossier(rng: random.Random, code: str, latest: dt.datetime) -> Dossier:
    received = START + dt.timedelta(minutes=rng.randrange(int((latest - START).total_seconds() // 60)))
    due = received + dt.timedelta(hours=rng.choice((4, 24, 72, 200))) if rng.random() < 0.9 else None
    status = rng.choice(("in_progress", "paused", "finished", "returned", "withdrawn", "refused"))
    finished = returned = None
    if status in ("finished", "returned"):
        finished = received + dt.timedelta(hours=rng.uniform(0.5, 300))
        if status == "returned":
            returned = finished + dt.timedelta(hours=rng.uniform(0, 30))
    elif status in ("withdrawn", "refused") and rng.random() < 0.5:
        finished = received + dt.timedelta(hours=rng.uniform(0.5, 50))
    site = rng.choice(SITES)
    return Dossier(
        code=code,
        site=site,
        agency=rng.choice(AGENCIES) if site == "ttpv" else None,
        procedure_code=rng.choice(["1.001", "1.002", "2.010", "2.011", "3.100"]),
        procedure_name="thủ tục",
        field="hộ tịch",
        channel=rng.choice(("direct", "online", "postal")),
        received_at=received,
        due_at=due,
        finished_at=finished,
        returned_at=returned,
        status=status,
        paid_online=rng.choice((None, True, False)),
        digitised_at_intake=rng.choice((None, True, False)),
        digitised_result=rng.choice((None, True, False)),
        overdue_reason=rng.choice((None, "thiếu hồ sơ", "chờ ý kiến", "quá tải")),
        late_step=rng.choice((None, "thẩm định", "phê duyệt")),
        rating=rng.choice((None, "very_satisfied", "satisfied", "dissatisfied")),
    )


def valid(dossiers: list[Dossier]) -> list[Dossier]:
    refused = {p.code for p in check(dossiers, "test")}
    return [d for d in dossiers if d.code not in refused]


@pytest.mark.parametrize("seed", range(6))
def test_the_same_text_as_from_every_dossier_through_changes_and_days(seed):
    rng = random.Random(seed)  # noqa: S311 - test data, the same each run
    now = dt.datetime(2026, 11, 30, 9, 30, tzinfo=TZ)
    # Some records a little ahead of the clock: counted once their time has passed, not before.
    current = {
        d.code: d for d in valid([random_dossier(rng, f"H{n:04d}", now + dt.timedelta(hours=3)) for n in range(400)])
    }
    running = Running()
    running.advance(now - dt.timedelta(days=1))
    for d in current.values():
        running.put(d)
    top = rng.choice((2, 20))
    # Refreshes: records change, appear and go, the clock moves on across midnight and the month's end.
    for step in range(12):
        assert running.render(now, SITES, top) == as_metrics(current.values(), now, SITES, top), (seed, step)
        now += dt.timedelta(hours=rng.choice((0.1, 2, 5, 13)) + 2)
        for code in rng.sample(sorted(current), 25):
            d = current[code]
            if rng.random() < 0.2:
                running.remove(replace(d))  # an equal dossier, another object: as mapped again from the store
                del current[code]
            elif d.status in ("in_progress", "paused") and rng.random() < 0.7:
                finished = max(d.received_at, now - dt.timedelta(minutes=rng.randrange(600)))
                current[code] = replace(d, status="finished", finished_at=finished)
                running.replace(replace(d), current[code])
            else:
                fresh = random_dossier(rng, code, now)
                if valid([fresh]):
                    current[code] = fresh
                    running.replace(d, fresh)
        for n in range(20):
            fresh = random_dossier(rng, f"N{step:02d}{n:02d}", now)
            if valid([fresh]):
                current[fresh.code] = fresh
                running.put(fresh)
    assert now.month == 12  # the month changed on the way
    assert running.render(now, SITES, top) == as_metrics(current.values(), now, SITES, top)


def unplaced(seed: int, count: int) -> tuple[dt.datetime, list[Dossier], Running]:
    """Random dossiers put before the clock was ever set: every part waits for the first render."""
    rng = random.Random(seed)  # noqa: S311 - test data
    now = dt.datetime(2026, 11, 28, 9, 30, tzinfo=TZ)
    dossiers = valid([random_dossier(rng, f"H{n:04d}", now) for n in range(count)])
    running = Running()
    for d in dossiers:
        running.put(d)
    return now, dossiers, running


def test_a_clock_that_goes_back_is_refused_and_a_build_at_that_time_agrees():
    """The running figures keep no dossier: a clock set back (a time step) cannot be undone in place. The
    exporter builds them again from the store (tests/exporters/test_dossier_exporter.py)."""
    now, dossiers, running = unplaced(7, 300)
    assert running.render(now, SITES) == as_metrics(dossiers, now, SITES)
    assert len(running) == len(dossiers)
    earlier = now - dt.timedelta(hours=30)
    with pytest.raises(ClockWentBackError, match="the clock went back"):
        running.render(earlier, SITES)
    assert Running.of(dossiers, earlier).render(earlier, SITES) == as_metrics(dossiers, earlier, SITES)


def test_every_dossier_taken_out_leaves_no_site_and_no_agency():
    now, dossiers, running = unplaced(3, 100)
    running.render(now, SITES)
    for d in dossiers:
        running.remove(d)
    assert running.render(now, SITES) == as_metrics([], now, SITES)


def test_dossiers_pruned_from_the_store_leave_the_same_text_as_a_build_without_them():
    """A month and more of dossiers; those closed before every window leave (the store's pruning): the
    running figures give what a build from the rest gives, top agencies included."""
    rng = random.Random(11)  # noqa: S311 - test data
    now = dt.datetime(2026, 12, 30, 10, 0, tzinfo=TZ)
    dossiers = valid([random_dossier(rng, f"H{n:04d}", now) for n in range(600)])
    running = Running.of(dossiers, now)
    running.render(now, SITES, 2)
    horizon = keep_from(now)
    old = [d for d in dossiers if d.closed and all(t is None or t < horizon for t in (d.received_at, d.finished_at))]
    assert old  # the random month reaches back far enough
    forget = forgetting(running, set())
    for d in old:
        forget(replace(d))
    rest = [d for d in dossiers if d not in old]
    expected = as_metrics(rest, now, SITES, 2)
    assert running.render(now, SITES, 2) == expected == Running.of(rest, now).render(now, SITES, 2)
