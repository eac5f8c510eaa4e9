"""The simulated IOS CLI: modes, config semantics, persistence, and show output
that ntc-templates' cisco_ios templates parse (the same parsers issue tools use)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ntc_templates.parse import parse_output

from motcua.lab.gear.device import Device
from motcua.lab.gear.session import Session

SECRET = "lab-enable"  # noqa: S105 - a throwaway secret of a simulated device


def make(tmp_path: Path, role: str = "switch", ports: int = 24) -> tuple[Device, Session]:
    device = Device(f"w26740-{'sw' if role == 'switch' else 'rt'}01", role, ports, tmp_path, SECRET)
    return device, Session(device)


def run(session: Session, *lines: str) -> str:
    return "".join(session.handle(line).text for line in lines)


def configured(tmp_path: Path) -> tuple[Device, Session]:
    device, session = make(tmp_path)
    run(
        session,
        "enable",
        SECRET,
        "configure terminal",
        "vlan 10",
        "name COUNTERS",
        "vlan 20",
        "name PERIPHERALS",
        "interface GigabitEthernet1/0/1",
        "description w26740-pc01",
        "switchport mode access",
        "switchport access vlan 10",
        "interface Gi1/0/2",
        "description w26740-pr01",
        "switchport access vlan 20",
        "interface gi1/0/24",
        "shutdown",
        "end",
    )
    return device, session


def test_prompts_and_enable(tmp_path):
    _device, session = make(tmp_path)
    assert session.prompt == "w26740-sw01>"
    assert "Invalid input" in run(session, "configure terminal")  # privileged only
    run(session, "enable")
    assert session.prompt == "Password: "
    assert "Bad secrets" in run(session, "wrong")
    assert session.prompt == "w26740-sw01>"
    run(session, "enable", SECRET)
    assert session.prompt == "w26740-sw01#"
    assert run(session, "show privilege") == "Current privilege level is 15\n"
    run(session, "conf t", "interface GigabitEthernet1/0/3")
    assert session.prompt == "w26740-sw01(config-if)#"
    run(session, "exit")
    assert session.prompt == "w26740-sw01(config)#"
    run(session, "vlan 30")
    assert session.prompt == "w26740-sw01(config-vlan)#"
    run(session, "end")
    assert session.prompt == "w26740-sw01#"


def test_abbreviations_errors_and_pipes(tmp_path):
    _device, session = configured(tmp_path)
    assert "Cisco IOS Software" in run(session, "sh ver")
    assert "% Invalid input detected at '^' marker." in run(session, "show bogus")
    assert "% Ambiguous command" in run(session, "e")  # enable / end / exit
    section = run(session, "show running-config | section ^interface GigabitEthernet1/0/1$")
    assert section.splitlines() == [
        "interface GigabitEthernet1/0/1",
        " description w26740-pc01",
        " switchport access vlan 10",
        " switchport mode access",
    ]
    assert run(session, "show run | include ^hostname") == "hostname w26740-sw01\n"


def test_no_forms_and_single_value_lines(tmp_path):
    device, session = configured(tmp_path)
    run(session, "conf t", "interface GigabitEthernet1/0/1", "description renamed", "no switchport access vlan")
    run(session, "no vlan 20", "hostname w26740-sw09", "end")
    interface = device.node("interface GigabitEthernet1/0/1")
    assert interface is not None and interface.children == ["description renamed", "switchport mode access"]
    assert 20 not in device.vlans()
    assert session.prompt == "w26740-sw09#"
    run(session, "conf t", "interface Gi1/0/24", "no shutdown", "end")
    assert device.node("interface GigabitEthernet1/0/24").children == []


def test_secrets_are_never_shown_in_clear(tmp_path):
    device, session = configured(tmp_path)
    run(session, "conf t", "username dxadmin privilege 15 secret Sup3r", "enable secret N3w", "end")
    config = device.render_config()
    assert "Sup3r" not in config and "N3w" not in config
    assert "username dxadmin privilege 15 secret 9 $9$" in config
    run(session, "disable", "enable", "N3w")
    assert session.prompt.endswith("#")


def test_banner_multiline(tmp_path):
    device, session = configured(tmp_path)
    out = run(
        session, "conf t", "banner login ^C", "CANH BAO: chi danh cho can bo", "Warning: authorised use only", "^C"
    )
    assert "End with the character '^C'" in out
    run(session, "end", "write memory")
    # As IOS prints it, which cisco.ios.ios_banner reads back.
    assert (
        "banner login ^C\nCANH BAO: chi danh cho can bo\nWarning: authorised use only\n^C\n" in device.render_config()
    )
    reloaded = Device(device.name, "switch", 24, tmp_path, SECRET)
    assert reloaded.render_config() == device.render_config()  # a multi-line banner survives a reload


def test_snmpv3_users_are_kept_out_of_the_running_config(tmp_path):
    device, session = configured(tmp_path)
    run(
        session,
        "conf t",
        "snmp-server view MOTCUA iso included",
        "snmp-server group MOTCUA-RO v3 priv read MOTCUA",
        "snmp-server user motcua-mon MOTCUA-RO v3 auth sha s3cret-auth priv aes 128 s3cret-priv",
        "end",
        "write memory",
    )
    assert "s3cret" not in device.render_config() and "snmp-server user" not in device.render_config()
    parsed = parse_output("cisco_ios", "show snmp user", run(session, "show snmp user"))
    assert [(u["user_name"], u["group_name"], u["authentication_protocol"], u["privacy_protocol"]) for u in parsed] == [
        ("motcua-mon", "MOTCUA-RO", "SHA", "AES128")
    ]
    reloaded = Device(device.name, "switch", 24, tmp_path, SECRET)
    assert "motcua-mon" in reloaded.snmp_users
    run(session, "conf t", "no snmp-server user motcua-mon MOTCUA-RO v3", "end")
    assert run(session, "show snmp user") == ""
    assert "Invalid input" in run(session, "conf t", "snmp-server user x y v2c")


def test_write_memory_persists_and_unsaved_changes_are_lost(tmp_path):
    device, session = configured(tmp_path)
    run(session, "write memory")
    run(session, "conf t", "vlan 99", "name MANAGEMENT", "end")
    reloaded = Device(device.name, "switch", 24, tmp_path, SECRET)
    assert 10 in reloaded.vlans() and 20 in reloaded.vlans()
    assert 99 not in reloaded.vlans()  # never saved: gone after a "reload"
    run(session, "copy running-config startup-config")
    assert session.prompt == "Destination filename [startup-config]? "
    assert "[OK]" in run(session, "")
    assert 99 in Device(device.name, "switch", 24, tmp_path, SECRET).vlans()


def test_invalid_config_lines(tmp_path):
    _device, session = configured(tmp_path)
    run(session, "conf t")
    assert "Invalid input" in run(session, "frobnicate everything")
    assert "Invalid input" in run(session, "interface GigabitEthernet9/9/9")
    assert "Bad VLAN list" in run(session, "vlan abc")


@pytest.mark.parametrize(
    ("command", "check"),
    [
        (
            "show version",
            lambda rows: rows[0]["hostname"] == "w26740-sw01" and rows[0]["hardware"] == ["WS-C2960X-48TS-L"],
        ),
        (
            "show vlan brief",
            lambda rows: (
                {r["vlan_id"]: (r["vlan_name"], r["interfaces"]) for r in rows}["10"] == ("COUNTERS", ["Gi1/0/1"])
            ),
        ),
        (
            "show vlan",
            lambda rows: {r["vlan_id"]: r["vlan_name"] for r in rows}["20"] == "PERIPHERALS",
        ),
        (
            "show interfaces status",
            lambda rows: (
                {r["port"]: (r["name"], r["status"], r["vlan_id"]) for r in rows}
                == {
                    **{r["port"]: (r["name"], r["status"], r["vlan_id"]) for r in rows},
                    "Gi1/0/1": ("w26740-pc01", "connected", "10"),
                    "Gi1/0/2": ("w26740-pr01", "connected", "20"),
                    "Gi1/0/24": ("", "disabled", "1"),
                    "Gi1/0/3": ("", "notconnect", "1"),
                }
            ),
        ),
        ("show ip interface brief", lambda rows: any(r["interface"] == "Vlan1" for r in rows)),
    ],
)
def test_show_output_parses_with_ntc_templates(tmp_path, command, check):
    _device, session = configured(tmp_path)
    rows = parse_output(platform="cisco_ios", command=command, data=run(session, command))
    assert rows, f"ntc-templates parsed nothing from {command!r}"
    assert check(rows), rows[:4]


def test_router_show_version_parses(tmp_path):
    _device, session = make(tmp_path, role="router", ports=8)
    rows = parse_output(platform="cisco_ios", command="show version", data=run(session, "show version"))
    assert rows[0]["hardware"] == ["C1111-8P"] and rows[0]["version"] == "17.9.4a"
    status = parse_output(
        platform="cisco_ios", command="show interfaces status", data=run(session, "show interfaces status")
    )
    assert {r["port"]: r["vlan_id"] for r in status}["Gi0/0/0"] == "routed"


class Timers:
    """The device's timers, fired by the test instead of the clock."""

    def __init__(self, device: Device):
        self.pending: list[tuple[float, object]] = []
        device.schedule = lambda delay, callback: self.pending.append((delay, callback))
        device.minute_seconds = lambda: 60.0

    def fire_all(self) -> list[float]:
        fired, self.pending = self.pending, []
        for _delay, callback in fired:
            callback()  # type: ignore[operator]
        return [delay for delay, _ in fired]


def archived_switch(tmp_path: Path) -> tuple[Device, Session, Timers]:
    device, session = configured(tmp_path)
    timers = Timers(device)
    run(session, "configure terminal", "archive", "path flash:archive", "maximum 3", "end")
    return device, session, timers


def test_a_change_under_a_revert_timer_is_undone_unless_confirmed(tmp_path):
    device, session = configured(tmp_path)
    timers = Timers(device)
    assert run(session, "show archive") == "Archive feature not enabled\n"
    assert "Archive feature not enabled" in run(session, "configure terminal revert timer 5")
    assert session.mode == "exec" and not timers.pending
    run(session, "configure terminal", "archive", "path flash:archive", "maximum 3", "end")
    before = device.render_config()
    out = run(session, "configure terminal revert timer 5")
    assert out.startswith("Rollback Confirmed Change: Backing up current running config to flash:archive-")
    assert session.mode == "config"
    run(session, "interface Gi1/0/1", "switchport access vlan 20", "end")
    assert "Timer value: 5 min" in run(session, "show archive config rollback timer")
    # A second timer while one is pending is refused (cisco.ios' cliconf checks the same).
    assert "already pending" in run(session, "configure terminal revert timer 5")
    assert sorted(timers.fire_all()) == [240.0, 300.0]  # the one-minute warning, then the revert
    assert device.render_config() == before
    log = run(session, "show logging")
    for message in ("ROLLBK_CNFMD_CHG_BACKUP", "ROLLBK_CNFMD_CHG_START_ABSTIMER", "ROLLBK_CNFMD_CHG_WARNING_ABSTIMER",
                    "ROLLBK_CNFMD_CHG_ROLLBACK_START: Start rolling to: flash:archive-0"):  # fmt: skip
        assert message in log
    assert run(session, "show archive config rollback timer") == "%No Rollback Confirmed Change pending\n"
    assert run(session, "configure confirm") == "%No Rollback Confirmed Change pending\n"
    # Confirmed in time: the change stays when the timer would have fired.
    run(session, "configure terminal revert timer 5", "interface Gi1/0/1", "switchport access vlan 20", "end")
    assert run(session, "configure confirm") == ""
    timers.fire_all()
    assert "switchport access vlan 20" in device.node("interface GigabitEthernet1/0/1").children
    assert "ROLLBK_CNFMD_CHG_CONFIRM: User: dxadmin" in run(session, "show logging")


def test_revert_now_timer_reset_and_replace(tmp_path):
    device, session, timers = archived_switch(tmp_path)
    before = device.render_config()
    run(session, "configure terminal revert timer 10", "hostname changed", "end")
    assert run(session, "configure revert timer 2") == ""
    assert [d for d, _ in timers.pending][-1] == 120.0
    assert run(session, "configure revert now") == "Rollback Done\n"
    assert device.render_config() == before
    timers.fire_all()  # the stale timers do nothing
    assert device.render_config() == before
    # configure replace: the archive file as a whole, after a prompt unless forced.
    run(session, "archive config")
    listing = run(session, "show archive")
    assert "There are currently 2 archive configurations saved." in listing and "<- Most Recent" in listing
    saved = [line.split()[1] for line in listing.splitlines() if line.strip()[:1].isdigit() and len(line.split()) > 1]
    run(session, "configure terminal", "vlan 30", "name WIFI", "end")
    assert run(session, "configure replace flash:nothing force") == (
        "%Error opening flash:nothing (No such file or directory)\n"
    )
    assert run(session, f"configure replace {saved[-1]}") == ""
    assert "Enter Y if you are sure" in session.prompt
    assert run(session, "n") == "" and device.node("vlan 30") is not None  # declined: nothing replaced
    run(session, f"configure replace {saved[-1]}")
    assert "Rollback Done" in run(session, "y") and device.node("vlan 30") is None
    # With `time N` the replace itself is a Rollback Confirmed Change.
    run(session, "configure terminal", "vlan 40", "end")
    out = run(session, f"configure replace {saved[-1]} force time 3")
    assert "Backing up current running config" in out and device.node("vlan 40") is None
    timers.fire_all()
    assert device.node("vlan 40") is not None
    # The archive keeps `maximum` files, the oldest dropped; it outlives the process (flash).
    run(session, "archive config", "archive config", "archive config")
    again = Device(device.name, "switch", 24, tmp_path, SECRET)
    assert len(again.archive) == 3 and again.archive == device.archive


def test_aaa_new_model_takes_the_lines_own_login_as_ios_does(tmp_path):
    device, session = make(tmp_path)
    run(session, "enable", SECRET)
    assert " login local" in run(session, "show running-config")  # the factory's VTY
    out = run(session, "configure terminal", "aaa new-model", "aaa authorization exec default local",
              "line vty 0 4", "login local", "end")  # fmt: skip
    assert "% Invalid input detected" in out  # under AAA the line takes `login authentication LIST`, not `login local`
    config = run(session, "show running-config")
    assert "aaa new-model" in config and " login local" not in config
    run(session, "configure terminal", "no aaa new-model", "end")
    assert " login local" not in run(session, "show running-config")  # not brought back
    assert device.scp_server_enabled() == "the SCP server is off (ip scp server enable)"
