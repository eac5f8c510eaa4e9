#!/usr/bin/env python3
"""Benchmark: the dossier records model at city scale (issue #24), no network.

Synthetic records in the reporting API's format (exporters/motcua_exporters/dossier/api_format.py)
for the production registry's 172 sites, ~60,000 dossiers a day. Each size (in days of the city;
a month is ~1.5 million records) runs in a process of its own, so its peak resident memory is its
own, and does what the dossier exporter does, through the exporter's own code:

  - fill: the records merged into the SQLite store (RecordStore.merge) 50,000 at a time;
  - build: every stored record read, mapped, checked and put into the running figures, one at a
    time (running.build), and the first metrics text: the exporter's start, or a whole recompute. As
    the exporter does it: the store cut into --workers parts (default: the cores, at most 4), each built
    in a process of its own, the parts added up; and, as the baseline in the same run, in one process;
  - refresh: 5 minutes of dossiers (~525: new ones, and earlier ones finished) merged into the store,
    the changed records' old versions taken out and the new put in (running.apply), the text
    rendered: the exporter's every read after the fetch (the fetch itself is HTTP, not measured);
  - prune: the closed dossiers older than every window dropped (once a day in the exporter);
  - scrapes: while the figures are refreshed, pruned and built again (in the process that serves them,
    as in the exporter: its HTTP server, core.web.ExporterServer, serves the last text while the records
    loop works, so the two share the GIL; a build in parts leaves that process waiting), another process
    scrapes /metrics every 50 ms over one kept connection, as Prometheus does: the scrapes' median and
    p99 time, against scrapes of the same process idle;
  - for sizes up to --baseline-days, the text from every dossier at once (metrics.as_metrics, what
    the exporter did before running.Running), and whether the two texts are the same.

Targets (the issue): a 5-minute refresh < 1 s; a month recomputed < 60 s; resident memory < 300 MB;
/metrics p99 < 100 ms during a refresh.
Bounded: sizes and repeats are arguments; a temporary directory, removed at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pickle
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from motcua.registry import load_registry  # noqa: E402
from motcua_exporters.core.web import ExporterServer, Response  # noqa: E402
from motcua_exporters.dossier.indicators import keep_from  # noqa: E402
from motcua_exporters.dossier.metrics import as_metrics  # noqa: E402
from motcua_exporters.dossier.records import TZ  # noqa: E402
from motcua_exporters.dossier.running import PARALLEL_MIN, apply, build, build_part, forgetting  # noqa: E402
from motcua_exporters.dossier.source import Fetched, RecordStore  # noqa: E402

PER_DAY = 60_000
FIVE_MINUTES = PER_DAY * 5 // (9 * 60 + 30)  # the day's intake over 9.5 opening hours
CHUNK = 50_000
# The parent's clock, passed to its children (the store's times and the figures' "now" agree).
NOW = os.environ.setdefault("MOTCUA_BENCH_NOW", dt.datetime.now(TZ).replace(microsecond=0).isoformat())


def item(site: str, code: str, received: dt.datetime, end: dt.datetime, rng: random.Random) -> dict:
    due = received + dt.timedelta(hours=rng.choice((8, 24, 72, 120)))
    # Processing times: 40 % the same day, 40 % in 1-3 days, 15 % in 3-10 days, 5 % not finished yet.
    draw = rng.random()
    hours = rng.uniform(0.5, 8) if draw < 0.4 else rng.uniform(24, 72) if draw < 0.8 else rng.uniform(72, 240)
    finished = received + dt.timedelta(hours=hours) if draw < 0.95 else None
    if finished and finished > end:
        finished = None
    late = finished is not None and finished > due
    return {
        "ma_ho_so": code,
        "ma_don_vi": site,
        "ma_co_quan": None,
        "ma_thu_tuc": f"1.{rng.randrange(300):06d}",
        "ten_thu_tuc": "Thủ tục",
        "linh_vuc": "Hộ tịch",
        "kenh": rng.choice(("truc_tiep", "truc_tuyen")),
        "ngay_tiep_nhan": received.isoformat(timespec="seconds"),
        "han_xu_ly": due.isoformat(timespec="seconds"),
        "ngay_co_ket_qua": finished.isoformat(timespec="seconds") if finished else None,
        "ngay_tra_ket_qua": None,
        "trang_thai": "da_giai_quyet" if finished else "dang_xu_ly",
        "ly_do_qua_han": "Thiếu hồ sơ" if late else None,
        "cap_nhat_luc": (finished or received).isoformat(timespec="seconds"),
    }


def fetched(items: list[dict]) -> Fetched:
    return Fetched(items, [], 1, "")


def timed(func):
    started = time.perf_counter()
    result = func()
    return time.perf_counter() - started, result


def fill(days: float, path: Path) -> float:
    """The store of ``days`` of the city, in this process (its memory is not the exporter's): seconds."""
    sites = sorted(load_registry(ROOT / "inventory" / "hcmc" / "registry").sites)
    rng = random.Random(766)  # noqa: S311 - synthetic data, the same each run
    now = dt.datetime.fromisoformat(NOW)
    size, span = int(PER_DAY * days), days * 86400
    store = RecordStore(path)
    started = time.perf_counter()
    for first in range(0, size, CHUNK):
        chunk = [item(rng.choice(sites), f"B{n:08d}", now - dt.timedelta(seconds=rng.uniform(300, span)), now, rng)
                 for n in range(first, min(size, first + CHUNK))]  # fmt: skip
        store.merge(fetched(chunk))
    store.close()
    return time.perf_counter() - started


# The scraper: a process of its own (its timing is not the measured process's GIL), without this module's
# imports (it is up at once). As Prometheus does, it keeps its connection and reads the whole page. It
# scrapes every 50 ms, says "ready" after the first, and prints every scrape's seconds as JSON when its
# standard input closes.
SCRAPER = """
import http.client, json, sys, threading, time, urllib.parse
url, latencies, closed = urllib.parse.urlsplit(sys.argv[1]), [], threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), closed.set()), daemon=True).start()
connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
while not closed.is_set():
    started = time.perf_counter()
    connection.request("GET", url.path)
    connection.getresponse().read()
    latencies.append(time.perf_counter() - started)
    if len(latencies) == 1:
        print("ready", flush=True)
    closed.wait(max(0.0, 0.05 - (time.perf_counter() - started)))
print(json.dumps(latencies), flush=True)
"""


class Scrapes:
    """The scraper (:data:`SCRAPER`) on ``url`` while the ``with`` block runs: its latencies, after it."""

    def __init__(self, url: str):
        self.url, self.latencies = url, []

    def __enter__(self) -> Scrapes:
        self.proc = subprocess.Popen([sys.executable, "-c", SCRAPER, self.url], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"
        return self

    def __exit__(self, *_exc) -> None:
        out, _ = self.proc.communicate(timeout=60)
        self.latencies = json.loads(out.splitlines()[-1])


def p99(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.99 * len(values)) - 1)]


def one(days: float, path: Path, repeat: int, baseline_days: float, workers: int) -> dict:
    """What the exporter does with that store, in this process: its figures as a dict."""
    registry = load_registry(ROOT / "inventory" / "hcmc" / "registry")
    sites = tuple(sorted(registry.sites))
    rng = random.Random(76)  # noqa: S311 - synthetic data, the same each run
    now = dt.datetime.fromisoformat(NOW)
    size = int(PER_DAY * days)
    out: dict = {"days": days}
    store = RecordStore(path)
    out["records"] = len(store)
    out["build"], (running, refused, _problems) = timed(lambda: build(store, sites, now, workers))
    seconds, _text = timed(lambda: running.render(now, sites))
    out["build"] += seconds
    out["workers"] = workers if len(store) >= PARALLEL_MIN else 1
    out["open"] = running.in_progress
    out["built_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    served = {"text": _text}
    page = {"/metrics": lambda _req: Response(200, served["text"], "text/plain; version=0.0.4")}
    with socket.socket() as probe:  # a free port (the server refuses port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ExporterServer("bench", f"127.0.0.1:{port}", page)
    server.start()
    url = f"http://127.0.0.1:{server.port}/metrics"
    with Scrapes(url) as idle:
        time.sleep(3)
    out["text_kib"] = len(_text.encode()) / 1024
    refresh, busy = [], {"refresh": [], "prune": [], "rebuild": []}
    for run in range(repeat):
        later = now + dt.timedelta(minutes=5 * (run + 1))
        new = [item(rng.choice(sites), f"N{run}-{n:05d}", later - dt.timedelta(seconds=rng.uniform(0, 300)), later,
                    rng) for n in range(FIVE_MINUTES)]  # fmt: skip
        # Earlier dossiers finished in these five minutes: changed records, their old counts out.
        done = []
        for code in (f"B{rng.randrange(size):08d}" for _ in range(FIVE_MINUTES // 4)):
            old = store.item(code)
            if old and not old["ngay_co_ket_qua"]:
                finish = (later - dt.timedelta(seconds=rng.uniform(0, 300))).isoformat(timespec="seconds")
                done.append({**old, "ngay_co_ket_qua": finish, "trang_thai": "da_giai_quyet",
                             "cap_nhat_luc": finish})  # fmt: skip

        def refresh_once(batch=new + done, later=later):
            store.merge(fetched(batch))
            apply(running, refused, store, sites)
            return running.render(later, sites)

        with Scrapes(url) as during:
            seconds, text = timed(refresh_once)
            served["text"] = text
        refresh.append(seconds)
        busy["refresh"] += during.latencies
    out["refresh"] = statistics.median(refresh)
    out["refresh_max"] = max(refresh)
    with Scrapes(url) as during:
        out["prune"], out["pruned"] = timed(lambda: store.prune(keep_from(later), forgetting(running, refused)))
    busy["prune"] += during.latencies
    # A whole recompute (sites changed, the clock set back) while serving the last text: in one process (the
    # baseline), then in parts as the exporter does it; the two give the same text. As the exporter, the old
    # figures are let go first (what is served is their text).
    running = None
    with Scrapes(url) as during:
        out["rebuild_one"], (rebuilt, _r, _p) = timed(lambda: build(store, sites, later))
    busy["rebuild in one process"] = during.latencies
    expected = rebuilt.render(later, sites)
    del rebuilt
    with Scrapes(url) as during:
        out["rebuild"], (rebuilt, _r, _p) = timed(lambda: build(store, sites, later, workers))
    busy["rebuild"] = during.latencies
    out["rebuild_same"] = rebuilt.render(later, sites) == expected
    del rebuilt
    server.stop()
    out["scrape_idle"] = [statistics.median(idle.latencies), p99(idle.latencies)]
    out["scrape_busy"] = {phase: [statistics.median(got), p99(got), len(got)] for phase, got in busy.items() if got}
    out["store_mib"] = path.stat().st_size / 2**20
    out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if days <= baseline_days:  # after the peak is taken: every dossier in memory at once is the old way's
        every, (dossiers, _problems) = timed(lambda: store.checked(sites))
        seconds, expected = timed(lambda: as_metrics(dossiers, later, sites))
        out["every"] = every + seconds
        out["same"] = expected == text
    store.close()
    return out


def part(path: Path, workers: int) -> dict:
    """A build's first part as a process of the exporter's build makes it (its result pickled, as it goes
    back), in a process of its own: its peak memory. (The pool's own processes cannot be measured from
    outside: a child's peak counts what it inherited at fork.)"""
    sites = tuple(sorted(load_registry(ROOT / "inventory" / "hcmc" / "registry").sites))
    store = RecordStore(path)
    first = store.parts(workers)[0]
    store.close()
    result = build_part(path, sites, dt.datetime.fromisoformat(NOW), first)
    size = len(pickle.dumps(result))
    return {"part_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "part_pickle_mib": size / 2**20}


def child(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)}: failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, nargs="+", default=[1, 25], help="sizes, in days of the city")
    parser.add_argument("--repeat", type=int, default=5, help="refreshes per size (median)")
    parser.add_argument("--baseline-days", type=float, default=2, help="the text from every dossier up to this size")
    parser.add_argument(
        "--workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="processes a build is shared among (the exporter's default: the cores, at most 4)",
    )
    parser.add_argument("--one", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--fill", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--part", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fill is not None:
        print(json.dumps({"fill": fill(args.fill, args.store)}))
        return 0
    if args.part:
        print(json.dumps(part(args.store, args.workers)))
        return 0
    if args.one is not None:
        print(json.dumps(one(args.one, args.store, args.repeat, args.baseline_days, args.workers)))
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="motcua-bench-dossiers-") as tmp:
        for days in args.days:
            print(f"{days:g} day(s) of the city: filling the store, then the exporter's work ...", flush=True)
            store = Path(tmp) / f"records-{days:g}.sqlite"
            row = {**child("--fill", str(days), "--store", str(store)),
                   **child("--one", str(days), "--store", str(store), "--repeat", str(args.repeat),
                           "--baseline-days", str(args.baseline_days), "--workers", str(args.workers)),
                   **child("--part", "--store", str(store), "--workers", str(args.workers))}  # fmt: skip
            store.unlink()
            rows.append(row)
            every = (f"; from every dossier {row['every']:.2f} s, the same text: {'yes' if row['same'] else 'NO'}"
                     if "every" in row else "")  # fmt: skip
            print(f"  {row['records']:,} records: fill {row['fill']:.1f} s, build {row['build']:.1f} s "
                  f"({row['workers']} process(es); {row['open']:,} in progress), "
                  f"refresh {row['refresh']:.3f} s (max {row['refresh_max']:.3f})"
                  f"{every}; prune {row['prune']:.1f} s ({row['pruned']:,}); store {row['store_mib']:.0f} MiB; "
                  f"memory {row['built_mib']:.0f} MiB built, {row['peak_mib']:.0f} MiB peak (a rebuild beside "
                  f"the figures served), a part's process {row['part_peak_mib']:.0f} MiB (its result "
                  f"{row['part_pickle_mib']:.0f} MiB pickled); rebuild "
                  f"{row['rebuild']:.1f} s in {row['workers']} process(es), {row['rebuild_one']:.1f} s in one "
                  f"(x{row['rebuild_one'] / row['rebuild']:.2f}), the same text: "
                  f"{'yes' if row['rebuild_same'] else 'NO'}; /metrics "
                  f"({row['text_kib']:.0f} KiB) idle median {1000 * row['scrape_idle'][0]:.1f} ms, p99 "
                  f"{1000 * row['scrape_idle'][1]:.1f} ms; while "
                  + ", ".join(f"{phase} ({n} scrapes) median {1000 * median:.1f} ms, p99 {1000 * high:.1f} ms"
                              for phase, (median, high, n) in row["scrape_busy"].items()), flush=True)  # fmt: skip
    print()
    print(f"{'days':>5} {'records':>10} {'fill s':>7} {'build s':>8} {'1 proc s':>8} {'refresh s':>9} {'every s':>8} "
          f"{'prune s':>8} {'store MiB':>9} {'peak MiB':>9} {'scrape p99 ms idle/busy':>24}")  # fmt: skip
    for r in rows:
        every = f"{r['every']:>8.2f}" if "every" in r else f"{'-':>8}"
        scrapes = f"{1000 * r['scrape_idle'][1]:.1f} / {1000 * max(v[1] for v in r['scrape_busy'].values()):.1f}"
        print(f"{r['days']:>5g} {r['records']:>10,} {r['fill']:>7.1f} {r['build']:>8.1f} {r['rebuild_one']:>8.1f} "
              f"{r['refresh']:>9.3f} {every} "
              f"{r['prune']:>8.1f} {r['store_mib']:>9.0f} {r['peak_mib']:>9.0f} {scrapes:>24}")  # fmt: skip
    print(
        "\n(build: in parts, as the exporter does; 1 proc: the rebuild in one process, the baseline)"
        "\ntargets: a 5-minute refresh < 1 s; a month (~1.5 million records) recomputed (build) < 60 s; "
        "resident memory < 300 MB; /metrics p99 < 100 ms during a refresh"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
