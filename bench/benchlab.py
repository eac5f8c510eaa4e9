"""What the lab benchmarks share: a lab inventory of chosen sites, and the machine's busy CPU."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def inventory(directory: Path, sites: list[str], max_counters: int) -> Path:
    """A lab inventory of these sites (at most ``max_counters`` counters each), with the lab's group_vars
    and roster."""
    directory.mkdir(parents=True)
    (directory / "motcua.yml").write_text(
        "plugin: motcua.ops.registry\n"
        f"registry: {ROOT / 'inventory' / 'hcmc' / 'registry'}\n"
        "address_space: lab\n"
        f"sites: [{', '.join(repr(code) for code in sites)}]\n"
        f"max_counters: {max_counters}\n"
    )
    (directory / "group_vars").symlink_to(ROOT / "inventory" / "lab" / "group_vars")
    (directory / "roster.yml").symlink_to(ROOT / "inventory" / "lab" / "roster.yml")
    return directory


def machine_cpu() -> float:
    """CPU seconds the whole machine has spent busy (controller and lab hosts share its cores)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]  # not steal: the hypervisor's, not ours
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")
