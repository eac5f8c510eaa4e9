#!/usr/bin/env python3
"""Benchmark: the dossier records model at city scale (issue #24), in one process, no network.

Synthetic records in the reporting API's format (exporters/motcua_exporters/dossier/api_format.py)
for the production registry's 172 sites: a day of the whole city (~60,000 dossiers) and more days
on top, to see how each step grows. For each size it prints (medians of --repeat runs):

  - merge: 5 minutes of dossiers (~525 records) merged into a store of that size, written whole
    (RecordStore.update's work after the fetch; the fetch itself is HTTP and not measured here);
  - check: every stored record mapped and checked (RecordStore.checked);
  - metrics: the indicators and the metrics text of every checked dossier (as_metrics);
  - refresh from every record: merge + check + metrics, what the exporter did every interval
    before running.Running (the baseline, measured in the same run);
  - running: the exporter's way now: built once (every record checked and put, the first text),
    then at each refresh merge + the changed records checked and put + the text rendered; the
    run says whether its text is the same as the baseline's;
  - the store's size on disk and the process's peak resident memory.

Targets (the issue): a 5-minute refresh < 1 s; a month (~1.5 million records) recomputed < 60 s;
resident memory < 300 MB. The month is projected linearly from the sizes measured.
Bounded: sizes and repeats are arguments; a temporary directory, removed at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from motcua.registry import load_registry  # noqa: E402
from motcua_exporters.core.files import write_atomic  # noqa: E402
from motcua_exporters.dossier import api_format as fmt  # noqa: E402
from motcua_exporters.dossier.metrics import as_metrics  # noqa: E402
from motcua_exporters.dossier.records import TZ  # noqa: E402
from motcua_exporters.dossier.running import Running  # noqa: E402
from motcua_exporters.dossier.source import RecordStore  # noqa: E402

PER_DAY = 60_000
FIVE_MINUTES = PER_DAY * 5 // (9 * 60 + 30)  # the day's intake over 9.5 opening hours


def items(sites: list[str], count: int, end: dt.datetime, rng: random.Random, prefix: str) -> list[dict]:
    out = []
    for n in range(count):
        received = end - dt.timedelta(seconds=rng.randrange(0, max(1, int((count / PER_DAY) * 86400))))
        due = received + dt.timedelta(hours=rng.choice((8, 24, 72, 120)))
        done = rng.random() < 0.7
        finished = received + dt.timedelta(hours=rng.uniform(1, 130)) if done else None
        if finished and finished > end:
            finished, done = None, False
        late = finished is not None and finished > due
        out.append({
            "ma_ho_so": f"{prefix}{n:08d}",
            "ma_don_vi": rng.choice(sites),
            "ma_co_quan": None,
            "ma_thu_tuc": f"1.{rng.randrange(300):06d}",
            "ten_thu_tuc": "Thủ tục",
            "linh_vuc": "Hộ tịch",
            "kenh": rng.choice(("truc_tiep", "truc_tuyen")),
            "ngay_tiep_nhan": received.isoformat(timespec="seconds"),
            "han_xu_ly": due.isoformat(timespec="seconds"),
            "ngay_co_ket_qua": finished.isoformat(timespec="seconds") if finished else None,
            "ngay_tra_ket_qua": None,
            "trang_thai": "da_giai_quyet" if done else "dang_xu_ly",
            "ly_do_qua_han": "Thiếu hồ sơ" if late else None,
            "cap_nhat_luc": (finished or received).isoformat(timespec="seconds"),
        })  # fmt: skip
    return out


def merge(store: RecordStore, fresh: list[dict]) -> None:
    """What RecordStore.update does with a fetch's items: merge them, write the store whole."""
    for item in fresh:
        store.items[item["ma_ho_so"]] = item
    store.changed = [item["ma_ho_so"] for item in fresh]
    store.high_water = max([store.high_water, *(fmt.updated_at(i) for i in fresh)])
    write_atomic(
        store.path, json.dumps({"high_water": store.high_water, "items": store.items}, ensure_ascii=False), mode=0o600
    )


def timed(func):
    started = time.perf_counter()
    result = func()
    return time.perf_counter() - started, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, nargs="+", default=[1, 2], help="store sizes, in days of the city")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    registry = load_registry(ROOT / "inventory" / "hcmc" / "registry")
    sites = sorted(registry.sites)
    rng = random.Random(766)  # noqa: S311 - synthetic data, the same each run
    now = dt.datetime.now(TZ).replace(microsecond=0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="motcua-bench-dossiers-") as tmp:
        for days in args.days:
            size = int(PER_DAY * days)
            base = items(sites, size, now - dt.timedelta(minutes=5), rng, "B")
            path = Path(tmp) / f"store-{days:g}.json"
            write_atomic(path, json.dumps({"high_water": "", "items": {i["ma_ho_so"]: i for i in base}}), mode=0o600)
            store = RecordStore(path)
            built, running = timed(lambda store=store: build(store, sites, now))
            merge_t, check_t, metrics_t, running_t, same = [], [], [], [], True
            for run in range(args.repeat):
                fresh = items(sites, FIVE_MINUTES, now, rng, f"N{run}-")
                seconds, _ = timed(lambda fresh=fresh, store=store: merge(store, fresh))
                merge_t.append(seconds)
                seconds, (dossiers, _problems) = timed(lambda store=store: store.checked(sites))
                check_t.append(seconds)
                seconds, text = timed(lambda dossiers=dossiers: as_metrics(dossiers, now, sites))
                metrics_t.append(seconds)
                seconds, kept = timed(lambda store=store, running=running: apply(store, running, sites, now))
                running_t.append(seconds)
                same = same and kept == text
            med = [statistics.median(t) for t in (merge_t, check_t, metrics_t, running_t)]
            rows.append((days, len(store.items), *med[:3], sum(med[:3]), built, med[3], med[0] + med[3],
                         path.stat().st_size / 2**20))  # fmt: skip
            print(f"{days:g} day(s): {len(store.items):,} records: merge {med[0]:.2f} s, check {med[1]:.2f} s, "
                  f"metrics {med[2]:.2f} s, refresh from every record {sum(med[:3]):.2f} s; running: built in "
                  f"{built:.2f} s, a refresh {med[0] + med[3]:.2f} s (merge + {med[3]:.3f} s), the same text: "
                  f"{'yes' if same else 'NO'}; store {rows[-1][-1]:.0f} MiB", flush=True)  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    print(f"{'days':>5} {'records':>10} {'merge s':>8} {'check s':>8} {'metrics s':>9} {'every s':>8} "
          f"{'built s':>8} {'running s':>9} {'store MiB':>9}")  # fmt: skip
    for days, count, merge_s, check_s, metrics_s, every_s, built_s, _apply_s, running_s, mib in rows:
        print(f"{days:>5g} {count:>10,} {merge_s:>8.2f} {check_s:>8.2f} {metrics_s:>9.2f} {every_s:>8.2f} "
              f"{built_s:>8.2f} {running_s:>9.2f} {mib:>9.0f}")  # fmt: skip
    month = 1_500_000
    every, built, merged = (rows[-1][i] / rows[-1][1] for i in (5, 6, 2))
    print(f"\npeak resident memory: {peak:.0f} MiB (target < 300 MB), both ways in one process")
    print(f"per record: {every * 1e6:.1f} µs a refresh from every record, {built * 1e6:.1f} µs to build the running "
          f"figures, {merged * 1e6:.1f} µs to write the store -> a month ({month:,} records): {every * month:.0f} s "
          f"a refresh from every record; running: built in {built * month:.0f} s, a refresh "
          f"~{merged * month + statistics.median(r[7] for r in rows):.0f} s, nearly all of it writing the store whole "
          "(targets: a 5-minute refresh < 1 s, a month recomputed < 60 s)")  # fmt: skip
    return 0


def build(store: RecordStore, sites: list[str], now: dt.datetime) -> Running:
    """What the exporter does at its first read: every stored record checked and put, the first text."""
    dossiers, _problems = store.checked(sites)
    running = Running.of(dossiers, now)
    running.render(now, sites)
    return running


def apply(store: RecordStore, running: Running, sites: list[str], now: dt.datetime) -> str:
    """What the exporter does at every later read: the changed records checked and put, the text."""
    for code in store.changed:
        dossier, _problems = store.check_one(code, sites)
        if dossier is None:
            running.remove(code)
        else:
            running.put(dossier)
    return running.render(now, sites)


if __name__ == "__main__":
    raise SystemExit(main())
