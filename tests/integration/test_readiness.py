"""Go-live readiness on the lab (playbooks/golive_check.yml, motcua readiness): two wards, one with a
broken printer and one with a certificate about to expire; the report in HTML (opened in headless
Chromium), CSV and JSON, and the per-site metric on the monitoring host's node_exporter."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess

import pytest
from PIL import Image

from motcua.lab import make_plan
from tests.conftest import LAB_HOME, ROOT, counter_metrics, plane_open, run
from tests.conftest import lab_ssh as ssh

pytestmark = pytest.mark.lab
INVENTORY = ROOT / "inventory" / "lab"
BROKEN, EXPIRING = "26740", "25747"
SITES = f"site_{BROKEN},site_{EXPIRING}"
TEXTFILE_METRICS = "https://127.79.0.10:9100/metrics"
SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"
TEST_ID = "7e"  # the objects this test writes to the tokens, removed afterwards


def playbook(name: str, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess[str]:
    return run(["ansible-playbook", "-i", str(INVENTORY), f"playbooks/{name}", *args], timeout=timeout)


def answers(url: str) -> bool:
    try:
        with plane_open(url, timeout=5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def counters(lab):
    """The two wards' counters provisioned, their gear compliant, dx-mon01's node_exporter up (earlier lab
    tests leave them so; here only what is missing is done)."""
    plan = make_plan(INVENTORY, LAB_HOME)
    mine = [c for c in plan.counters if c.site in (BROKEN, EXPIRING)]
    if any(ssh(lab, c.name, "systemctl is-active motcua-counter-exporter cups || true").split() != ["active"] * 2
           for c in mine):  # fmt: skip
        result = playbook("counters.yml", "--limit", SITES)
        assert result.returncode == 0, result.stdout[-4000:]
    if run(
        ["motcua", "netgear", "diff", "-i", str(INVENTORY), "--sites", f"{BROKEN},{EXPIRING}", "--quiet"]
    ).returncode:
        result = playbook("network.yml", "--limit", SITES)
        assert result.returncode == 0, result.stdout[-4000:]
    if not answers(TEXTFILE_METRICS):
        result = playbook("monitoring.yml")
        assert result.returncode == 0, result.stdout[-4000:]
    return mine


def token(lab, counter, command: str) -> str:
    pin = (LAB_HOME / "tokens" / "user-pin").read_text().strip()
    tool = f"pkcs11-tool --module {SOFTHSM} --token-label motcua-{counter.site} --login --pin {pin}"
    return ssh(lab, counter.name, f"{tool} {command}")


def put_certificate(lab, counter, days: int) -> None:
    """A certificate on the counter's token, as the CA would deliver it (SoftHSM2: opened to its group)."""
    ssh(
        lab,
        counter.name,
        f"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days {days} "
        f"-subj '/CN=readiness {counter.site}' -keyout /tmp/r.key -outform DER -out /tmp/r.der 2>/dev/null",
    )
    token(lab, counter, f"--write-object /tmp/r.der --type cert --id {TEST_ID} --label readiness-test")
    ssh(lab, counter.name, "rm -f /tmp/r.key /tmp/r.der; chgrp -R softhsm /var/lib/softhsm/tokens && "
                           "chmod -R g+rwX /var/lib/softhsm/tokens")  # fmt: skip


@pytest.fixture(scope="module")
def faults(lab, counters):
    """A valid certificate on every token, one expiring in 10 days at EXPIRING; BROKEN's printer stopped."""
    broken = next(c for c in counters if c.site == BROKEN)
    expiring = next(c for c in counters if c.site == EXPIRING)
    queue = ssh(lab, broken.name, "lpstat -e").split()[0]
    try:
        for c in counters:
            token(lab, c, f"--delete-object --type cert --id {TEST_ID} || true")
            put_certificate(lab, c, 10 if c is expiring else 400)
        ssh(lab, broken.name, f"cupsdisable {queue}")
        for c in counters:
            counter_metrics(c, 'subject="readiness ', timeout=90)
            # A lab just up: chrony takes a few polls of the lab's NTP servers to synchronise.
            counter_metrics(c, "\nmotcua_counter_clock_synchronized 1", timeout=240)  # the sample, not its HELP
        counter_metrics(broken, f'motcua_counter_printer_state{{printer="{queue}",state="stopped"}} 1', timeout=90)
        yield {"broken": broken, "expiring": expiring, "queue": queue}
    finally:
        ssh(lab, broken.name, f"cupsenable {queue}")
        for c in counters:
            token(lab, c, f"--delete-object --type cert --id {TEST_ID} || true")


@pytest.fixture(scope="module")
def report(faults, tmp_path_factory):
    out = tmp_path_factory.mktemp("readiness")
    result = playbook("golive_check.yml", "--limit", SITES, "-e", f"golive_check_out={out}", timeout=900)
    return result, out


def test_a_broken_printer_makes_its_site_red_and_the_run_fail(report, faults):
    result, out = report
    assert result.returncode != 0, result.stdout[-4000:]
    text = " ".join(result.stdout.split())
    assert f"Chưa sẵn sàng / not ready: {BROKEN}." in text, result.stdout[-3000:]
    data = json.loads((out / "readiness.json").read_text())
    verdicts = {s["site"]: s["verdict"] for s in data["sites"]}
    assert verdicts == {BROKEN: "red", EXPIRING: "amber"}, data
    problems = {s["site"]: [(p["host"], p["check"], p["status"]) for p in s["problems"]] for s in data["sites"]}
    assert problems[BROKEN] == [(faults["broken"].name, "printer", "fail")], data
    assert problems[EXPIRING] == [(faults["expiring"].name, "token", "warn")], data
    detail = next(p["detail"] for s in data["sites"] for p in s["problems"] if p["check"] == "token")
    assert "hết hạn sau 10 ngày / certificate expires in 10 days: readiness 25747" in detail
    site = next(s for s in data["sites"] if s["site"] == BROKEN)
    # Every check ran, and the rest passed: counters, their pulled configuration (26740's counters pull:
    # test_pull leaves them on their ring's commit), accounts, scanner, token, dossier, clock, switch.
    expected = dict.fromkeys(("reachable", "provisioned", "config", "accounts", "scanner", "token", "dossier",
                              "clock"), "ok")  # fmt: skip
    assert site["checks"] == {**expected, "printer": "fail", "switch": "ok"}


def test_csv_and_metrics(report, faults):
    _result, out = report
    rows = list(csv.reader(io.StringIO((out / "readiness.csv").read_text(encoding="utf-8-sig"))))
    assert rows[0][2] == "Kết luận / verdict"
    assert {r[0]: r[2] for r in rows[1:]} == {BROKEN: "red", EXPIRING: "amber"}
    assert f"{faults['queue']}: đã dừng / stopped" in next(r for r in rows if r[0] == BROKEN)[-1]
    # The copy on the monitoring host, served by its node_exporter for the dashboards.
    with plane_open(TEXTFILE_METRICS) as resp:
        page = resp.read().decode()
    assert f'motcua_readiness_site_verdict{{site="{BROKEN}",verdict="red"}} 1' in page, page[-2000:]
    assert f'motcua_readiness_site_info{{name="Phường Sài Gòn",site="{BROKEN}"}} 1' in page
    assert f'motcua_readiness_check{{check="token",site="{EXPIRING}"}} 0' in page


def test_the_html_grid_renders_in_headless_chromium(report, tmp_path):
    _result, out = report
    html = (out / "readiness.html").read_text()
    assert 'lang="vi"' in html and "Máy in / printer" in html
    shot = tmp_path / "readiness.png"
    browser = shutil.which("chromium")
    assert browser, "Debian's chromium package is missing (requirements-apt.txt)"
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,800",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", (out / "readiness.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 800)

    def count(rgb: tuple[int, int, int]) -> int:
        return sum(1 for p in image.getdata() if all(abs(a - b) <= 8 for a, b in zip(p, rgb, strict=True)))

    red, amber = count((0xD9, 0x30, 0x25)), count((0xF2, 0x99, 0x00))
    # Two site cards (about 238 x 200 px each), red first, plus the count badges.
    assert red > 20_000 and amber > 20_000, (red, amber)
    first_red = next(x for x in range(image.width) if image.getpixel((x, 200)) == (0xD9, 0x30, 0x25))
    first_amber = next(x for x in range(image.width) if image.getpixel((x, 200)) == (0xF2, 0x99, 0x00))
    assert first_red < first_amber  # the red site leads the grid
