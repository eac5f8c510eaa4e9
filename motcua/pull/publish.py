"""The controller's side of pull mode (docs/pull.md): the tree the counters pull, signed, ring by ring.

``motcua pull publish`` renders every counter's own view of the inventory (playbooks/pull_render.yml:
evaluated on the controller, its secrets left out), makes the tree a counter applies (the counters'
playbook and roles, the collections they call, the exporters' zip file, one inventory file per
counter and the public files its view names), commits it, signed with the DX Centre's SSH key, into
a bare repository, and moves the first ring's branch to it (every ring's, the first time: that
commit is what push has just applied everywhere). The repository is what the DX Centre's
hosts serve (git's "dumb" HTTP: static files, so ``update-server-info`` runs after every change).

A publish that makes the same tree as the last commit makes no commit (and moves no ring): a
counter that pulls it again changes nothing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import ToolError
from ..monitoring.bundle import bundle_bytes
from . import wheelhouse

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = "playbooks/counters.yml"
RENDER_PLAYBOOK = "playbooks/pull_render.yml"
# What playbooks/counters.yml runs (a test checks the pulled tree passes --syntax-check).
ROLES = ("counter_base", "counter_peripherals", "counter_token", "counter_kiosk", "counter_accounts",
         "counter_remote_support", "motcua_web", "counter_monitoring", "motcua_exporter")  # fmt: skip
# The collections the counter roles call beside ansible.builtin, from the pinned `ansible` package.
COLLECTIONS = ("ansible/posix", "community/crypto", "community/general")
OWN_COLLECTION = "collections/ansible_collections/motcua/ops"
# The project's Python beside the roles (the collection's plugins import the motcua package, which
# imports motcua_exporters): the pull puts lib/ and the zip file on PYTHONPATH. The view's
# motcua_exporter_bundle names the zip file (counter_pull_view_settings).
LIB = "lib"
BUNDLE = "lib/motcua-exporters.pyz"
BRANCH = "main"

# The pulled tree's ansible.cfg: the project's settings the roles rely on, for one PC applying to
# itself (no controller-side strategy, fact cache or SSH settings).
ANSIBLE_CFG = """\
# Written by motcua pull publish: a counter PC applying its own configuration (docs/pull.md).
[defaults]
roles_path = roles
collections_path = ./collections
collections_scan_sys_path = false
inject_facts_as_vars = false
interpreter_python = /usr/bin/python3
force_handlers = true
retry_files_enabled = false
callback_result_format = yaml
gathering = smart
forks = 1
# mitogen runs the modules in one interpreter: a pull of the counters' playbook took 36 s on a lab
# PC with Ansible's own strategy, 10 s with this one (docs/pull.md).
strategy = motcua.ops.mitogen_linear
deprecation_warnings = false

[inventory]
enable_plugins = ansible.builtin.yaml
any_unparsed_is_failed = true
"""

README = """\
# What the counter PCs pull (motcua-ops, docs/pull.md)

Written and signed by `motcua pull publish` on the DX Centre's controller; do not edit. A counter
checks the commit's SSH signature, then runs `ansible-playbook -c local -i inventory/<its name>.yml
{playbook} --limit <its name>`. Its secrets are not here: the counter_pull role put them on the PC.
"""


@dataclass(frozen=True)
class Published:
    commit: str
    new: bool  # False: the tree was the same as the last commit's (nothing committed)
    counters: int
    ring: str  # the rings whose branches now name the commit


def _git(repo: Path, args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    base.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_TERMINAL_PROMPT": "0"})
    done = subprocess.run(["git", "--git-dir", str(repo), *args], env={**base, **(env or {})}, cwd=cwd,
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode:
        raise ToolError(f"git {args[0]}: {done.stderr.strip()[-600:]}")
    return done.stdout.strip()


def _ansible_playbook() -> str:
    """The venv's ansible-playbook (the pinned one), else the first on PATH."""
    beside = Path(sys.executable).parent / "ansible-playbook"
    return str(beside) if beside.is_file() else "ansible-playbook"


def render(inventory: Path, out: Path, ansible_playbook: str | None = None, extra_vars: list[str] = ()) -> dict:
    """Every counter's view (playbooks/pull_render.yml on the controller; it connects to no counter)."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    command = [ansible_playbook or _ansible_playbook(), "-i", str(inventory), str(ROOT / RENDER_PLAYBOOK),
               *(a for e in extra_vars for a in ("-e", e)),
               "-e", json.dumps({"counter_pull_render_out": str(out)})]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        failed = [line for line in done.stdout.splitlines() if line.startswith(("fatal:", "[ERROR]"))]
        raise ToolError("the render of the counters' views failed (nothing published):\n"
                        + "\n".join(failed[:10] or done.stdout.splitlines()[-20:]))  # fmt: skip
    return json.loads(out.read_text(encoding="utf-8"))


def _copy_tracked(paths: list[str], stage: Path) -> None:
    """The project's files under ``paths`` as git tracks them (no caches, no local leftovers)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--", *paths], cwd=ROOT, capture_output=True, check=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        source, dest = ROOT / name, stage / name
        if source.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)


def _collections_root() -> Path:
    spec = importlib.util.find_spec("ansible_collections")
    if spec is None or not spec.submodule_search_locations:
        raise ToolError("the pinned `ansible` package (its collections) is not installed: make venv")
    for location in spec.submodule_search_locations:
        if all((Path(location) / c).is_dir() for c in COLLECTIONS):
            return Path(location)
    raise ToolError(f"the collections {', '.join(COLLECTIONS)} are not all installed: make venv")


def host_inventory(host: str, view: dict) -> dict:
    """One counter's inventory file: the counter in its groups, with the site's printers and scanners."""
    hosts = {host: {**view["view"]["vars"], **view["settings"]}}
    members: dict[str, list[str]] = {group: [host] for group in view["groups"]}
    for peer, (groups, address) in sorted(view["peers"].items()):
        hosts[peer] = {"motcua_address": address}
        for group in groups:
            members.setdefault(group, []).append(peer)
    children = {group: {"hosts": dict.fromkeys(names)} for group, names in sorted(members.items())}
    return {"all": {"hosts": hosts, "children": children}}


def build_tree(views: dict, stage: Path) -> None:
    """The tree a counter applies (module text): into the empty directory ``stage``."""
    _copy_tracked([PLAYBOOK, *(f"roles/{r}" for r in ROLES), OWN_COLLECTION, "motcua"], stage)
    (stage / LIB).mkdir()
    (stage / "motcua").rename(stage / LIB / "motcua")
    source = _collections_root()
    for name in COLLECTIONS:
        shutil.copytree(source / name, stage / "collections" / "ansible_collections" / name,
                        ignore=shutil.ignore_patterns("__pycache__", "tests"))  # fmt: skip
    (stage / BUNDLE).parent.mkdir(parents=True, exist_ok=True)
    (stage / BUNDLE).write_bytes(bundle_bytes())
    (stage / "ansible.cfg").write_text(ANSIBLE_CFG, encoding="utf-8")
    (stage / "README.md").write_text(README.format(playbook=PLAYBOOK), encoding="utf-8")
    (stage / "inventory").mkdir()
    for host, view in sorted(views.items()):
        text = yaml.safe_dump(host_inventory(host, view), allow_unicode=True, sort_keys=True, width=120)
        (stage / "inventory" / f"{host}.yml").write_text("---\n" + text, encoding="utf-8")
        for copy in view["view"]["files"]:
            dest = stage / copy["dest"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copyfile(copy["src"], dest)
            except OSError as exc:
                raise ToolError(f"{host}: {copy['src']}: {exc.strerror} (a file its view names)") from None


def ensure_repo(repo: Path) -> None:
    if not (repo / "HEAD").exists():
        repo.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch", BRANCH, str(repo)], check=True,
                       env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"})  # fmt: skip


def head(repo: Path, ref: str) -> str:
    """The commit ``ref`` names ("" when it names none yet)."""
    try:
        return _git(repo, ["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"])
    except ToolError:
        return ""


def commit_tree(repo: Path, stage: Path, signing_key: Path, message: str) -> tuple[str, bool]:
    """The stage committed on ``main``, signed with ``signing_key`` (SSH); (commit, new)."""
    ensure_repo(repo)
    index = repo / "motcua-publish.index"
    index.unlink(missing_ok=True)
    env = {"GIT_INDEX_FILE": str(index), "GIT_WORK_TREE": str(stage)}
    _git(repo, ["add", "--all", "--force", "."], env=env, cwd=stage)
    tree = _git(repo, ["write-tree"], env=env)
    index.unlink(missing_ok=True)
    parent = head(repo, f"refs/heads/{BRANCH}")
    if parent and _git(repo, ["rev-parse", f"{parent}^{{tree}}"]) == tree:
        return parent, False
    who = {"GIT_AUTHOR_NAME": "motcua pull publish", "GIT_AUTHOR_EMAIL": "dx-centre@motcua.invalid",
           "GIT_COMMITTER_NAME": "motcua pull publish", "GIT_COMMITTER_EMAIL": "dx-centre@motcua.invalid"}  # fmt: skip
    signing = ["-c", "gpg.format=ssh", "-c", f"user.signingKey={signing_key}"]
    commit = _git(repo, [*signing, "commit-tree", tree, *(["-p", parent] if parent else []), "-S", "-m", message],
                  env=who)  # fmt: skip
    _git(repo, ["update-ref", f"refs/heads/{BRANCH}", commit, *([parent] if parent else [])])
    # One pack, not thousands of loose objects: over dumb HTTP each object is a request.
    _git(repo, ["repack", "-a", "-d", "-q"])
    return commit, True


def move_ring(repo: Path, ring: str, commit: str) -> None:
    """``ring/<ring>`` names ``commit``; the served files are brought up to date."""
    _git(repo, ["update-ref", f"refs/heads/ring/{ring}", commit])
    _git(repo, ["update-server-info"])


def publish(inventory: Path, state: Path, signing_key: Path, rings: tuple[str, ...], message: str,
            wheel_cache: Path, ansible_playbook: str | None = None, progress=print,
            extra_vars: list[str] = ()) -> Published:  # fmt: skip
    """The wheelhouse (when missing), then render, build, commit (when the tree changed) and move the
    first ring (module text). ``state`` is what the pull source serves: repo.git and wheels/."""
    if not signing_key.is_file():
        raise ToolError(f"{signing_key}: no such signing key (the DX Centre's SSH key that signs the commits)")
    if not rings:
        raise ToolError("the registry has no pull plan (pull.yml): no ring to publish to")
    repo = state / "repo.git"
    state.mkdir(parents=True, exist_ok=True)
    first = not head(repo, f"refs/heads/{BRANCH}") if (repo / "HEAD").exists() else True
    wheelhouse.ensure(state / "wheels", wheel_cache, progress)
    with tempfile.TemporaryDirectory(prefix="motcua-publish-", dir=state) as work:
        views = render(inventory, Path(work) / "views.json", ansible_playbook, extra_vars)
        stage = Path(work) / "tree"
        stage.mkdir()
        build_tree(views, stage)
        commit, new = commit_tree(repo, stage, signing_key, message)
    # The first commit is what push has just applied everywhere: every ring starts from it. After
    # that, a new commit goes to the first ring only; `motcua pull promote` takes it further.
    for ring in rings if first else rings[:1]:
        if new or not head(repo, f"refs/heads/ring/{ring}"):
            move_ring(repo, ring, commit)
    _git(repo, ["update-server-info"])
    return Published(commit=commit, new=new, counters=len(views), ring=", ".join(rings if first else rings[:1]))
