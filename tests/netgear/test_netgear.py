"""The gear intent, drift and rollback against the simulator's IOS model (no network)."""

from __future__ import annotations

import io
import re

import pytest
from ansible_collections.motcua.ops.plugins.filter.site_batches import site_batches

from motcua.access import AccessError
from motcua.access import GearAccess as Access
from motcua.inventory.gear import device_intent
from motcua.lab.gear.device import Device
from motcua.lab.gear.session import Session
from motcua.netgear.config import (
    drift,
    intent_commands,
    normalised,
    parse_config,
    render_config,
    render_drift,
    rollback_commands,
    section_commands,
)
from motcua.netgear.devices import NetgearError, select_devices
from motcua.netgear.secrets import TYPE9, type9_hash
from tests.conftest import ROOT

SECRET = "lab-enable"  # noqa: S105 - a throwaway secret of a simulated device


def configure(device: Device, lines: list[str]) -> None:
    session = Session(device, privileged=True)
    for line in ["configure terminal", *lines, "end"]:
        reply = session.handle(line)
        assert "Invalid input" not in reply.text, (line, reply.text)


@pytest.fixture(scope="module")
def lab_registry(production_registry):
    return production_registry.subset(["ttpv", "26740"], 2)


@pytest.fixture
def switch(tmp_path, lab_registry):
    device = select_devices(lab_registry, lab=True, hosts=["w26740-sw01"])[0]
    sim = Device(device.name, "switch", 24, tmp_path, SECRET)
    return device, sim


def test_intent_follows_the_site_plan(lab_registry):
    site = lab_registry.site("26740")
    intent = device_intent(lab_registry, site.host("w26740-sw01"), lab=True)
    access = {i["name"]: i["access"]["vlan"] for i in intent["l2_interfaces"] if i["mode"] == "access"}
    # Counters on the counters VLAN, the others on peripherals; ports as in production (pc03.. capped away).
    assert access["GigabitEthernet1/0/1"] == site.vlans["counters"]
    assert access["GigabitEthernet1/0/9"] == site.vlans["peripherals"]
    assert {i["name"]: i["description"] for i in intent["interfaces"]}["GigabitEthernet1/0/9"] == "w26740-pr01"
    trunk = next(i for i in intent["l2_interfaces"] if i["mode"] == "trunk")
    assert trunk["name"] == "GigabitEthernet1/1/1" and trunk["trunk"]["allowed_vlans"] == ["10", "20", "30", "99"]
    assert "ntp server 127.79.0.11" in intent["lines"] and "logging host 127.79.0.10" in intent["lines"]
    assert "access-list 99 permit 127.79.0.0 0.0.0.255" in intent["lines"]
    # Production addresses in production; no secret anywhere in the intent.
    prod = device_intent(lab_registry, site.host("w26740-sw01"), lab=False)
    assert "ntp server 10.79.0.11" in prod["lines"]
    assert "secret" not in str(prod) or "secret 9" not in str(prod)
    centre = device_intent(lab_registry, lab_registry.site("ttpv").host("ttpv-rt02"), lab=True)
    assert [i["name"] for i in centre["interfaces"]] == [f"GigabitEthernet0/1/{n}" for n in range(4)]


def test_configured_device_has_no_drift_and_every_change_shows(switch):
    device, sim = switch
    assert drift(device.intent, sim.render_config())  # factory config: everything missing
    configure(sim, intent_commands(device.intent, type9_hash("x", "a" * 14), "aaaaaaaa", "bbbbbbbb"))
    assert drift(device.intent, sim.render_config()) == []
    configure(sim, ["interface GigabitEthernet1/0/2", "switchport access vlan 20", "description moved",
                    "no vlan 30", "vlan 77", "name ROGUE", "exit", "ntp server 192.0.2.1",
                    "username intruder privilege 15 secret s3cret"])  # fmt: skip
    found = {(d.parent, d.sign, d.line) for d in drift(device.intent, sim.render_config())}
    assert found == {
        ("interface GigabitEthernet1/0/2", "-", "switchport access vlan 20"),
        ("interface GigabitEthernet1/0/2", "+", "switchport access vlan 10"),
        ("interface GigabitEthernet1/0/2", "-", "description moved"),
        ("interface GigabitEthernet1/0/2", "+", "description w26740-pc02"),
        ("vlan 30", "+", "name CITIZEN-WIFI"),
        ("vlan 77", "-", "name ROGUE"),
        (None, "-", "vlan 77"),
        (None, "-", "ntp server 192.0.2.1"),
        (None, "-", "username intruder privilege 15 secret <hidden>"),
    }
    text = render_drift(device.name, drift(device.intent, sim.render_config()))
    assert "s3cret" not in text and "$9$" not in text  # secrets never printed


def apply_text(sim: Device, text: str) -> None:
    """Config text (as ios_config src holds it) entered on the simulated device, section by section."""
    configure(sim, [command for section in parse_config(text) for command in section_commands(section)])


def test_the_rendered_config_is_what_a_configured_device_prints(switch):
    """The text the playbook hands ios_config (src) is line for line what IOS prints for it, so a
    configured device gets nothing sent, and a factory one gets every line."""
    device, sim = switch
    rendered = parse_config(render_config(device.intent))
    assert rendered[0].line == "hostname w26740-sw01" and rendered[1].is_banner
    assert [s.line for s in rendered if s.line.startswith("vlan ")] == ["vlan 10", "vlan 20", "vlan 30", "vlan 99"]
    blocks = {s.line: s.children for s in rendered if s.children}
    assert blocks["line vty 0 4"] == ["access-class 99 in", "exec-timeout 10 0", "transport input ssh"]
    assert blocks["interface GigabitEthernet1/0/2"] == [
        "description w26740-pc02", "switchport access vlan 10", "switchport mode access"]  # fmt: skip
    assert "interface Vlan99" in blocks
    # The VLANs come before the ports and the SVI that use them.
    lines = [s.line for s in rendered]
    assert lines.index("vlan 99") < lines.index("interface GigabitEthernet1/0/1") < lines.index("interface Vlan99")
    factory = {(s.line, tuple(s.children)) for s in parse_config(sim.render_config())}
    assert not any((s.line, tuple(s.children)) in factory for s in rendered if s.line.startswith("vlan "))
    configure(sim, intent_commands(device.intent, type9_hash("x", "a" * 14), "aaaaaaaa", "bbbbbbbb"))
    running = {s.line: s.children for s in parse_config(sim.render_config())}
    for section in rendered:
        assert section.line in running, section.line
        assert set(section.children) <= set(running[section.line]), section.line
    text = render_config(device.intent, sim.render_config())
    assert text == render_config(device.intent)  # nothing to undo on a configured device
    assert "secret" not in text and "snmp-server user" not in text  # secrets stay with no_log tasks


def test_a_managed_ports_extra_lines_are_undone_and_only_while_the_device_has_them(switch):
    """As ios_l2_interfaces' replaced state and ios_interfaces' enabled did: a port shut by hand, a
    setting the intent lacks, a VLAN or name changed by hand all come back in one text."""
    device, sim = switch
    configure(sim, intent_commands(device.intent, type9_hash("x", "a" * 14), "aaaaaaaa", "bbbbbbbb"))
    configure(sim, ["interface GigabitEthernet1/0/2", "shutdown", "switchport access vlan 30", "description moved",
                    "spanning-tree portfast", "exit", "interface GigabitEthernet1/0/20", "shutdown",
                    "exit"])  # fmt: skip
    assert drift(device.intent, sim.render_config())
    text = render_config(device.intent, sim.render_config())
    port = {s.line: s.children for s in parse_config(text)}["interface GigabitEthernet1/0/2"]
    # Undone first; a single value (VLAN, description) is set again, never removed first.
    assert port == ["no shutdown", "no spanning-tree portfast", "description w26740-pc02",
                    "switchport access vlan 10", "switchport mode access"]  # fmt: skip
    assert "GigabitEthernet1/0/20" not in text  # a port the intent does not manage is left alone
    apply_text(sim, text)
    assert drift(device.intent, sim.render_config()) == []
    assert render_config(device.intent, sim.render_config()) == render_config(device.intent)  # a second run: none
    assert "shutdown" in {s.line: s.children for s in parse_config(sim.render_config())}[
        "interface GigabitEthernet1/0/20"]  # fmt: skip


def test_rollback_commands_restore_a_backup_exactly(switch):
    device, sim = switch
    configure(sim, intent_commands(device.intent, type9_hash("x", "a" * 14), "aaaaaaaa", "bbbbbbbb"))
    backup = sim.render_config()
    configure(sim, ["hostname renamed", "interface GigabitEthernet1/0/1", "shutdown", "switchport access vlan 30",
                    "no description", "exit", "no vlan 20", "vlan 55", "name NEW", "exit", "no ntp server 127.79.0.12",
                    "logging host 192.0.2.9", "banner login ^C", "changed banner", "^C",
                    "interface Vlan99", "ip address 127.79.77.99 255.255.255.0"])  # fmt: skip
    assert normalised(sim.render_config()) != normalised(backup)
    commands = rollback_commands(sim.render_config(), backup)
    # A single value goes back by being set again, never removed first (no moment without a hostname).
    assert "hostname w26740-sw01" in commands and not [c for c in commands if c.startswith("no hostname")]
    configure(sim, commands)
    assert normalised(sim.render_config()) == normalised(backup)
    assert rollback_commands(sim.render_config(), backup) == []  # nothing left to undo


def test_rollback_empties_a_port_and_removes_a_logical_interface(switch):
    """A backup that lacks a physical port (taken before a module was fitted) cannot remove it: the port is
    emptied. A loopback or SVI the backup lacks is removed."""
    _device, sim = switch
    configure(sim, ["interface GigabitEthernet1/0/3", "description old", "exit"])
    running = sim.render_config()
    backup = "\n".join(line for line in running.splitlines() if "description old" not in line) + "\n"
    backup = backup.replace("interface GigabitEthernet1/0/3\n", "")
    configure(sim, ["interface GigabitEthernet1/0/3", "description new", "switchport access vlan 20", "exit",
                    "interface Loopback0", "ip address 10.255.0.1 255.255.255.255", "exit"])  # fmt: skip
    commands = rollback_commands(sim.render_config(), backup)
    assert "no interface Loopback0" in commands and "no interface GigabitEthernet1/0/3" not in commands
    assert commands[commands.index("interface GigabitEthernet1/0/3") + 1 :][:3] == [
        "no description new", "no switchport access vlan 20", "exit"]  # fmt: skip
    configure(sim, commands)
    after = {s.line: s.children for s in parse_config(sim.render_config())}
    assert after.get("interface GigabitEthernet1/0/3") == [] and "interface Loopback0" not in after


def test_parse_keeps_banners_whole_and_drops_volatile_lines():
    text = ("Building configuration...\n\nCurrent configuration : 99 bytes\n!\nhostname x\n"
            "banner login ^C\nline one\nline two\n^C\ninterface Gi1\n description y\n!\nend\n")  # fmt: skip
    sections = parse_config(text)
    assert [(s.line, s.children) for s in sections] == [
        ("hostname x", []),
        ("banner login", ["line one\nline two"]),
        ("interface Gi1", ["description y"]),
    ]


def test_site_batches_keep_a_site_in_one_batch():
    groups = {"site_a": ["a-rt01", "a-sw01", "a-sw02"], "site_b": ["b-rt01", "b-sw01"], "site_c": ["c-sw01"],
              "network_gear": []}  # fmt: skip
    hosts = ["b-sw01", "a-rt01", "c-sw01", "a-sw01", "b-rt01", "a-sw02"]
    assert site_batches(hosts, groups, 1) == [3, 2, 1]
    assert site_batches(hosts, groups, 2) == [5, 1]
    assert site_batches(hosts, groups, 5) == [6]


def test_type9_hashes_have_the_ios_form():
    one, two = type9_hash("password"), type9_hash("password")
    assert TYPE9.fullmatch(one) and one != two  # salted
    assert type9_hash("password", "a" * 14) == type9_hash("password", "a" * 14)
    with pytest.raises(ValueError):
        type9_hash("")


def test_production_credentials_come_from_the_environment(tmp_path):
    from motcua.access import read_inventory_source

    source = read_inventory_source(ROOT / "inventory" / "hcmc")
    with pytest.raises(AccessError, match="MOTCUA_GEAR_USER, MOTCUA_GEAR_ENABLE_SECRET, MOTCUA_GEAR_KEY_FILE"):
        Access.for_inventory(source, env={})
    known = tmp_path / "known_hosts"
    known.write_text("")
    env = {"MOTCUA_GEAR_USER": "dxadmin", "MOTCUA_GEAR_ENABLE_SECRET": "s", "MOTCUA_GEAR_PASSWORD": "p",
           "MOTCUA_GEAR_KNOWN_HOSTS": str(known)}  # fmt: skip
    access = Access.for_inventory(source, env=env)
    params = access.netmiko_params(select_devices(source.load(), False, hosts=["w26740-sw01"])[0])
    assert params["host"] == "10.79.77.3" and params["ssh_strict"] and params["alt_key_file"] == str(known)
    assert "p" not in repr(access).split("password=")[-1][:3]  # the password is kept out of repr


def test_credentials_on_stdin_stand_for_the_environment(tmp_path, monkeypatch, capsys):
    from motcua.access import read_inventory_source
    from motcua.cli import main
    from motcua.netgear.cli import stdin_credentials

    known = tmp_path / "known_hosts"
    known.write_text("")
    given = stdin_credentials('{"user": "dxadmin", "password": "p", "enable_secret": "s", "key_file": ""}')
    assert given == {"MOTCUA_GEAR_USER": "dxadmin", "MOTCUA_GEAR_PASSWORD": "p", "MOTCUA_GEAR_ENABLE_SECRET": "s"}
    access = Access.for_inventory(read_inventory_source(ROOT / "inventory" / "hcmc"),
                                  env={**given, "MOTCUA_GEAR_KNOWN_HOSTS": str(known)})  # fmt: skip
    assert (access.username, access.password, access.secret, access.key_file) == ("dxadmin", "p", "s", None)
    for text, message in (
        ("user=dxadmin", "stdin is not JSON"),
        ('["dxadmin"]', "one JSON object"),
        ('{"user": "dxadmin", "pasword": "p"}', "unknown field(s) pasword"),
        ('{"password": 1234}', "password must be text"),
    ):
        with pytest.raises(NetgearError, match=re.escape(message)):
            stdin_credentials(text)
    # Through the command: refused before any device is reached (exit 2), and the secret is not echoed.
    monkeypatch.setattr("sys.stdin", io.StringIO('{"password": "hunter2", "enable": "x"}'))
    code = main(["netgear", "verify", "-i", str(ROOT / "inventory" / "hcmc"), "--hosts", "w26740-sw01",
                 "--credentials-stdin", "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "unknown field(s) enable" in err and "hunter2" not in err


def test_unknown_hosts_and_sites_are_refused(lab_registry):
    with pytest.raises(AccessError, match="not a router or switch of this inventory: w26740-pc01"):
        select_devices(lab_registry, True, hosts=["w26740-pc01"])
    with pytest.raises(AccessError, match="unknown site"):
        select_devices(lab_registry, True, sites=["99999"])


def test_each_backup_is_a_commit_in_the_sites_history(tmp_path, capsys):
    from motcua.cli import main
    from motcua.netgear.history import history, operator, record, show, site_repo

    root = tmp_path / "backups"
    base = "hostname w26740-sw01\nvlan 10\n name COUNTERS\n"
    first = record(root, "26740", {"w26740-sw01": base, "w26740-rt01": "hostname w26740-rt01\n"}, "pre-change", "lan")
    assert first and len(first) == 40
    # The same configs again: no commit.
    assert record(root, "26740", {"w26740-sw01": base}, "scheduled", "lan") is None
    changed = base.replace("COUNTERS", "QUAY")
    second = record(root, "26740", {"w26740-sw01": changed}, "on-demand backup 2026-12-05/x", "minh")
    log = history(root, "26740", "w26740-sw01")
    assert [(c.commit, c.author, c.added, c.removed) for c in log] == [(second, "minh", 1, 1), (first, "lan", 3, 0)]
    assert log[0].message == "on-demand backup 2026-12-05/x: w26740-sw01"
    assert [c.commit for c in history(root, "26740", "w26740-rt01")] == [first]  # only its own changes
    assert "- name COUNTERS" in show(root, "26740", "w26740-sw01", second)
    assert history(root, "25747", "w25747-sw01") == []
    assert oct(site_repo(root, "26740").stat().st_mode & 0o777) == "0o700"  # configs hold password hashes
    with pytest.raises(NetgearError, match="not a commit id"):
        show(root, "26740", "w26740-sw01", "HEAD; rm -rf /")
    assert operator({"MOTCUA_OPERATOR": "tuan", "SUDO_USER": "root"}) == "tuan"
    assert operator({"SUDO_USER": "hoa"}) == "hoa"
    # The command: newest first, the author and the size of each change.
    inventory = str(ROOT / "inventory" / "lab")
    assert main(["netgear", "history", "w26740-sw01", "-i", inventory, "--dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.index(second[:10]) < out.index(first[:10]) and "minh" in out and "+1 -1" in out
    assert main(["netgear", "history", "w26740-pc01", "-i", inventory, "--dir", str(root)]) == 2
    assert "not a router or switch" in capsys.readouterr().err


def test_the_change_journal_refuses_what_it_cannot_trust(tmp_path, lab_registry):
    import json

    from motcua.netgear import safety

    devices = select_devices(lab_registry, True, sites=["26740"])
    access = Access("dxadmin", "s", tmp_path / "known_hosts", timeout=1)  # never used: refused before any session
    with pytest.raises(NetgearError, match="IOS takes a revert timer of 1 to 120 minutes"):
        safety.arm(devices, access, tmp_path, tmp_path / "run", 0)
    journal = tmp_path / "journal" / "26740.json"
    journal.parent.mkdir()
    journal.write_text('{"state": "open", "devices": {}, "started": "x", "operator": "lan"}')
    with pytest.raises(NetgearError, match=r"interrupted change is still open at site\(s\) 26740: recover first"):
        safety.arm(devices, access, tmp_path, tmp_path / "run", 10)
    assert safety.open_journals(tmp_path, ["26740", "25747"]) == {"26740": json.loads(journal.read_text())}
    journal.write_text("{not json")
    with pytest.raises(NetgearError, match="the change journal cannot be read"):
        safety.open_journals(tmp_path, ["26740"])
    journal.write_text("[]")
    with pytest.raises(NetgearError, match="not a change journal"):
        safety.read_journal(tmp_path, "26740")
    journal.unlink()
    with pytest.raises(NetgearError, match="site 26740: no change journal"):
        safety.revert(devices, access, tmp_path)
