"""Every backup of a device is a commit in its site's git repository (as Oxidized keeps configs).

``<backup root>/history/<site>/`` is a git repository holding each of the
site's devices as ``<device>.cfg``. After a backup run, every site whose
configs differ from its last commit gets one commit: the author is the
operator who ran it, the message names the reason, the run and the devices
that changed. ``git log`` then shows who changed what and when;
``motcua netgear history DEVICE`` prints it per device.

The repositories hold password hashes, like the backups: mode 0700.
"""

from __future__ import annotations

import getpass
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..durable import write_atomic
from .devices import NetgearError

HISTORY = "history"
_FIELD = "\x1f"
_RECORD = "\x1e"


def operator(env: dict[str, str] | None = None) -> str:
    """Who runs this: $MOTCUA_OPERATOR, else the user behind sudo, else the login name."""
    env = dict(os.environ if env is None else env)
    for name in ("MOTCUA_OPERATOR", "SUDO_USER"):
        if env.get(name):
            return env[name]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _git(repo: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    base = {
        "LC_ALL": "C",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(repo),  # no user config
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
    }
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false", *args],
        env={**base, **(env or {})}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if check and done.returncode != 0:
        raise NetgearError(f"git {args[0]} in {repo}: {(done.stderr or done.stdout).strip()[-300:]}")
    return done.stdout


def site_repo(root: Path, site: str) -> Path:
    return root / HISTORY / site


def _ensure(repo: Path) -> None:
    if (repo / ".git").is_dir():
        return
    repo.mkdir(mode=0o700, parents=True, exist_ok=True)
    repo.parent.chmod(0o700)
    _git(repo, "init", "--quiet", "--initial-branch=main")


def record(root: Path, site: str, configs: dict[str, str], message: str, author: str) -> str | None:
    """Commit the site's device configs (name -> text) as ``author``; the new commit, or None if nothing changed."""
    repo = site_repo(root, site)
    _ensure(repo)
    for name, text in sorted(configs.items()):
        write_atomic(repo / f"{name}.cfg", text, mode=0o600)
    _git(repo, "add", "--", *(f"{name}.cfg" for name in sorted(configs)))
    changed = _git(repo, "diff", "--cached", "--name-only").split()
    if not changed:
        return None
    devices = ", ".join(Path(name).stem for name in changed)
    identity = {
        "GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": f"{author}@motcua",
        "GIT_COMMITTER_NAME": "motcua", "GIT_COMMITTER_EMAIL": "motcua@motcua",
    }  # fmt: skip
    _git(repo, "commit", "--quiet", "-m", f"{message}: {devices}", env=identity)
    return _git(repo, "rev-parse", "HEAD").strip()


@dataclass(frozen=True)
class Change:
    commit: str
    when: str  # ISO 8601, the commit's author date
    author: str
    message: str
    added: int
    removed: int


def history(root: Path, site: str, device: str, limit: int = 20) -> list[Change]:
    """The commits that changed one device's config, newest first."""
    repo = site_repo(root, site)
    if not (repo / ".git").is_dir():
        return []
    out = _git(repo, "log", f"-n{limit}", "--numstat", f"--format={_RECORD}%H{_FIELD}%aI{_FIELD}%an{_FIELD}%s",
               "--", f"{device}.cfg")  # fmt: skip
    changes = []
    for chunk in out.split(_RECORD)[1:]:
        head, _, stats = chunk.partition("\n")
        commit, when, author, message = head.split(_FIELD)
        counts = re.search(r"^(\d+)\t(\d+)\t", stats, re.M)
        added, removed = (int(counts.group(1)), int(counts.group(2))) if counts else (0, 0)
        changes.append(Change(commit, when, author, message, added, removed))
    return changes


def show(root: Path, site: str, device: str, commit: str) -> str:
    """What one commit changed in one device's config (a unified diff)."""
    if not re.fullmatch(r"[0-9a-f]{4,40}", commit):
        raise NetgearError(f"{commit!r} is not a commit id")
    return _git(site_repo(root, site), "show", "--format=%H %aI %an%n%s%n", commit, "--", f"{device}.cfg")
