#!/usr/bin/env python3
"""Benchmark: the duty board's city view for the whole city (issue #23).

The production registry's 172 sites (168 wards and units, the city centre, the three regional centres) and the
launch window's duty roster, rendered into the board's data file by the controller's code; a real Alertmanager
(Debian's, on loopback, with motcua's inhibition) holding --alerts firing alerts spread over the sites' devices,
and a real Prometheus (Debian's) with the dossier probe's series. The board (motcua_exporters.board, in this
process) reads the pair as it does on a monitoring host. It prints:

  - the read of the pair (one refresh): its median time and the calls it makes, for 4 sites and for 172
    (target: a constant number of calls, not one per site);
  - the city view rendered on the server: median and p99 over --repeat renders (target p99 < 300 ms), and the
    page's weight (target < 300 KB), also for the site, alert and duty views;
  - the same render with no alert at all, the baseline measured in the same run.
Bounded: alerts and repeats are arguments; the processes are stopped by PID and the directory removed at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from motcua.lab.procs import spawn, stop, wait_for_port  # noqa: E402
from motcua.monitoring.alertmanager import board_data  # noqa: E402
from motcua.monitoring.rules import ALERTS, inhibit_rules, runbook_url  # noqa: E402
from motcua.registry import load_registry  # noqa: E402
from motcua.rosters.duty import load_duty_roster, moved  # noqa: E402
from motcua_exporters.board.app import Board, BoardConfig  # noqa: E402
from motcua_exporters.board.data import load_data  # noqa: E402
from motcua_exporters.board.runbooks import Runbooks  # noqa: E402
from motcua_exporters.core.web import Request  # noqa: E402

# Site alerts the bench raises, with the device role each is about.
KINDS = [
    ("CounterDown", "counter", "warning"),
    ("PrinterStopped", "printer", "warning"),
    ("ScannerMissing", "scanner", "warning"),
    ("SwitchDown", "switch", "critical"),
    ("SiteOffline", "router", "critical"),
    ("TokenMissing", "counter", "warning"),
]
RULES = {a.name: a for a in ALERTS}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shifted_roster(tmp: Path) -> Path:
    """The lab's duty roster (production has none in the repository: it is vaulted per launch) moved to today."""
    text = (ROOT / "inventory/lab/duty.yml").read_text(encoding="utf-8")
    (tmp / "duty.yml").write_text(moved(text, dt.date.today() - dt.timedelta(days=1)), encoding="utf-8")
    return tmp / "duty.yml"


def alerts_for(data: dict, count: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)  # noqa: S311 - synthetic alerts, not secrets
    now = dt.datetime.now(dt.UTC)
    out = []
    for i in range(count):
        site = rng.choice(data["sites"])
        name, role, severity = rng.choice(KINDS)
        devices = [d["name"] for d in site["devices"] if d["role"] == role] or [site["devices"][0]["name"]]
        labels = {
            "alertname": name,
            "site": site["code"],
            "severity": severity,
            "scope": "site",
            "role": "token" if name == "TokenMissing" else role,
            "ward": site["name"],
            "n": str(i),
        }
        if name != "SiteOffline":
            labels["instance"] = rng.choice(devices)
        rule = RULES.get(name)
        out.append(
            {
                "labels": labels,
                "startsAt": (now - dt.timedelta(minutes=rng.randint(1, 600))).isoformat(),
                "endsAt": (now + dt.timedelta(hours=1)).isoformat(),
                "annotations": {
                    "summary_vi": f"{name} tại {site['name']}",
                    "summary_en": f"{name} at {site['code']}",
                    "runbook_url": runbook_url(rule, "docs/runbooks") if rule else "",
                },
            }
        )
    return out


def post(url: str, body: object) -> None:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - loopback
        pass


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def content_height(page: bytes, width: int, tmp: Path) -> int:
    """How high the page is at this width: Chromium's screenshot of a tall window (kept in reports/board/), then
    the lowest row that is not the background."""
    from PIL import Image

    (tmp / "city.html").write_bytes(page)
    out = ROOT / "reports" / "board"
    out.mkdir(parents=True, exist_ok=True)
    shot = out / f"bench-city-{width}.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={width},3000",
            f"--user-data-dir={tmp / f'profile-{width}'}",
            f"--screenshot={shot}",
            (tmp / "city.html").as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    image = Image.open(shot).convert("RGB")
    background = image.getpixel((width - 1, image.height - 1))
    pixels = image.load()
    for y in range(image.height - 1, -1, -1):
        if any(pixels[x, y] != background for x in range(0, width, 2)):
            return y + 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=200, help="renders of each view")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-board-"))
    procs = []
    try:
        registry = load_registry(ROOT / "inventory/hcmc/registry")
        roster = load_duty_roster(shifted_roster(tmp), registry.subset(["ttpv", "26740", "25747", "26732"]))
        data = board_data(registry, roster)
        (tmp / "data.yml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        small = {**data, "sites": [s for s in data["sites"] if s["code"] in ("ttpv", "26740", "25747", "26732")]}
        (tmp / "small.yml").write_text(yaml.safe_dump(small, allow_unicode=True), encoding="utf-8")
        print(
            f"sites: {len(data['sites'])}, devices: {sum(len(s['devices']) for s in data['sites'])}, "
            f"alerts: {args.alerts}",
            flush=True,
        )

        am_port, prom_port = free_port(), free_port()
        (tmp / "am.yml").write_text(
            yaml.safe_dump(
                {"route": {"receiver": "none"}, "receivers": [{"name": "none"}], "inhibit_rules": inhibit_rules()}
            )
        )
        procs.append(
            spawn(
                "alertmanager",
                "bench",
                [
                    "/usr/bin/prometheus-alertmanager",
                    f"--config.file={tmp / 'am.yml'}",
                    f"--storage.path={tmp / 'am'}",
                    "--cluster.listen-address=",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                ],
                tmp / "am.log",
            )
        )
        rules = {
            "groups": [
                {
                    "name": "b",
                    "interval": "1s",
                    "rules": [
                        {
                            "record": "motcua_dossier_probe_success",
                            "expr": 'label_replace(vector(1), "job", "dossier", "", "")',
                        },
                        {
                            "record": "motcua_dossier_probe_duration_seconds",
                            "expr": 'label_replace(vector(0.3), "job", "dossier", "", "")',
                        },
                    ],
                }
            ]
        }
        (tmp / "rules.yml").write_text(yaml.safe_dump(rules))
        (tmp / "prom.yml").write_text(
            yaml.safe_dump({"global": {"evaluation_interval": "1s"}, "rule_files": [str(tmp / "rules.yml")]})
        )
        procs.append(
            spawn(
                "prometheus",
                "bench",
                [
                    "/usr/bin/prometheus",
                    f"--config.file={tmp / 'prom.yml'}",
                    f"--storage.tsdb.path={tmp / 'prom'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                tmp / "prom.log",
            )
        )
        assert wait_for_port("127.0.0.1", am_port, 30) and wait_for_port("127.0.0.1", prom_port, 30)
        time.sleep(2.5)  # Prometheus' first rule evaluation
        post(f"http://127.0.0.1:{am_port}/api/v2/alerts", alerts_for(data, args.alerts))
        time.sleep(1.0)

        def board(data_file: Path) -> Board:
            config = BoardConfig(
                tmp / "board.yml",
                load_data(data_file),
                Runbooks(ROOT / "docs/runbooks"),
                [f"http://127.0.0.1:{prom_port}/"],
                [f"http://127.0.0.1:{am_port}/"],
                None,
                15.0,
                10.0,
                frozenset({"viewer"}),
                frozenset({"operator"}),
            )
            return Board(config)

        print("\nthe read of the pair (one refresh)")
        for label, path in (("4 sites", tmp / "small.yml"), ("172 sites", tmp / "data.yml")):
            b = board(path)
            times, calls = [], set()
            for _ in range(10):
                started = time.perf_counter()
                snap = b.feed.read()
                times.append(time.perf_counter() - started)
                calls.add(snap.alertmanager.tried + snap.prometheus.tried)
            print(
                f"  {label:10s} median {statistics.median(times) * 1000:7.1f} ms   calls per read: "
                f"{', '.join(map(str, sorted(calls)))} (Alertmanager {snap.alertmanager.tried}, "
                f"Prometheus {snap.prometheus.tried}); alerts read: {len(snap.alerts)}"
            )

        b = board(tmp / "data.yml")
        b.feed.read()
        firing = sum(1 for a in b.feed.current().alerts if a.state == "active")
        print(
            f"\nrendered on the server ({args.repeat} renders each; {firing} of {args.alerts} alerts active after "
            "inhibition)"
        )
        views = [
            ("city view", "/", b.city),
            ("site view", "/site/26740", b.site),
            ("alert view", "/alerts", b.alerts),
            ("duty view", "/duty", b.duty),
        ]
        for label, path, route in views:
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                response = route(Request(path, {}, {}, user="viewer"))
                times.append(time.perf_counter() - started)
            assert response.status == 200, response.body
            print(
                f"  {label:10s} median {statistics.median(times) * 1000:6.1f} ms  p99 "
                f"{percentile(times, 0.99) * 1000:6.1f} ms  weight {len(response.data()) / 1024:6.1f} KB"
            )
        empty = Board(b.config)
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            response = empty.city(Request("/", {}, {}, user="viewer"))
            times.append(time.perf_counter() - started)
        print(
            f"  baseline: the city view with no alert read: median {statistics.median(times) * 1000:.1f} ms, "
            f"p99 {percentile(times, 0.99) * 1000:.1f} ms, {len(response.data()) / 1024:.1f} KB"
        )
        city = b.city(Request("/", {}, {}, user="viewer")).data()
        print(f"\nthe city view in headless Chromium (reports/board/, {len(b.config.data.sites)} tiles)")
        for width, height in ((1920, 1080), (360, 800)):
            used = content_height(city, width, tmp)
            print(
                f"  {width} px wide: the page is {used} px high ({'fits' if used <= height else 'scrolls past'} "
                f"{width}x{height})"
            )
        print("\ntargets: city view p99 < 300 ms, page < 300 KB, calls per read constant, 172 tiles on 1920x1080")
    finally:
        stop(procs)
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
