"""A counter's pull of its configuration (motcua_exporters.pull.apply, issue #26) with real git, real SSH
signatures (ssh-keygen) and a real ansible-playbook run on this machine (-c local): a signed commit is
applied and reported; an unsigned or wrongly signed one is refused with nothing changed; a push's lock
makes a pull wait, then give up; a second pull changes nothing."""

from __future__ import annotations

import fcntl
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from motcua_exporters.pull import apply as pull

SIGNER = "dx-centre"
GIT_ID = ["-c", "user.name=Trung tâm CĐS", "-c", "user.email=cds@lab.motcua.invalid"]


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *GIT_ID, *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def ssh_key(path: Path, comment: str) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    return path


@pytest.fixture
def world(tmp_path):
    """The DX Centre's repository (a bare one the PC fetches from, a work copy that commits to it), its
    signing key and the PC's allowed_signers, another key, and the PC's inventory and paths."""
    key, other = ssh_key(tmp_path / "dx-centre", SIGNER), ssh_key(tmp_path / "someone-else", "someone")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"{SIGNER} {' '.join((tmp_path / 'dx-centre.pub').read_text().split()[:2])}\n")
    served = tmp_path / "served.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(served), cwd=tmp_path)
    work = tmp_path / "work"
    git("init", "--quiet", "--initial-branch=ring/canary", str(work), cwd=tmp_path)
    (work / "playbooks").mkdir()
    (work / "ansible.cfg").write_text("[defaults]\ninterpreter_python = auto_silent\nretry_files_enabled = false\n")
    out = tmp_path / "pc" / "motcua-config"
    out.parent.mkdir()
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(f"all:\n  hosts:\n    pc01:\n      ansible_python_interpreter: {sys.executable}\n"
                         f"      out_file: {out}\n")  # fmt: skip
    return {"tmp": tmp_path, "key": key, "other": other, "allowed": allowed, "served": served, "work": work,
            "out": out, "inventory": inventory, "textfile": tmp_path / "textfile" / "motcua_pull.prom"}  # fmt: skip


def publish(world: dict, content: str, key: Path | None) -> str:
    """A commit of the playbook (writing ``content`` on the PC), signed with ``key`` (None: unsigned),
    pushed to the ring's branch of the served repository: its id."""
    work = world["work"]
    (work / "playbooks" / "counters.yml").write_text(
        "---\n- name: Counter\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        f'    - name: Config\n      ansible.builtin.copy:\n        content: "{content}\\n"\n'
        '        dest: "{{ out_file }}"\n        mode: "0644"\n'
    )
    git("add", "-A", cwd=work)
    sign = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "commit", "-S"] if key else ["commit"]
    git(*sign, "--quiet", "-m", content, cwd=work)
    git("push", "--quiet", "--force", str(world["served"]), "HEAD:refs/heads/ring/canary", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def run_pull(world: dict, *extra: str) -> tuple[int, dict[str, str]]:
    args = ["--source", str(world["served"]), "--branch", "ring/canary", "--allowed-signers", str(world["allowed"]),
            "--signer", SIGNER, "--work-dir", str(world["tmp"] / "state"), "--inventory", str(world["inventory"]),
            "--host", "pc01", "--ansible-playbook", shutil.which("ansible-playbook") or "ansible-playbook",
            "--lock-file", str(world["tmp"] / "provision.lock"), "--textfile", str(world["textfile"]),
            *extra]  # fmt: skip
    code = pull.main(args)
    text = world["textfile"].read_text()
    subprocess.run(["promtool", "check", "metrics"], input=text, text=True, check=True, capture_output=True)
    samples = dict(re.findall(r"^(motcua_pull_\w+(?:\{[^}]*\})?) (\S+)$", text, re.M))
    return code, samples


def test_a_signed_commit_is_applied_and_a_second_pull_changes_nothing(world):
    first = publish(world, "v1", world["key"])
    code, samples = run_pull(world)
    assert code == 0 and world["out"].read_text() == "v1\n"
    assert samples["motcua_pull_last_run_success"] == "1"
    assert samples[f'motcua_pull_applied_commit_info{{ring="canary",commit="{first}"}}'] == "1"
    assert samples['motcua_pull_last_run_tasks{state="changed"}'] == "1"
    assert float(samples["motcua_pull_last_success_timestamp_seconds"]) > 0
    code, samples = run_pull(world)
    assert code == 0 and samples['motcua_pull_last_run_tasks{state="changed"}'] == "0"
    # A drifted PC is put back by the next pull, even with no new commit.
    world["out"].write_text("changed by hand\n")
    assert run_pull(world)[0] == 0 and world["out"].read_text() == "v1\n"
    # A new signed commit: applied.
    second = publish(world, "v2", world["key"])
    code, samples = run_pull(world)
    assert code == 0 and world["out"].read_text() == "v2\n"
    assert f'motcua_pull_applied_commit_info{{ring="canary",commit="{second}"}}' in samples


@pytest.mark.parametrize("signer", ["unsigned", "another key"])
def test_a_commit_not_signed_by_the_dx_centre_is_refused_and_nothing_changes(world, signer):
    good = publish(world, "v1", world["key"])
    assert run_pull(world)[0] == 0
    success = run_pull(world)[1]["motcua_pull_last_success_timestamp_seconds"]
    bad = publish(world, "tampered", None if signer == "unsigned" else world["other"])
    code, samples = run_pull(world)
    assert code == 1 and world["out"].read_text() == "v1\n"  # nothing applied
    assert samples["motcua_pull_last_run_success"] == "0"
    assert samples['motcua_pull_last_run_failure_info{reason="unsigned"}'] == "1"
    assert samples[f'motcua_pull_fetched_commit_info{{ring="canary",commit="{bad}"}}'] == "1"  # what it refused
    assert samples[f'motcua_pull_applied_commit_info{{ring="canary",commit="{good}"}}'] == "1"  # what the PC still runs
    assert samples["motcua_pull_last_success_timestamp_seconds"] == success
    tree = world["tmp"] / "state" / "tree" / "playbooks" / "counters.yml"
    assert "tampered" not in tree.read_text()  # not even checked out


def test_a_push_holding_the_lock_makes_a_pull_wait_then_give_up(world):
    publish(world, "v1", world["key"])
    lock_file = world["tmp"] / "provision.lock"
    with open(lock_file, "a") as held:  # noqa: PTH123
        fcntl.flock(held, fcntl.LOCK_EX)  # a push runs
        code, samples = run_pull(world, "--lock-wait", "1")
    assert code == pull.EX_TEMPFAIL and not world["out"].exists()
    assert samples['motcua_pull_last_run_failure_info{reason="locked"}'] == "1"
    assert run_pull(world)[0] == 0 and world["out"].read_text() == "v1\n"  # the lock free: the next one applies


def test_an_unreachable_source_and_a_failing_playbook_are_reported(world, tmp_path):
    publish(world, "v1", world["key"])
    code, samples = run_pull(world, "--source", str(tmp_path / "nowhere.git"))
    assert code == 1 and samples['motcua_pull_last_run_failure_info{reason="fetch"}'] == "1"
    world["inventory"].write_text(world["inventory"].read_text().replace(str(world["out"]), "/proc/no/such/dir/x"))
    code, samples = run_pull(world)
    assert code == 1 and samples['motcua_pull_last_run_failure_info{reason="apply"}'] == "1"
    assert "motcua_pull_applied_commit_info" not in " ".join(samples)  # never applied
