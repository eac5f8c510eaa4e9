"""The simulated gear's SSH terminal, over a real SSH session (paramiko, as netmiko uses).

IOS takes type-ahead one line at a time: each line is echoed, answered and
prompted before the next. netmiko sends several returns at once while it waits
for a slow device's first prompt; if the prompts ran together
("sw#sw#sw#") netmiko would take that run as the device's prompt and time out
on every command (as the 168-device benchmark did under load).
"""

from __future__ import annotations

import time

import paramiko
import pytest

from .gearsim import gear_simulator

ADDRESS = "127.81.0.1"  # unit tests' own loopback address, apart from the lab (127.79) and bench (127.80)
NAME = "w26740-sw01"


@pytest.fixture(scope="module")
def gear(tmp_path_factory):
    with gear_simulator(tmp_path_factory.mktemp("gear"), NAME, ADDRESS, "switch", 24) as home:
        yield home


@pytest.fixture
def shell(gear):
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507 - a throwaway simulator on loopback
    client.connect(ADDRESS, username="dxadmin", key_filename=str(gear / "key"), look_for_keys=False,
                   allow_agent=False, timeout=10)  # fmt: skip
    channel = client.invoke_shell(width=511)
    try:
        yield channel
    finally:
        client.close()


def read_until(channel, text: str, count: int = 1, timeout: float = 10) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while seen.count(text) < count:
        assert time.monotonic() < deadline, f"waited for {count} x {text!r}; got {seen!r}"
        if channel.recv_ready():
            seen += channel.recv(65536).decode()
        else:
            time.sleep(0.02)
    return seen


def test_type_ahead_returns_give_one_prompt_per_line(shell):
    assert read_until(shell, f"{NAME}>") == f"\r\n{NAME}>"
    shell.send("\n\n\n")
    assert read_until(shell, f"{NAME}>", 3) == f"\r\n{NAME}>" * 3
    shell.send("\r\n\r")  # CR LF is one line end, a lone CR another
    assert read_until(shell, f"{NAME}>", 2) == f"\r\n{NAME}>" * 2


def test_commands_sent_at_once_are_answered_in_order(shell, gear):
    read_until(shell, f"{NAME}>")
    secret = (gear / "secret").read_text()
    shell.send(f"enable\n{secret}\nterminal length 0\nshow clock\n")
    out = read_until(shell, f"{NAME}#", 2)
    assert secret not in out  # the enable secret is not echoed
    assert out.startswith(f"enable\r\nPassword: \r\n{NAME}#terminal length 0\r\n{NAME}#show clock\r\n")


def test_backspace_erases(shell):
    read_until(shell, f"{NAME}>")
    shell.send("shox\x7fw versiox\x08n\n")
    out = read_until(shell, f"{NAME}>")
    assert "Invalid input" not in out and "Cisco IOS" in out


def test_a_lockout_is_undone_by_the_devices_own_revert_timer(gear):
    """Over netmiko, as the tools do: an ACL change under `configure terminal revert timer 1`
    locks the management range out (the fault switch); nobody can log in to confirm, so the
    device reverts by itself when its (lab) minute is over, and logins work again."""
    from netmiko import ConnectHandler

    from motcua.lab.gear.server import write_clock, write_fault

    state = gear / "state"
    params = {"device_type": "cisco_ios", "host": ADDRESS, "username": "dxadmin", "key_file": str(gear / "key"),
              "use_keys": True, "allow_agent": False, "secret": (gear / "secret").read_text(), "conn_timeout": 10,
              "ssh_strict": False}  # fmt: skip
    write_clock(state / "clock.json", 3.0)
    write_fault(state / "faults.json", NAME, "lockout-on-acl")
    try:
        with ConnectHandler(**params) as conn:
            conn.enable()
            conn.send_config_set(["archive", "path flash:archive"])
            before = conn.send_command("show running-config")
            conn.send_config_set(["access-list 99 permit 192.0.2.0 0.0.0.255"],
                                 config_mode_command="configure terminal revert timer 1")  # fmt: skip
            assert "Timer value: 1 min" in conn.send_command("show archive config rollback timer")
            started = time.monotonic()
        with pytest.raises(Exception, match=r"(?i)authentication"):
            ConnectHandler(**params)
        while time.monotonic() - started < 15:
            try:
                conn = ConnectHandler(**params)
                break
            except Exception:  # still locked out: the timer has not fired yet
                time.sleep(0.5)
        else:
            pytest.fail("the device did not revert within 15 s of a 3-second lab minute")
        with conn:
            conn.enable()
            assert conn.send_command("show running-config").split("!", 1)[1] == before.split("!", 1)[1]
            log = conn.send_command("show logging")
        assert "ROLLBK_CNFMD_CHG_ROLLBACK_START: Start rolling to: flash:archive-" in log
    finally:
        write_fault(state / "faults.json", NAME, None)
        write_clock(state / "clock.json", None)


def test_a_held_clock_keeps_a_due_timer_pending_until_it_is_released(gear):
    """`motcua lab gear-minute N --hold`: a timer that is due does not run out while the clock is
    held, and runs out at once when it is released (the network tests rely on it)."""
    from netmiko import ConnectHandler

    from motcua.lab.gear.server import write_clock

    state = gear / "state"
    params = {"device_type": "cisco_ios", "host": ADDRESS, "username": "dxadmin", "key_file": str(gear / "key"),
              "use_keys": True, "allow_agent": False, "secret": (gear / "secret").read_text(), "conn_timeout": 10,
              "ssh_strict": False}  # fmt: skip
    write_clock(state / "clock.json", 0.2, held=True)
    try:
        with ConnectHandler(**params) as conn:
            conn.enable()
            conn.send_config_set(["archive", "path flash:archive"])
            before = conn.send_command("show running-config").split("!", 1)[1]
            conn.send_config_set(["interface GigabitEthernet1/0/3", "description HELD"],
                                 config_mode_command="configure terminal revert timer 1")  # fmt: skip
            time.sleep(1.5)  # the timer (one minute of 0.2 s) is long due
            assert "Timer value: 1 min" in conn.send_command("show archive config rollback timer")
            assert "description HELD" in conn.send_command("show running-config")
            write_clock(state / "clock.json", 0.2)
            released = time.monotonic()
            pending = "show archive config rollback timer"
            while "%No Rollback Confirmed Change pending" not in conn.send_command(pending):
                assert time.monotonic() - released < 5, "the timer did not run out after the release"
                time.sleep(0.1)
            assert conn.send_command("show running-config").split("!", 1)[1] == before
    finally:
        write_clock(state / "clock.json", None)
