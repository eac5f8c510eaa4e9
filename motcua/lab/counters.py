"""Counter PCs of the lab: systemd-nspawn containers booted with systemd.

Each host is an overlayfs over the cached image (its changes live in its own
upper directory), shares the machine's network namespace, and runs sshd on its
own loopback address only. No extra capabilities are granted: in particular
never CAP_SYS_TIME, which would let a lab host set this machine's clock.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import cgroups
from .procs import Proc, spawn, stat_fields


@dataclass(frozen=True)
class CounterHost:
    name: str
    address: str  # loopback address
    site: str
    root: Path  # <lab home>/hosts/<name>

    @property
    def merged(self) -> Path:
        return self.root / "merged"

    @property
    def upper(self) -> Path:
        return self.root / "upper"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def log(self) -> Path:
        return self.root / "console.log"

    @property
    def apt_upper(self) -> Path:
        """Packages this host downloaded that the shared pool did not have yet."""
        return self.root / "apt-archives"


VACANT = "vacant"  # a desk with no PC: its marker says why


def is_vacant(host: CounterHost) -> bool:
    return (host.root / VACANT).is_file()


def mark_vacant(host: CounterHost, why: str) -> None:
    host.root.mkdir(parents=True, exist_ok=True)
    (host.root / VACANT).write_text(why + "\n")


def mounted_paths() -> set[str]:
    paths = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        paths.add(line.split()[4].replace("\\040", " "))
    return paths


def container_namespace(nspawn_pid: int) -> str | None:
    """The PID namespace of the container a systemd-nspawn runs (its child init's)."""
    init = container_init(nspawn_pid)
    try:
        return None if init is None else str(Path(f"/proc/{init}/ns/pid").readlink())
    except OSError:
        return None


def container_init(nspawn_pid: int) -> int | None:
    """The PID (as this machine sees it) of the systemd a systemd-nspawn booted."""
    own = str(Path("/proc/self/ns/pid").readlink())
    for entry in Path("/proc").iterdir():
        fields = stat_fields(entry.name) if entry.name.isdigit() else None
        if fields is not None and int(fields[1]) == nspawn_pid:
            try:
                if str((entry / "ns/pid").readlink()) != own:
                    return int(entry.name)
            except OSError:
                continue
    return None


def boot_state(nspawn_pid: int, timeout: float = 60.0) -> tuple[str, list[str], bool]:
    """Once a host's boot has finished: systemd's state, its failed units, and whether users may log in.

    ``/run/nologin`` ("System is booting up") is removed by systemd-user-sessions.service at the
    end of boot; while it is there, sshd lets no one in but root.
    """
    init = container_init(nspawn_pid)
    if init is None:
        return "stopped", [], False
    enter = ["nsenter", "-t", str(init), "-m", "-p", "--"]
    try:
        state = subprocess.run([*enter, "systemctl", "is-system-running", "--wait"], capture_output=True,
                               text=True, timeout=timeout).stdout.strip()  # fmt: skip
        failed = subprocess.run([*enter, "systemctl", "--failed", "--plain", "--no-legend", "--no-pager"],
                                capture_output=True, text=True, timeout=10).stdout.split("\n")  # fmt: skip
    except subprocess.TimeoutExpired:
        return "starting", [], not Path(f"/proc/{init}/root/run/nologin").exists()
    units = [line.split()[0] for line in failed if line.strip()]
    return state, units, not Path(f"/proc/{init}/root/run/nologin").exists()


def processes_in(namespace: str) -> list[int]:
    """PIDs running in a container's PID namespace: everything alive inside one lab host.

    Zombies are left out: they have exited and hold nothing (this machine's
    PID 1 may take its time to reap them).
    """
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if str((entry / "ns/pid").readlink()) != namespace:
                continue
        except OSError:
            continue
        fields = stat_fields(entry.name)
        if fields is not None and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def kill_leftovers(namespace: str, timeout: float = 5.0) -> int:
    """SIGKILL what still runs in a container whose systemd-nspawn is gone.

    A systemd-nspawn that died (or was SIGKILLed) leaves the container's init
    and services running, holding the host's address and overlay. They are
    found by the PID namespace recorded when the host started: only
    processes the lab started live there.
    """
    if not namespace:
        return 0
    pids = processes_in(namespace)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while processes_in(namespace) and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(pids)


def mount_overlay(host: CounterHost, *lowers: Path) -> None:
    """Mount the host's tree: its own changes over ``lowers`` (the topmost first: a layer, then the image)."""
    if str(host.merged) in mounted_paths():
        return
    # Changes made over another image would not fit this one: start the host afresh.
    stack = ":".join(str(lower) for lower in lowers)
    marker = host.root / "image"
    if marker.exists() and marker.read_text().strip() != stack:
        shutil.rmtree(host.upper, ignore_errors=True)
        shutil.rmtree(host.work, ignore_errors=True)
    for path in (host.merged, host.upper, host.work):
        path.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{stack}\n")
    subprocess.run(
        [
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={stack},upperdir={host.upper},workdir={host.work}",
            str(host.merged),
        ],
        check=True,
        capture_output=True,
        text=True,
    )


def unmount(path: Path) -> bool:
    """Unmount if mounted; True when something was unmounted."""
    if str(path) not in mounted_paths():
        return False
    result = subprocess.run(["umount", str(path)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # A process still holding the tree: lazy unmount so the lab can come back up.
        subprocess.run(["umount", "-l", str(path)], capture_output=True, text=True, check=True)
    return True


def prepare(host: CounterHost, public_key: str) -> str:
    """Write the host's identity into its overlay; return its ed25519 host public key."""
    root = host.merged
    (root / "etc/hostname").write_text(host.name + "\n")
    hosts = root / "etc/hosts"
    hosts.write_text(f"127.0.0.1\tlocalhost\n{host.address}\t{host.name}\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    machine_id = root / "etc/machine-id"
    if not machine_id.read_text().strip():
        machine_id.write_text(secrets.token_hex(16) + "\n")
    if not (root / "etc/ssh/ssh_host_ed25519_key").exists():
        subprocess.run(["ssh-keygen", "-q", "-A", "-f", str(root)], check=True, capture_output=True)
    dropin = root / "etc/ssh/sshd_config.d"
    dropin.mkdir(parents=True, exist_ok=True)
    (dropin / "10-motcua-lab.conf").write_text(
        "# Written by the motcua lab: this host listens on its own loopback address only.\n"
        f"ListenAddress {host.address}\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
        "UseDNS no\n"
    )
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(public_key.strip() + "\n")
    keys.chmod(0o600)
    return (root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2][1]


def prepare_apt_cache(host: CounterHost, apt_ids: tuple[int, int]) -> None:
    partial = host.apt_upper / "partial"
    partial.mkdir(parents=True, exist_ok=True)
    os.chown(partial, *apt_ids)


def harvest_packages(host: CounterHost, pool: Path) -> int:
    """Move the packages a stopped host downloaded into the shared pool."""
    moved = 0
    for deb in host.apt_upper.glob("*.deb"):
        target = pool / deb.name
        if target.exists():
            deb.unlink()
        else:
            shutil.move(deb, target)
            moved += 1
    return moved


def start(host: CounterHost, apt_cache: Path, kind: str = "counter") -> Proc:
    argv = [
        "systemd-nspawn",
        "--quiet",
        f"--directory={host.merged}",
        "--boot",
        "--register=no",  # this machine's PID 1 is not systemd: no machined to register with
        "--keep-unit",
        f"--machine={host.name}",
        "--console=passive",
        "--link-journal=no",
        "--resolv-conf=copy-host",
        "--timezone=off",  # the counter role sets Asia/Ho_Chi_Minh itself
        # The package cache: an overlay of the host's own (its own apt lock, since apt
        # never waits for the archive lock) over the pool every lab host shares.
        f"--overlay={apt_cache}:{host.apt_upper}:/var/cache/apt/archives",
    ]
    return spawn(host.name, kind, cgroups.enter(cgroups.prepare(host.name), argv), host.log)
