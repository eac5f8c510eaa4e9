#!/usr/bin/env python3
"""Benchmark: the dossier exporter against Debian's blackbox_exporter, same targets, same run.

2,000 HTTP targets on the lab's dossier stand-in (its own instance on 127.79.252.20),
each probed every 15 s:

  - ours probes them in the background (its normal mode) while /metrics is scraped
    every 0.5 s;
  - blackbox_exporter is driven the way Prometheus drives it: one /probe?target= request
    per target per 15 s, spread over the interval.

Prints, for each: CPU seconds per 1,000 probes (the exporter's process only), resident
memory, and for ours the /metrics latency (median, p99) while probing. Targets:
CPU <= 1.5x blackbox's, p99 < 100 ms, RSS < 100 MB. Bounded: warm-up one interval,
then --seconds of measuring per exporter; everything started is stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from motcua.lab.ca import ensure_lab_ca  # noqa: E402
from motcua.lab.procs import spawn, stat_fields, stop, wait_for_port  # noqa: E402
from motcua_exporters.core.httpprobe import ProbeSpec, probe  # noqa: E402

ADDRESS = "127.79.252.20"
STANDIN_HTTP, STANDIN_HTTPS = 18080, 18443
OURS, BLACKBOX = "127.0.0.1:19311", "127.0.0.1:19315"
INTERVAL = 15.0
TICK = os.sysconf("SC_CLK_TCK")
TARGET_CPU_RATIO, TARGET_P99_MS, TARGET_RSS_MB = 1.5, 100.0, 100.0


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    fields = stat_fields(pid)
    assert fields, f"process {pid} is gone"
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime (fields 14, 15)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def get(url: str, timeout: float = 10.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback)
        return resp.read().decode()


def metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in " {":
            total += float(line.rsplit(" ", 1)[1])
    return total


def target_urls(count: int) -> list[str]:
    return [f"http://{ADDRESS}:{STANDIN_HTTP}/?probe={i}" for i in range(count)]


def run_ours(work: Path, urls: list[str], seconds: float) -> dict[str, float]:
    config = work / "dossier-exporter.yml"
    lines = [f"interval: {INTERVAL:g}s", "timeout: 5s", "max_concurrency: 200", "targets:"]
    lines += [f"  - {{name: t{i}, url: '{url}'}}" for i, url in enumerate(urls)]
    config.write_text("\n".join(lines) + "\n")
    argv = [str(Path(sys.executable).parent / "motcua-dossier-exporter"), "--config.file", str(config),
            "--web.listen-address", OURS, "--log.level", "warn"]  # fmt: skip
    proc = spawn("bench-dossier-exporter", "exporter", argv, work / "ours.log")
    try:
        host, port = OURS.split(":")
        assert wait_for_port(host, int(port), 10), (work / "ours.log").read_text()
        say(f"ours: warming up one interval ({INTERVAL:g} s)")
        time.sleep(INTERVAL + 1)
        before_probes = metric(get(f"http://{OURS}/metrics"), "motcua_dossier_exporter_probes_total")
        before_cpu = cpu_seconds(proc.pid)
        latencies, rss = [], []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            text = get(f"http://{OURS}/metrics")
            latencies.append((time.perf_counter() - started) * 1000)
            rss.append(rss_mb(proc.pid))
            if len(latencies) % 20 == 0:
                say(f"ours: {len(latencies)} scrapes, {deadline - time.monotonic():.0f} s left")
            time.sleep(0.5)
        cpu = cpu_seconds(proc.pid) - before_cpu
        probes = metric(text, "motcua_dossier_exporter_probes_total") - before_probes
        series = sum(1 for line in text.splitlines() if line.startswith("motcua_dossier_probe_success{"))
        overruns = metric(text, "motcua_dossier_exporter_schedule_overruns_total")
    finally:
        stop([proc])
    latencies.sort()
    return {
        "cpu": cpu,
        "probes": probes,
        "rss": max(rss),
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "targets": series,
        "overruns": overruns,
    }


async def drive_blackbox(urls: list[str], seconds: float, warmup: float) -> tuple[int, int]:
    """One /probe per target per interval, spread evenly (as Prometheus' scrape offsets do)."""
    loop = asyncio.get_running_loop()
    limit = asyncio.Semaphore(200)
    counts = {"ok": 0, "done": 0}
    measuring = {"from": loop.time() + warmup}

    async def one(url: str) -> None:
        async with limit:
            spec = ProbeSpec(f"http://{BLACKBOX}/probe?module=http_2xx&target={url}", timeout=10.0, keep_body=True)
            result = await probe(spec)
        if loop.time() >= measuring["from"]:
            counts["done"] += 1
            counts["ok"] += b"probe_success 1" in result.body

    end = loop.time() + warmup + seconds
    step = INTERVAL / len(urls)
    tasks = set()
    index = 0
    start = loop.time()
    while loop.time() < end:
        due = start + index * step
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(urls[index % len(urls)]))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        index += 1
    await asyncio.gather(*tasks)
    return counts["done"], counts["ok"]


def run_blackbox(work: Path, urls: list[str], seconds: float) -> dict[str, float]:
    binary = shutil.which("prometheus-blackbox-exporter")
    assert binary, "prometheus-blackbox-exporter is missing: run scripts/bootstrap-host"
    config = work / "blackbox.yml"
    config.write_text(
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n"
    )
    argv = [binary, f"--config.file={config}", f"--web.listen-address={BLACKBOX}", "--log.level=warn"]
    proc = spawn("bench-blackbox", "exporter", argv, work / "blackbox.log")
    try:
        host, port = BLACKBOX.split(":")
        assert wait_for_port(host, int(port), 10), (work / "blackbox.log").read_text()
        say(f"blackbox_exporter: driving {len(urls)} targets, warm-up {INTERVAL:g} s, then {seconds:g} s")
        samples: list[float] = []

        async def measure() -> tuple[int, int, float]:
            """Probes counted after the warm-up, and blackbox's CPU over the same window."""
            driver = asyncio.create_task(drive_blackbox(urls, seconds, INTERVAL))
            await asyncio.sleep(INTERVAL)
            before = cpu_seconds(proc.pid)
            while not driver.done():
                samples.append(rss_mb(proc.pid))
                await asyncio.sleep(1.0)
                if len(samples) % 20 == 0:
                    say(f"blackbox_exporter: {len(samples)} s measured")
            done, ok = await driver
            return done, ok, cpu_seconds(proc.pid) - before

        done, ok, cpu = asyncio.run(measure())
    finally:
        stop([proc])
    say(f"blackbox_exporter: {done} probes ({ok} successful), {cpu:.2f} CPU s")
    return {"cpu": cpu, "probes": float(done), "ok": float(ok), "rss": max(samples) if samples else float("nan")}


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=60.0, help="measuring time per exporter (default 60)")
    args = parser.parse_args()
    urls = target_urls(args.targets)
    with tempfile.TemporaryDirectory(prefix="motcua-bench-exporter-") as tmp:
        work = Path(tmp)
        ensure_lab_ca(work / "ca", ADDRESS)
        argv = [sys.executable, "-m", "motcua.lab.dossier", "--address", ADDRESS,
                "--https-port", str(STANDIN_HTTPS), "--http-port", str(STANDIN_HTTP),
                "--certs", str(work / "ca"), "--faults", str(work / "faults.json")]  # fmt: skip
        standin = spawn("bench-dossier", "dossier", argv, work / "dossier.log")
        try:
            assert wait_for_port(ADDRESS, STANDIN_HTTP, 10), (work / "dossier.log").read_text()
            ours = run_ours(work, urls, args.seconds)
            (work / "dossier.log").write_text("")  # the stand-in logs each request; keep the disk quiet
            theirs = run_blackbox(work, urls, args.seconds)
        finally:
            stop([standin])
    per_ours = ours["cpu"] / ours["probes"] * 1000 if ours["probes"] else float("nan")
    per_theirs = theirs["cpu"] / theirs["probes"] * 1000 if theirs["probes"] else float("nan")
    ratio = per_ours / per_theirs
    print(f"\nDossier exporter vs blackbox_exporter: {args.targets} HTTP targets every {INTERVAL:g} s,", end=" ")
    print(f"{args.seconds:g} s measured each")
    print(f"{'':34}{'ours':>12}{'blackbox':>12}")
    print(f"{'probes in the window':34}{ours['probes']:>12.0f}{theirs['probes']:>12.0f}")
    print(f"{'CPU seconds per 1,000 probes':34}{per_ours:>12.3f}{per_theirs:>12.3f}")
    print(f"{'resident memory, max (MB)':34}{ours['rss']:>12.1f}{theirs['rss']:>12.1f}")
    print(f"{'/metrics latency median (ms)':34}{ours['p50']:>12.1f}{'':>12}")
    print(f"{'/metrics latency p99 (ms)':34}{ours['p99']:>12.1f}{'':>12}")
    print(f"{'targets in /metrics':34}{ours['targets']:>12.0f}{'':>12}")
    print(f"{'schedule overruns':34}{ours['overruns']:>12.0f}{'':>12}")
    print(
        f"\nCPU ratio ours/blackbox: {ratio:.2f}x (target <= {TARGET_CPU_RATIO}x) {verdict(ratio <= TARGET_CPU_RATIO)}"
    )
    print(f"/metrics p99: {ours['p99']:.1f} ms (target < {TARGET_P99_MS:g} ms) {verdict(ours['p99'] < TARGET_P99_MS)}")
    print(f"RSS: {ours['rss']:.1f} MB (target < {TARGET_RSS_MB:g} MB) {verdict(ours['rss'] < TARGET_RSS_MB)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
