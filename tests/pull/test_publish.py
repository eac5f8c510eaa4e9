"""`motcua pull publish` on the lab inventory, without the lab (issue #26): each counter's view is
rendered by ansible-playbook, the tree is committed signed (checked with ssh-keygen through git),
the same tree twice makes one commit, no secret is in anything a counter pulls, a secret that a
variable carries unannounced stops the publish with nothing committed, and the pulled tree is a
playbook ansible-playbook accepts with the counter's own inventory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from motcua.pull import publish, wheelhouse
from tests.conftest import ROOT, run

pytestmark = pytest.mark.ansible

COUNTERS = ["ttpv-pc01", "ttpv-pc02", "w25747-pc01", "w25747-pc02", "w26732-pc01", "w26732-pc02", "w26740-pc01",
            "w26740-pc02"]  # fmt: skip
SECRETS = {
    "web/monitoring-password": "monitoring-pw-0123456789abcdef",
    "web/operator-password": "operator-pw-0123456789abcdef",
    "web/viewer-password": "viewer-pw-0123456789abcdef",
    "accounts/initial-secret": "initial-secret-0123456789abcdef",
    "tokens/user-pin": "73105526",
    "tokens/so-pin": "88213307",
}


@pytest.fixture(scope="module")
def lab_home(tmp_path_factory) -> Path:
    """What the lab inventory's lookups read, as `motcua lab up` writes it (no host started)."""
    home = tmp_path_factory.mktemp("lab-home")
    for name, value in SECRETS.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(value + "\n")
    for name in ("ca/ca.pem", "certificates/ca/root.pem", "certificates/ca/issuing.pem"):
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(f"-----BEGIN CERTIFICATE-----\n{name}\n-----END CERTIFICATE-----\n")
    for host in COUNTERS:
        (home / "web" / f"{host}.crt").write_text(f"certificate of {host}\n")
        (home / "web" / f"{host}.key").write_text(f"PRIVATE KEY of {host}: secret-key-material\n")
    (home / "ssh").mkdir()
    (home / "ssh" / "id_ed25519.pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheTest lab\n")
    return home


@pytest.fixture(scope="module")
def signed(tmp_path_factory, lab_home):
    """A state directory published into once (the wheelhouse from the wheels `make venv` fetched)."""
    state = tmp_path_factory.mktemp("pull-state")
    key = state / "signing-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dx-centre", "-f", str(key)], check=True)
    (state / "allowed_signers").write_text("dx-centre " + " ".join((state / "signing-key.pub").read_text().split()[:2]))
    done = motcua("publish", "--state", str(state), "--signing-key", str(key), lab_home=lab_home)
    assert done.returncode == 0, done.stdout + done.stderr
    return state, key, done


def motcua(*args: str, lab_home: Path) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "motcua", "pull", *args], MOTCUA_LAB_HOME=str(lab_home))


def tree_files(repo: Path, ref: str = "refs/heads/main") -> dict[str, bytes]:
    names = subprocess.run(["git", "--git-dir", str(repo), "ls-tree", "-r", "-z", "--name-only", ref],
                           capture_output=True, check=True).stdout.decode().split("\0")  # fmt: skip
    return {n: subprocess.run(["git", "--git-dir", str(repo), "show", f"{ref}:{n}"], capture_output=True,
                              check=True).stdout for n in names if n}  # fmt: skip


def test_the_wheelhouse_pins_are_the_projects_and_the_roles(tmp_path):
    """constraints.txt's versions, the role's default list, and the tar made twice byte for byte."""
    defaults = yaml.safe_load((ROOT / "roles" / "counter_pull" / "defaults" / "main.yml").read_text())
    assert defaults["counter_pull_python_packages"] == wheelhouse.pins()
    wheels = wheelhouse.download(wheelhouse.CACHE, wheelhouse.pins())  # made by `make venv`: no download here
    names = sorted(p.name for p in wheels.glob("*.whl"))
    assert any(n.startswith("ansible_core-") for n in names) and any(n.startswith("passlib-") for n in names)
    first, _ = wheelhouse.ensure(tmp_path / "a", wheelhouse.CACHE)
    second, digest = wheelhouse.ensure(tmp_path / "b", wheelhouse.CACHE)
    assert first.read_bytes() == second.read_bytes()
    assert (tmp_path / "b" / "motcua-pull-wheels.tar.sha256").read_text().split()[0] == digest


def test_a_publish_is_signed_made_once_and_names_the_first_ring(signed, lab_home):
    state, key, done = signed
    # The first commit is what push applied everywhere: every ring starts from it.
    assert "for 8 counters: ring canary, all names it" in done.stdout
    repo = state / "repo.git"
    commit = publish.head(repo, "refs/heads/main")
    assert publish.head(repo, "refs/heads/ring/canary") == publish.head(repo, "refs/heads/ring/all") == commit
    verify = subprocess.run(["git", "--git-dir", str(repo), "-c", "gpg.format=ssh", "-c",
                             f"gpg.ssh.allowedSignersFile={state / 'allowed_signers'}", "verify-commit", "-v", commit],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert verify.returncode == 0 and 'Good "git" signature for dx-centre' in verify.stderr, verify.stderr
    assert (repo / "info" / "refs").is_file() and list((repo / "objects" / "pack").glob("*.pack"))
    assert (state / "wheels" / "motcua-pull-wheels.tar").is_file()
    again = motcua("publish", "--state", str(state), "--signing-key", str(key), lab_home=lab_home)
    assert again.returncode == 0 and "unchanged" in again.stdout, again.stdout + again.stderr
    assert publish.head(repo, "refs/heads/main") == commit


def test_no_secret_is_in_what_the_counters_pull(signed, lab_home):
    state, _, _ = signed
    files = tree_files(state / "repo.git")
    assert "inventory/w26740-pc01.yml" in files and "lib/motcua-exporters.pyz" in files
    assert "roles/counter_accounts/tasks/main.yml" in files and "playbooks/counters.yml" in files
    assert "collections/ansible_collections/community/general/galaxy.yml" in files or any(
        n.startswith("collections/ansible_collections/community/general/") for n in files
    )
    leaked = {name: secret for name, data in files.items() for secret in [*SECRETS.values(), "secret-key-material"]
              if secret.encode() in data}  # fmt: skip
    assert leaked == {}
    view = yaml.safe_load(files["inventory/w26740-pc01.yml"])
    own = view["all"]["hosts"]["w26740-pc01"]
    assert own["counter_accounts_initial_secret"].startswith("{{ lookup('ansible.builtin.file', '/etc/motcua/pull/")
    assert own["motcua_web_tls_key_file"] == "/etc/motcua/pull/secrets/files/motcua_web_tls_key_file"
    assert own["ansible_connection"] == "local" and own["counters_lock"] is False
    # The site's roster part, read and checked by the controller: the PC reads no registry.
    assert [a["username"] for a in own["counter_accounts_by_site"]["26740"]] == ["hoapt", "tungvt"]
    assert "motcua_registry_dir" not in own and not any(k.startswith("counter_pull_") for k in own)
    # Its site's printers and scanners, nothing of other sites.
    assert view["all"]["children"]["printers"]["hosts"] == {"w26740-pr01": None, "w26740-pr02": None}
    assert set(view["all"]["hosts"]) == {"w26740-pc01", "w26740-pr01", "w26740-pr02", "w26740-sc01", "w26740-sc02"}
    ca_copy = own["motcua_trust_ca_files"][0].replace("{{ inventory_dir }}/../", "")
    assert files[ca_copy] == (lab_home / "ca" / "ca.pem").read_bytes() and ca_copy.endswith("/ca.pem")


def test_the_pulled_tree_is_a_playbook_ansible_accepts(signed, tmp_path):
    state, _, _ = signed
    tree = tmp_path / "tree"
    tree.mkdir()
    for name, data in tree_files(state / "repo.git").items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(data)
    lib = tree / "lib"
    env = {"ANSIBLE_CONFIG": str(tree / "ansible.cfg"), "PYTHONPATH": f"{lib}:{lib / 'motcua-exporters.pyz'}"}
    listed = run([str(Path(sys.executable).parent / "ansible-inventory"), "-i", "inventory/w25747-pc02.yml", "--host",
                  "w25747-pc02"], cwd=tree, **env)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["motcua_site"] == "25747"
    checked = run([str(Path(sys.executable).parent / "ansible-playbook"), "--syntax-check", "-i",
                   "inventory/w25747-pc02.yml", "playbooks/counters.yml"], cwd=tree, **env)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_secret_carried_by_another_variable_stops_the_publish(signed, lab_home):
    state, key, _ = signed
    before = publish.head(state / "repo.git", "refs/heads/main")
    carrier = json.dumps({"counter_kiosk_bookmarks": [{"name": "x", "url": SECRETS["accounts/initial-secret"]}]})
    done = motcua("publish", "--state", str(state), "--signing-key", str(key), "-e", carrier, lab_home=lab_home)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "the value of the secret counter_accounts_initial_secret is in counter_kiosk_bookmarks" in done.stderr
    assert "nothing published" in done.stderr
    assert publish.head(state / "repo.git", "refs/heads/main") == before
    assert SECRETS["accounts/initial-secret"] not in done.stderr


def test_a_new_commit_goes_to_the_first_ring_only(signed, lab_home):
    state, key, _ = signed
    repo = state / "repo.git"
    before = publish.head(repo, "refs/heads/ring/all")
    bookmark = json.dumps({"counter_kiosk_bookmarks": [{"name": "lab", "url": "https://127.79.0.20/"}]})
    done = motcua("publish", "--state", str(state), "--signing-key", str(key), "-e", bookmark, lab_home=lab_home)
    assert done.returncode == 0 and "ring canary names it" in done.stdout, done.stdout + done.stderr
    new = publish.head(repo, "refs/heads/main")
    assert new != before and publish.head(repo, "refs/heads/ring/canary") == new
    assert publish.head(repo, "refs/heads/ring/all") == before
    parent = subprocess.run(["git", "--git-dir", str(repo), "rev-parse", f"{new}^"], capture_output=True, text=True)
    assert parent.stdout.strip() == before
    view = yaml.safe_load(tree_files(repo)["inventory/ttpv-pc01.yml"])
    assert view["all"]["hosts"]["ttpv-pc01"]["counter_kiosk_bookmarks"][0]["url"] == "https://127.79.0.20/"


def test_publish_refuses_a_missing_signing_key(signed, lab_home):
    state, _, _ = signed
    done = motcua("publish", "--state", str(state), "--signing-key", str(state / "nope"), lab_home=lab_home)
    assert done.returncode == 2 and "no such signing key" in done.stderr
