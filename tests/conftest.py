"""Shared fixtures: paths, a scratch copy of the corpus base registry, ansible runners."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_REGISTRY = ROOT / "inventory" / "hcmc" / "registry"
CORPUS = ROOT / "tests" / "corpus"
BIN = Path(sys.executable).parent
# The tests' lab lives apart from an operator's lab (/var/lib/motcua-lab) but shares the image cache.
LAB_HOME = Path(os.environ.get("MOTCUA_LAB_TEST_HOME", "/var/lib/motcua-lab-test"))


@pytest.fixture(scope="session")
def production_registry():
    from motcua.registry import load_registry

    return load_registry(PRODUCTION_REGISTRY)


@pytest.fixture(scope="session")
def lab_registry(production_registry):
    """The lab's sites (inventory/lab/motcua.yml) from the production registry."""
    sites = yaml.safe_load((ROOT / "inventory" / "lab" / "motcua.yml").read_text())["sites"]
    return production_registry.subset([str(s) for s in sites])


# The unit phase runs on four workers (pytest-xdist, one module per worker at a time): a session
# fixture that listens gets an address of its own per worker (gw0 -> .20, gw1 -> .21, ...).
WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
# The dossier stand-in the unit and exporter tests share: its own loopback address and
# unprivileged ports, apart from any lab (which uses 127.79.0.20:443/80).
STANDIN_ADDRESS = f"127.79.250.{20 + WORKER}"
STANDIN_HTTPS, STANDIN_HTTP = 18443, 18080


@pytest.fixture(scope="session")
def dossier_standin(tmp_path_factory):
    """A running dossier stand-in: {"ca", "faults", "root", "https", "http"} (URLs without a path)."""
    from motcua.lab.ca import ensure_lab_ca
    from motcua.lab.procs import spawn, stop, wait_for_port

    root = tmp_path_factory.mktemp("dossier")
    ca = ensure_lab_ca(root / "ca", STANDIN_ADDRESS)
    faults = root / "faults.json"
    agencies = root / "agencies.json"
    agencies.write_text('[{"code": "26740", "name": "Phường Sài Gòn"}, {"code": "so-tp", "name": "Sở Tư pháp"}]')
    (root / "api-token").write_text("lab-token-for-the-tests\n")
    argv = [sys.executable, "-m", "motcua.lab.dossier", "--address", STANDIN_ADDRESS,
            "--https-port", str(STANDIN_HTTPS), "--http-port", str(STANDIN_HTTP), "--certs", str(root / "ca"),
            "--faults", str(faults), "--agencies", str(agencies), "--token-file", str(root / "api-token")]  # fmt: skip
    proc = spawn("dossier-test", "dossier", argv, root / "dossier.log")
    assert wait_for_port(STANDIN_ADDRESS, STANDIN_HTTPS, 10), (root / "dossier.log").read_text()
    yield {
        "ca": ca,
        "faults": faults,
        "root": root,
        "https": f"https://{STANDIN_ADDRESS}:{STANDIN_HTTPS}",
        "http": f"http://{STANDIN_ADDRESS}:{STANDIN_HTTP}",
        "token": root / "api-token",
    }
    stop([proc])


@pytest.fixture
def clear_dossier_fault(dossier_standin):
    """The stand-in without a fault before and after the test."""
    from motcua.lab.dossier import write_fault

    write_fault(dossier_standin["faults"], None)
    yield
    write_fault(dossier_standin["faults"], None)


@pytest.fixture
def base_registry(tmp_path: Path) -> Path:
    """A writable copy of the small valid registry the corpus cases change."""
    target = tmp_path / "registry"
    shutil.copytree(CORPUS / "base", target)
    return target


def ansible_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_NOCOLOR"] = "1"
    env["MOTCUA_LAB_HOME"] = str(LAB_HOME)
    env.update(extra)
    return env


def recap(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, int]]:
    """PLAY RECAP rows of an ansible-playbook run: host -> {ok, changed, failed, ...}."""
    rows = {}
    for match in re.finditer(r"^(\S+)\s+:\s+(ok=.*)$", result.stdout, re.M):
        rows[match.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(2))}
    return rows


def changed_tasks(result: subprocess.CompletedProcess[str], host_name: str) -> list[str]:
    """Names of the tasks and handlers that reported a change on one host (delegated ones too), once per task."""
    current, changed = "", []
    for line in result.stdout.splitlines():
        match = re.match(r"^(?:TASK|RUNNING HANDLER) \[(?:[\w.]+ : )?(.+?)\]", line)
        if match:
            current = match.group(1)
        elif re.match(rf"^changed: \[{re.escape(host_name)}(?: -> [^\]]+)?\]", line) and changed[-1:] != [current]:
            changed.append(current)
    return changed


def run(cmd: list[str], cwd: Path = ROOT, timeout: int = 300, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a command from the repository root with the venv's tools first on PATH."""
    return subprocess.run(
        cmd, cwd=cwd, env=ansible_env(**env), capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="session")
def lab():
    """The lab of inventory/lab, up for the whole session, down at the end.

    Tests that need it fail (never skip) when it cannot run, saying why.
    MOTCUA_LAB_KEEP=1 leaves it up afterwards for inspection.
    """
    from motcua.lab import Lab, LabError

    if os.geteuid() != 0:
        pytest.fail("the lab tests need root (systemd-nspawn, overlay mounts, ports 22/80/443 on loopback)")
    lab = Lab(ROOT / "inventory" / "lab", home=LAB_HOME)
    try:
        lab.down()  # hosts booted now, as after `make demo`'s `lab up`, never a previous session's
        # The certificate ledger back at its seed (`lab up` copies it), as the demo's first step expects:
        # a previous session's requests, certificates and exports go; the lab's CA stays.
        store = LAB_HOME / "certificates"
        for item in store.iterdir() if store.is_dir() else ():
            if item.name != "ca":
                shutil.rmtree(item) if item.is_dir() else item.unlink()
        # What the counters pull starts afresh too: the demo's publish is the first commit, every ring's.
        shutil.rmtree(LAB_HOME / "pull" / "repo.git", ignore_errors=True)
        lab.up()
        # ... and the counters forget what they pulled from the one that went: their disks outlive `lab
        # down`, and a textfile naming a previous session's commit is rightly "behind" in Prometheus.
        from motcua.pull.status import TEXTFILE

        for counter in lab_counters():
            lab_ssh(lab, counter.name, f"rm -rf /var/lib/motcua-pull {TEXTFILE}")
    except LabError as exc:
        pytest.fail(f"the lab did not come up: {exc}\n(an operator's lab on the same addresses? `motcua lab down`)")
    yield lab
    if not os.environ.get("MOTCUA_LAB_KEEP"):
        lab.down()


@pytest.fixture(scope="session")
def demo(lab, tmp_path_factory):
    """`make demo`'s steps (motcua/lab/demo.py), in order, on the tests' lab just brought up, with an empty
    fact cache as a fresh clone has: {step name: StepResult}. Every lab test starts from what the demo
    leaves (counters provisioned, certificates installed, the monitoring host and the gear configured)
    and puts back what it changes."""
    from motcua.lab import demo as lab_demo

    env = ansible_env(ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path_factory.mktemp("fresh-fact-cache")))
    try:
        results = lab_demo.run(lab_demo.steps("inventory/lab", LAB_HOME), LAB_HOME / "demo", env=env, cwd=ROOT,
                               echo=False)  # fmt: skip
    except lab_demo.DemoError as exc:
        failed = exc.results[-1]  # type: ignore[attr-defined]
        pytest.fail(f"make demo's steps on a lab just brought up: {exc}\n{failed.output[-6000:]}")
    pause_pull_timers(lab)
    return {r.step.name: r for r in results}


def pause_pull_timers(lab, timeout: float = 300) -> None:
    """The demo set every counter to pull on its timer. A test drives the pulls it needs itself (a pull
    between a test's deliberate drift and its check would put the drift back, a failed one would leave
    the PC degraded): the timers stop and are disabled here, a pull that has started runs to its end,
    and every later push keeps them so (the lab's `counter_pull_timer_enabled` reads
    MOTCUA_LAB_PULL_TIMERS, which every playbook the tests run inherits)."""
    os.environ["MOTCUA_LAB_PULL_TIMERS"] = "off"
    counters = lab_counters()
    for counter in counters:
        lab_ssh(lab, counter.name, "systemctl disable --now motcua-pull.timer")
    deadline = time.monotonic() + timeout
    for counter in counters:
        while lab_ssh(lab, counter.name, "systemctl is-active motcua-pull.service || true").strip() in RUNNING:
            assert time.monotonic() < deadline, f"{counter.name}: a pull still runs after {timeout:.0f} s"
            time.sleep(1)


RUNNING = ("activating", "active", "deactivating")


def lab_counters():
    from motcua.lab import make_plan

    return make_plan(ROOT / "inventory" / "lab", LAB_HOME).counters


def lab_ssh(lab, host: str, command: str, check: bool = True) -> str:
    """A command on a lab host through the lab's ssh config (host keys checked); its output."""
    result = subprocess.run(["ssh", "-F", str(lab.ssh_dir / "config"), host, command], capture_output=True,
                            text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0 or not check, f"{host}: {command}: {result.stderr}"
    return result.stdout


def plane_open(request, timeout: float = 10.0):
    """A URL of the test lab's locked monitoring plane, opened as the operator (the lab CA, the lab's
    operator password); any other URL (the sink, the stand-ins) as it is."""
    from motcua.webauth import Credentials, open_url

    url = request if isinstance(request, str) else request.full_url
    credentials = Credentials.for_tools(LAB_HOME, env={}) if url.startswith("https://127.79.") else None
    return open_url(request, credentials, timeout)


def counter_metrics(counter, needle: str = "", timeout: float = 60) -> str:
    """The counter exporter's page, once it contains ``needle`` (its checks run on their own interval)."""
    deadline = time.monotonic() + timeout
    while True:
        with plane_open(f"https://{counter.address}:9110/metrics") as resp:
            text = resp.read().decode()
        if needle in text or time.monotonic() > deadline:
            assert needle in text, f"{counter.name}: {needle!r} not in its counter exporter's page:\n{text[-4000:]}"
            return text
        time.sleep(1)


# A real Alertmanager (Debian's) for the tests of silences, on loopback, per test module (and per
# worker: modules on different workers at once).
ALERTMANAGER_ADDRESS = f"127.81.{WORKER}.2:9093"
ALERTMANAGER_URL = f"http://{ALERTMANAGER_ADDRESS}"
_ALERTMANAGER_CONFIG = """route:
  receiver: nobody
receivers:
  - name: nobody
"""


def alertmanager_api(method: str, path: str, body: object | None = None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(ALERTMANAGER_URL + path, data=data, method=method, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 - http on loopback
        text = resp.read().decode()
    return json.loads(text) if text.strip() else None


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory):
    """Debian's Alertmanager on ALERTMANAGER_ADDRESS, started for the module and stopped (by PID) after it."""
    home = tmp_path_factory.mktemp("alertmanager")
    (home / "alertmanager.yml").write_text(_ALERTMANAGER_CONFIG)
    argv = [
        "/usr/bin/prometheus-alertmanager",
        f"--config.file={home / 'alertmanager.yml'}",
        f"--storage.path={home / 'data'}",
        f"--web.listen-address={ALERTMANAGER_ADDRESS}",
        "--cluster.listen-address=",  # no cluster port
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                alertmanager_api("GET", "/api/v2/status")
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                assert time.monotonic() < deadline, "Alertmanager did not come up"
                time.sleep(0.2)
        yield ALERTMANAGER_URL
    finally:
        proc.terminate()
        proc.wait(timeout=10)
