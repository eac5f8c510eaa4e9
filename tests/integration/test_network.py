"""playbooks/network.yml and `motcua netgear` against the lab's simulated gear.

Real SSH sessions (cisco.ios over network_cli, netmiko, the OpenSSH client),
show output parsed with ntc-templates, the simulator's fault switches for a
session dropped mid-change.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from netmiko import ConnectHandler
from ntc_templates.parse import parse_output

from motcua.lab.gear.server import write_fault as gear_fault
from tests.conftest import LAB_HOME, ROOT, recap, run

pytestmark = pytest.mark.lab
INVENTORY = ROOT / "inventory" / "lab"
# The three lab wards' gear (the city centre's six devices are left out to keep the suite short;
# the unit tests cover its two routers' trunks).
GEAR = ["w25747-rt01", "w25747-sw01", "w26732-rt01", "w26732-sw01", "w26740-rt01", "w26740-sw01"]
WARDS = "site_25747,site_26732,site_26740"
FAULTS = LAB_HOME / "gear" / "faults.json"


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
def provisioned(lab):
    gear_fault(FAULTS, "w26732-sw01", None)
    result = playbook("--limit", WARDS)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return result


def test_every_device_is_configured_from_the_registry(lab, provisioned):
    assert sorted(recap(provisioned)) == GEAR
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


def test_second_run_changes_nothing(provisioned):
    again = playbook("--limit", WARDS)
    assert again.returncode == 0, again.stdout[-4000:]
    assert {h: r["changed"] for h, r in recap(again).items()} == dict.fromkeys(GEAR, 0)
    assert netgear("diff", "--sites", "25747,26732,26740").returncode == 0
    # Check mode on a provisioned device reports nothing: w25747-rt01 in the drift test below.


def test_drift_is_shown_exactly_then_corrected(lab, provisioned):
    with session(lab, "127.79.10.3") as conn:  # w25747-sw01
        conn.enable()
        conn.send_config_set(
            ["interface GigabitEthernet1/0/2", "description moved-by-hand", "switchport access vlan 30"]
        )
    drift = {(d["parent"], d["sign"], d["line"]) for d in drift_of("w25747-sw01")}
    assert drift == {
        ("interface GigabitEthernet1/0/2", "-", "description moved-by-hand"),
        ("interface GigabitEthernet1/0/2", "+", "description w25747-pc02"),
        ("interface GigabitEthernet1/0/2", "-", "switchport access vlan 30"),
        ("interface GigabitEthernet1/0/2", "+", "switchport access vlan 10"),
    }
    table = netgear("diff", "--sites", "25747")
    assert table.returncode == 1 and "- " in table.stdout and "w25747-sw01" in table.stdout
    assert any(line.split()[:5] == ["25747", "2", "1", "1", "0"] for line in table.stdout.splitlines()), table.stdout
    check = playbook("--check", "--diff", "--limit", "site_25747")
    changed = {h: r["changed"] for h, r in recap(check).items()}
    # The description, the access VLAN, and the running config that differs from the saved one.
    assert changed == {"w25747-rt01": 0, "w25747-sw01": 3}, check.stdout[-3000:]
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
    restored = netgear("restore", "--hosts", "w26740-rt01", "--from", str(Path(json.loads(first.stdout)["directory"])))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert drift_of("w26740-rt01") == []


def test_a_session_dropped_mid_change_rolls_the_site_back(lab, provisioned):
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
    retry = playbook("--limit", "site_26732")
    assert retry.returncode == 0, retry.stdout[-3000:]
    assert drift_of("w26732-sw01") == []


def startup_configs() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((LAB_HOME / "gear" / "devices").glob("*.json"))}


def test_a_missing_vault_secret_stops_the_run_before_any_device(provisioned):
    before = startup_configs()
    secrets = {"netgear_config_user_secrets": {"dxadmin": "$9$" + "a" * 14 + "$" + "b" * 43}}
    result = playbook("-e", json.dumps(secrets), "--limit", WARDS)
    assert result.returncode != 0
    assert "site 26740 (w26740-sw01): field netgear_config_user_secrets.dxview: missing from the vault" in result.stdout
    assert "Backup |" not in result.stdout and "Base |" not in result.stdout  # stopped in the preflight
    short = playbook("-e", "netgear_config_snmp_priv_passphrase=short", "--limit", "site_26740")
    assert short.returncode != 0 and "field netgear_config_snmp_priv_passphrase: must be 8 characters" in short.stdout
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
