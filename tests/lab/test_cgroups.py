"""Each lab host starts in cgroups of its own (motcua/lab/cgroups.py): the hierarchies are found in
mountinfo, a real process is moved into them by the wrapper and they are removed afterwards."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from motcua.lab import cgroups

HYBRID = """\
25 30 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd
28 25 0:25 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
29 30 0:26 / /sys/fs/cgroup\\040x rw - cgroup cgroup rw,cpu
"""
UNIFIED = "30 1 0:27 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"


def test_the_hierarchies_a_container_systemd_manages_are_found():
    assert cgroups.hierarchies(HYBRID) == [Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd")]
    assert cgroups.hierarchies(UNIFIED) == [Path("/sys/fs/cgroup")]
    assert cgroups.hierarchies("") == []
    assert cgroups.host_dirs("w26740-pc01", UNIFIED) == [Path("/sys/fs/cgroup/motcua-lab/w26740-pc01")]


def test_without_a_writable_hierarchy_the_command_is_left_as_it_is():
    assert cgroups.enter([], ["systemd-nspawn", "--boot"]) == ["systemd-nspawn", "--boot"]


def _writable() -> list[Path]:
    return [h for h in cgroups.hierarchies() if os.access(h, os.W_OK)]


@pytest.mark.skipif(os.geteuid() != 0 or not _writable(), reason="needs root and a writable cgroup hierarchy")
def test_a_process_runs_in_its_own_cgroups_which_are_removed_afterwards():
    name = f"unit-test-{os.getpid()}"
    made = cgroups.prepare(name)
    try:
        assert made, "no cgroup made in a writable hierarchy"
        argv = cgroups.enter(made, ["cat", "/proc/self/cgroup"])
        lines = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=10).stdout.splitlines()
        paths = {line.split(":", 2)[2] for line in lines if line.split(":")[1] in ("", "name=systemd")}
        assert paths == {f"/{cgroups.LAB_DIR}/{name}"}, lines
        (made[0] / "payload" / "system.slice").mkdir(parents=True)  # what the container's systemd leaves
    finally:
        cgroups.remove(name)
    assert not any(d.exists() for d in made)
