#!/usr/bin/env python3
"""Benchmark: outage-to-notification latency for a dossier outage, on the lab.

For each pace (production defaults, then the lab's fast settings) the lab's
monitoring host is provisioned with it, then --runs times: the dossier
stand-in goes down (its fault switch), and the time until the first message
of the notification bridge for DossierSystemDown (Alertmanager -> motcua-notify
-> the Zalo or SMS stand-in in the lab's notification sink: Zalo to whoever is
on duty, SMS to the lead for this critical alert; outside the lab roster's
window only the lead is paged) is measured;
the fault is cleared and the resolved message awaited before the next run.

With production defaults it also checks that one failed probe never notifies:
the fault is set for exactly one probe of the dossier exporter, then nothing
may be sent for two minutes; and it measures the dead man's switch: dx-mon02 is
stopped (--dms-runs times) and the time until the lead's SMS MonitoringPeerSilent
(from dx-mon01's bridge) is taken, then dx-mon02 is started again.

Prints medians per pace; targets: production median <= 90 s, no notification
for a single failed probe, dead man's switch SMS <= 5 min. Needs the operator's
lab up (`motcua lab up`; the counters need not be provisioned). Takes about 25
minutes. Leaves the monitoring pair at the lab pace.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from motcua.lab.dossier import write_fault  # noqa: E402
from motcua.lab.procs import poll  # noqa: E402
from motcua.webauth import Credentials, open_url  # noqa: E402

LAB_HOME = Path(os.environ.get("MOTCUA_LAB_HOME", "/var/lib/motcua-lab"))
PROMETHEUS = "https://127.79.0.10:9090"
SINK = "http://127.79.0.25"
TARGET_MEDIAN_S = 90.0
# Production defaults over the lab's group_vars (extra vars win).
PRODUCTION = {
    "monitoring_prometheus_scrape_interval": "15s",
    "monitoring_prometheus_evaluation_interval": "15s",
    "monitoring_prometheus_alert_for": {},
    "monitoring_exporters_dossier_interval": "15s",
    "monitoring_exporters_dossier_timeout": "5s",
    "monitoring_alertmanager_phase_pace": {},
    # The pair and the dead man's switch (the roles' defaults).
    "monitoring_prometheus_alert_resend_delay": "30s",
    "monitoring_alertmanager_peer_timeout": "15s",
    "monitoring_alertmanager_heartbeat": {},
    "monitoring_exporters_notify_cluster_wait": "5s",
    "monitoring_exporters_notify_heartbeat_timeout": "3m",
}
LEAD_PHONE = "0900000001"  # the lab roster's lead (inventory/lab/duty.yml)
TARGET_DMS_S = 300.0


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def plane(url: str):
    """A URL of the lab's locked plane as the operator (lab CA, the lab's operator password); others as they are."""
    credentials = Credentials.for_tools(LAB_HOME, env={}) if url.startswith("https://") else None
    return open_url(url, credentials, 10)


def get_json(url: str):
    with plane(url) as response:
        return json.loads(response.read())


def query(expr: str) -> list[dict]:
    return get_json(f"{PROMETHEUS}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))["data"]["result"]


def wait_for(predicate, timeout: float, what: str):
    try:
        return poll(predicate, timeout, what, step=0.25)
    except TimeoutError as exc:
        raise SystemExit(str(exc)) from None


def provision(extra: dict | None) -> None:
    argv = [str(ROOT / ".venv/bin/ansible-playbook"), "-i", "inventory/lab", "playbooks/monitoring.yml"]
    if extra:
        argv += ["-e", json.dumps(extra)]
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "MOTCUA_LAB_HOME": str(LAB_HOME)}
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"monitoring playbook failed:\n{result.stdout[-3000:]}")


def notifications(since: int) -> list[dict]:
    return get_json(f"{SINK}/notifications?since={since}")


def zalo(since: int, status: str) -> list[dict]:
    """The bridge's messages about the outage: Zalo to whoever is on duty, SMS to the lead (critical)."""
    markers = {"zalo": "FIRING", "sms": "CANH BAO"} if status == "firing" else {"zalo": "RESOLVED", "sms": "DA KHAC"}
    return [
        n
        for n in notifications(since)
        if n["kind"] in markers and "DossierSystemDown" in (n["text"] or "") and markers[n["kind"]] in n["text"]
    ]


def bridge_latency() -> tuple[float, float] | None:
    """Mean delivery latency the bridge measured itself (motcua_notify_delivery_latency_seconds), and the count."""
    try:
        with plane("https://127.79.0.10:9096/metrics") as response:
            text = response.read().decode()
    except OSError:
        return None
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith("motcua_notify_delivery_latency_seconds_sum"):
            total += float(line.split()[-1])
        elif line.startswith("motcua_notify_delivery_latency_seconds_count"):
            count += float(line.split()[-1])
    return (total / count, count) if count else None


def settle(faults: Path) -> None:
    write_fault(faults, None)
    wait_for(lambda: query("prometheus_notifications_alertmanagers_discovered >= 1"), 60, "Alertmanager discovered")
    wait_for(lambda: query('motcua_dossier_probe_success{job="dossier"} == 1'), 60, "the portal up")
    wait_for(lambda: not query('ALERTS{alertname="DossierSystemDown"}'), 300, "no dossier alert")


def outage_runs(faults: Path, runs: int, label: str) -> list[float]:
    latencies = []
    for run in range(1, runs + 1):
        settle(faults)
        start = len(notifications(0))
        began = time.time()
        write_fault(faults, "down")
        try:
            first = wait_for(lambda s=start: zalo(s, "firing"), 300, "the notification")[0]
        finally:
            write_fault(faults, None)
        latency = float(first["time"]) - began
        latencies.append(latency)
        say(f"  {label}: run {run}/{runs}: outage -> {first['kind']} {latency:.1f} s")
        wait_for(lambda s=start: zalo(s, "resolved"), 400, "the resolved notification")
    return latencies


def single_failed_probe(faults: Path, watch: float) -> tuple[bool, int]:
    """Fail exactly one probe; True when nothing was notified within ``watch`` seconds."""
    settle(faults)

    def last_run() -> float:
        result = query('motcua_dossier_probe_last_run_timestamp_seconds{job="dossier", target="portal"}')
        return float(result[0]["value"][1]) if result else 0.0

    before = last_run()
    wait_for(lambda: last_run() > before, 60, "a fresh probe")
    seen = last_run()
    start = len(notifications(0))
    write_fault(faults, "down")
    wait_for(lambda: last_run() > seen, 60, "the one failing probe")
    write_fault(faults, None)
    failures = len(query('motcua_dossier_probe_success{job="dossier"} == 0'))
    say(f"  one failed probe (seen by Prometheus: {'yes' if failures else 'not yet'}); watching {watch:.0f} s")
    deadline = time.monotonic() + watch
    pending_max = 0
    while time.monotonic() < deadline:
        pending_max = max(pending_max, len(query('ALERTS{alertname="DossierSystemDown"}')))
        if zalo(start, "firing") or query('ALERTS{alertname="DossierSystemDown", alertstate="firing"}'):
            return False, pending_max
        time.sleep(1)
    return True, pending_max


def lab_cli(*args: str) -> None:
    env = {**os.environ, "MOTCUA_LAB_HOME": str(LAB_HOME)}
    result = subprocess.run([str(ROOT / ".venv/bin/motcua"), "lab", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=False)  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"motcua lab {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


def cluster_whole() -> bool:
    try:
        return all(
            len(get_json(f"https://{address}:9093/api/v2/status")["cluster"]["peers"]) == 2
            for address in ("127.79.0.10", "127.79.0.13")
        )
    except OSError:
        return False


def peer_silent_sms(since: int, status: str) -> list[dict]:
    marker = "CANH BAO" if status == "firing" else "DA KHAC PHUC"
    return [
        n
        for n in notifications(since)
        if n["kind"] == "sms" and n["to"] == LEAD_PHONE and "MonitoringPeerSilent" in n["text"] and marker in n["text"]
    ]


def dead_mans_switch(runs: int) -> list[float]:
    """dx-mon02 stops with nothing else wrong: the time until the lead's SMS from dx-mon01's bridge."""
    latencies = []
    for run in range(1, runs + 1):
        wait_for(cluster_whole, 300, "the Alertmanager cluster whole")
        time.sleep(90)  # a few Watchdog repeats at the production pace: the bridges' view is current
        start = len(notifications(0))
        began = time.time()
        lab_cli("fault", "monitoring", "down", "--device", "dx-mon02")
        try:
            first = wait_for(lambda s=start: peer_silent_sms(s, "firing"), 600, "the dead man's switch SMS")[0]
        finally:
            lab_cli("up")
        latency = float(first["time"]) - began
        latencies.append(latency)
        say(f"  dead man's switch: run {run}/{runs}: dx-mon02 stopped -> the lead's SMS {latency:.1f} s")
        wait_for(lambda s=start: peer_silent_sms(s, "resolved"), 600, "the resolved SMS")
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="outages per pace (default 3)")
    parser.add_argument("--lab-runs", type=int, default=5, help="outages at the lab pace (default 5)")
    parser.add_argument("--watch", type=float, default=120.0, help="seconds to watch after one failed probe")
    parser.add_argument("--dms-runs", type=int, default=2, help="monitoring host stops (default 2)")
    args = parser.parse_args()
    faults = LAB_HOME / "dossier" / "faults.json"
    if not (LAB_HOME / "state.json").exists():
        raise SystemExit(f"the lab is not up in {LAB_HOME}: `motcua lab up` first")
    results: dict[str, list[float]] = {}
    try:
        say("production pace: provisioning the pair (scrape/eval/probe 15 s, for 30 s, group_wait 10 s)")
        provision(PRODUCTION)
        results["production"] = outage_runs(faults, args.runs, "production")
        quiet, pending = single_failed_probe(faults, args.watch)
        results["dms"] = dead_mans_switch(args.dms_runs)
        say("lab pace: provisioning the pair (inventory/lab/group_vars/monitoring.yml)")
        provision(None)
        results["lab"] = outage_runs(faults, args.lab_runs, "lab")
    finally:
        write_fault(faults, None)
    prod, lab = statistics.median(results["production"]), statistics.median(results["lab"])
    print("Dossier outage -> first notification (through motcua-notify: Zalo or SMS), lab sink")
    print(
        f"  production defaults: median {prod:.1f} s over {len(results['production'])} runs "
        f"(min {min(results['production']):.1f}, max {max(results['production']):.1f}); "
        f"target <= {TARGET_MEDIAN_S:.0f} s: {'met' if prod <= TARGET_MEDIAN_S else 'MISSED'}"
    )
    print(
        f"  lab fast settings:   median {lab:.1f} s over {len(results['lab'])} runs "
        f"(min {min(results['lab']):.1f}, max {max(results['lab']):.1f})"
    )
    own = bridge_latency()
    if own:
        verdict = "met" if own[0] <= 5 else "MISSED"
        print(f"  the bridge's own part (webhook in -> provider accepted, every message since it started): "
              f"mean {own[0] * 1000:.0f} ms over {own[1]:.0f} deliveries; target <= 5 s: {verdict}")  # fmt: skip
    dms = statistics.median(results["dms"])
    print(
        f"  monitoring host stopped -> the lead's SMS (dead man's switch, production): median {dms:.1f} s over "
        f"{len(results['dms'])} runs ({', '.join(f'{v:.1f}' for v in results['dms'])}); "
        f"target <= {TARGET_DMS_S:.0f} s: {'met' if dms <= TARGET_DMS_S else 'MISSED'}"
    )
    print(
        f"  one failed probe (production): {'no notification' if quiet else 'NOTIFIED'} within {args.watch:.0f} s "
        f"(alert {'went pending' if pending else 'never pending'}); target: no notification: "
        f"{'met' if quiet else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
