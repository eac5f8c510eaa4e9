"""The lab as its users see it: real containers, real SSH, real network tools.

Needs root; the session fixture `lab` brings it up once (tests fail, never
skip, when it cannot). Faults are cleared after each test that sets one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from netmiko import ConnectHandler
from netmiko.exceptions import NetmikoAuthenticationException

from motcua.lab import cgroups, make_plan
from motcua.lab.counters import processes_in
from motcua.lab.dossier import write_fault as dossier_fault
from motcua.lab.gear.server import write_fault as gear_fault
from motcua.lab.lab import LabError, LabState
from motcua.lab.procs import alive
from tests.conftest import LAB_HOME, ROOT, run

pytestmark = pytest.mark.lab
INVENTORY = ROOT / "inventory" / "lab"


@pytest.fixture(scope="module")
def plan(lab):
    return make_plan(INVENTORY, LAB_HOME)


def ssh(lab, host: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-F", str(lab.ssh_dir / "config"), "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", host, command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def gear(lab, device, **extra):
    params = {
        "device_type": "cisco_ios",
        "host": device.address,
        "username": "dxadmin",
        "use_keys": True,
        "key_file": str(lab.key),
        "allow_agent": False,
        "secret": (LAB_HOME / "gear" / "enable-secret").read_text().strip(),
        "conn_timeout": 10,
        "read_timeout_override": 15,
    }
    params.update(extra)
    return ConnectHandler(**params)


def test_every_host_and_service_is_up(lab, plan):
    rows = lab.status()
    assert rows, "lab status is empty"
    assert {r["state"] for r in rows} == {"up"}, [r for r in rows if r["state"] != "up"]
    assert len([r for r in rows if r["kind"] == "counter"]) == 8  # 3 wards + the city centre, 2 counters each
    kinds = {r["kind"] for r in rows}
    assert {"monitoring", "router", "switch", "dossier", "sink", "ntp"} <= kinds
    for row in rows:
        assert row["address"].startswith("127."), row  # loopback only, always


def test_counter_pcs_are_real_systemd_hosts_on_their_own_address(lab, plan):
    for host in plan.hosts:  # the counter PCs and dx-mon01
        result = ssh(lab, host.name, "hostname; systemctl is-system-running; grep CapBnd /proc/1/status; ss -Hltn")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == host.name
        # Every unit came up at boot: with the hosts' systemd sharing one cgroup tree, one host's
        # unit once failed as another's removed its cgroup (and /run/nologin shut users out).
        assert lines[1] == "running", ssh(lab, host.name, "systemctl --failed --no-pager").stdout
        capabilities = int(lines[2].split()[1], 16)
        assert not capabilities & (1 << 25), f"{host.name} has CAP_SYS_TIME: it could set this machine's clock"
        listeners = [line.split()[3] for line in lines[3:]]
        assert f"{host.address}:22" in listeners
        assert "0.0.0.0:22" not in listeners and "*:22" not in listeners


def test_each_host_boots_in_cgroups_of_its_own(lab, plan):
    for host in plan.hosts:  # systemd-nspawn itself sits in <its cgroup>/supervisor
        proc = LabState.load(LAB_HOME).proc(host.name)
        for line in Path(f"/proc/{proc.pid}/cgroup").read_text().splitlines():
            _id, controllers, path = line.split(":", 2)
            if controllers in ("", "name=systemd"):
                assert path.startswith(f"/{cgroups.LAB_DIR}/{host.name}/"), (host.name, line)


def test_ansible_reaches_every_counter_with_host_keys_checked():
    result = run(["ansible", "-i", "inventory/lab", "counters", "-m", "ansible.builtin.ping", "-o"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == 8


def test_netmiko_drives_every_device_and_outputs_parse(lab, plan):
    for device in plan.gear:
        with gear(lab, device) as conn:
            conn.enable()
            assert conn.find_prompt() == f"{device.name}#"
            version = conn.send_command("show version", use_textfsm=True)
            assert version[0]["hostname"] == device.name
            vlans = conn.send_command("show vlan brief", use_textfsm=True)
            assert any(v["vlan_id"] == "1" for v in vlans)
            status = conn.send_command("show interfaces status", use_textfsm=True)
            assert status and "port" in status[0]


def test_netmiko_config_change_and_write_memory(lab, plan):
    """A change saved with write memory; then undone and saved again, so the switch is at the demo's
    intent for the network tests (a drifted ward would cost them a whole network run)."""
    device = next(d for d in plan.gear if d.name == "w26740-sw01")
    path = LAB_HOME / "gear" / "devices" / "w26740-sw01.json"
    with gear(lab, device) as conn:
        conn.enable()
        before = conn.send_command("show running-config")

        def block(header: str) -> list[str]:
            found = re.search(rf"^{header}\n((?: .*\n)*)", before, re.M)
            return [line.strip() for line in found.group(1).splitlines()] if found else []

        vlan, port = block("vlan 30"), block("interface GigabitEthernet1/0/5")
        conn.send_config_set(["vlan 30", "name WIFI", "interface GigabitEthernet1/0/5", "description w26740-ki01"])
        try:
            assert "Building configuration" in conn.save_config()
            vlans = {v["vlan_id"]: v["vlan_name"] for v in conn.send_command("show vlan brief", use_textfsm=True)}
            saved = json.loads(path.read_text())["startup_config"]
        finally:  # back as it was: the VLAN's name (or no VLAN), the port's description (or none)
            name = next((line for line in vlan if line.startswith("name ")), None)
            description = next((line for line in port if line.startswith("description ")), "no description")
            conn.send_config_set(["vlan 30", name, "interface GigabitEthernet1/0/5", description] if name
                                 else ["no vlan 30", "interface GigabitEthernet1/0/5", description])  # fmt: skip
            conn.save_config()
            after = conn.send_command("show running-config")
    assert vlans["30"] == "WIFI"
    assert "vlan 30\n name WIFI" in saved
    assert after == before  # undone
    assert "name WIFI" not in json.loads(path.read_text())["startup_config"]


def test_gear_fault_refuse_login(lab, plan):
    device = next(d for d in plan.gear if d.name == "w25747-sw01")
    gear_fault(LAB_HOME / "gear" / "faults.json", device.name, "refuse-login")
    try:
        with pytest.raises(NetmikoAuthenticationException):
            gear(lab, device)
    finally:
        gear_fault(LAB_HOME / "gear" / "faults.json", device.name, None)
    with gear(lab, device) as conn:
        assert conn.find_prompt() == f"{device.name}>"


def test_gear_fault_drop_mid_change_never_hangs(lab, plan):
    device = next(d for d in plan.gear if d.name == "w26732-sw01")
    gear_fault(LAB_HOME / "gear" / "faults.json", device.name, "drop-mid-change", 2, once=True)
    started = time.monotonic()
    with pytest.raises(Exception) as info, gear(lab, device) as conn:
        conn.enable()
        conn.send_config_set(["vlan 40", "name A", "vlan 41", "name B"], read_timeout=10)
    assert time.monotonic() - started < 60, "a dropped session must not hang the client"
    assert info.value is not None
    with gear(lab, device) as conn:  # the fault fired once and cleared itself
        conn.enable()
        vlans = {v["vlan_id"] for v in conn.send_command("show vlan brief", use_textfsm=True)}
        conn.send_config_set(["no vlan 40"])  # the half change undone, for the network tests
    assert "40" in vlans and "41" not in vlans  # cut after the second line: half a change, as in real life


def test_gear_fault_slow(lab, plan):
    device = next(d for d in plan.gear if d.name == "w26740-rt01")
    with gear(lab, device) as conn:
        gear_fault(LAB_HOME / "gear" / "faults.json", device.name, "slow", 1.5)
        try:
            started = time.monotonic()
            conn.send_command("show version")
            assert time.monotonic() - started >= 1.5
        finally:
            gear_fault(LAB_HOME / "gear" / "faults.json", device.name, None)


def test_dossier_over_https_with_the_lab_ca_and_faults(lab, plan):
    context = ssl.create_default_context(cafile=str(LAB_HOME / "ca" / "ca.pem"))
    url = f"https://{plan.dossier_address}/api/health"
    with urllib.request.urlopen(url, timeout=5, context=context) as resp:
        assert json.load(resp)["status"] == "UP"
    dossier_fault(LAB_HOME / "dossier" / "faults.json", "http500")
    try:
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(url, timeout=5, context=context)
        assert info.value.code == 500
    finally:
        dossier_fault(LAB_HOME / "dossier" / "faults.json", None)


def sink_http(url: str, payload: object = None) -> object:
    """GET (or POST ``payload`` as JSON to) the lab's notification sink."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - the lab's loopback sink
        return json.loads(response.read())


def test_notification_sink_takes_mail_telegram_and_webhooks(lab, plan):
    import smtplib
    from email.message import EmailMessage

    base = f"http://{plan.sink_address}"
    start = len(sink_http(f"{base}/notifications"))
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = (
        "Cảnh báo thử / test",
        "am@lab.motcua.invalid",
        "x@lab.motcua.invalid",
    )
    message.set_content("Nội dung")
    with smtplib.SMTP(plan.sink_address, 25, timeout=5) as smtp:
        smtp.send_message(message)
    answer = sink_http(f"{base}/bot0:lab/sendMessage", {"chat_id": 42, "text": "xin chào"})
    assert answer["ok"] and answer["result"]["chat"]["id"] == 42  # as Telegram answers (Alertmanager reads it)
    sink_http(f"{base}/webhook/board", {"status": "firing", "alerts": []})

    def mine(items: list[dict]) -> list[dict]:
        """This test's three, in order (the lab's monitoring pair may send its own meanwhile)."""
        return [n for n in items if n.get("subject") == "Cảnh báo thử / test" or n.get("chat_id") == 42
                or n.get("receiver") == "board"]  # fmt: skip

    got = mine(sink_http(f"{base}/notifications?since={start}"))
    assert [n["kind"] for n in got] == ["email", "telegram", "webhook"]
    assert got[0]["subject"] == "Cảnh báo thử / test" and got[0]["to"] == ["x@lab.motcua.invalid"]
    assert got[1]["chat_id"] == 42 and got[2]["receiver"] == "board"
    assert [n["kind"] for n in mine(lab.notifications())[-3:]] == ["email", "telegram", "webhook"]


def test_ntp_servers_answer_with_this_machines_clock(plan):
    import struct

    for address in plan.ntp_addresses:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(3)
            request = bytearray(48)
            request[0] = (4 << 3) | 3  # NTPv4, client
            sock.sendto(bytes(request), (address, 123))
            reply, _ = sock.recvfrom(512)
        fields = struct.unpack("!BBbbII4sQQQQ", reply[:48])
        assert fields[0] & 7 == 4 and fields[1] == 2  # server mode, stratum 2
        assert abs((fields[10] >> 32) - 2208988800 - time.time()) < 2


def test_lab_up_twice_is_harmless(lab):
    before = {p.name: p.pid for p in LabState.load(LAB_HOME).procs}
    result = lab.up()
    after = {p.name: p.pid for p in LabState.load(LAB_HOME).procs}
    assert after == before
    assert result["counters"] == 8


def test_a_crashed_host_is_reported_and_restarted(lab, plan):
    host = plan.counters[0]
    proc = LabState.load(LAB_HOME).proc(host.name)
    assert proc.namespace, "the lab did not record the container's PID namespace"
    os.kill(proc.pid, signal.SIGKILL)  # the host crashes (its systemd-nspawn dies, its processes linger)
    deadline = time.monotonic() + 10
    while alive(proc) and time.monotonic() < deadline:
        time.sleep(0.1)
    row = next(r for r in lab.status() if r["name"] == host.name)
    assert row["state"] == "stopped"
    lab.up()
    assert processes_in(proc.namespace) == [], "the crashed container's processes were left running"
    assert ssh(lab, host.name, "true").returncode == 0


def test_an_address_in_use_is_reported_and_nothing_starts(lab, plan):
    host = plan.counters[-1]
    lab.stop_host(host.name)
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind((host.address, 22))
    squatter.listen()
    try:
        with pytest.raises(LabError, match=f"{host.address}:22 \\({host.name}\\)"):
            lab.up()
        assert not alive(LabState.load(LAB_HOME).proc(host.name))
    finally:
        squatter.close()
    lab.up()
    assert ssh(lab, host.name, "true").returncode == 0


def test_down_stops_everything_and_up_recovers(lab, plan):
    procs = LabState.load(LAB_HOME).procs
    # A dossier fault left set (a run stopped mid-test): `down` keeps it in the file, `up` clears it.
    dossier_fault(LAB_HOME / "dossier" / "faults.json", "down")
    lab.down()
    assert not any(alive(p) for p in procs)
    assert not any(processes_in(p.namespace) for p in procs if p.namespace)
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(LAB_HOME) not in mounts
    for host in plan.counters:
        with pytest.raises(OSError):
            socket.create_connection((host.address, 22), timeout=1).close()
    lab.up()
    assert all(r["state"] == "up" for r in lab.status())
    assert json.loads((LAB_HOME / "dossier" / "faults.json").read_text()).get("fault") is None


def test_apt_in_parallel_and_through_the_shared_package_pool(lab, plan):
    """Hosts install at the same time (each has its own apt lock); what one fetched,
    the others get from the pool once it was harvested (when the host stopped)."""
    hosts = [h.name for h in plan.counters[:4]]
    for deb in lab.apt_cache.glob("tree_*.deb"):
        deb.unlink()  # start from a pool without the package
    install = "DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall tree 2>&1; tree --version"
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda host: ssh(lab, host, install), hosts))
        for host, result in zip(hosts, results, strict=True):
            assert result.returncode == 0, f"{host}: {result.stdout}{result.stderr}"
        lab.stop_host(hosts[0])  # harvesting happens when a host stops
        lab.up()
        assert list(lab.apt_cache.glob("tree_*.deb")), "the package was not harvested into the shared pool"
        result = ssh(lab, hosts[0], "ls /var/cache/apt/archives/ | grep -c '^tree_'")
        assert result.stdout.strip() == "1", "the pool is not visible inside the host"
    finally:
        # Put back what the test changed: later tests compare these counters' packages (test_pull).
        for host in hosts:
            ssh(lab, host, "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q tree")
