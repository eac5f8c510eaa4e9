"""One pull of a counter PC's configuration (issue #26, docs/pull.md): fetch, verify, apply, report.

    python3 motcua-exporters.pyz pull --source URL --branch ring/canary --allowed-signers FILE \\
        --signer dx-centre --work-dir /var/lib/motcua-pull --inventory /etc/motcua/pull/inventory.yml \\
        --textfile /var/lib/prometheus/node-exporter/motcua_pull.prom

1. **The lock** shared with push runs (``--lock-file``, flock): a pull waits for a push to end (up to
   ``--lock-wait``), then gives up and says so; it never runs beside one.
2. **Fetch** the ring's branch from the DX Centre's repository into a bare repository of its own
   (HTTPS: the CA and the credentials file go to git through its environment, which only root
   reads, never its command line).
3. **Verify**: the fetched commit must carry an SSH signature that ``git verify-commit`` accepts
   against ``--allowed-signers`` (the DX Centre's key, rendered by the controller) for ``--signer``.
   Anything else (unsigned, another key, another principal) is refused: nothing is checked out and
   nothing is applied; the run is reported failed with the reason.
4. **Apply**: the commit is checked out (detached) in a work tree, and ``ansible-playbook`` runs
   ``--playbook`` on this PC alone (``-c local``) with its own inventory view; the PLAY RECAP gives
   the ok / changed / failed counts.
5. **Report** for node_exporter's textfile collector, atomically: the last run's time, success and
   reason, the last success's time, the commit applied and the one fetched, the task counts, the
   duration (``motcua_pull_*``).

Every pull applies, new commit or not (ansible-playbook is idempotent: an unchanged PC reports
changed=0, a drifted one is put back). Exit status: 0 applied; 1 failed (the textfile says why); 75
the lock was busy (a push ran): the timer tries again.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..core.exposition import Family, render_family
from ..core.files import write_atomic

NAME = "motcua-pull"
EX_TEMPFAIL = 75
_RECAP = re.compile(r"^(\S+)\s+:\s+(ok=.*)$", re.M)
_COMMIT = re.compile(r"^[0-9a-f]{40}$")

FAMILIES = {
    "run": Family("motcua_pull_last_run_timestamp_seconds", "gauge", "When the last pull ended (Unix time)."),
    "ok": Family("motcua_pull_last_run_success", "gauge", "1 if the last pull fetched, verified and applied, else 0."),
    "reason": Family(
        "motcua_pull_last_run_failure_info",
        "gauge",
        "Why the last pull failed (locked, fetch, unsigned, checkout, apply).",
    ),
    "success": Family("motcua_pull_last_success_timestamp_seconds", "gauge", "When a pull last succeeded (0: never)."),
    "applied": Family(
        "motcua_pull_applied_commit_info", "gauge", "The commit this PC's configuration is from, and its ring."
    ),
    "fetched": Family(
        "motcua_pull_fetched_commit_info", "gauge", "The commit the ring's branch pointed at, and the ring."
    ),
    "tasks": Family("motcua_pull_last_run_tasks", "gauge", "Tasks of the last apply, by result (PLAY RECAP)."),
    "duration": Family("motcua_pull_last_run_duration_seconds", "gauge", "How long the last pull took."),
}


class PullError(Exception):
    """A pull that stops: ``reason`` is its label value, the message says what happened."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class Outcome:
    started: float
    ring: str = ""  # the ring the PC follows (its branch ring/<name>): the alerts compare with the source's
    ended: float = 0.0
    reason: str = ""  # empty: success
    fetched: str = ""
    applied: str = ""
    tasks: dict[str, int] = field(default_factory=dict)
    message: str = ""


def _git(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300):
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)  # fmt: skip


def git_environment(ca_file: Path | None, credentials_file: Path | None) -> dict[str, str]:
    """git's settings for the fetch, as GIT_CONFIG_* variables: out of ``ps`` and of any config file."""
    settings = {"protocol.allow": "never", "protocol.https.allow": "always", "protocol.file.allow": "always",
                "credential.helper": "", "http.followRedirects": "false"}  # fmt: skip
    if ca_file is not None:
        settings["http.sslCAInfo"] = str(ca_file)
    if credentials_file is not None:
        user_password = credentials_file.read_text(encoding="utf-8").strip()
        if ":" not in user_password:
            raise PullError("fetch", f"{credentials_file}: write the credentials as user:password")
        token = base64.b64encode(user_password.encode()).decode()
        settings["http.extraHeader"] = f"Authorization: Basic {token}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
                "GIT_CONFIG_COUNT": str(len(settings))})  # fmt: skip
    for n, (key, value) in enumerate(settings.items()):
        env[f"GIT_CONFIG_KEY_{n}"], env[f"GIT_CONFIG_VALUE_{n}"] = key, value
    return env


def fetch(repo: Path, source: str, branch: str, env: dict[str, str], timeout: float) -> str:
    """The ring's branch fetched into the bare repository ``repo``: its commit."""
    if not (repo / "HEAD").exists():
        made = _git(["init", "--quiet", "--bare", str(repo)], env=env)
        if made.returncode:
            raise PullError("fetch", f"git init {repo}: {made.stderr.strip()}")
    done = _git(["fetch", "--quiet", "--no-tags", "--force", source, f"+refs/heads/{branch}:refs/pull/fetched"],
                cwd=repo, env=env, timeout=timeout)  # fmt: skip
    if done.returncode:
        raise PullError("fetch", f"git fetch {branch}: {done.stderr.strip()[-500:]}")
    commit = _git(["rev-parse", "refs/pull/fetched^{commit}"], cwd=repo, env=env).stdout.strip()
    if not _COMMIT.match(commit):
        raise PullError("fetch", f"the fetched branch {branch} names no commit")
    return commit


def verify(repo: Path, commit: str, allowed_signers: Path, signer: str, env: dict[str, str]) -> None:
    """The commit is signed with an SSH key that ``allowed_signers`` lists for ``signer``: else PullError."""
    check_env = dict(env)
    count = int(check_env["GIT_CONFIG_COUNT"])
    for key, value in (("gpg.format", "ssh"), ("gpg.ssh.allowedSignersFile", str(allowed_signers))):
        check_env[f"GIT_CONFIG_KEY_{count}"], check_env[f"GIT_CONFIG_VALUE_{count}"] = key, value
        count += 1
    check_env["GIT_CONFIG_COUNT"] = str(count)
    done = _git(["verify-commit", "--verbose", commit], cwd=repo, env=check_env)
    said = (done.stdout + done.stderr).strip()
    if done.returncode or not re.search(rf'^Good "git" signature for {re.escape(signer)} with ', said, re.M):
        first = said.splitlines()[-1] if said else "no signature"
        raise PullError("unsigned", f"commit {commit[:12]} is not signed by {signer}: {first}")


def checkout(repo: Path, tree: Path, commit: str, env: dict[str, str]) -> None:
    """The work tree at ``commit`` (detached), its files exactly the commit's."""
    tree.mkdir(parents=True, exist_ok=True)
    base = ["--git-dir", str(repo), "--work-tree", str(tree)]
    for args in (["checkout", "--quiet", "--force", "--detach", commit], ["clean", "--quiet", "-d", "-x", "--force"]):
        done = _git([*base, *args], cwd=tree, env=env)
        if done.returncode:
            raise PullError("checkout", f"git {args[0]} {commit[:12]}: {done.stderr.strip()[-500:]}")


def apply(tree: Path, playbook: str, inventory: Path, limit: str, ansible_playbook: str, timeout: float) -> dict:
    """``ansible-playbook`` of the checked-out ``playbook`` on this PC alone: the PLAY RECAP's counts."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(tree / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0",
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0"}  # fmt: skip
    # The tree's Python (the collection's plugins import it): lib/ and the zip files in it.
    lib = tree / "lib"
    if lib.is_dir():
        env["PYTHONPATH"] = os.pathsep.join([str(lib), *(str(z) for z in sorted(lib.glob("*.pyz")))])
    command = [ansible_playbook, "-i", str(inventory), "-c", "local", "--limit", limit, playbook]
    try:
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise PullError("apply", f"{playbook} ran longer than {timeout:g} s") from None
    except OSError as exc:
        raise PullError("apply", f"{ansible_playbook}: {exc.strerror}") from None
    rows = {m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
            for m in _RECAP.finditer(done.stdout)}  # fmt: skip
    counts = rows.get(limit) or (next(iter(rows.values())) if len(rows) == 1 else {})
    if done.returncode or not counts or counts.get("failed") or counts.get("unreachable"):
        tail = (done.stdout + done.stderr).strip()[-800:]
        raise PullError("apply", f"{playbook} failed (exit {done.returncode}): {tail}")
    return counts


def textfile_text(outcome: Outcome, previous_success: float) -> str:
    ok = not outcome.reason
    success = outcome.ended if ok else previous_success
    parts = [
        render_family(FAMILIES["run"], [({}, outcome.ended)]),
        render_family(FAMILIES["ok"], [({}, 1.0 if ok else 0.0)]),
        render_family(FAMILIES["reason"], [({"reason": outcome.reason}, 1.0)] if not ok else []),
        render_family(FAMILIES["success"], [({}, success)]),
        render_family(FAMILIES["applied"], [({"ring": outcome.ring, "commit": outcome.applied}, 1.0)]
                      if outcome.applied else []),
        render_family(FAMILIES["fetched"], [({"ring": outcome.ring, "commit": outcome.fetched}, 1.0)]
                      if outcome.fetched else []),
        render_family(FAMILIES["tasks"], [({"state": k}, float(outcome.tasks.get(k, 0)))
                                          for k in ("ok", "changed", "failed", "skipped")] if outcome.tasks else []),
        render_family(FAMILIES["duration"], [({}, round(outcome.ended - outcome.started, 3))]),
    ]  # fmt: skip
    return "".join(parts)


def _previous(textfile: Path, name: str, label: str = "") -> str:
    """A value (or, with ``label``, that label's value) the last run wrote into the textfile."""
    try:
        text = textfile.read_text(encoding="utf-8")
    except OSError:
        return ""
    pattern = rf'^{name}\{{(?:[^}}]*,)?{label}="([^"]*)"[^}}]*\}} ' if label else rf"^{name} (\S+)$"
    match = re.search(pattern, text, re.M)
    return match.group(1) if match else ""


def pull(args: argparse.Namespace) -> Outcome:
    """One pull as the module's text describes; the outcome (never raises for a failed pull)."""
    outcome = Outcome(started=time.time(), ring=args.branch.removeprefix("ring/"),
                      applied=_previous(args.textfile, "motcua_pull_applied_commit_info", "commit"))  # fmt: skip
    args.lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(args.lock_file, "a") as lock:  # noqa: PTH123 - the descriptor is what flock takes
        deadline = time.monotonic() + args.lock_wait
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                print(f"{NAME}: lock taken ({args.lock_file})", file=sys.stderr, flush=True)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    outcome.reason, outcome.message = "locked", f"{args.lock_file} is held (a push runs): not now"
                    return outcome
                time.sleep(0.5)
        try:
            repo, tree = args.work_dir / "repo.git", args.work_dir / "tree"
            env = git_environment(args.ca_file, args.credentials_file)
            outcome.fetched = fetch(repo, args.source, args.branch, env, args.timeout)
            verify(repo, outcome.fetched, args.allowed_signers, args.signer, env)
            checkout(repo, tree, outcome.fetched, env)
            outcome.tasks = apply(tree, args.playbook, args.inventory, args.host, args.ansible_playbook, args.timeout)
            outcome.applied = outcome.fetched
            outcome.message = (f"applied {outcome.applied[:12]}: ok={outcome.tasks.get('ok', 0)} "
                               f"changed={outcome.tasks.get('changed', 0)}")  # fmt: skip
        except PullError as exc:
            outcome.reason, outcome.message = exc.reason, str(exc)
        except (OSError, subprocess.SubprocessError) as exc:
            outcome.reason, outcome.message = (
                "fetch" if not outcome.fetched else "apply",
                f"{type(exc).__name__}: {exc}",
            )
        finally:
            # Said before it is so: a push that takes the lock next starts after this line (the journal).
            print(f"{NAME}: lock released", file=sys.stderr, flush=True)
            fcntl.flock(lock, fcntl.LOCK_UN)
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pull", description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="the DX Centre's repository (https://..., or a path)")
    parser.add_argument("--branch", required=True, help="the ring's branch, e.g. ring/canary")
    parser.add_argument("--allowed-signers", type=Path, required=True, help="ssh allowed_signers of the DX Centre")
    parser.add_argument("--signer", required=True, help="the principal the commits must be signed by")
    parser.add_argument("--work-dir", type=Path, default=Path("/var/lib/motcua-pull"))
    parser.add_argument("--inventory", type=Path, required=True, help="this PC's own inventory view")
    parser.add_argument("--host", default=os.uname().nodename, help="this PC's inventory name (default: hostname)")
    parser.add_argument("--playbook", default="playbooks/counters.yml")
    parser.add_argument("--ansible-playbook", default="ansible-playbook", help="the pinned Ansible's ansible-playbook")
    parser.add_argument("--ca-file", type=Path, help="the CA of the repository's HTTPS certificate")
    parser.add_argument("--credentials-file", type=Path, help="user:password for the repository (root only)")
    parser.add_argument("--lock-file", type=Path, default=Path("/run/lock/motcua-provision.lock"))
    parser.add_argument("--lock-wait", type=float, default=60.0, help="seconds to wait for a push to end")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds for the fetch, and for the apply")
    parser.add_argument("--textfile", type=Path, required=True, help="node_exporter textfile to write")
    args = parser.parse_args(argv)
    outcome = pull(args)
    outcome.ended = time.time()
    previous = _previous(args.textfile, "motcua_pull_last_success_timestamp_seconds")
    try:
        write_atomic(args.textfile, textfile_text(outcome, float(previous or 0)))
    except OSError as exc:
        print(f"{NAME}: {args.textfile}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"{NAME}: {outcome.message}", file=sys.stderr if outcome.reason else sys.stdout)
    if outcome.reason == "locked":
        return EX_TEMPFAIL
    return 1 if outcome.reason else 0
