"""The inventory plugin through real ansible-core commands."""

from __future__ import annotations

import json
import shutil
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from motcua.inventory import build_inventory
from tests.conftest import CORPUS, ROOT, run

pytestmark = pytest.mark.ansible


@pytest.fixture(scope="module")
def production() -> dict:
    result = run(["ansible-inventory", "-i", "inventory/hcmc", "--list"])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def lab() -> dict:
    result = run(["ansible-inventory", "-i", "inventory/lab", "--list"])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_lists_168_wards_and_4_centres(production):
    assert len(production["wards"]["children"]) == 168
    assert sorted(production["centres"]["children"]) == ["site_kvbd", "site_kvhcm", "site_kvvt", "site_ttpv"]
    for group in ("counters", "routers", "switches", "printers", "scanners", "kiosks", "monitoring"):
        assert production[group]["hosts"], group
    assert set(production["region_bd"]["children"]) >= {"site_25747", "site_kvbd"}
    assert "site_ttpv" in production["phase_hypercare"]["children"]
    assert len(production["_meta"]["hostvars"]) > 2_400


def test_production_hostvars(production):
    hostvars = production["_meta"]["hostvars"]["w26740-pc03"]
    assert hostvars["ansible_host"] == "10.79.77.23"
    assert hostvars["motcua_site"] == "26740"
    assert hostvars["motcua_ward_name"] == "Phường Sài Gòn"
    assert hostvars["motcua_role"] == "counter"
    # Site and role group vars reach the hosts.
    assert hostvars["motcua_site_subnet"] == "10.79.77.0/24"
    assert hostvars["motcua_site_region"] == "hcm"
    assert production["_meta"]["hostvars"]["w26740-sw01"]["ansible_network_os"] == "cisco.ios.ios"


def test_export_keeps_group_vars_on_groups():
    result = run(["ansible-inventory", "-i", "inventory/hcmc", "--list", "--export"])
    assert result.returncode == 0, result.stderr
    exported = json.loads(result.stdout)
    assert "__ansible_unsafe" not in result.stdout
    assert exported["site_26740"]["vars"]["motcua_site_gateway"] == "10.79.77.1"
    assert exported["network_gear"]["vars"]["ansible_connection"] == "ansible.netcommon.network_cli"


def test_graph_shows_every_site():
    result = run(["ansible-inventory", "-i", "inventory/hcmc", "--graph", "sites"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("@site_") == 172
    assert "|--w26732-pc01" in result.stdout  # Đặc khu Côn Đảo


def test_plugin_and_cli_build_the_same_inventory(production, production_registry):
    built = build_inventory(production_registry).as_ansible_json()
    assert set(built["_meta"]["hostvars"]) == set(production["_meta"]["hostvars"])
    for group in ("site_26740", "counters", "routers", "region_vt"):
        assert built[group].get("hosts", []) == production[group].get("hosts", [])
        assert sorted(built[group].get("children", [])) == sorted(production[group].get("children", []))


def test_lab_inventory_is_loopback_only(lab):
    hostvars = lab["_meta"]["hostvars"]
    assert sorted(lab["sites"]["children"]) == ["centres", "wards"]
    assert sorted(lab["wards"]["children"]) == ["site_25747", "site_26732", "site_26740"]
    assert sorted(lab["counters"]["hosts"]) == [
        "ttpv-pc01",
        "ttpv-pc02",
        "w25747-pc01",
        "w25747-pc02",
        "w26732-pc01",
        "w26732-pc02",
        "w26740-pc01",
        "w26740-pc02",
    ]
    loopback = IPv4Network("127.0.0.0/8")
    for name, variables in hostvars.items():
        assert IPv4Address(variables["ansible_host"]) in loopback, name
    assert hostvars["w26740-pc01"]["ansible_host"] == "127.79.77.21"
    assert hostvars["w26740-pc01"]["motcua_dx_centre_subnet"] == "127.79.0.0/24"
    assert hostvars["w26740-pc01"]["motcua_site_gateway"] == "127.79.77.1"


def write_inventory(tmp_path: Path, registry: Path, **options: str) -> Path:
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    shutil.copytree(registry, inventory / "registry")
    lines = ["plugin: motcua.ops.registry", "registry: registry"] + [f"{k}: {v}" for k, v in options.items()]
    (inventory / "motcua.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return inventory


def test_invalid_registry_stops_a_playbook_before_any_change(tmp_path: Path):
    inventory = write_inventory(tmp_path, CORPUS / "base")
    sites = inventory / "registry" / "sites.yml"
    sites.write_text(
        sites.read_text(encoding="utf-8").replace(
            "{code: 26740, net: 12, counters: 12}", "{code: 26740, net: 12, conters: 12}"
        ),
        encoding="utf-8",
    )
    marker = tmp_path / "marker"
    result = run(
        ["ansible-playbook", "-i", str(inventory), "tests/fixtures/touch_marker.yml", "-e", f"marker={marker}"]
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "sites.yml:33: site 26740: field conters: unknown key; did you mean 'counters'?" in output
    assert not marker.exists(), "a task ran although the registry is invalid"


def test_valid_registry_lets_the_playbook_run(tmp_path: Path):
    inventory = write_inventory(tmp_path, CORPUS / "base")
    marker = tmp_path / "marker"
    result = run(
        ["ansible-playbook", "-i", str(inventory), "tests/fixtures/touch_marker.yml", "-e", f"marker={marker}"]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert marker.exists()


def test_unknown_site_in_plugin_options(tmp_path: Path):
    inventory = write_inventory(tmp_path, CORPUS / "base", sites='["99999"]')
    result = run(["ansible-inventory", "-i", str(inventory), "--list"])
    assert result.returncode != 0
    assert "option sites: unknown site code(s): 99999" in result.stderr


def test_a_subset_without_a_centre_still_has_every_group(tmp_path: Path):
    """Wards only (as the counters benchmark uses): `centres` exists, empty, and nothing breaks."""
    inventory = write_inventory(tmp_path, ROOT / "inventory" / "hcmc" / "registry", sites='["26740", "25747"]')
    result = run(["ansible-inventory", "-i", str(inventory), "--list"])
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert sorted(listed["wards"]["children"]) == ["site_25747", "site_26740"]
    assert "centres" in listed["sites"]["children"]


def test_plugin_documentation_renders():
    result = run(["ansible-doc", "-t", "inventory", "motcua.ops.registry"])
    assert result.returncode == 0, result.stderr
    assert "address_space" in result.stdout


def test_repository_root_is_cwd_independent():
    result = run(["ansible-inventory", "-i", str(ROOT / "inventory" / "lab"), "--host", "dx-mon01"], cwd=ROOT / "docs")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ansible_host"] == "127.79.0.10"
