"""running.Running against metrics.as_metrics: the same text from the same dossiers at the same time,
whatever order the records came in, changed, taken out, across midnight and the month's end, and with
times ahead of the clock."""

from __future__ import annotations

import datetime as dt
import random
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from motcua.lab.dossier import dossier_records
from motcua.monitoring.bundle import bundle_bytes
from motcua.times import TZ
from motcua_exporters.dossier import running as running_module
from motcua_exporters.dossier.indicators import keep_from
from motcua_exporters.dossier.metrics import as_metrics
from motcua_exporters.dossier.records import Dossier, check
from motcua_exporters.dossier.running import ClockWentBackError, Running, apply, build, forgetting
from motcua_exporters.dossier.source import Fetched, RecordStore

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


def test_a_build_in_parts_in_processes_is_the_build_in_one(tmp_path, monkeypatch):
    """running.build with workers: the store cut by code, each part built in a process of its own, the
    parts added up. The same figures as one build, then and as the clock moves on and records change; the
    same records refused, with the same problems (lines counted over the whole store)."""
    units = [{"code": code} for code in SITES]
    items = dossier_records(units, time.time())
    for n, broken in enumerate(items[5:200:40]):  # a few the checks refuse, spread over the parts
        items.append({**broken, "ma_ho_so": f"{broken['ma_ho_so']}-X{n}", "ngay_tiep_nhan": "hôm qua"})
    store = RecordStore(tmp_path / "records.sqlite")
    store.merge(Fetched(items, [], 1, ""))
    monkeypatch.setattr(running_module, "PARALLEL_MIN", 1)
    now = dt.datetime.now(TZ)
    one, refused_one, problems_one = build(store, tuple(SITES), now)
    parts, refused_parts, problems_parts = build(store, tuple(SITES), now, workers=3)
    assert len(store.parts(3)) == 3 and len(parts) == len(one) == len(items) - 5
    assert refused_parts == refused_one and len(refused_one) == 5
    assert sorted(problems_parts) == sorted(problems_one)
    assert parts.render(now, SITES) == one.render(now, SITES)
    # Records change (in progress ones finished now) and the clock moves on: both move alike.
    changed = [{**i, "trang_thai": "da_giai_quyet", "ngay_co_ket_qua": i["cap_nhat_luc"]}
               for i in items if i["trang_thai"] == "dang_xu_ly"][:10]  # fmt: skip
    assert changed
    store.merge(Fetched(changed, [], 1, ""))
    for running, refused in ((one, refused_one), (parts, refused_parts)):
        assert not apply(running, refused, store, tuple(SITES))
    for later in (now + dt.timedelta(hours=1), now + dt.timedelta(days=3)):
        assert parts.render(later, SITES) == one.render(later, SITES)


def test_the_store_cut_into_parts_covers_every_record_once(tmp_path):
    store = RecordStore(tmp_path / "records.sqlite")
    store.merge(Fetched([{"ma_ho_so": f"H{n:03d}", "cap_nhat_luc": "2026-12-01T08:00:00+07:00"} for n in range(10)],
                        [], 1, ""))  # fmt: skip
    assert store.parts(1) == [("", None, 1)] and RecordStore(tmp_path / "none.sqlite").parts(3) == [("", None, 1)]
    for count in (2, 3, 4, 10):
        parts = store.parts(count)
        codes = [[code for code, _item in store.items(after, upto)] for after, upto, _line in parts]
        assert [c for part in codes for c in part] == [f"H{n:03d}" for n in range(10)]
        assert [line for _a, _u, line in parts] == [1 + sum(len(c) for c in codes[:i]) for i in range(count)]
    assert store.parts(11) == [("", None, 1)]  # more parts than records: one


def test_a_build_in_parts_from_the_exporters_zip(tmp_path):
    """On a monitoring host the dossier exporter runs from the zip (motcua-exporters.pyz): the processes of
    a build in parts (spawned, not forked) import it from there too, and add up to the build in one."""
    bundle = tmp_path / "motcua-exporters.pyz"
    bundle.write_bytes(bundle_bytes())
    store = RecordStore(tmp_path / "records.sqlite")
    store.merge(Fetched(dossier_records([{"code": code} for code in SITES], time.time()), [], 1, ""))
    probe = (
        "import datetime as dt, sys; sys.path.insert(0, sys.argv[1]); "
        "from motcua_exporters.dossier import running; from motcua_exporters.dossier.source import RecordStore; "
        "assert running.__file__.startswith(sys.argv[1]), running.__file__; running.PARALLEL_MIN = 1; "
        "store, now, sites = RecordStore(__import__('pathlib').Path(sys.argv[2])), dt.datetime.now(dt.UTC), "
        "tuple(sys.argv[3:]); "
        "parts, one = running.build(store, sites, now, 2)[0], running.build(store, sites, now)[0]; "
        "assert parts.render(now, sites) == one.render(now, sites); print(len(parts))"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(bundle), str(store.path), *SITES], capture_output=True,
                          text=True, check=False, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout) == len(store) > 0


def test_a_build_in_parts_that_cannot_run_is_built_in_one_process(tmp_path, monkeypatch, caplog):
    """A process of the build killed (out of memory) or none started: the exporter builds in its own, and says so."""
    store = RecordStore(tmp_path / "records.sqlite")
    store.merge(Fetched(dossier_records([{"code": code} for code in SITES], time.time()), [], 1, ""))
    monkeypatch.setattr(running_module, "PARALLEL_MIN", 1)

    class Broken:
        def __init__(self, *_args, **_kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *_exc):
            return False

        def map(self, *_args):
            raise running_module.BrokenProcessPool("a process in the process pool was terminated abruptly")

    monkeypatch.setattr(running_module, "ProcessPoolExecutor", Broken)
    now = dt.datetime.now(TZ)
    built = build(store, tuple(SITES), now, workers=2)[0]
    alone = build(store, tuple(SITES), now)[0]
    assert len(built) == len(store) and built.render(now, SITES) == alone.render(now, SITES)
    assert "building the figures in 2 processes failed" in caplog.text
