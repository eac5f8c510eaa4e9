"""`motcua fleet` on the lab's counters (real SSH through fabric, host keys checked): a
diagnostic bundle of a whole site, each allow-listed remediation with its check, and a
host that is down failing alone."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import time

import pytest

from motcua.access import LAB_SUPPORT_USER
from motcua.fleet.tools import DIAG_COMMANDS, REMEDIES
from tests.conftest import LAB_HOME, ROOT, run
from tests.conftest import lab_ssh as ssh

pytestmark = pytest.mark.lab
INVENTORY = ROOT / "inventory" / "lab"
SITE_HOSTS = ["w26740-pc01", "w26740-pc02"]


def fleet(*args: str) -> subprocess.CompletedProcess[str]:
    return run(["motcua", "fleet", *args, "-i", str(INVENTORY), "--quiet"], timeout=600)


@pytest.fixture(scope="module")
def site(demo, lab):
    """Site 26740's counters provisioned (the demo did it; again here only if a test before undid it)."""
    if "exporter" not in ssh(lab, SITE_HOSTS[0], "systemctl is-active motcua-counter-exporter || true") or any(
        ssh(lab, h, "systemctl is-active cups || true").strip() != "active" for h in SITE_HOSTS
    ):
        result = run(["ansible-playbook", "-i", str(INVENTORY), "playbooks/counters.yml", "--limit", "site_26740"],
                     timeout=1800)  # fmt: skip
        assert result.returncode == 0, result.stdout[-4000:]
    return lab


def queue(lab, host: str) -> str:
    return ssh(lab, host, "lpstat -e").split()[0]


def test_diag_bundle_of_a_site(site, tmp_path):
    result = fleet("diag", "--sites", "26740", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    (bundle,) = tmp_path.glob("diag-site-26740-*.tar.gz")
    assert oct(bundle.stat().st_mode & 0o777) == "0o600"
    with tarfile.open(bundle) as tar:
        names = set(tar.getnames())
        files = {n: tar.extractfile(n).read().decode() for n in names}  # type: ignore[union-attr]
    assert names == {"summary.json"} | {f"{h}/{f}" for h in SITE_HOSTS for f in DIAG_COMMANDS}
    summary = json.loads(files["summary.json"])
    assert all(summary[h]["ok"] for h in SITE_HOSTS)
    host = SITE_HOSTS[0]
    assert queue(site, host) in files[f"{host}/printers.txt"]
    assert "SoftHSM" in files[f"{host}/token.txt"]
    assert "Reference ID" in files[f"{host}/clock.txt"]
    assert "HTTP 200" in files[f"{host}/dossier.txt"]  # the dossier system, as the counter reaches it
    assert "motcua_counter_portal_success" in files[f"{host}/exporter.txt"]  # the counter exporter's own view
    assert "systemd" in files[f"{host}/journal.txt"]


@pytest.mark.parametrize("action", sorted(REMEDIES))
def test_each_remediation_fixes_and_checks(site, action):
    host = SITE_HOSTS[0]
    name = queue(site, host)
    before = ""
    if action == "enable-printers":
        ssh(site, host, f"cupsdisable {name}")
        assert "disabled" in ssh(site, host, f"lpstat -p {name}")
    elif action == "clear-jobs":
        ssh(site, host, f"cupsdisable {name} && echo 'stuck job' | lp -d {name}")
        assert ssh(site, host, "lpstat -o").strip()  # a job waits on the stopped queue
    elif action == "restart-cups":
        before = ssh(site, host, "systemctl show -p MainPID --value cups").strip()
    # A pull applies the counters' playbook on the PC: longer than a service restart.
    result = fleet("exec", action, "--hosts", host, "--json", *(("--timeout", "300") if action == "pull-now" else ()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)[host]["ok"]
    # Logged on the counter by motcua-support, with the support person's name, and on the controller.
    journal = ssh(site, host, "journalctl -t motcua-support --no-pager -n 5 -o cat")
    assert f"{LAB_SUPPORT_USER}: {action}: done and checked" in journal, journal
    last = json.loads((LAB_HOME / "fleet.log").read_text(encoding="utf-8").splitlines()[-1])
    assert last["what"] == f"exec {action}" and last["account"] == LAB_SUPPORT_USER and last["hosts"][host]["ok"]
    if action == "enable-printers":
        assert "disabled" not in ssh(site, host, f"lpstat -p {name}")
    elif action == "clear-jobs":
        assert ssh(site, host, "lpstat -o").strip() == ""
        ssh(site, host, f"cupsenable {name}")
    elif action == "restart-cups":
        assert ssh(site, host, "systemctl show -p MainPID --value cups").strip() != before
    elif action == "restart-pcscd":
        assert ssh(site, host, "systemctl is-active pcscd.socket").strip() == "active"
    elif action == "pull-now":  # the demo set the counters to pull
        textfile = ssh(site, host, "cat /var/lib/prometheus/node-exporter/motcua_pull.prom")
        assert re.search(r"^motcua_pull_last_run_success 1$", textfile, re.M)  # a sample, not the HELP line
        assert re.search(r'^motcua_pull_last_run_tasks\{state="changed"\} 0$', textfile, re.M)


def test_a_host_that_is_down_fails_alone(site):
    site.stop_host(SITE_HOSTS[1])
    try:
        started = time.monotonic()
        result = fleet("exec", "restart-pcscd", "--sites", "26740", "--timeout", "10")
        assert time.monotonic() - started < 120
        assert result.returncode == 1
        rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("w26740-")}
        assert "ok / đạt" in rows[SITE_HOSTS[0]] and "FAILED / LỖI" in rows[SITE_HOSTS[1]]
        assert f"retry just those: --hosts {SITE_HOSTS[1]}" in result.stdout
    finally:
        site.up()


def test_bad_choices_are_refused_before_any_connection():
    unknown = fleet("exec", "restart-cups", "--hosts", "w26740-pc99")
    assert unknown.returncode == 2 and "not a counter or kiosk PC of this inventory: w26740-pc99" in unknown.stderr
    nothing = fleet("diag")
    assert nothing.returncode == 2 and "choose hosts" in nothing.stderr
    not_allowed = fleet("exec", "rm-rf", "--hosts", "w26740-pc01")
    assert not_allowed.returncode == 2 and "invalid choice: 'rm-rf'" in not_allowed.stderr


def test_the_counter_refuses_what_is_not_allow_listed(site):
    """Even past the tool: sudo runs the wrapper with the allow-listed actions only, and nothing
    else as root; the wrapper itself refuses what is not one of its actions."""
    as_support = ["ssh", "-F", str(site.ssh_dir / "config"), "-o", "BatchMode=yes", "-l", LAB_SUPPORT_USER,
                  SITE_HOSTS[0]]  # fmt: skip
    for command, refused in (("sudo -n /usr/local/sbin/motcua-support rm-rf", "a password is required"),
                             ("/usr/local/sbin/motcua-support rm-rf", "'rm-rf' is not an action"),
                             ("sudo -n /bin/sh -c id", "a password is required"),
                             ("sudo -n systemctl restart cups", "a password is required")):  # fmt: skip
        done = subprocess.run([*as_support, f"LC_ALL=C {command}"], capture_output=True, text=True, timeout=60,
                              check=False)  # fmt: skip
        assert done.returncode != 0 and refused in done.stderr, (command, done.stderr)
