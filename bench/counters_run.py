#!/usr/bin/env python3
"""Benchmark: provisioning counter PCs with playbooks/counters.yml on the lab.

Prints, for 6 and for 24 lab counter PCs (fresh hosts, the package pool warm):
  - first provisioning (every role; the roles' packages come from the lab's counters' layer, as from a
    golden image, since 2026-12-07: the figures before that date include unpacking them on every host)
  - no-change re-run with the project's ansible.cfg (median of --reruns); target for 6: <= 60 s
  - the ratio 24 / 6 of the re-runs; target <= 2x
  - the CPU a re-run keeps busy: the whole machine's (/proc/stat; the lab's counters run on the
    controller's cores) and the controller's own (ansible-playbook and the processes it waited for)
and, on the 6 counters, the same no-change re-run with stock Ansible settings (only the paths the
project needs: roles, collections), to print the tuning's ratio, target >= 2x; and with the
project's settings but Ansible's own linear strategy instead of mitogen's (ANSIBLE_STRATEGY=linear,
the one-setting fallback), to print what mitogen alone is worth.

Runs in its own lab home (/var/lib/motcua-lab-bench), stops everything it started, and refuses to
run while another lab holds the same loopback addresses. On 2 cores (2026-12-02) `--reruns 2` took
34 min, of which the 24 fresh counters' first provisioning 16 min; `--sizes 6` alone ~12 min.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.benchlab import inventory, machine_cpu  # noqa: E402
from motcua.access import lab_cache  # noqa: E402
from motcua.lab import Lab, LabError  # noqa: E402

HOME = Path("/var/lib/motcua-lab-bench")
TARGET_RERUN_6, TARGET_SCALE, TARGET_TUNING = 60.0, 2.0, 2.0
# 6 counters: three wards, two each. 24: the lab's four sites, six each.
SIZES = {6: (["26740", "25747", "26732"], 2), 24: (["ttpv", "26740", "25747", "26732"], 6)}
# Stock Ansible: only what is needed to find the project's roles and collections.
STOCK_CFG = """[defaults]
roles_path = {root}/roles
collections_path = {root}/collections
[inventory]
enable_plugins = motcua.ops.registry
"""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def playbook(inv: Path, config: Path, **extra: str) -> tuple[float, dict[str, dict[str, int]], dict[str, float]]:
    # The venv's tools first, whether or not it is activated (make bench sets PATH; a direct run may not).
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ, ANSIBLE_CONFIG=str(config), MOTCUA_LAB_HOME=str(HOME), ANSIBLE_FORCE_COLOR="0", **extra)
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    command = [
        f"{bindir}/ansible-playbook",
        "-i",
        str(inv),
        "playbooks/counters.yml",
        "-e",
        f"counter_accounts_roster={ROOT / 'inventory' / 'lab' / 'roster.yml'}",
        # Production check intervals for the counter exporters: the lab's few-second ones (for tests)
        # would keep every lab counter busy on the controller's two cores and skew the figures.
        "-e",
        '{"counter_monitoring_check_settings": {}}',
    ]
    started, cpu_started, own_started = time.monotonic(), machine_cpu(), resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600, check=False)
    seconds = time.monotonic() - started
    own = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The controller: ansible-playbook and every process it waited for (workers, mitogen's, ssh).
    controller = (own.ru_utime - own_started.ru_utime) + (own.ru_stime - own_started.ru_stime)
    cpu = {"machine": machine_cpu() - cpu_started, "controller": controller}
    rows = {
        match.group(1): {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", match.group(2))}
        for match in re.finditer(r"^(\S+)\s+:\s+(ok=.*)$", result.stdout, re.M)
    }
    if result.returncode != 0:
        raise SystemExit(f"bench: counters.yml failed:\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
    return seconds, rows, cpu


def changed(rows: dict[str, dict[str, int]]) -> int:
    return sum(row.get("changed", 0) for name, row in rows.items() if name != "localhost")


def measure(size: int, reruns: int, stock: bool, tmp: Path) -> dict[str, object]:
    sites, max_counters = SIZES[size]
    inv = inventory(tmp / f"inv{size}", sites, max_counters)
    stock_cfg = tmp / "stock.cfg"
    stock_cfg.write_text(STOCK_CFG.format(root=ROOT))
    lab = Lab(inv, HOME, lab_cache(), progress=say)
    lab.down()  # whatever an interrupted run left behind
    try:
        shutil.rmtree(HOME / "hosts", ignore_errors=True)  # fresh counter PCs
        shutil.rmtree(ROOT / ".cache" / "ansible" / "facts", ignore_errors=True)
        started = lab.up()
        assert started["counters"] == size, started
        say(f"{size} counters: first provisioning")
        first, _, _ = playbook(inv, ROOT / "ansible.cfg")
        tuned, cpus = [], []
        for n in range(reruns):
            say(f"{size} counters: no-change re-run {n + 1}/{reruns} (project ansible.cfg)")
            seconds, rows, cpu = playbook(inv, ROOT / "ansible.cfg")
            if changed(rows):
                raise SystemExit(f"bench: the re-run changed {changed(rows)} things; idempotence is broken")
            tuned.append(seconds)
            cpus.append(cpu)
            say(f"  {seconds:.1f} s; CPU: machine {cpu['machine']:.0f} s, controller {cpu['controller']:.0f} s")
        stock_runs, linear_runs = [], []
        for n in range(reruns if stock else 0):
            say(f"{size} counters: no-change re-run {n + 1}/{reruns} (project settings, strategy linear)")
            seconds, rows, _ = playbook(inv, ROOT / "ansible.cfg", ANSIBLE_STRATEGY="linear")
            if changed(rows):
                raise SystemExit(f"bench: the linear re-run changed {changed(rows)} things")
            linear_runs.append(seconds)
            say(f"  {seconds:.1f} s")
            say(f"{size} counters: no-change re-run {n + 1}/{reruns} (stock settings)")
            seconds, _, _ = playbook(inv, stock_cfg)
            stock_runs.append(seconds)
            say(f"  {seconds:.1f} s")
    finally:
        lab.down()
    return {"first": first, "tuned": tuned, "stock": stock_runs, "linear": linear_runs, "cpu": cpus}


def fmt(runs: list[float]) -> str:
    return f"{statistics.median(runs):7.1f} s   (median of {len(runs)}: {', '.join(f'{r:.1f}' for r in runs)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reruns", type=int, default=3, help="no-change re-runs per measurement")
    parser.add_argument("--sizes", type=int, nargs="+", default=[6, 24], choices=sorted(SIZES))
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for size in args.sizes:
                results[size] = measure(size, args.reruns, stock=size == 6, tmp=Path(tmp))
        except LabError as exc:
            raise SystemExit(f"bench: {exc}") from None

    print()
    print("Counter provisioning benchmark (playbooks/counters.yml on the lab, package pool warm)")
    for size, r in results.items():
        print(f"  {f'{size} counters: first provisioning':<52} {r['first']:7.1f} s")
        print(f"  {f'{size} counters: no-change re-run, project ansible.cfg':<52} {fmt(r['tuned'])}")
        if r["linear"]:
            print(f"  {f'{size} counters: no-change re-run, project settings, linear':<52}{fmt(r['linear'])}")
        if r["stock"]:
            print(f"  {f'{size} counters: no-change re-run, stock settings':<52} {fmt(r['stock'])}")
        machine = statistics.median(c["machine"] for c in r["cpu"])
        controller = statistics.median(c["controller"] for c in r["cpu"])
        cores = os.cpu_count() or 1
        print(
            f"  {f'{size} counters: re-run CPU (median)':<52} {machine:7.1f} s busy of {cores} cores "
            f"({machine / size:.1f} s per counter), of which the controller {controller:.1f} s"
        )
    verdicts = []
    if 6 in results:
        six = statistics.median(results[6]["tuned"])
        verdicts.append(six <= TARGET_RERUN_6)
        print(f"  re-run of 6 counters: {six:.1f} s, target <= {TARGET_RERUN_6:.0f} s")
        if results[6]["stock"]:
            ratio = statistics.median(results[6]["stock"]) / six
            verdicts.append(ratio >= TARGET_TUNING)
            print(f"  tuning: stock / project = {ratio:.2f}x, target >= {TARGET_TUNING:.0f}x")
        if results[6]["linear"]:
            linear = statistics.median(results[6]["linear"])
            print(
                f"  mitogen alone: project with linear / project with mitogen = {linear / six:.2f}x "
                f"(stock / project with linear = {statistics.median(results[6]['stock']) / linear:.2f}x)"
            )
    if 6 in results and 24 in results:
        scale = statistics.median(results[24]["tuned"]) / statistics.median(results[6]["tuned"])
        verdicts.append(scale <= TARGET_SCALE)
        print(f"  scaling: re-run 24 / re-run 6 = {scale:.2f}x, target <= {TARGET_SCALE:.0f}x")
    print(f"  verdict: {'MET' if all(verdicts) else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
