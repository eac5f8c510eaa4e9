"""playbooks/network.yml and `motcua netgear` against the lab's simulated gear.

Real SSH sessions (cisco.ios over network_cli, netmiko, the OpenSSH client),
show output parsed with ntc-templates, the simulator's fault switches for a
session dropped mid-change.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml
from netmiko import ConnectHandler
from ntc_templates.parse import parse_output

from motcua.lab.gear.server import write_clock as gear_clock
from motcua.lab.gear.server import write_fault as gear_fault
from tests.conftest import LAB_HOME, ROOT, ansible_env, recap, run

pytestmark = pytest.mark.lab
INVENTORY = ROOT / "inventory" / "lab"
# The three lab wards' gear (the city centre's six devices are left out to keep the suite short;
# the unit tests cover its two routers' trunks).
GEAR = ["w25747-rt01", "w25747-sw01", "w26732-rt01", "w26732-sw01", "w26740-rt01", "w26740-sw01"]
WARDS = "site_25747,site_26732,site_26740"
FAULTS = LAB_HOME / "gear" / "faults.json"
CLOCK = LAB_HOME / "gear" / "clock.json"
GEAR_LOG = LAB_HOME / "gear" / "gear.log"


def playbook(*args: str, inventory: Path = INVENTORY, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return run(["ansible-playbook", "-i", str(inventory), "playbooks/network.yml", *args], timeout=timeout)


def netgear(*args: str) -> subprocess.CompletedProcess[str]:
    return run(["motcua", "netgear", *args, "--quiet"], timeout=300)


def session(lab, address: str):
    return ConnectHandler(
        device_type="cisco_ios", host=address, username="dxadmin", use_keys=True, key_file=str(lab.key),
        allow_agent=False, secret=(LAB_HOME / "gear" / "enable-secret").read_text().strip(), conn_timeout=10,
    )  # fmt: skip


def drift_of(host: str) -> list[dict]:
    result = netgear("diff", "--hosts", host, "--json")
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)["devices"][host]["drift"]


@pytest.fixture(scope="module")
def provisioned(lab, demo):
    """The demo's network run (every device of the lab from its factory config); the wards' gear is
    put back to the intent by another run only if an earlier test left it drifted."""
    gear_fault(FAULTS, "w26732-sw01", None)
    first = subprocess.CompletedProcess([], demo["network"].returncode, demo["network"].output, "")
    assert first.returncode == 0, first.stdout[-6000:]
    if netgear("diff", "--sites", "25747,26732,26740").returncode != 0:
        again = playbook("--limit", WARDS)
        assert again.returncode == 0, again.stdout[-6000:] + again.stderr[-3000:]
    return first


def test_every_device_is_configured_from_the_registry(lab, provisioned):
    rows = recap(provisioned)
    assert set(GEAR) <= set(rows) and all(r["failed"] == 0 and r["unreachable"] == 0 for r in rows.values())
    verified = netgear("verify", "--json", "--sites", "25747,26732,26740")
    assert verified.returncode == 0, verified.stdout[-3000:]
    assert all(r["verified"] for r in json.loads(verified.stdout).values())
    with session(lab, "127.79.77.3") as conn:  # w26740-sw01, parsed with ntc-templates
        conn.enable()
        vlans = {v["vlan_id"]: v for v in parse_output("cisco_ios", "show vlan", conn.send_command("show vlan"))}
        ports = {p["port"]: p for p in parse_output("cisco_ios", "show interfaces status",
                                                    conn.send_command("show interfaces status"))}  # fmt: skip
        users = parse_output("cisco_ios", "show snmp user", conn.send_command("show snmp user"))
        running = conn.send_command("show running-config")
        version = parse_output("cisco_ios", "show version", conn.send_command("show version"))
    assert {k: vlans[k]["vlan_name"] for k in ("10", "20", "30", "99")} == {
        "10": "COUNTERS", "20": "PERIPHERALS", "30": "CITIZEN-WIFI", "99": "MANAGEMENT"}  # fmt: skip
    assert (ports["Gi1/0/1"]["name"], ports["Gi1/0/1"]["vlan_id"]) == ("w26740-pc01", "10")
    assert (ports["Gi1/0/9"]["name"], ports["Gi1/0/9"]["vlan_id"]) == ("w26740-pr01", "20")
    assert ports["Gi1/1/1"]["vlan_id"] == "trunk"
    assert [(u["user_name"], u["authentication_protocol"], u["privacy_protocol"]) for u in users] == [
        ("motcua-mon", "SHA", "AES128")
    ]
    assert version[0]["hostname"] == "w26740-sw01"
    expected = ["banner login ^C\nCANH BAO:", "ntp server 127.79.0.11", "logging host 127.79.0.10",
                "username dxadmin privilege 15 secret 9 $9$", "access-class 99 in", "transport input ssh"]  # fmt: skip
    for line in expected:
        assert line in running.replace("\r", ""), line
    snmp_pass = (LAB_HOME / "gear" / "snmp-auth").read_text().strip()
    assert snmp_pass not in running and snmp_pass not in provisioned.stdout  # no_log, and IOS never shows it
    # The real OpenSSH client through the lab's ssh config, host key checked.
    argv = ["ssh", "-F", str(lab.ssh_dir / "config"), "-o", "BatchMode=yes", "w26732-rt01", "show ip interface brief"]
    ssh = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert ssh.returncode == 0 and "Vlan99" in ssh.stdout, ssh.stderr


def command_lines() -> set[str]:
    """Every process's command line now (/proc/*/cmdline, NUL-separated arguments joined by spaces)."""
    lines = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.add(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # the process ended meanwhile
            continue
    return lines


def test_second_run_changes_nothing_and_no_secret_is_shown(provisioned, tmp_path):
    """The second run, at -vvv under the linear strategy, with a gear password as well as the
    lab's enable secret: neither is in the output nor on any process's command line meanwhile.
    One ward (its router and its switch): the three are configured alike, and -vvv costs."""
    password = f"gear-pw-{secrets.token_hex(8)}"
    enable_secret = (LAB_HOME / "gear" / "enable-secret").read_text().strip()
    extra = tmp_path / "secrets.yml"  # as a vault would give it: never on ansible-playbook's own command line
    extra.write_text(yaml.safe_dump({"ansible_password": password}))
    extra.chmod(0o600)
    argv = ["ansible-playbook", "-i", str(INVENTORY), "playbooks/network.yml", "--limit", "site_26740", "-vvv",
            "-e", f"@{extra}"]  # fmt: skip
    play = subprocess.Popen(argv, cwd=ROOT, env=ansible_env(ANSIBLE_STRATEGY="linear"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(play.stdout or []), daemon=True)
    reader.start()
    seen: set[str] = set()
    deadline = time.monotonic() + 900
    while play.poll() is None and time.monotonic() < deadline:
        seen |= command_lines()
        time.sleep(0.02)
    play.wait(timeout=10)
    reader.join(timeout=10)
    output = "".join(out)
    again = subprocess.CompletedProcess(argv, play.returncode, output, "")
    assert again.returncode == 0, output[-4000:]
    assert {h: r["changed"] for h, r in recap(again).items()} == {"w26740-rt01": 0, "w26740-sw01": 0}
    for name, secret in (("password", password), ("enable secret", enable_secret)):
        assert secret not in output, f"the gear {name} is in the -vvv output"
        leaked = [line[:200] for line in seen if secret in line]
        assert not leaked, f"the gear {name} was on a command line: {leaked}"
    # The sampler did see the tools that get the credentials while they ran.
    assert any("netgear backup" in line for line in seen), len(seen)
    assert any("netgear verify" in line for line in seen), len(seen)
    assert netgear("diff", "--sites", "25747,26732,26740").returncode == 0
    # Check mode on a provisioned device reports nothing: w25747-rt01 in the drift test below.


def test_drift_is_shown_exactly_then_corrected(lab, provisioned):
    """Changed by hand: a port's name and VLAN, the port shut, the SNMPv3 user removed (IOS shows it in
    `show snmp user` only). Check mode names exactly that; the next run puts all of it back."""
    with session(lab, "127.79.10.3") as conn:  # w25747-sw01
        conn.enable()
        user = parse_output("cisco_ios", "show snmp user", conn.send_command("show snmp user"))[0]
        conn.send_config_set(
            ["interface GigabitEthernet1/0/2", "description moved-by-hand", "switchport access vlan 30", "shutdown",
             "exit", f"no snmp-server user {user['user_name']} {user['group_name']} v3"]
        )  # fmt: skip
    drift = {(d["parent"], d["sign"], d["line"]) for d in drift_of("w25747-sw01")}
    assert drift == {
        ("interface GigabitEthernet1/0/2", "-", "description moved-by-hand"),
        ("interface GigabitEthernet1/0/2", "+", "description w25747-pc02"),
        ("interface GigabitEthernet1/0/2", "-", "switchport access vlan 30"),
        ("interface GigabitEthernet1/0/2", "+", "switchport access vlan 10"),
        ("interface GigabitEthernet1/0/2", "-", "shutdown"),
        (None, "+", f"snmp-server user {user['user_name']} {user['group_name']} v3 auth sha <hidden> priv aes 128 "
                    "<hidden>"),
    }  # fmt: skip
    table = netgear("diff", "--sites", "25747")
    assert table.returncode == 1 and "- " in table.stdout and "w25747-sw01" in table.stdout
    assert any(line.split()[:5] == ["25747", "2", "1", "1", "0"] for line in table.stdout.splitlines()), table.stdout
    check = playbook("--check", "--diff", "--limit", "site_25747")
    changed = {h: r["changed"] for h, r in recap(check).items()}
    # Exactly the drift: the one config text (the port's name, VLAN and state) and the SNMPv3 user (the
    # save is part of the confirmation, which a check run does not reach).
    assert changed == {"w25747-rt01": 0, "w25747-sw01": 2}, check.stdout[-3000:]
    for line in ("no shutdown", "description w25747-pc02", "switchport access vlan 10"):
        assert line in check.stdout, line
    assert drift_of("w25747-sw01")  # check mode changed nothing
    fixed = playbook("--limit", "site_25747")
    assert fixed.returncode == 0, fixed.stdout[-3000:]
    assert drift_of("w25747-sw01") == []


def test_backups_keep_a_dated_tree_with_a_diff_against_the_previous(lab, provisioned, tmp_path):
    first = netgear("backup", "--dir", str(tmp_path), "--sites", "26740", "--json")
    assert first.returncode == 0, first.stderr
    with session(lab, "127.79.77.1") as conn:  # w26740-rt01
        conn.enable()
        conn.send_config_set(["snmp-server location moved"])
    second = netgear("backup", "--dir", str(tmp_path), "--sites", "26740", "--json")
    run_dir = Path(json.loads(second.stdout)["directory"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["reason"] == "on-demand" and set(manifest["devices"]) == {"w26740-rt01", "w26740-sw01"}
    assert manifest["devices"]["w26740-sw01"]["changed_lines"] == 0
    assert manifest["devices"]["w26740-rt01"]["changed_lines"] == 2
    diff = (run_dir / "26740" / "w26740-rt01.diff").read_text()
    assert "+snmp-server location moved" in diff and "-snmp-server location 26740 Phuong Sai Gon" in diff
    assert (run_dir / "26740" / "w26740-rt01.cfg").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "latest").resolve() == run_dir.resolve()
    assert run_dir.parent.name == manifest["created"][:10]  # <date>/<time>-<reason>
    restored = netgear("restore", "--hosts", "w26740-rt01", "--from", str(Path(json.loads(first.stdout)["directory"])),
                       "--json")  # fmt: skip
    assert restored.returncode == 0, restored.stdout + restored.stderr
    # The backup went back whole: copied to flash by SCP and made the running config (configure replace).
    assert json.loads(restored.stdout)["devices"]["w26740-rt01"]["method"] == "configure replace", restored.stdout
    assert drift_of("w26740-rt01") == []


def test_a_session_dropped_mid_change_rolls_the_site_back(lab, provisioned, tmp_path):
    saved = netgear("backup", "--dir", str(tmp_path), "--sites", "26732", "--json")  # the lab as it is, for the end
    assert saved.returncode == 0, saved.stderr
    with session(lab, "127.79.75.3") as conn:  # w26732-sw01: drift the playbook must correct
        conn.enable()
        conn.send_config_set(["interface GigabitEthernet1/0/1", "description WRONG", "exit", "no vlan 30"])
    before = {(d["parent"], d["sign"], d["line"]) for d in drift_of("w26732-sw01")}
    gear_fault(FAULTS, "w26732-sw01", "drop-mid-change", 1, once=True)
    try:
        result = playbook("--limit", "site_26732,site_25747", timeout=300)  # never hangs: bounded by timeouts
    finally:
        gear_fault(FAULTS, "w26732-sw01", None)
    assert result.returncode != 0
    assert "w26732-sw01 (site 26732): rolled-back" in result.stdout
    retry_limit = re.search(r"retry just those: ansible-playbook .*? --limit (\S+)", " ".join(result.stdout.split()))
    assert retry_limit and retry_limit.group(1) == "site_26732"  # the other site is fine
    assert recap(result)["w26732-sw01"]["rescued"] == 1
    # The site is back to its pre-change backup: the same drift as before, nothing half-applied.
    assert {(d["parent"], d["sign"], d["line"]) for d in drift_of("w26732-sw01")} == before
    assert drift_of("w26732-rt01") == []
    # Back as the lab was, by `motcua netgear restore` (the backup as a whole, by configure replace).
    restored = netgear("restore", "--hosts", "w26732-sw01", "--from", json.loads(saved.stdout)["directory"], "--json")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert json.loads(restored.stdout)["devices"]["w26732-sw01"]["method"] == "configure replace", restored.stdout
    assert drift_of("w26732-sw01") == []


JOURNALS = LAB_HOME / "netgear-backups" / "journal"


def journal(site: str) -> dict:
    path = JOURNALS / f"{site}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def running(lab, address: str) -> str:
    with session(lab, address) as conn:
        conn.enable()
        return conn.send_command("show running-config").split("!", 1)[1]


def test_a_controller_killed_mid_change_is_undone_by_the_devices_and_recovered_by_the_next_run(lab, provisioned):
    """SIGKILL the whole controller (ansible-playbook and its workers) once the change has reached a
    device: nobody confirms, each device reverts by itself when its timer runs out, the journal stays
    open; the next run reports the interrupted change and ends at the intent.

    The gear's clock is held until the kill (10 lab minutes of 0.5 s, due long before on a slow
    controller): the test, not the controller's speed, decides when the timers run out."""
    with session(lab, "127.79.77.3") as conn:  # w26740-sw01: drift the run will correct
        conn.enable()
        conn.send_config_set(["interface GigabitEthernet1/0/2", "description WRONG"])
    drifted = {"w26740-sw01": running(lab, "127.79.77.3"), "w26732-sw01": running(lab, "127.79.75.3")}
    gear_clock(CLOCK, 0.5, held=True)
    try:
        argv = ["ansible-playbook", "-i", str(INVENTORY), "playbooks/network.yml", "--limit", "site_26740,site_26732"]
        play = subprocess.Popen(argv, cwd=ROOT, env=ansible_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)  # fmt: skip
        try:
            # Killed once the change has reached w26740-sw01 (its port named again), before any confirmation.
            deadline = time.monotonic() + 300
            with session(lab, "127.79.77.3") as conn:
                conn.enable()
                while conn.send_command("show running-config").split("!", 1)[1] == drifted["w26740-sw01"]:
                    assert play.poll() is None, "the run ended before the change reached the switch"
                    assert time.monotonic() < deadline, "the change never reached the switch"
                pending = conn.send_command("show archive config rollback timer")
            assert "Timer value: 10 min" in pending, f"the switch's timer is not pending at the kill: {pending}"
            assert journal("26740")["state"] == "open" and journal("26732")["state"] == "open"
        finally:
            os.killpg(play.pid, signal.SIGKILL)
            play.wait(timeout=30)
        gear_clock(CLOCK, 0.5)  # released: the timers, due by now, run out
        released_at = time.monotonic()
        # Each device puts its pre-change config back by itself.
        for name, address in (("w26740-sw01", "127.79.77.3"), ("w26732-sw01", "127.79.75.3")):
            with session(lab, address) as conn:
                conn.enable()
                while "%No Rollback Confirmed Change pending" not in conn.send_command(
                    "show archive config rollback timer"
                ):
                    assert time.monotonic() - released_at < 30, f"{name} did not revert by itself"
                    time.sleep(0.5)
                assert "ROLLBK_CNFMD_CHG_ROLLBACK_START" in conn.send_command("show logging")
            assert running(lab, address) == drifted[name], f"{name} is not back to its pre-change config"
        assert journal("26740")["state"] == "open"
        listed = netgear("journal", "--sites", "26740")
        assert listed.returncode == 1 and "open" in listed.stdout
    finally:
        gear_clock(CLOCK, None)
    again = playbook("--limit", "site_26740,site_26732")
    assert again.returncode == 0, again.stdout[-4000:]
    said = " ".join(again.stdout.split())
    assert "site 26740: the change started" in said and "was interrupted" in said
    assert drift_of("w26740-sw01") == [] and drift_of("w26732-sw01") == []
    assert journal("26740")["state"] == "confirmed" and journal("26732")["state"] == "confirmed"
    closed = [json.loads(line)["state"] for line in (JOURNALS / "26740.log").read_text().splitlines()]
    assert closed[-2:] == ["recovered", "confirmed"]


def test_a_change_that_locks_out_management_is_reverted_by_the_device(lab, provisioned):
    """The ACL the change sends locks the DX Centre out of w26740-rt01 (the fault): the verification
    cannot log in, nothing is confirmed, the device reverts when its timer runs out, the run fails
    naming it, and the DX Centre can log in again.

    The gear's clock is held until the router has refused a login after the ACL (10 lab minutes of
    0.5 s): the timer cannot run out before the change reaches the router, however slow the run."""
    acl = [line for line in running(lab, "127.79.77.1").splitlines() if line.startswith("access-list 99 ")]
    assert acl
    with session(lab, "127.79.77.1") as conn:  # the run will send the ACL lines again
        conn.enable()
        conn.send_config_set(["no access-list 99"])
    before = running(lab, "127.79.77.1")
    log_from = GEAR_LOG.stat().st_size
    gear_clock(CLOCK, 0.5, held=True)
    gear_fault(FAULTS, "w26740-rt01", "lockout-on-acl")
    try:
        argv = ["ansible-playbook", "-i", str(INVENTORY), "playbooks/network.yml", "--limit", "site_26740"]
        play = subprocess.Popen(argv, cwd=ROOT, env=ansible_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)  # fmt: skip
        try:
            out: list[str] = []
            reader = threading.Thread(target=lambda: out.extend(play.stdout), daemon=True)
            reader.start()
            deadline = time.monotonic() + 600
            refused = re.compile(r"w26740-rt01: refusing login of \S+: its ACL locks the management range out")
            with GEAR_LOG.open() as log:
                log.seek(log_from)
                seen = ""
                while not refused.search(seen):
                    assert play.poll() is None, "the run ended first: " + "".join(out)[-3000:]
                    assert time.monotonic() < deadline, "the router never refused a login"
                    time.sleep(0.5)
                    seen += log.read()
            gear_clock(CLOCK, 0.5)  # released: the router's timer, due by now, runs out and lets the DX Centre in
            play.wait(timeout=600)
            reader.join(timeout=30)
        finally:
            if play.poll() is None:
                os.killpg(play.pid, signal.SIGKILL)
                play.wait(timeout=30)
    finally:
        gear_fault(FAULTS, "w26740-rt01", None)
        gear_clock(CLOCK, None)
    said = " ".join("".join(out).split())
    assert play.returncode != 0, said[-3000:]
    assert "w26740-rt01 (site 26740): rolled-back - w26740-rt01: verification failed" in said, said[-3000:]
    assert "w26740-sw01 (site 26740): rolled-back" in said, said[-3000:]  # the whole site goes back
    assert running(lab, "127.79.77.1") == before  # and the DX Centre can log in again
    assert journal("26740")["state"] == "rolled-back"
    with session(lab, "127.79.77.1") as conn:  # the ACL as it was, for the tests after (the fault is cleared)
        conn.enable()
        conn.send_config_set(acl)
    assert drift_of("w26740-rt01") == []


def startup_configs() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((LAB_HOME / "gear" / "devices").glob("*.json"))}


def test_a_missing_vault_secret_stops_the_run_before_any_device(provisioned):
    before = startup_configs()
    secrets = {"netgear_config_user_secrets": {"dxadmin": "$9$" + "a" * 14 + "$" + "b" * 43}}
    result = playbook("-e", json.dumps(secrets), "--limit", WARDS)
    assert result.returncode != 0
    assert "site 26740 (w26740-sw01): field netgear_config_user_secrets.dxview: missing from the vault" in result.stdout
    assert "Backup |" not in result.stdout and "Config |" not in result.stdout  # stopped in the preflight
    short = playbook("-e", "netgear_config_snmp_priv_passphrase=short", "--limit", "site_26740")
    assert short.returncode != 0 and "field netgear_config_snmp_priv_passphrase: must be 8 characters" in short.stdout
    timer = playbook("-e", "netgear_config_confirm_minutes=ten", "--limit", "site_26740")
    assert timer.returncode != 0
    assert "field netgear_config_confirm_minutes: ten is not a number of minutes from 1 to 120" in " ".join(
        timer.stdout.split()
    )
    assert startup_configs() == before


def test_a_port_given_to_two_counters_stops_the_run_before_any_device(provisioned, tmp_path):
    registry = tmp_path / "registry"
    shutil.copytree(ROOT / "inventory" / "hcmc" / "registry", registry)
    sites = registry / "sites.yml"
    text = sites.read_text()
    assert "- {code: 26740, net: 77}" in text
    sites.write_text(
        text.replace("- {code: 26740, net: 77}", "- {code: 26740, net: 77, ports: {pc01: sw01/5, pc02: sw01/5}}")
    )
    inventory = tmp_path / "inventory"
    shutil.copytree(INVENTORY, inventory)
    config = yaml.safe_load((inventory / "motcua.yml").read_text())
    config["registry"] = str(registry)
    (inventory / "motcua.yml").write_text(yaml.safe_dump(config))
    before = startup_configs()
    result = playbook("--limit", WARDS, inventory=inventory)
    assert result.returncode != 0
    assert "site 26740: field ports.pc02: sw01/5 is already the port of w26740-pc01" in result.stdout + result.stderr
    assert startup_configs() == before
