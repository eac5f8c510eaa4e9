"""Counters that configure themselves (issue #26, docs/pull.md) on the lab: real counters pulling the
signed repository from the lab's pull source over HTTPS, with the pinned Ansible from its wheelhouse.

The demo published the counters' configuration, set every counter to pull and had site 26740 pull;
the session's `demo` fixture then paused the counters' timers (`counter_pull_timer_enabled`), so that
here (and in every other module) a pull happens only when a test asks for it. In order: the canary
ring gates the rest (a commit that fails on a canary goes nowhere else), a counter provisioned by
pull alone matches one provisioned by push (testinfra) and a second pull changes nothing, a push
waits for a pull and the two never interleave, and a counter that was down for a commit catches up
by its own timer.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse

import pytest
import testinfra

from motcua.lab.procs import poll
from motcua.monitoring.rules import PULL_BEHIND
from motcua.pull import publish
from motcua.pull.status import TEXTFILE
from tests.conftest import LAB_HOME, lab_counters, lab_ssh, plane_open, run

pytestmark = pytest.mark.lab
INVENTORY = "inventory/lab"
REPO = LAB_HOME / "pull" / "repo.git"
# A setting that breaks on the PC only (the kiosk role's own check of its allow-list refuses it).
BAD = json.dumps({"counter_kiosk_allowed_urls": ["not a url"]})
# A harmless change: a bookmark in the kiosk browser.
BOOKMARK = json.dumps({"counter_kiosk_bookmarks": [{"name": "Lab portal", "url": "https://127.79.0.20/"}]})


def motcua(*args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return run(["motcua", *args], timeout=timeout)


def pull_now(sites: str | None = None, hosts: str | None = None) -> dict:
    chosen = ("--sites", sites) if sites else ("--hosts", hosts or "")
    done = motcua("fleet", "exec", "pull-now", "-i", INVENTORY, *chosen, "--timeout", "300", "--json", "-q")
    return {host: result["ok"] for host, result in json.loads(done.stdout).items()}


def pulled(lab, host: str) -> dict[str, str]:
    """The counter's own report of its last pull (its node_exporter textfile)."""
    text = lab_ssh(lab, host, f"cat {TEXTFILE} 2>/dev/null || true")  # nothing: it never pulled
    # Samples only: the HELP line reads "motcua_pull_last_run_success 1 if the last pull ...".
    out = {"ok": "1" if re.search(r"^motcua_pull_last_run_success 1$", text, re.M) else "0"}
    patterns = {
        "applied": r'applied_commit_info\{[^}]*commit="(\w+)"',
        "fetched": r'fetched_commit_info\{[^}]*commit="(\w+)"',
        "reason": r'failure_info\{reason="(\w+)"',
        "changed": r'tasks\{state="changed"\} (\d+)',
    }
    for key, pattern in patterns.items():
        match = re.search(pattern, text)
        out[key] = match.group(1) if match else ""
    return out


def behind() -> dict[str, str]:
    """The counters dx-mon01's Prometheus names behind their ring at the pull source: {counter: its commit}
    (the recording rule CounterConfigBehind reads; it scrapes the lab's pull source as job pull-source)."""
    url = "https://127.79.0.10:9090/api/v1/query?" + urllib.parse.urlencode({"query": PULL_BEHIND})
    try:
        with plane_open(url) as response:
            found = json.loads(response.read())["data"]["result"]
    except OSError:
        return {}
    return {r["metric"]["instance"]: r["metric"]["commit"] for r in found}


def ring(name: str) -> str:
    return publish.head(REPO, f"refs/heads/ring/{name}")


@pytest.fixture(scope="module", autouse=True)
def canaries_back(demo, lab, lab_registry):
    """However this module's tests end: the canary ring back at the demo's configuration, and every canary
    that has pulled on it, so the modules after this one find no counter behind its ring (readiness)."""
    yield
    assert motcua("pull", "publish", "-i", INVENTORY).returncode == 0
    canary = lab_registry.pull.rings[0]
    sites = {code for code, site in lab_registry.sites.items() if site.ring == canary}
    have_pulled = [c.name for c in lab_counters() if c.site in sites and pulled(lab, c.name)["applied"]]
    if have_pulled:
        assert pull_now(hosts=",".join(have_pulled)) == dict.fromkeys(have_pulled, True)


@pytest.fixture(scope="module")
def first(demo, lab):
    """The demo's commit: the first, so every ring's (nothing to promote)."""
    assert demo["pull-publish"].returncode == 0 and demo["pull-now"].returncode == 0
    commit = ring("canary")
    assert commit and publish.head(REPO, "refs/heads/main") == commit == ring("all")
    done = motcua("pull", "promote", "-i", INVENTORY, "-q", "--sites", "26740")
    assert done.returncode == 0 and "nothing to promote" in done.stdout, done.stdout + done.stderr
    return commit


def test_a_commit_that_fails_on_a_canary_goes_nowhere_else(lab, first):
    published = motcua("pull", "publish", "-i", INVENTORY, "-e", BAD)
    assert published.returncode == 0, published.stderr
    bad = ring("canary")
    assert bad != first and ring("all") == first
    assert pull_now(hosts="w26740-pc01") == {"w26740-pc01": False}
    report = pulled(lab, "w26740-pc01")
    assert report == {"ok": "0", "applied": first, "fetched": bad, "reason": "apply", "changed": ""}, report
    # Monitoring sees it behind its ring (ring/canary names the bad commit), the rest of the city not.
    seen = poll(lambda: behind().get("w26740-pc01") == first and behind(), 60,
                "Prometheus to name w26740-pc01 behind the canary ring")  # fmt: skip
    assert "ttpv-pc01" not in seen, seen
    refused = motcua("pull", "promote", "-i", INVENTORY, "-q")
    assert refused.returncode == 2 and f"{bad[:12]} FAILED on w26740-pc01" in refused.stderr, refused.stderr
    assert ring("all") == first
    shown = motcua("pull", "status", "-i", INVENTORY, "-q")
    assert shown.returncode == 1
    row = next(line for line in shown.stdout.splitlines() if "w26740-pc01" in line)
    assert "LỖI / FAILED (apply)" in row and first[:12] in row
    # The rest of the city keeps the last good commit: ttpv's counter pulls ring/all.
    assert pull_now(hosts="ttpv-pc01") == {"ttpv-pc01": True}
    assert pulled(lab, "ttpv-pc01")["applied"] == first
    # Fixed and published again: the canary applies it.
    fixed = motcua("pull", "publish", "-i", INVENTORY)
    assert fixed.returncode == 0 and "ring canary names it" in fixed.stdout
    assert pull_now(hosts="w26740-pc01") == {"w26740-pc01": True}
    assert pulled(lab, "w26740-pc01")["applied"] == ring("canary")
    poll(lambda: "w26740-pc01" not in behind(), 60, "w26740-pc01 no longer behind in Prometheus")


def host(lab, name: str):
    return testinfra.get_host(f"ssh://{name}", ssh_config=str(lab.ssh_dir / "config"))


# What two counters of one site hold alike, their own name and address aside.
SAME_FILES = (
    "/etc/chrony/chrony.conf",
    "/etc/nftables.conf",
    "/etc/cups/cupsd.conf",
    "/etc/firefox/policies/policies.json",
    "/etc/default/prometheus-node-exporter",
    "/etc/motcua/counter-exporter.yml",
    "/etc/systemd/system/motcua-counter-exporter.service",
    "/usr/local/sbin/motcua-support",
    "/etc/default/locale",
)


SERVICES = ("cups", "chrony", "pcscd", "prometheus-node-exporter", "motcua-counter-exporter", "nftables", "ssh")


def state_of(lab, name: str, *addresses: str) -> dict[str, object]:
    h = host(lab, name)

    def unify(text: str) -> str:
        for own in (name, *addresses):
            text = text.replace(own, "OWN")
        return text

    def out(command: str) -> str:
        # The C locale's order: a session the lab's ssh multiplexes may predate the PC's vi_VN locale.
        return h.check_output(f"export LC_ALL=C; {command}")

    return {
        "packages": out("dpkg-query -W -f '${db:Status-Abbrev}${Package}\\n' | grep '^ii' | sort"),
        "enabled": out("systemctl list-unit-files --state=enabled --no-legend | awk '{print $1}' | sort"),
        "active": {s: h.service(s).is_running for s in SERVICES},
        "staff": out("getent group motcua-staff | cut -d: -f4 | tr , '\\n' | sort"),
        "accounts": out("getent passwd | awk -F: '$3 >= 1000 && $3 < 60000 {print $1, $6, $7}' | sort"),
        "trust": out("ls /usr/local/share/ca-certificates/motcua | sort"),
        "files": {path: unify(h.file(path).content_string) if h.file(path).exists else None for path in SAME_FILES},
        "queues": out("lpstat -e | sed 's/^[^-]*-//' | sort"),
    }


def test_a_counter_provisioned_by_pull_alone_matches_one_provisioned_by_push(lab, first):
    """ttpv-pc02 starts again from the image, gets counter_pull alone by push, and pulls everything else."""
    lab.reset_host("ttpv-pc02")
    lab.up()
    # Its timer paused, as every counter's here.
    setup = ["ansible-playbook", "-i", INVENTORY, "playbooks/counter_pull.yml", "--limit", "ttpv-pc02"]
    set_up = run(setup, timeout=900)
    assert set_up.returncode == 0, set_up.stdout[-3000:]
    # As root: the support accounts and motcua-support come with this first pull.
    lab_ssh(lab, "ttpv-pc02", "systemctl start motcua-pull.service", check=False)
    report = pulled(lab, "ttpv-pc02")
    assert report["applied"] == first and int(report["changed"]) > 20, report
    by_push = state_of(lab, "ttpv-pc01", "127.79.1.21", "10.79.1.21")
    by_pull = state_of(lab, "ttpv-pc02", "127.79.1.22", "10.79.1.22")
    different = {key: (by_push[key], by_pull[key]) for key in by_push if by_push[key] != by_pull[key]}
    assert different == {}
    assert pull_now(hosts="ttpv-pc02") == {"ttpv-pc02": True}
    assert pulled(lab, "ttpv-pc02")["changed"] == "0"


def test_a_push_waits_for_a_pull_and_the_two_never_interleave(lab, first):
    name = "ttpv-pc01"
    lab_ssh(lab, name, "systemctl start --no-block motcua-pull.service")
    deadline = time.monotonic() + 30
    # Until the pull holds the lock (a flock that cannot be taken without waiting).
    probe = "flock -n /run/lock/motcua-provision.lock true && echo free || echo held"
    while lab_ssh(lab, name, probe).strip() != "held":
        assert time.monotonic() < deadline, "the pull did not take the lock"
        time.sleep(0.2)
    pushed = run(["ansible-playbook", "-i", INVENTORY, "playbooks/counters.yml", "--limit", name], timeout=900)
    assert pushed.returncode == 0, pushed.stdout[-3000:]
    units = "-u motcua-pull.service -u motcua-push-lock.service"
    lines = lab_ssh(lab, name, f"journalctl --no-pager -o short-unix {units} --since '-10min'").splitlines()
    # The pull says "lock released" just before it lets go; the push's unit starts once it holds it.
    released = max(float(line.split()[0]) for line in lines if "motcua-pull: lock released" in line)
    taken = max(float(line.split()[0]) for line in lines if "motcua-pull: lock taken" in line)
    lock_held = max(float(line.split()[0]) for line in lines if "Started motcua-push-lock.service" in line)
    assert taken < released <= lock_held, lines[-30:]
    assert pulled(lab, name)["ok"] == "1"
    assert lab_ssh(lab, name, "systemctl is-active motcua-push-lock.service || true").strip() == "inactive"


def test_a_counter_that_was_down_for_a_commit_catches_up_when_it_is_back(lab, first):
    name = "w26732-pc02"
    # Its timer on (the tests' are paused) and 10 s after boot, not the lab's 2 minutes.
    set_up = run(["ansible-playbook", "-i", INVENTORY, "playbooks/counter_pull.yml", "--limit", name,
                  "-e", "counter_pull_timer_enabled=true", "-e", "counter_pull_boot_delay=10"],
                 timeout=900)  # fmt: skip
    assert set_up.returncode == 0, set_up.stdout[-3000:]
    lab.stop_host(name)
    try:
        published = motcua("pull", "publish", "-i", INVENTORY, "-e", BOOKMARK)
        assert published.returncode == 0, published.stderr
        new = ring("canary")
    finally:
        lab.up()
    # Back: its timer pulls 10 s after boot (plus up to 20 s), nobody asks it to.
    deadline = time.monotonic() + 150
    while pulled(lab, name)["applied"] != new:
        assert time.monotonic() < deadline, pulled(lab, name)
        time.sleep(3)
    assert "Lab portal" in lab_ssh(lab, name, "cat /etc/firefox/policies/policies.json")
    lab_ssh(lab, name, "systemctl disable --now motcua-pull.timer")  # paused again, as the other counters'
