#!/usr/bin/env python3
"""Benchmark: motcua-notify under a city-wide outage, on loopback.

The lab's notification sink (its Zalo OAuth, Zalo OA, ZNS and SMS stand-ins) and
the bridge run as their real programs on 127.0.0.1. --groups distinct alert groups
(default 1,000: an outage across the city's 172 sites, several alerts each) are
posted as fast as Alertmanager would, spread over the receivers and their channels
(Zalo; ZNS then SMS; SMS only). Printed: the time until every one was delivered, no
loss (each group delivered exactly once), the delivery rate, and the bridge's CPU
time and peak resident memory (from /proc). Repeated --runs times, medians printed.

Target (issue #22): 1,000 groups delivered without loss; the figures are printed,
not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from motcua.lab.procs import spawn, stop, wait_for_port  # noqa: E402
from motcua.lab.sink import LAB_SMS_KEY, LAB_ZALO_APP_ID, LAB_ZALO_SECRET, ZNS_TEMPLATE  # noqa: E402

BIN = Path(sys.executable).parent
RECEIVERS = {
    "duty-zalo": {"name": "Zalo", "channels": ["zalo", "sms"], "zalo": "8470000000000009001", "phone": "0900009001"},
    "duty-zns": {"name": "ZNS", "channels": ["zns", "sms"], "phone": "0900009002"},
    "urgent-sms": {"name": "SMS", "channels": ["sms"], "phone": "+84900009003"},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(url: str, body: object) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        return response.status


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def proc_usage(pid: int) -> tuple[float, int]:
    """CPU seconds (user + system) and peak resident set (bytes) of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = next(
        int(line.split()[1]) * 1024
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    return cpu, peak


def group(n: int, receiver: str) -> dict:
    quoted = receiver.replace(".", "\\.")
    site = f"{26000 + n % 172:05d}"
    return {
        "version": "4",
        "receiver": quoted,
        "status": "firing",
        "groupKey": f'{{}}:{{alertname="SiteOffline", site="{site}", n="{n}"}}',
        "externalURL": "http://127.79.0.10:9093",
        "commonLabels": {"alertname": "SiteOffline", "severity": "critical", "site": site, "ward": "Phường Bến Thành"},
        "commonAnnotations": {"summary_vi": "Mất kết nối tới điểm một cửa", "summary_en": "the site is offline"},
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "SiteOffline", "site": site, "instance": f"r{n}-{i}"},
                "annotations": {},
                "fingerprint": f"{n:08x}{i:08x}",
                "startsAt": "2025-07-01T08:00:00Z",
            }
            for i in range(3)
        ],
    }


def one_run(groups: int, workers: int, root: Path) -> dict[str, float]:
    sink_port, smtp, port = free_port(), free_port(), free_port()
    sink = f"http://127.0.0.1:{sink_port}/"
    procs = []
    try:
        procs.append(
            spawn(
                "sink",
                "sink",
                [
                    sys.executable,
                    "-m",
                    "motcua.lab.sink",
                    "--address",
                    "127.0.0.1",
                    "--http-port",
                    str(sink_port),
                    "--smtp-port",
                    str(smtp),
                    "--log",
                    str(root / "notifications.jsonl"),
                ],
                root / "sink.log",
            )
        )
        assert wait_for_port("127.0.0.1", sink_port, 15), (root / "sink.log").read_text()
        for name, value in (("app-secret", LAB_ZALO_SECRET), ("refresh", "lab-refresh-0"), ("sms-key", LAB_SMS_KEY)):
            (root / name).write_text(value + "\n")
        config = {
            "state_dir": str(root / "state"),
            "public_url": f"http://127.0.0.1:{port}/",
            "workers": workers,
            "timeout": "10s",
            "zalo": {
                "api_url": sink,
                "oauth_url": sink,
                "app_id": LAB_ZALO_APP_ID,
                "app_secret_file": str(root / "app-secret"),
                "refresh_token_file": str(root / "refresh"),
            },
            "zns": {
                "api_url": sink,
                "template_id": ZNS_TEMPLATE,
                "template_data": {"canh_bao": "alertname", "don_vi": "site"},
            },
            "sms": {
                "url": sink + "sms/send",
                "phone_format": "0",
                "auth": {"header": "X-Api-Key", "value_file": str(root / "sms-key")},
                "success": {"field": "CodeResult", "values": ["100"]},
            },
            "recipients": RECEIVERS,
        }
        (root / "notify.yml").write_text(json.dumps(config))
        bridge = spawn(
            "notify",
            "bridge",
            [
                str(BIN / "motcua-notify"),
                "--config.file",
                str(root / "notify.yml"),
                "--web.listen-address",
                f"127.0.0.1:{port}",
            ],
            root / "notify.log",
        )
        procs.append(bridge)
        assert wait_for_port("127.0.0.1", port, 15), (root / "notify.log").read_text()
        cpu_before, _ = proc_usage(bridge.pid)
        names = list(RECEIVERS)
        began = time.monotonic()
        with ThreadPoolExecutor(8) as pool:  # Alertmanager sends groups concurrently
            statuses = list(
                pool.map(
                    lambda n: post(f"http://127.0.0.1:{port}/alertmanager", group(n, names[n % len(names)])),
                    range(groups),
                )
            )
        posted = time.monotonic() - began
        assert set(statuses) == {200}, statuses

        def delivered() -> int:
            return sum(1 for n in get_json(sink + "notifications") if n["kind"] in ("zalo", "zns", "sms"))

        deadline = time.monotonic() + 600
        while delivered() < groups and time.monotonic() < deadline:
            time.sleep(0.2)
        elapsed = time.monotonic() - began
        messages = [n for n in get_json(sink + "notifications") if n["kind"] in ("zalo", "zns", "sms")]
        cpu_after, peak = proc_usage(bridge.pid)
        dead = root / "state" / "dead-letters.jsonl"
        return {
            "posted": posted,
            "elapsed": elapsed,
            "delivered": len(messages),
            "dead": len(dead.read_text().splitlines()) if dead.exists() else 0,
            "cpu": cpu_after - cpu_before,
            "peak_mb": peak / 1e6,
        }
    finally:
        stop(procs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="the bridge's delivery workers (its default: 4)")
    args = parser.parse_args()
    results = []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="notify-burst-") as tmp:
            r = one_run(args.groups, args.workers, Path(tmp))
        results.append(r)
        print(
            f"run {run}/{args.runs}: {args.groups} groups posted in {r['posted']:.1f} s, "
            f"{r['delivered']} delivered in {r['elapsed']:.1f} s ({r['delivered'] / r['elapsed']:.0f}/s), "
            f"{r['dead']} dead letters, bridge CPU {r['cpu']:.1f} s, peak RSS {r['peak_mb']:.0f} MB",
            flush=True,
        )
    lost = [r for r in results if r["delivered"] != args.groups]
    print(f"\nmotcua-notify, {args.groups} alert groups in a burst, {args.workers} workers, median of {args.runs}:")
    print(
        f"  all delivered in {statistics.median(r['elapsed'] for r in results):.1f} s "
        f"(posting took {statistics.median(r['posted'] for r in results):.1f} s)"
    )
    print(
        f"  bridge CPU {statistics.median(r['cpu'] for r in results):.1f} s "
        f"({1000 * statistics.median(r['cpu'] for r in results) / args.groups:.1f} ms per group), "
        f"peak RSS {statistics.median(r['peak_mb'] for r in results):.0f} MB"
    )
    print(f"  loss: {'none' if not lost else f'{len(lost)} run(s) short'} (target: none)")
    return 0 if not lost else 1


if __name__ == "__main__":
    raise SystemExit(main())
