#!/usr/bin/env python3
"""Benchmark: render the full production inventory (~2,700 hosts).

Prints medians of N runs for:
  - the registry model alone (load + validate + build the inventory, in-process)
  - `ansible-inventory -i inventory/hcmc --list` through the registry plugin (target < 5 s)
  - baseline, same run: `ansible-inventory --list` on the same inventory written out
    as a static YAML file and read by Ansible's own yaml plugin
The ratio plugin/baseline shows what the registry plugin costs over static data.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from motcua.inventory import build_inventory  # noqa: E402
from motcua.registry import load_registry  # noqa: E402

TARGET_SECONDS = 5.0


def timed(fn, runs: int) -> list[float]:
    times = []
    for i in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        print(f"    run {i + 1}/{runs}: {times[-1]:.2f} s", file=sys.stderr, flush=True)
    return times


def ansible_list(inventory: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(inventory), "--list"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"ansible-inventory failed:\n{result.stderr}")
    hosts = len(json.loads(result.stdout)["_meta"]["hostvars"])
    if hosts < 2_400:
        raise SystemExit(f"only {hosts} hosts rendered")


def static_yaml(inventory_json: dict, path: Path) -> None:
    """The same groups, hosts and vars as a YAML inventory file."""
    hostvars = inventory_json["_meta"]["hostvars"]
    groups = {}
    for name, entry in inventory_json.items():
        if name == "_meta":
            continue
        group: dict[str, object] = {}
        if entry.get("hosts"):
            group["hosts"] = {h: hostvars.get(h) or None for h in entry["hosts"]}
        if entry.get("children"):
            group["children"] = {c: None for c in entry["children"]}
        if entry.get("vars"):
            group["vars"] = entry["vars"]
        groups[name] = group
    path.write_text(yaml.safe_dump(groups, allow_unicode=True, sort_keys=False), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    registry_dir = ROOT / "inventory" / "hcmc" / "registry"

    print("model: load + validate + build inventory", file=sys.stderr)
    model = timed(lambda: build_inventory(load_registry(registry_dir)), args.runs)

    print("plugin: ansible-inventory -i inventory/hcmc --list", file=sys.stderr)
    plugin = timed(lambda: ansible_list(ROOT / "inventory" / "hcmc", env), args.runs)

    with tempfile.TemporaryDirectory() as tmp:
        static = Path(tmp) / "static.yml"
        static_yaml(build_inventory(load_registry(registry_dir)).as_ansible_json(), static)
        static_env = dict(env, ANSIBLE_INVENTORY_ENABLED="ansible.builtin.yaml")
        print("baseline: ansible-inventory -i <static YAML> --list", file=sys.stderr)
        baseline = timed(lambda: ansible_list(static, static_env), args.runs)

    hosts = sum(1 for _ in load_registry(registry_dir).hosts())
    m_model, m_plugin, m_base = (statistics.median(x) for x in (model, plugin, baseline))
    print()
    print(f"Production inventory: {hosts} hosts, median of {args.runs} runs")
    print(f"  {'registry model (in-process)':<42} {m_model:6.2f} s")
    print(f"  {'ansible-inventory --list (registry plugin)':<42} {m_plugin:6.2f} s   target < {TARGET_SECONDS:.0f} s")
    print(f"  {'ansible-inventory --list (static YAML)':<42} {m_base:6.2f} s   baseline")
    print(f"  {'plugin / baseline':<42} {m_plugin / m_base:6.2f} x")
    print(f"  verdict: {'MET' if m_plugin < TARGET_SECONDS else 'MISSED'} (target < {TARGET_SECONDS:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
