"""The lab's images: Debian 12 made once with debootstrap, and the counter PCs' layer over it.

Both are cached outside the repository. The cache key covers everything that
shapes them (suite, packages, mirror, set-up steps), so a change rebuilds them
and an unchanged one is reused.

The counters' layer holds the packages the counter roles install, unpacked
once (as the DX Centre's golden image for counter PCs would hold them) rather
than by each of the lab's counters on its first provisioning: eight dpkg runs
side by side on two cores took about four minutes of a fresh lab's first
`playbooks/counters.yml`. The services those packages enable are disabled in
the layer: each role enables and starts its own once it has configured it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

SUITE = "bookworm"
# python3-apt: Ansible's apt module needs it; installing it on first use would race
# for the shared package cache's lock when several lab hosts provision at once.
PACKAGES = (
    "openssh-server",
    "python3",
    "python3-apt",
    "sudo",
    "iproute2",
    "systemd",
    "systemd-sysv",
    "dbus",
    "ca-certificates",
)
# Bump when the set-up steps below change.
RECIPE_VERSION = "2"
# Units that make no sense in a lab container or that would take apt's lock at random times.
MASKED_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "systemd-networkd-wait-online.service",
    "getty@tty1.service",
)
DEFAULT_MIRROR = "http://deb.debian.org/debian"

# What the counters' roles install with the lab's settings (counter_base, counter_peripherals, counter_pull,
# counter_token with SoftHSM, counter_kiosk, counter_monitoring, motcua_exporter, ward_certificates);
# tests/lab/test_image.py checks this list against the roles both ways.
COUNTER_PACKAGES = (
    "ca-certificates",
    "chrony",
    "cups",
    "cups-client",
    "cups-filters",
    "firefox-esr",
    "fonts-dejavu-core",
    "fonts-liberation2",
    "ghostscript",
    "git",
    "gnutls-bin",
    "libsane1",
    "locales",
    "nftables",
    "opensc",
    "opensc-pkcs11",
    "p11-kit",
    "pcscd",
    "prometheus-node-exporter",
    "python3-bcrypt",
    "python3-cryptography",
    "python3-prometheus-client",
    "python3-venv",
    "python3-yaml",
    "sane-utils",
    "softhsm2",
    "unattended-upgrades",
)
# Bump when the layer's set-up steps change.
LAYER_RECIPE_VERSION = "2"


def host_mirror() -> str:
    """The Debian mirror this machine's apt uses, so the lab reaches what the host reaches."""
    override = os.environ.get("MOTCUA_LAB_MIRROR")
    if override:
        return override
    candidates = [*sorted(Path("/etc/apt/sources.list.d").glob("*.sources")), Path("/etc/apt/sources.list")]
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        for match in re.finditer(r"(?:URIs:\s*|^deb\s+(?:\[[^\]]*\]\s+)?)(\S+/debian)/?\s", text, re.M):
            return match.group(1)
    return DEFAULT_MIRROR


def image_key(mirror: str) -> str:
    text = "|".join([SUITE, ",".join(PACKAGES), mirror, RECIPE_VERSION, ",".join(MASKED_UNITS)])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def image_path(cache: Path, mirror: str | None = None) -> Path:
    return cache / "images" / f"{SUITE}-{image_key(mirror or host_mirror())}" / "rootfs"


def ensure_image(cache: Path, progress=print) -> Path:
    """Return the cached image's root, building it first if needed (~1-2 min)."""
    mirror = host_mirror()
    rootfs = image_path(cache, mirror)
    if (rootfs.parent / "complete").exists():
        return rootfs
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed (make lab-deps installs it)")
    building = rootfs.parent.with_name(rootfs.parent.name + f".building-{os.getpid()}")
    if building.exists():
        shutil.rmtree(building)
    target = building / "rootfs"
    target.mkdir(parents=True)
    started = time.monotonic()
    progress(f"lab image: debootstrap {SUITE} from {mirror} into {target.parent} (once; ~1-2 min)")
    log = building / "debootstrap.log"
    with log.open("wb") as out:
        result = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(target),
                mirror,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError("debootstrap failed:\n" + "\n".join(tail))
    _configure(target, mirror)
    progress("lab image: apt-get update inside the image (so lab hosts install without it)")
    subprocess.run(["chroot", str(target), "apt-get", "update", "-qq"], check=True)
    subprocess.run(["chroot", str(target), "apt-get", "clean"], check=True)
    (building / "complete").write_text(f"built in {time.monotonic() - started:.0f} s\n")
    rootfs.parent.parent.mkdir(parents=True, exist_ok=True)
    if rootfs.parent.exists():  # another build finished first
        shutil.rmtree(building)
    else:
        building.rename(rootfs.parent)
    progress(f"lab image: ready in {time.monotonic() - started:.0f} s at {rootfs}")
    prune_images(cache, keep=rootfs.parent, progress=progress)
    return rootfs


def prune_images(cache: Path, keep: Path, progress=print) -> None:
    """Remove images of older recipes that no mounted lab host uses."""
    _prune(cache / "images", keep, progress)


def _prune(folder: Path, keep: Path, progress=print) -> None:
    mounts = Path("/proc/self/mountinfo").read_text()
    for old in folder.iterdir():
        if old == keep or ".building-" in old.name or str(old) in mounts:
            continue
        shutil.rmtree(old)
        progress(f"lab image: removed the outdated {folder.name[:-1]} {old.name}")


def _configure(root: Path, mirror: str) -> None:
    security = mirror.rsplit("/", 1)[0] + "/debian-security"
    (root / "etc/apt/sources.list").write_text(
        f"deb {mirror} {SUITE} main\ndeb {mirror} {SUITE}-updates main\ndeb {security} {SUITE}-security main\n"
    )
    # Keep downloaded packages: /var/cache/apt/archives is the lab's shared cache.
    (root / "etc/apt/apt.conf.d/10motcua-lab").write_text(
        'Binary::apt::APT::Keep-Downloaded-Packages "true";\nAPT::Install-Recommends "false";\n'
    )
    # Per-host identity is written when a host is created, never shared.
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/machine-id").write_text("")
    (root / "etc/hostname").write_text("localhost\n")
    journald = root / "etc/systemd/journald.conf.d"
    journald.mkdir(parents=True, exist_ok=True)
    (journald / "10-motcua-lab.conf").write_text("[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\n")
    # Keep each user's systemd manager once started. With the default (stop it
    # 10 s after the user's last session), a login that arrives while it is
    # stopping waits for the stop to time out inside a container: SSH sessions
    # hung for ~90 s when one Ansible run followed another within seconds.
    logind = root / "etc/systemd/logind.conf.d"
    logind.mkdir(parents=True, exist_ok=True)
    (logind / "10-motcua-lab.conf").write_text("[Login]\nUserStopDelaySec=infinity\n")
    for unit in MASKED_UNITS:
        link = root / "etc/systemd/system" / unit
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to("/dev/null")


def layer_path(cache: Path, base: Path) -> Path:
    """The counters' layer over the image ``base``: an overlay upper directory, used as a lower one."""
    text = "|".join([str(base), ",".join(COUNTER_PACKAGES), LAYER_RECIPE_VERSION])
    return cache / "layers" / f"counters-{hashlib.sha256(text.encode()).hexdigest()[:12]}" / "upper"


def ensure_counter_layer(cache: Path, base: Path, apt_cache: Path, progress=print) -> Path:
    """Return the counters' layer over ``base``, building it first if needed (~1-2 min).

    apt-get runs once in a systemd-nspawn container (no boot, no extra capabilities) over an
    overlay of the image; the downloaded packages go to the lab's shared pool ``apt_cache``.
    """
    layer = layer_path(cache, base)
    if (layer.parent / "complete").exists():
        return layer
    building = layer.parent.with_name(layer.parent.name + f".building-{os.getpid()}")
    if building.exists():
        shutil.rmtree(building)
    upper, work, merged = building / "upper", building / "work", building / "merged"
    for path in (upper, work, merged):
        path.mkdir(parents=True)
    started = time.monotonic()
    progress(f"lab image: the counters' layer, {len(COUNTER_PACKAGES)} packages into {building} (once; ~1-2 min)")
    apt_cache.mkdir(parents=True, exist_ok=True)
    (apt_cache / "partial").mkdir(exist_ok=True)
    os.chown(apt_cache / "partial", *apt_user_ids(base))
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={base},upperdir={upper},workdir={work}",
                    str(merged)], check=True, capture_output=True, text=True)  # fmt: skip
    try:
        policy = merged / "usr/sbin/policy-rc.d"  # no service starts while packages are unpacked
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        enabled_before = _enabled_links(merged)
        log = building / "apt.log"
        with log.open("wb") as out:
            result = subprocess.run(
                [
                    "systemd-nspawn",
                    "--quiet",
                    "--register=no",
                    "--keep-unit",
                    f"--directory={merged}",
                    "--resolv-conf=copy-host",
                    "--timezone=off",
                    f"--bind={apt_cache}:/var/cache/apt/archives",
                    "--setenv=DEBIAN_FRONTEND=noninteractive",
                    *("apt-get", "install", "-y", "-q", "--no-install-recommends", *COUNTER_PACKAGES),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        if result.returncode != 0:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError("the counters' layer: apt-get install failed:\n" + "\n".join(tail))
        disabled = sorted(_enabled_links(merged) - enabled_before)
        for link in disabled:  # what `systemctl disable` removes (aliases too): the roles enable their own
            (merged / link).unlink()
        policy.unlink()
    finally:
        subprocess.run(["umount", str(merged)], check=True, capture_output=True, text=True)
    for name in ("etc/resolv.conf", "etc/hostname"):  # nspawn's; each host writes its own
        target = upper / name
        if target.is_file() or target.is_symlink():
            target.unlink()
    shutil.rmtree(work)
    merged.rmdir()
    units = ", ".join(sorted({Path(link).name for link in disabled})) or "none"
    (building / "complete").write_text(f"built in {time.monotonic() - started:.0f} s\nunits disabled: {units}\n")
    if layer.parent.exists():  # another build finished first
        shutil.rmtree(building)
    else:
        building.rename(layer.parent)
    progress(f"lab image: the counters' layer ready in {time.monotonic() - started:.0f} s (units disabled until "
             f"their role configures them: {units})")  # fmt: skip
    _prune(cache / "layers", keep=layer.parent, progress=progress)
    return layer


def _enabled_links(root: Path) -> set[str]:
    """The symlinks that make units enabled: every link under /etc/systemd/system but masks, relative to root.

    Aliases count: `systemctl is-enabled chrony` says "enabled" while the alias chronyd.service is there,
    even with no link in any ``*.wants``; Ansible's systemd_service then sees nothing to enable, and the
    unit never starts at boot. Removing them all is what `systemctl disable` does.
    """
    system = root / "etc/systemd/system"
    return {
        str(link.relative_to(root))
        for link in system.rglob("*")
        if link.is_symlink() and str(link.readlink()) != "/dev/null"
    }


def apt_user_ids(rootfs: Path) -> tuple[int, int]:
    """uid/gid of the image's ``_apt`` user, which downloads into the shared cache."""
    for line in (rootfs / "etc/passwd").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == "_apt":
            return int(parts[2]), int(parts[3])
    return 0, 0


if __name__ == "__main__":  # pragma: no cover - manual use
    print(ensure_image(Path(sys.argv[1] if len(sys.argv) > 1 else "/var/cache/motcua-lab")))
