#!/usr/bin/env python3
"""Benchmark: counters that configure themselves (pull, docs/pull.md) against push, on the lab.

For N fresh lab counter PCs (default 24: the lab's four sites, six each; and 50: the city centre's):
  1. `motcua pull publish` (the controller's render, build and signed commit), and the counters set up
     to pull by push (`playbooks/counter_pull.yml`, once per counter);
  2. every counter pulls at once, from nothing: its first provisioning by pull alone. Wall time to all
     converged; the pull source's CPU and memory; the machine's CPU (the lab's counters share the
     controller's cores, so this is the counters' own work, which a real fleet spreads over its PCs);
  3. the baseline, measured again in the same run: a no-change push (`playbooks/counters.yml`), the
     controller's CPU (ansible-playbook and every process it waited for);
  4. a no-change update by pull: a publish that changes nothing, then every counter pulls at once;
     the controller's CPU (the publish) and the pull source's, against the push's. Target: <= 5 %.
Then the projection to the registry's counters (1,464), from the figures per counter.

Runs in its own lab home (/var/lib/motcua-lab-bench), stops everything it started, and refuses to
run while another lab holds the same loopback addresses. A pull is triggered by `systemctl start`
over SSH on every counter at once (in production the timers do it, spread over the random delay).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.benchlab import inventory, machine_cpu  # noqa: E402
from motcua.access import lab_cache  # noqa: E402
from motcua.lab import Lab, LabError, make_plan  # noqa: E402
from motcua.lab.lab import LabState  # noqa: E402
from motcua.registry import load_registry  # noqa: E402

HOME = Path("/var/lib/motcua-lab-bench")
TARGET_SHARE = 0.05
SIZES = {24: (["ttpv", "26740", "25747", "26732"], 6), 50: (["ttpv"], 50)}
TEXTFILE = "/var/lib/prometheus/node-exporter/motcua_pull.prom"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss_mib(pid: int) -> float:
    match = re.search(r"^VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    return int(match.group(1)) / 1024 if match else 0.0


def env() -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    out = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), MOTCUA_LAB_HOME=str(HOME), ANSIBLE_FORCE_COLOR="0")
    out["PATH"] = f"{bindir}{os.pathsep}{out.get('PATH', '')}"
    return out


def controller(command: list[str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Run a controller command: (wall seconds, its CPU seconds and its children's, the result)."""
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    result = subprocess.run(command, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=7200, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if result.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command[:4])} failed:\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
    return time.monotonic() - started, cpu, result


def ssh(lab: Lab, host: str, command: str) -> str:
    done = subprocess.run(["ssh", "-F", str(lab.ssh_dir / "config"), host, command], capture_output=True, text=True,
                          timeout=3600, check=False)  # fmt: skip
    return done.stdout


def pull_all(lab: Lab, hosts: list[str], source_pid: int) -> dict[str, float]:
    """Every counter pulls at once; the wall time to all converged and what it cost."""
    cpu0, source0, started = machine_cpu(), process_cpu(source_pid), time.monotonic()
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        list(pool.map(lambda h: ssh(lab, h, "systemctl start motcua-pull.service"), hosts))
    wall = time.monotonic() - started
    reports = {h: ssh(lab, h, f"cat {TEXTFILE}") for h in hosts}
    failed = [h for h, text in reports.items() if not re.search(r"^motcua_pull_last_run_success 1$", text, re.M)]
    if failed:
        raise SystemExit(f"bench: the pull failed on {', '.join(failed)}:\n{reports[failed[0]][-1500:]}")
    durations = [float(re.search(r"^motcua_pull_last_run_duration_seconds (\S+)", t, re.M).group(1))
                 for t in reports.values()]  # fmt: skip
    changed = sum(int(re.search(r'tasks\{state="changed"\} (\d+)', t).group(1)) for t in reports.values())
    return {"wall": wall, "machine": machine_cpu() - cpu0, "source": process_cpu(source_pid) - source0,
            "source_rss": process_rss_mib(source_pid), "pull_median": statistics.median(durations),
            "changed": changed}  # fmt: skip


def measure(size: int, tmp: Path) -> dict[str, object]:
    sites, max_counters = SIZES[size]
    inv = inventory(tmp / f"inv{size}", sites, max_counters)
    lab = Lab(inv, HOME, lab_cache(), progress=say)
    lab.down(purge=True)
    out: dict[str, object] = {}
    try:
        shutil.rmtree(ROOT / ".cache" / "ansible" / "facts", ignore_errors=True)
        assert lab.up()["counters"] == size
        hosts = [h.name for h in make_plan(inv, HOME).counters]
        source_pid = LabState.load(HOME).proc("pull-source").pid
        say(f"{size} counters: publish")
        out["publish_first"] = controller(["motcua", "pull", "publish", "-i", str(inv)])[:2]
        say(f"{size} counters: set up to pull (counter_pull.yml, by push; timers paused: the bench starts each pull)")
        out["setup"] = controller(["ansible-playbook", "-i", str(inv), "playbooks/counter_pull.yml",
                                   "-e", "counter_pull_timer_enabled=false"])[:2]  # fmt: skip
        say(f"{size} counters: every counter pulls at once, from nothing (first provisioning by pull)")
        out["first_pull"] = pull_all(lab, hosts, source_pid)
        say(f"  {out['first_pull']['wall']:.0f} s")
        say(f"{size} counters: no-change push (the baseline)")
        wall, cpu, result = controller(["ansible-playbook", "-i", str(inv), "playbooks/counters.yml",
                                        "-e", '{"counter_monitoring_check_settings": {}}'])  # fmt: skip
        changed = sum(int(v) for v in re.findall(r"changed=(\d+)", result.stdout))
        out["push"] = (wall, cpu, changed)
        say(f"  {wall:.0f} s, controller CPU {cpu:.0f} s, changed {changed}")
        say(f"{size} counters: no-change update by pull (a publish, every counter pulls at once)")
        out["publish_again"] = controller(["motcua", "pull", "publish", "-i", str(inv)])[:2]
        out["pull"] = pull_all(lab, hosts, source_pid)
        say(f"  {out['pull']['wall']:.0f} s")
    finally:
        lab.down(purge=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[24, 50], choices=sorted(SIZES))
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for size in args.sizes:
                results[size] = measure(size, Path(tmp))
        except LabError as exc:
            raise SystemExit(f"bench: {exc}") from None
    fleet = sum(len([h for h in s.hosts if h.role == "counter"])
                for s in load_registry(ROOT / "inventory" / "hcmc" / "registry").sites.values())  # fmt: skip
    cores = os.cpu_count() or 1
    print()
    print("Pull against push (docs/pull.md), fresh lab counters, package pool warm")
    verdicts = []
    for size, r in results.items():
        first, pull = r["first_pull"], r["pull"]
        push_wall, push_cpu, push_changed = r["push"]
        publish_wall, publish_cpu = r["publish_again"]
        controller_pull = publish_cpu
        share = controller_pull / push_cpu
        verdicts.append(share <= TARGET_SHARE)
        print(f"  {size} counters")
        print(
            f"    publish (render, build, signed commit), first / no change: {r['publish_first'][0]:6.1f} s / "
            f"{publish_wall:.1f} s wall, {r['publish_first'][1]:.1f} s / {publish_cpu:.1f} s CPU"
        )
        print(
            f"    set-up by push (counter_pull.yml, once):        {r['setup'][0]:6.1f} s wall, "
            f"{r['setup'][1]:.1f} s CPU"
        )
        print(
            f"    first provisioning by pull, all at once:         {first['wall']:6.1f} s to all converged "
            f"(one pull's median {first['pull_median']:.1f} s); machine CPU {first['machine']:.0f} s "
            f"({first['machine'] / size:.1f} s per counter, {cores} cores shared)"
        )
        print(f"      pull source: {first['source']:.1f} s CPU, peak RSS {first['source_rss']:.0f} MiB")
        print(
            f"    no-change push (baseline, same run):            {push_wall:6.1f} s wall, controller CPU "
            f"{push_cpu:.1f} s ({push_cpu / size:.2f} s per counter), changed={push_changed}"
        )
        print(
            f"    no-change pull, all at once:                    {pull['wall']:6.1f} s to all converged "
            f"(one pull's median {pull['pull_median']:.1f} s), changed={pull['changed']}; machine CPU "
            f"{pull['machine']:.0f} s ({pull['machine'] / size:.1f} s per counter)"
        )
        print(
            f"      pull source: {pull['source']:.2f} s CPU ({pull['source'] / size * 1000:.0f} ms per counter), "
            f"peak RSS {pull['source_rss']:.0f} MiB"
        )
        print(
            f"    controller CPU, pull / push: {controller_pull:.1f} / {push_cpu:.1f} s = {share:.1%} "
            f"(target <= {TARGET_SHARE:.0%})"
        )
        per_counter_push = push_cpu / size
        per_counter_source = pull["source"] / size
        print(
            f"    projection to the registry's {fleet} counters: push {per_counter_push * fleet / 3600:.1f} "
            f"CPU-hours on the controller; pull: the publish (measured at {size}: {publish_cpu:.0f} s; it "
            f"renders per counter) plus serving {per_counter_source * fleet:.0f} CPU-s on the pull source, and "
            f"{pull['machine'] / size:.0f} CPU-s on each PC"
        )
    print(f"  verdict: {'MET' if all(verdicts) else 'MISSED'}")
    print(json.dumps({str(k): v for k, v in results.items()}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
