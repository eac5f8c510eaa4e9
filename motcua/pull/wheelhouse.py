"""The pinned Ansible for the counters, as one tar of wheels the DX Centre serves (docs/pull.md).

A counter in production reaches no public package index: the counter_pull role fetches this tar
from the DX Centre's pull source, checks its sha256 and installs from it with ``--no-index``. The
wheels are the project's own pins (constraints.txt) of ansible-core and what it needs, mitogen (a
pull of the counters' playbook on a lab PC: 36 s without it, 10 s with it), and of what
the project's collection needs on the PC (passlib for the officials' initial passwords, bcrypt for
the locked plane's web config), for Debian 12's Python 3.11 on x86-64. The tar is made the same
way every time (names sorted, no dates, no owners), so the same wheels give the same checksum and
a counter downloads nothing again.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import tarfile
from pathlib import Path

from ..errors import ToolError

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints.txt"
# Where the wheels are downloaded, at set-up (make venv runs this module), never during a test.
CACHE = ROOT / ".cache" / "pull-wheels"
# Debian 12's python3 (3.11) on x86-64, glibc 2.36.
PLATFORM = ("--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
            "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64")  # fmt: skip


# What the counter's venv holds (each with its dependencies), at constraints.txt's versions.
PACKAGES = ("ansible-core", "mitogen", "passlib", "bcrypt")
TAR = "motcua-pull-wheels.tar"


def pins() -> list[str]:
    """``name==version`` of each of PACKAGES, as constraints.txt pins it."""
    text = CONSTRAINTS.read_text(encoding="utf-8")
    out = []
    for name in PACKAGES:
        match = re.search(rf"^{re.escape(name)}==(\S+)$", text, re.M | re.I)
        if not match:
            raise ToolError(f"{CONSTRAINTS}: no {name} pin")
        out.append(f"{name}=={match.group(1)}")
    return out


def deterministic_tar(files: list[Path]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path in sorted(files, key=lambda p: p.name):
            info = tarfile.TarInfo(path.name)
            info.size, info.mode, info.mtime, info.uid, info.gid = path.stat().st_size, 0o644, 0, 0, 0
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    return buffer.getvalue()


def download(cache_dir: Path, wanted: list[str], progress=print) -> Path:
    """The wheels of ``wanted`` (with their dependencies) in a directory of ``cache_dir`` named by
    them; downloaded from the package index once (``.complete`` marks a whole download)."""
    wheels = cache_dir / hashlib.sha256(" ".join(wanted).encode()).hexdigest()[:12]
    if (wheels / ".complete").is_file():
        return wheels
    wheels.mkdir(parents=True, exist_ok=True)
    progress(f"pull: the wheelhouse of {', '.join(wanted)} into {wheels} (pip download, once)")
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                           "--only-binary=:all:", *PLATFORM, "-c", str(CONSTRAINTS), *wanted,
                           "-d", str(wheels)], capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode:
        raise ToolError(f"pip download of {', '.join(wanted)} failed: {done.stderr.strip()[-600:]}")
    (wheels / ".complete").write_text("\n".join(wanted) + "\n", encoding="utf-8")
    return wheels


def ensure(out_dir: Path, cache_dir: Path, progress=print) -> tuple[Path, str]:
    """``out_dir/motcua-pull-wheels.tar`` and its ``.sha256`` (made when missing or when the pins
    changed: ``.pins`` beside them says which); (tar, sha256)."""
    wanted = pins()
    tar = out_dir / TAR
    digest_file, pins_file = tar.with_name(TAR + ".sha256"), tar.with_name(TAR + ".pins")
    if tar.is_file() and digest_file.is_file() and pins_file.is_file() and pins_file.read_text().split() == wanted:
        return tar, digest_file.read_text(encoding="utf-8").split()[0]
    wheels = download(cache_dir, wanted, progress)
    data = deterministic_tar(sorted(wheels.glob("*.whl")))
    digest = hashlib.sha256(data).hexdigest()
    out_dir.mkdir(parents=True, exist_ok=True)
    tar.write_bytes(data)
    digest_file.write_text(f"{digest}  {tar.name}\n", encoding="utf-8")
    pins_file.write_text("\n".join(wanted) + "\n", encoding="utf-8")
    return tar, digest


if __name__ == "__main__":  # make venv: the wheels, while the package index is reachable
    download(CACHE, pins())
