"""The simulated gear's SCP server and flash: netmiko's file_transfer (SCP, `dir`, `verify /md5`) puts a
config on flash only when IOS would serve it (ip scp server enable, aaa new-model, aaa authorization
exec), and `configure replace flash:...` makes it the running config."""

from __future__ import annotations

import pytest
from netmiko import ConnectHandler, file_transfer

from .gearsim import gear_simulator

ADDRESS = "127.81.0.2"  # unit tests' own loopback address, apart from the lab (127.79) and bench (127.80)
NAME = "w26740-rt01"
SCP_READY = ["aaa new-model", "aaa authentication login default local", "aaa authorization exec default local",
             "ip scp server enable"]  # fmt: skip


@pytest.fixture(scope="module")
def gear(tmp_path_factory):
    with gear_simulator(tmp_path_factory.mktemp("gear-scp"), NAME, ADDRESS, "router", 8) as home:
        yield home


@pytest.fixture
def conn(gear):
    params = {"device_type": "cisco_ios", "host": ADDRESS, "username": "dxadmin", "use_keys": True,
              "key_file": str(gear / "key"), "secret": (gear / "secret").read_text(), "allow_agent": False,
              "ssh_strict": False, "system_host_keys": False, "alt_host_keys": False, "conn_timeout": 10}  # fmt: skip
    connection = ConnectHandler(**params)
    connection.enable()
    try:
        yield connection
    finally:
        connection.disconnect()


def put(conn, source) -> dict:
    return file_transfer(conn, source_file=str(source), dest_file="motcua-restore.cfg", file_system="flash:",
                         direction="put", overwrite_file=True, socket_timeout=10)  # fmt: skip


def test_scp_is_refused_until_aaa_and_the_scp_server_are_configured(conn, gear, tmp_path):
    source = tmp_path / "restore.cfg"
    source.write_text("hostname w26740-rt01\n")
    conn.send_config_set(["no ip scp server enable"], cmd_verify=False)
    with pytest.raises(Exception):  # noqa: B017 - the scp library's own error for the refusal
        put(conn, source)
    assert "No such file or directory" in conn.send_command("dir flash:/motcua-restore.cfg")
    assert "SCP refused: the SCP server is off" in (gear / "gear.log").read_text()
    conn.send_config_set(["ip scp server enable"], cmd_verify=False)  # still without AAA: refused
    with pytest.raises(Exception):  # noqa: B017
        put(conn, source)
    assert "SCP refused: SCP needs aaa new-model and aaa authorization exec" in (gear / "gear.log").read_text()


def test_a_config_on_flash_replaces_the_running_one_and_is_deleted(conn, tmp_path):
    conn.send_config_set(SCP_READY, cmd_verify=False)
    running = conn.send_command("show running-config")
    wanted = running.replace("hostname w26740-rt01", "hostname w26740-rt01-restored")
    start = wanted.index("!")  # the config as a file holds, without show's header lines
    source = tmp_path / "restore.cfg"
    source.write_text(wanted[start:])
    result = put(conn, source)
    assert result == {"file_exists": True, "file_transferred": True, "file_verified": True}
    listing = conn.send_command("dir flash:")
    assert "motcua-restore.cfg" in listing and "bytes free" in listing
    assert put(conn, source)["file_transferred"] is False  # the same file (md5) is not sent again
    out = conn.send_command("configure replace flash:/motcua-restore.cfg force", expect_string=r"restored#",
                            read_timeout=20)  # fmt: skip
    assert "Rollback Done" in out
    conn.set_base_prompt()
    assert "hostname w26740-rt01-restored" in conn.send_command("show running-config")
    assert conn.send_command("delete /force flash:/motcua-restore.cfg") == ""
    assert "No such file or directory" in conn.send_command("dir flash:/motcua-restore.cfg")


def test_nothing_outside_flash_can_be_written(conn, gear):
    conn.send_config_set(SCP_READY, cmd_verify=False)
    assert "No such file or directory" in conn.send_command("verify /md5 flash:/../devices.json")
    assert "No such device" in conn.send_command("dir nvram:")


def test_restore_puts_a_backup_back_whole_by_replace_else_by_commands(conn, gear, tmp_path):
    from motcua.access import GearAccess
    from motcua.netgear.config import differing_lines
    from motcua.netgear.devices import Device
    from motcua.netgear.ops import restore_device, running_config

    kind, key = (gear / "state" / "keys" / f"{NAME}.pub").read_text().split()[:2]
    (tmp_path / "known_hosts").write_text(f"{ADDRESS} {kind} {key}\n")
    access = GearAccess("dxadmin", (gear / "secret").read_text(), tmp_path / "known_hosts", key_file=gear / "key",
                        timeout=15)  # fmt: skip
    device = Device(NAME, "26740", "router", ADDRESS)
    conn.send_config_set(SCP_READY, cmd_verify=False)
    backup = tmp_path / "backup.cfg"
    backup.write_text(running_config(conn))
    assert restore_device(device, access, backup)["method"] == "none: already as the backup"

    conn.send_config_set(["snmp-server location elsewhere", "no ntp server 127.79.0.30"], cmd_verify=False)
    result = restore_device(device, access, backup)
    assert (result["method"], result["commands"]) == ("configure replace", 0)
    assert running_config(conn) == backup.read_text()
    assert "No such file or directory" in conn.send_command("dir flash:/motcua-restore.cfg")  # not left behind

    conn.send_config_set(["no ip scp server enable", "snmp-server location elsewhere"], cmd_verify=False)
    result = restore_device(device, access, backup)  # a device that takes no file: the undoing commands
    assert result["method"].startswith("commands (SCP to flash: refused"), result
    assert result["commands"] > 0
    assert differing_lines(backup.read_text(), running_config(conn)) == []  # the same lines (IOS orders them)
