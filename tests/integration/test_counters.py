"""Counter PC provisioning (playbooks/counters.yml) on every lab counter.

The provisioning run is `make demo`'s (the session fixture `demo`), then: testinfra checks of every item on
every counter, a second run that changes nothing, check mode that reports
nothing, a deliberate drift that check mode reports exactly, the roster's
life cycle (an official leaves: locked, files kept, reported; comes back:
unlocked), and a bad roster refused before any counter is touched.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import testinfra
from ansible_collections.motcua.ops.plugins.filter.initial_password import initial_password

from motcua.access import LAB_SUPPORT_USER
from motcua.lab import make_plan
from motcua.lab.dossier import write_fault
from motcua.rosters.officials import load_roster
from tests.conftest import CORPUS, LAB_HOME, ROOT, changed_tasks, counter_metrics, plane_open, recap, run
from tests.exporters.conftest import promtool_check

pytestmark = pytest.mark.lab
PLAYBOOK = "playbooks/counters.yml"


MONITORING_ADDRESSES = ("127.79.0.10", "127.79.0.13")  # dx-mon01, dx-mon02


def playbook(*args: str) -> subprocess.CompletedProcess[str]:
    return run(["ansible-playbook", "-i", "inventory/lab", PLAYBOOK, *args], timeout=900)


@pytest.fixture(scope="module")
def provisioned(demo):
    """The demo's run of this playbook: the counters' first provisioning on a fresh lab."""
    result = demo["counters"]
    assert result.returncode == 0, result.output[-6000:]
    assert "All 8 counters provisioned." in result.output
    return result


@pytest.fixture(scope="module")
def counters(lab):
    return make_plan(ROOT / "inventory" / "lab", LAB_HOME).counters


@pytest.fixture(scope="module")
def officials(production_registry):
    return load_roster(ROOT / "inventory" / "lab" / "roster.yml", production_registry)


def host(lab, name: str):
    return testinfra.get_host(f"ssh://{name}", ssh_config=str(lab.ssh_dir / "config"))


def test_base_system_on_every_counter(lab, provisioned, counters):
    for counter in counters:
        h = host(lab, counter.name)
        assert h.file("/etc/hostname").content_string.strip() == counter.name
        assert h.check_output("hostname") == counter.name
        assert h.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Asia/Ho_Chi_Minh"
        assert h.check_output("LC_ALL=C date +%z") == "+0700"
        assert "vi_VN" in h.check_output("locale -a").split()
        assert h.file("/etc/default/locale").contains("^LANG=vi_VN$")
        for package in ("fonts-dejavu-core", "fonts-liberation2", "chrony", "unattended-upgrades", "nftables"):
            assert h.package(package).is_installed, f"{counter.name}: {package}"
        chrony = h.file("/etc/chrony/chrony.conf")
        assert chrony.contains("^server 127.79.0.11 iburst$") and chrony.contains("^server 127.79.0.12 iburst$")
        assert h.service("chrony").is_running
        assert " -x" in h.check_output("LC_ALL=C ps -o args= -C chronyd")  # a container never sets the clock
        # Started at boot too, by their [Install] links: the PCs start from a layer where these units are
        # disabled, and an alias left behind (chronyd.service) once made is-enabled say yes with no link.
        for unit in (
            "multi-user.target.wants/chrony.service",
            "multi-user.target.wants/cups.service",
            "multi-user.target.wants/prometheus-node-exporter.service",
            "sockets.target.wants/pcscd.socket",
        ):
            assert h.file(f"/etc/systemd/system/{unit}").is_symlink, f"{counter.name}: {unit}"
        assert h.file("/etc/apt/apt.conf.d/50unattended-upgrades").contains("label=Debian-Security")
        assert h.file("/etc/apt/apt.conf.d/20auto-upgrades").contains('Unattended-Upgrade "1"')
        assert h.file("/etc/systemd/journald.conf.d/50-motcua.conf").contains("^SystemMaxUse=200M$")
        firewall = h.file("/etc/nftables.conf")
        assert firewall.contains("policy drop")
        assert firewall.contains("elements = { 127.79.0.0/24 }")
        assert firewall.contains("tcp dport 22 accept") and firewall.contains("tcp dport { 9100, 9110 } accept")


def test_firewall_ruleset_is_valid_nftables(lab, provisioned, counters, tmp_path: Path):
    """Checked with the real nft, in a network namespace of the test's own (the lab hosts may not)."""
    ruleset = tmp_path / "nftables.conf"
    ruleset.write_text(host(lab, counters[0].name).file("/etc/nftables.conf").content_string)
    result = subprocess.run(
        ["unshare", "--net", "nft", "-c", "-f", str(ruleset)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_officials_accounts_on_their_own_site_only(lab, provisioned, counters, officials):
    for counter in counters:
        h = host(lab, counter.name)
        for official in officials:
            user = h.user(official.username)
            if official.site != counter.site:
                assert not user.exists, f"{official.username} of {official.site} must not exist on {counter.name}"
                continue
            assert user.exists, f"{counter.name}: {official.username}"
            assert set(user.groups) >= {"motcua-staff", official.group}
            assert official.full_name in user.gecos and official.staff_id in user.gecos
            assert user.shell == "/bin/bash"
            assert "password must be changed" in h.check_output(f"LC_ALL=C chage -l {official.username}")
        sudoers = h.file("/etc/sudoers.d/motcua-quantri")
        assert sudoers.contains("^%motcua-quantri ALL=") and sudoers.mode == 0o440


def test_sudo_only_for_administrators(lab, provisioned, officials):
    # On 26740: SG-0002 is quản trị, SG-0001 is tiếp nhận.
    h = host(lab, "w26740-pc01")
    admin = next(o for o in officials if o.staff_id == "SG-0002")
    clerk = next(o for o in officials if o.staff_id == "SG-0001")
    assert "(ALL : ALL) ALL" in h.check_output(f"LC_ALL=C sudo -l -U {admin.username}")
    assert "not allowed to run sudo" in h.check_output(f"LC_ALL=C sudo -l -U {clerk.username}")


def test_remote_support_keys_and_group_only(lab, provisioned, counters):
    for counter in counters:
        h = host(lab, counter.name)
        assert "dxsupport" in h.user(LAB_SUPPORT_USER).groups  # one account per support person
        sshd = h.check_output("sshd -T")
        assert "passwordauthentication no" in sshd
        allowed = sorted(line.split()[1] for line in sshd.splitlines() if line.startswith("allowgroups "))
        assert allowed == ["dxsupport", "root"]  # root: the lab's Ansible only
        for setting in ("kbdinteractiveauthentication no", "maxauthtries 3", "allowtcpforwarding no",
                        "x11forwarding no"):  # fmt: skip
            assert setting in sshd.splitlines(), setting
        # Read first: no earlier drop-in can set these before the policy does.
        assert sorted(h.file("/etc/ssh/sshd_config.d").listdir())[0] == "00-motcua-support.conf"
    # The support person logs in with their key and may run the allow-listed remediations as root,
    # through motcua-support, and nothing else.
    command = ["ssh", "-F", str(lab.ssh_dir / "config"), "-o", "BatchMode=yes", "-l", LAB_SUPPORT_USER]
    result = subprocess.run([*command, counters[0].name, "id -un; sudo -n true; echo rc=$?; sudo -n -l"],
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.stdout.splitlines()[0] == LAB_SUPPORT_USER, result.stderr
    assert "rc=1" in result.stdout  # no shell, no arbitrary command as root
    allowed = [line.strip() for line in result.stdout.splitlines() if "/usr/local/sbin/motcua-support" in line]
    assert "(root) NOPASSWD: /usr/local/sbin/motcua-support restart-cups" in " ".join(allowed)
    assert "ALL" not in " ".join(allowed).replace("NOPASSWD", "")


def test_node_exporter_on_the_management_address_only(lab, provisioned, counters):
    for counter in counters:
        with plane_open(f"https://{counter.address}:9100/metrics") as resp:
            metrics = resp.read().decode()
        assert "node_exporter_build_info" in metrics
        assert f'nodename="{counter.name}"' in metrics  # the counter's own node_exporter answered
        # systemd's units one by one only for those the roles run; every unit counted by state.
        units = set(re.findall(r'^node_systemd_unit_state\{name="([^"]+)"', metrics, re.M))
        assert {"ssh.service", "cups.service", "motcua-counter-exporter.service"} <= units, units
        assert all(re.fullmatch(r"(motcua-.+|prometheus-node-exporter|cups|chrony|nftables|pcscd|ssh)\."
                                r"(service|socket|timer)", unit) for unit in units), units  # fmt: skip
        active = int(re.search(r'^node_systemd_units\{state="active"\} (\d+)', metrics, re.M).group(1))
        assert active > len(units)
        assert "node_netstat_" not in metrics  # off in the lab (group_vars/counters.yml)
    # Lab hosts share this machine's network namespace, so every listener on :9100 is
    # visible here: exactly one per counter, on its own address, and none on a wildcard
    # (besides the monitoring hosts' own node_exporters once playbooks/monitoring.yml ran).
    listeners = host(lab, counters[0].name).check_output("ss -Hltn 'sport = :9100'").split("\n")
    addresses = sorted(line.split()[3] for line in listeners if line.strip())
    monitoring = {f"{address}:9100" for address in MONITORING_ADDRESSES}
    assert [a for a in addresses if a not in monitoring] == sorted(f"{c.address}:9100" for c in counters)


COUNTER_CHECKS = ("clock", "portal", "printers", "scan_storage", "scanners", "token")


def test_counter_exporter_checks_every_counter(lab, provisioned, counters, production_registry):
    for counter in counters:
        h = host(lab, counter.name)
        unit = h.service("motcua-counter-exporter")
        assert unit.is_running and unit.is_enabled
        text = counter_metrics(counter, 'motcua_counter_check_success{check="scanners"}')
        for check in COUNTER_CHECKS:
            assert f'motcua_counter_check_success{{check="{check}"}} 1' in text, (counter.name, check)
        assert f"motcua_counter_printers {len(site_printers(production_registry, counter))}\n" in text
        assert 'motcua_counter_scanner_info{device="test:0"' in text
        assert (
            "motcua_counter_tokens 1\n" in text
            and f'motcua_counter_token_certificates{{token="motcua-{counter.site}"}}' in text
        )
        assert "motcua_counter_portal_success 1\n" in text and "motcua_counter_portal_http_status_code 200\n" in text
        assert "motcua_counter_clock_stratum " in text  # chrony answered (the lab has no NTP server to sync to)
        assert 'motcua_counter_scans_free_bytes{path="/srv/motcua/scans"}' in text
        assert "_created" not in text
        promtool_check(text)
        # Its own user, outside the officials' group: it measures the scans directory but cannot read it.
        user = h.user("motcua-exporter")
        assert user.shell == "/usr/sbin/nologin" and "motcua-staff" not in user.groups
    listeners = host(lab, counters[0].name).check_output("ss -Hltn 'sport = :9110'").split("\n")
    assert sorted(line.split()[3] for line in listeners) == sorted(f"{c.address}:9110" for c in counters)


def test_counter_exporter_sees_a_stopped_printer_a_token_certificate_and_a_portal_outage(
    lab, provisioned, counters, officials, production_registry
):
    counter = next(c for c in counters if c.site == "26740")
    h = host(lab, counter.name)
    queue = site_printers(production_registry, counter)[0]
    clerk = next(o for o in officials if o.site == "26740")
    softhsm = "/usr/lib/softhsm/libsofthsm2.so"
    pin = (LAB_HOME / "tokens" / "user-pin").read_text().strip()
    token = f"pkcs11-tool --module {softhsm} --token-label motcua-26740 --login --pin {pin}"
    faults = LAB_HOME / "dossier" / "faults.json"
    try:
        h.check_output(f"cupsdisable {queue}")
        h.check_output(f"runuser -l {clerk.username} -c 'echo Biên nhận | lp -d {queue}'")
        # The ward's signing certificate, as the CA would deliver it onto the token.
        h.check_output(
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 "
            "-subj '/CN=UBND phuong Sai Gon' -keyout /tmp/ward.key -outform DER -out /tmp/ward.der 2>/dev/null"
        )
        # Certificates already on the token (playbooks/certificates.yml may have put the ward's there).
        before = len(re.findall(r"Certificate Object", h.check_output(f"{token} --list-objects --type cert")))
        h.check_output(f"{token} --write-object /tmp/ward.der --type cert --id 01 --label ward-cert")
        # SoftHSM2 writes every object 0600 in its creator's group; counter_token opens its store to the softhsm group
        # on each run, as a real token behind pcscd needs no such step.
        h.check_output("chgrp -R softhsm /var/lib/softhsm/tokens && chmod -R g+rwX /var/lib/softhsm/tokens")
        write_fault(faults, "down")
        text = counter_metrics(counter, 'motcua_counter_portal_failure{reason="refused"} 1')
        counter_metrics(counter, f'motcua_counter_printer_state{{printer="{queue}",state="stopped"}} 1')
        text = counter_metrics(counter, f'motcua_counter_printer_jobs{{printer="{queue}"}} 1', timeout=20)
        assert f'motcua_counter_printer_accepting_jobs{{printer="{queue}"}} 1' in text
        text = counter_metrics(counter, f'motcua_counter_token_certificates{{token="motcua-26740"}} {before + 1}')
        expiry = re.search(r'motcua_counter_token_certificate_not_after_timestamp_seconds'
                           r'\{token="motcua-26740",id="01",subject="UBND phuong Sai Gon"\} (\S+)', text)  # fmt: skip
        assert expiry and abs(float(expiry.group(1)) - (time.time() + 30 * 86400)) < 3600, text[-3000:]
    finally:
        write_fault(faults, None)
        h.run(f"cancel -a {queue}; cupsenable {queue}")
        h.run(f"{token} --delete-object --type cert --id 01; rm -f /tmp/ward.key /tmp/ward.der")
    counter_metrics(counter, "motcua_counter_portal_success 1")
    counter_metrics(counter, f'motcua_counter_printer_state{{printer="{queue}",state="idle"}} 1')


def site_printers(registry, counter) -> list[str]:
    """The site's printers in the registry: every one gets a queue, the first is the default."""
    site = registry.sites[counter.site]
    return sorted(printer.name for printer in site.hosts_by_role("printer"))


def test_printing_through_the_sites_queues(lab, provisioned, counters, officials, production_registry):
    for counter in counters:
        h = host(lab, counter.name)
        queues = sorted(line.split()[2].rstrip(":") for line in h.check_output("LC_ALL=C lpstat -v").splitlines())
        assert queues == site_printers(production_registry, counter), counter.name
        assert h.check_output("LC_ALL=C lpstat -d").endswith(f": {site_printers(production_registry, counter)[0]}")
        assert "FileDevice Yes" in h.file("/etc/cups/cups-files.conf").content_string  # lab only
    # cupsd serves its own PC through its socket: no counter opens a TCP port for printing.
    assert host(lab, counters[0].name).check_output("ss -Hltn 'sport = :631'") == ""

    # A real job, as an official, through CUPS' filters into the lab's file device.
    counter = next(c for c in counters if c.site == "26740")
    h = host(lab, counter.name)
    clerk = next(o for o in officials if o.site == "26740")
    output = f"/var/spool/motcua-print/{site_printers(production_registry, counter)[0]}.prn"
    h.run(f"truncate -s 0 {output}")  # the role made it: cups no longer creates a file device output
    job = h.check_output(f"runuser -l {clerk.username} -c 'echo Biên nhận hồ sơ | lp'")
    assert job.startswith("request id is ") or "yêu cầu" in job, job
    for _ in range(60):
        if h.file(output).exists and h.file(output).size > 0 and h.check_output("lpstat -o") == "":
            break
        time.sleep(1)
    # The generic IPP Everywhere driver's filters turned the text into PWG raster for the device.
    assert h.file(output).content[:4] == b"RaS2", "the job did not reach the printer's device"


def test_scanning_with_sanes_test_backend(lab, provisioned, counters, officials):
    counter = next(c for c in counters if c.site == "26740")
    h = host(lab, counter.name)
    assert "device `test:0'" in h.check_output("LC_ALL=C scanimage -L")
    scans = h.file("/srv/motcua/scans")
    assert scans.group == "motcua-staff" and scans.mode == 0o2770
    clerk = next(o for o in officials if o.site == "26740")
    h.check_output(
        f"runuser -l {clerk.username} -c 'scanimage -d test:0 --format=pnm > /srv/motcua/scans/bien-nhan.pnm'"
    )
    scan = h.file("/srv/motcua/scans/bien-nhan.pnm")
    assert scan.group == "motcua-staff" and scan.size > 1000
    assert scan.content[:2] in (b"P5", b"P6")


def test_token_and_national_ca_chain(lab, provisioned, counters, officials):
    softhsm = "/usr/lib/softhsm/libsofthsm2.so"
    for counter in counters:
        h = host(lab, counter.name)
        assert h.service("pcscd.socket").is_enabled
        assert h.file("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so").exists
        assert f"token label        : motcua-{counter.site}" in h.check_output(f"pkcs11-tool --module {softhsm} -L")
        # The lab CA stands in for the national CA: trusted system-wide, so a TLS
        # client reaches the dossier stand-in without being told about any CA.
        assert h.file("/usr/local/share/ca-certificates/motcua/ca.crt").exists
        fetch = "import urllib.request as u; print(u.urlopen('https://127.79.0.20/', timeout=20).status)"
        assert h.check_output(f'python3 -c "{fetch}"') == "200"
    # An official (not root) reaches the token through the PKCS#11 interface.
    counter = next(c for c in counters if c.site == "26740")
    clerk = next(o for o in officials if o.site == "26740")
    listing = host(lab, counter.name).check_output(
        f"runuser -l {clerk.username} -c 'pkcs11-tool --module {softhsm} -L'"
    )
    assert "motcua-26740" in listing


def test_kiosk_browser_policies_shortcut_and_a_real_firefox(lab, provisioned, counters, officials):
    for counter in counters:
        h = host(lab, counter.name)
        policies = json.loads(h.file("/etc/firefox/policies/policies.json").content_string)["policies"]
        assert policies["Homepage"] == {"URL": "https://127.79.0.20/", "Locked": True, "StartPage": "homepage-locked"}
        assert policies["PasswordManagerEnabled"] is False and policies["OfferToSaveLogins"] is False
        assert policies["WebsiteFilter"] == {"Block": ["<all_urls>"], "Exceptions": ["https://127.79.0.20/*"]}
        # The lab CA (the dossier stand-in's) and the national-CA stand-in (the wards' certificates).
        assert policies["Certificates"]["Install"] == [
            f"/usr/local/share/ca-certificates/motcua/{name}.crt" for name in ("ca", "root", "issuing")
        ]
        assert "/usr/lib/softhsm/libsofthsm2.so" in policies["SecurityDevices"]["Add"].values()
        assert h.package("firefox-esr").is_installed
        assert (
            "Exec=firefox-esr --new-window https://127.79.0.20/"
            in h.file("/usr/share/applications/motcua-dossier.desktop").content_string
        )
        for official in officials:
            if official.site == counter.site:
                shortcut = h.file(f"/home/{official.username}/Desktop/motcua-dossier.desktop")
                assert shortcut.exists and shortcut.user == official.username

    # Firefox ESR itself, headless, as an official: the portal opens (its CA is
    # trusted, the page is allowed); a page off the allow-list never reaches the server.
    counter = next(c for c in counters if c.site == "26740")
    clerk = next(o for o in officials if o.site == "26740")
    h = host(lab, counter.name)
    log = LAB_HOME / "dossier" / "dossier.log"
    allowed, blocked = (f"kiosk-{kind}-{time.time_ns()}" for kind in ("allowed", "blocked"))
    # The allowed page loads in about a second; on a blocked one Firefox shows its block page
    # and never finishes the screenshot, so it gets 20 s (a request would reach the server at once).
    for url, limit in ((f"https://127.79.0.20/?probe={allowed}", 90), (f"http://127.79.0.20/?probe={blocked}", 20)):
        firefox = f"timeout {limit} firefox-esr --headless --screenshot /tmp/kiosk.png {url}"
        h.run(f"runuser -l {clerk.username} -c '{firefox}'")
    served = log.read_text(encoding="utf-8", errors="replace")
    assert f"GET /?probe={allowed} " in served, "Firefox did not load the allowed portal page"
    assert blocked not in served, "Firefox opened a page that the allow-list blocks"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('{{"motcua_trust_ca_files": ["{lab}/ca/server.pem"]}}', "not usable as a trust anchor"),
        ("counter_kiosk_portal_url=http://127.79.0.20/", "counter_kiosk_portal_url must be an https:// URL"),
        (
            "counter_peripherals_printer_uri=file:///tmp/{{queue}}.prn counter_peripherals_cups_file_device=false",
            "file: only with counter_peripherals_cups_file_device",
        ),
        (
            '{{"counter_monitoring_check_settings": {{"printer": {{"interval": "5s"}}}}}}',
            "checks.printer: unknown check",
        ),
    ],
    ids=["not-a-ca", "http-portal", "file-printer-in-production", "unknown-exporter-check"],
)
def test_bad_peripheral_inputs_are_refused_before_any_change(lab, provisioned, extra, message):
    result = playbook("-e", extra.format(lab=LAB_HOME), "--limit", "site_26740")  # checked per counter
    assert result.returncode != 0
    assert message in " ".join(result.stdout.split()), result.stdout[-3000:]
    assert "PLAY [Counter PCs | provision]" not in result.stdout


def test_second_run_changes_nothing(provisioned):
    # One counter of every site (the city centre and the three wards: each site's own data, the second
    # counter's own number and devices): 45 s less than all eight, on a controller whose CPU is the
    # bottleneck. w26740-pc01 has its no-change run under the linear strategy (test_demo).
    second = [f"{site}-pc02" for site in ("ttpv", "w25747", "w26732", "w26740")]
    result = playbook("--limit", ",".join(second))
    assert result.returncode == 0, result.stdout[-4000:]
    counters_recap = {name: row for name, row in recap(result).items() if name != "localhost"}
    assert sorted(counters_recap) == second
    assert all(row["changed"] == 0 for row in counters_recap.values()), counters_recap


def test_check_mode_reports_nothing_then_exactly_the_drift(lab, provisioned):
    # One check run over a ward's two counters, both drifted: one twice (journald's limit, a print queue's
    # description), the other by a package removed (the lab's counters start with the roles' packages in their
    # image, as a golden image would hold them: this is where a role is seen installing one). Each reports
    # exactly its drift, and the check changes nothing; a run with the tags of the drift puts it back.
    # (The second run above covers a counter of every site.)
    drifted, queue = "w25747-pc02", "w25747-pr01"
    unpackaged, package = "w25747-pc01", "sane-utils"
    h, u = host(lab, drifted), host(lab, unpackaged)
    h.run("sed -i 's/^SystemMaxUse=200M$/SystemMaxUse=2G/' /etc/systemd/journald.conf.d/50-motcua.conf")
    h.check_output(f"lpadmin -p {queue} -D 'Máy in tạm'")
    u.check_output(f"DEBIAN_FRONTEND=noninteractive apt-get remove -y -q {package}")
    try:
        check = playbook("--check", "--diff", "--limit", "site_25747")
        assert check.returncode == 0, check.stdout[-4000:]
        rows = recap(check)
        # Exactly the drift: the file and the restart it would cause, and the queue; the package.
        queue_task = "Printing | one queue per printer of the site, the first is the default"
        assert sorted(changed_tasks(check, drifted)) == sorted(["Journald | limits", "Restart journald", queue_task])
        assert changed_tasks(check, unpackaged) == ["Peripherals | packages"], rows
        assert set(rows) - {"localhost"} == {drifted, unpackaged}, rows
        assert "-SystemMaxUse=2G" in check.stdout and "+SystemMaxUse=200M" in check.stdout
        assert "-description: Máy in tạm" in check.stdout
        # Check changed nothing.
        assert h.file("/etc/systemd/journald.conf.d/50-motcua.conf").contains("^SystemMaxUse=2G$")
        assert "Máy in tạm" in h.check_output(f"LC_ALL=C lpoptions -p {queue}")
        assert not u.package(package).is_installed
    finally:
        tags = "counter_base_journald,counter_peripherals_printing,counter_peripherals_install"
        fixed = playbook("--limit", f"{drifted},{unpackaged}", "--tags", tags)
        assert fixed.returncode == 0, fixed.stdout[-3000:]
    assert changed_tasks(fixed, unpackaged) == ["Peripherals | packages"], fixed.stdout[-3000:]
    assert u.package(package).is_installed and u.exists("scanimage")
    assert h.file("/etc/systemd/journald.conf.d/50-motcua.conf").contains("^SystemMaxUse=200M$")
    assert "Máy in tạm" not in h.check_output(f"LC_ALL=C lpoptions -p {queue}")


def test_a_counter_that_is_down_fails_alone_and_the_summary_says_how_to_retry(lab, provisioned):
    down, up = "w26740-pc02", "w26740-pc01"
    lab.stop_host(down)
    try:
        # --limit leaves localhost out: the summary still runs (on the counters' play).
        result = playbook("--limit", "site_26740", "--tags", "counter_base_journald")
    finally:
        lab.up()
    assert result.returncode != 0
    rows = recap(result)
    assert rows[down]["unreachable"] >= 1 and rows[up]["failed"] == 0, rows
    text = " ".join(result.stdout.split())
    assert f"FAILED on 1 counter(s): {down} -- retry just those: ansible-playbook -i " in text, result.stdout[-3000:]
    assert f"playbooks/counters.yml --limit {down}" in text
    retry = playbook("--limit", down, "--tags", "counter_base_journald")
    assert retry.returncode == 0, retry.stdout[-3000:]
    assert "All 1 counters provisioned." in retry.stdout


def test_a_run_that_fails_later_still_restarts_what_it_changed(lab, provisioned):
    """force_handlers (ansible.cfg): journald's limits change, then a later role fails on the counter (CUPS
    stopped and masked). The run restarts journald all the same: the next run would find nothing to change, and
    journald would keep the old limit until the PC restarted (without force_handlers it did, in the lab)."""
    name = "w26740-pc02"
    h = host(lab, name)
    h.run("sed -i 's/^SystemMaxUse=200M$/SystemMaxUse=2G/' /etc/systemd/journald.conf.d/50-motcua.conf")
    started = h.check_output("systemctl show -p ExecMainStartTimestampMonotonic --value systemd-journald")
    h.check_output("systemctl stop cups.socket cups.service && systemctl mask cups.service")
    try:
        result = playbook("--limit", name)
    finally:
        h.check_output("systemctl unmask cups.service && systemctl start cups.socket cups.service")
    assert result.returncode != 0 and recap(result)[name]["failed"] == 1, result.stdout[-3000:]
    assert "Unable to start service cups" in result.stdout, result.stdout[-3000:]
    assert changed_tasks(result, name)[-2:] == ["Journald | limits", "Restart journald"], changed_tasks(result, name)
    assert h.check_output("systemctl show -p ExecMainStartTimestampMonotonic --value systemd-journald") != started
    assert h.service("cups").is_running and h.service("cups").is_enabled  # as before the test


def test_an_official_who_leaves_is_locked_reported_and_can_come_back(lab, provisioned, officials, tmp_path):
    leaving = next(o for o in officials if o.staff_id == "SG-0001")
    roster = tmp_path / "roster.yml"
    lines = (ROOT / "inventory" / "lab" / "roster.yml").read_text(encoding="utf-8").splitlines()
    roster.write_text("\n".join(line for line in lines if "SG-0001" not in line) + "\n", encoding="utf-8")
    h = host(lab, "w26740-pc01")
    h.run(f"touch /home/{leaving.username}/ho-so-dang-lam.pdf")

    # The accounts concern alone (its tag): locking, the review report and unlocking are all counter_accounts'.
    result = playbook("--limit", "site_26740", "--tags", "counter_accounts", "-e", f"counter_accounts_roster={roster}")
    assert result.returncode == 0, result.stdout[-4000:]
    status = h.check_output(f"LC_ALL=C passwd -S {leaving.username}").split()
    assert status[1] == "L", status  # password locked
    assert re.search(r"Account expires\s+: Jan 02, 1970", h.check_output(f"LC_ALL=C chage -l {leaving.username}"))
    assert h.file(f"/home/{leaving.username}/ho-so-dang-lam.pdf").exists  # files stay
    report = (LAB_HOME / "reports" / "accounts-review.html").read_text(encoding="utf-8")
    assert leaving.username in report and "Rà soát tài khoản" in report and "Phường Sài Gòn" in report

    back = playbook("--limit", "site_26740", "--tags", "counter_accounts")
    assert back.returncode == 0, back.stdout[-4000:]
    assert h.check_output(f"LC_ALL=C passwd -S {leaving.username}").split()[1] == "P"
    assert re.search(r"Account expires\s+: never", h.check_output(f"LC_ALL=C chage -l {leaving.username}"))


def test_a_bad_roster_is_refused_before_any_counter_is_touched(lab, provisioned):
    bad = CORPUS / "roster" / "unknown-role.yml"
    result = playbook("-e", f"counter_accounts_roster={bad}")
    assert result.returncode != 0
    assert f"{bad}:3: staff SG-0001: field role: unknown role 'giám đốc'" in result.stdout
    assert "PLAY [Counter PCs | provision]" not in result.stdout
    assert all(row["changed"] == 0 for row in recap(result).values()), recap(result)


def test_an_account_the_role_did_not_make_is_never_taken_over(lab, provisioned, tmp_path):
    h = host(lab, "w26740-pc01")
    h.run("useradd --create-home ketoan && usermod -aG lp ketoan")  # made by hand, not by the role
    try:
        lines = (ROOT / "inventory" / "lab" / "roster.yml").read_text(encoding="utf-8").splitlines()
        lines.append(
            '  - {staff_id: SG-0009, full_name: Kế Toán Viên, site: "26740", role: tiep_nhan, username: ketoan}'
        )
        roster = tmp_path / "roster.yml"
        roster.write_text("\n".join(lines) + "\n", encoding="utf-8")
        result = playbook("--limit", "w26740-pc01", "--tags", "counter_accounts", "-e",
                          f"counter_accounts_roster={roster}")  # fmt: skip
        assert result.returncode != 0
        assert "ketoan already exist(s) on this counter and were not made by motcua-ops" in " ".join(
            result.stdout.split()
        )
        assert all(row["changed"] == 0 for row in recap(result).values()), recap(result)
        assert h.user("ketoan").groups == ["ketoan", "lp"]  # untouched
    finally:
        h.run("userdel --remove ketoan")


def test_locking_most_of_a_sites_officials_needs_asking(lab, provisioned, tmp_path):
    lines = (ROOT / "inventory" / "lab" / "roster.yml").read_text(encoding="utf-8").splitlines()
    roster = tmp_path / "roster.yml"
    roster.write_text("\n".join(line for line in lines if "SG-000" not in line) + "\n", encoding="utf-8")
    result = playbook("--limit", "site_26740", "--tags", "counter_accounts", "-e", f"counter_accounts_roster={roster}")
    assert result.returncode != 0
    said = " ".join(result.stdout.split())
    assert "the roster would lock 2 of the 2 officials' accounts on this counter" in said
    assert "-e counter_accounts_allow_mass_removal=true" in said
    assert all(row["changed"] == 0 for row in recap(result).values()), recap(result)


def test_an_initial_password_is_forced_to_change_even_after_an_interrupted_run(lab, provisioned, officials):
    h = host(lab, "w26740-pc02")
    clerk = next(o for o in officials if o.staff_id == "SG-0001")
    admin = next(o for o in officials if o.staff_id == "SG-0002")
    sheet = LAB_HOME / "reports" / "accounts-handover-w26740-pc02.csv"
    saved = sheet.read_bytes()  # the provisioning run's sheet, which names the administrator
    try:
        # As if a run stopped after creating the clerk's account: the initial password, not yet to be changed;
        # the administrator has set a password of their own.
        h.run(f"chage --lastday $(date +%F) {clerk.username}")
        h.run(f"usermod -p \"$(openssl passwd -6 'own password 1')\" {admin.username} && chage --lastday $(date +%F) "
              f"{admin.username}")  # fmt: skip
        assert "password must be changed" not in h.check_output(f"LC_ALL=C chage -l {clerk.username}")
        result = playbook("--limit", "w26740-pc02", "--tags", "counter_accounts")
        assert result.returncode == 0, result.stdout[-4000:]
        assert "password must be changed" in h.check_output(f"LC_ALL=C chage -l {clerk.username}")
        assert "password must be changed" not in h.check_output(f"LC_ALL=C chage -l {admin.username}")
        assert oct(sheet.stat().st_mode & 0o777) == "0o600"
        text = sheet.read_bytes().decode("utf-8")
        assert text.startswith("\ufeffTài khoản / username,") and text.endswith("\r\n")  # as spreadsheets write CSV
        rows = {row[0]: row for row in csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))}
        assert rows[clerk.username][:3] == [clerk.username, clerk.full_name, clerk.staff_id]
        assert admin.username not in rows
        # Each account's initial password is its own, and it is the one in /etc/shadow.
        password = rows[clerk.username][-1]
        shadow = h.check_output(f"getent shadow {clerk.username}").split(":")[1]
        assert subprocess.run(["openssl", "passwd", "-6", "-salt", shadow.split("$")[2], password],
                              capture_output=True, text=True, check=True).stdout.strip() == shadow  # fmt: skip
        again = playbook("--limit", "w26740-pc02", "--tags", "counter_accounts")
        assert recap(again)["w26740-pc02"]["changed"] == 0
    finally:  # the lab keeps its state: the administrator back on their initial password, to change, and on the sheet
        initial = initial_password(admin.username, (LAB_HOME / "accounts" / "initial-secret").read_text().strip())
        h.run(f"usermod -p '{initial['hash']}' {admin.username} && chage --lastday 0 {admin.username}")
        sheet.write_bytes(saved)
