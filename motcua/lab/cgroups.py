"""Each lab host in cgroups of its own.

``systemd-nspawn --keep-unit --register=no`` does not ask a service manager for a cgroup: it
splits the cgroup it runs in into ``payload`` (the container's systemd) and ``supervisor``
(itself). Started one after another by the same process, every lab host would get the same
``<cgroup>/payload``, and on a machine whose PID 1 is not systemd that is the hierarchy's root:
every container's systemd then manages the same ``/payload/system.slice/<unit>.service``
directories. One host removing its unit's cgroup once the unit ended, while another host
attached its own process of the same unit to it, failed that unit at boot (seen here:
``systemd-user-sessions.service`` exited ``219/CGROUP``, "Failed to attach to cgroup ...: No
such file or directory"; its ``/run/nologin`` stayed, and sshd refused every user but root).

So each host starts in ``<hierarchy>/motcua-lab/<host>`` of the hierarchies a container's
systemd manages: cgroup v1's ``name=systemd`` and the unified cgroup2 one. Where neither can
be written (a delegated, read-only cgroupfs), the host starts where the caller runs, as before.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
LAB_DIR = "motcua-lab"


def hierarchies(mountinfo: str | None = None) -> list[Path]:
    """Mount points of the cgroup hierarchies a container's systemd manages (name=systemd, cgroup2)."""
    text = MOUNTINFO.read_text() if mountinfo is None else mountinfo
    found = []
    for line in text.splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        mountpoint = Path(fields[4].replace("\\040", " "))
        fstype, superoptions = tail[0], tail[2].split(",")
        if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in superoptions):
            found.append(mountpoint)
    return found


def host_dirs(name: str, mountinfo: str | None = None) -> list[Path]:
    """The cgroup directories of one lab host, one per hierarchy."""
    return [hierarchy / LAB_DIR / name for hierarchy in hierarchies(mountinfo)]


def remove(name: str, mountinfo: str | None = None) -> None:
    """Remove a stopped host's cgroups, deepest first (a cgroup that still holds a process stays)."""
    for top in host_dirs(name, mountinfo):
        if not top.is_dir():
            continue
        for directory, _subdirs, _files in os.walk(top, topdown=False):
            with contextlib.suppress(OSError):
                Path(directory).rmdir()
        with contextlib.suppress(OSError):  # the last host gone: the lab's own directory too
            top.parent.rmdir()


def prepare(name: str, mountinfo: str | None = None) -> list[Path]:
    """Fresh cgroups for a host about to start (what a host that ended uncleanly left is removed first)."""
    remove(name, mountinfo)
    made = []
    for directory in host_dirs(name, mountinfo):
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        made.append(directory)
    return made


def enter(directories: list[Path], argv: list[str]) -> list[str]:
    """``argv`` run from a shell that first moves itself into ``directories`` (then execs: the PID stays).

    A move that fails is written to the host's console log and the host starts anyway.
    """
    if not directories:
        return argv
    moves = "; ".join(f"echo $$ > {shlex.quote(str(d / 'cgroup.procs'))}" for d in directories)
    return ["/bin/sh", "-c", f'{moves}; exec "$@"', "motcua-lab-host", *argv]
