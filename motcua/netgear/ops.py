"""What ``motcua netgear`` does on the devices: backup, diff, verify, restore.

Each operation logs in with netmiko (one session per device, bounded by the
access timeout), runs ``show`` commands whose output is parsed with
ntc-templates where the project relies on its meaning, and returns plain
data for the CLI, the playbook and the readiness report.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..access import GearAccess
from ..durable import sync_directory, write_atomic
from ..parallel import Outcome, run_each
from .config import Drift, differing_lines, drift, rollback_commands
from .devices import Device
from .history import operator, record

SHOW_RUN = "show running-config"


def connect(device: Device, access: GearAccess):
    from netmiko import ConnectHandler

    conn = ConnectHandler(**access.netmiko_params(device))
    conn.enable()
    return conn


def running_config(conn) -> str:
    text = conn.send_command(SHOW_RUN, read_timeout=conn.read_timeout_override or 20)
    lines = text.replace("\r", "").splitlines()
    # Keep the configuration from its first line ("version" or a comment) on.
    start = next((i for i, line in enumerate(lines) if line.startswith(("!", "version "))), 0)
    return "\n".join(lines[start:]).strip("\n") + "\n"


def parsed(conn, command: str) -> list[dict]:
    """``command``'s output through its ntc-templates parser (a list of records)."""
    from ntc_templates.parse import parse_output

    output = conn.send_command(command)
    if "% Invalid input" in output:
        raise RuntimeError(f"{command!r} refused by the device")
    return parse_output(platform="cisco_ios", command=command, data=output) if output.strip() else []


# ---------------------------------------------------------------- backups


@dataclass
class BackupRun:
    directory: Path
    outcomes: list[Outcome]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def manifest(self) -> dict:
        return json.loads((self.directory / "manifest.json").read_text())


def backup_dir_for(root: Path, reason: str, now: dt.datetime | None = None) -> Path:
    now = now or dt.datetime.now(dt.UTC)
    stamp = now.strftime("%H%M%S") + f"{now.microsecond // 1000:03d}Z"
    return root / now.strftime("%Y-%m-%d") / f"{stamp}-{reason}"


def previous_backup(root: Path, site: str, name: str, before: Path) -> Path | None:
    """The newest earlier backup of one device in the tree (runs sort by date and time)."""
    candidates = sorted(p for p in root.glob(f"*/*/{site}/{name}.cfg") if p.parent.parent != before)
    earlier = [p for p in candidates if str(p.parent.parent) < str(before)]
    return earlier[-1] if earlier else None


def backup(
    devices: list[Device], access: GearAccess, root: Path, reason: str = "on-demand", workers: int = 32,
    progress: bool = True,
) -> BackupRun:  # fmt: skip
    """Save every device's running config into ``root/<date>/<time>-<reason>/<site>/<name>.cfg``.

    Next to each file, ``<name>.diff`` against the device's previous backup;
    ``manifest.json`` lists every device with its checksum, or its error.
    """
    run_dir = backup_dir_for(root, reason)
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=False)
    saved: dict[str, dict[str, str]] = {}  # site -> device -> config, for the history

    def one(device: Device) -> dict:
        conn = connect(device, access)
        try:
            text = running_config(conn)
        finally:
            conn.disconnect()
        saved.setdefault(device.site, {})[device.name] = text
        target = run_dir / device.site / f"{device.name}.cfg"
        write_atomic(target, text, mode=0o600)  # configs hold password hashes
        entry: dict = {"file": str(target.relative_to(run_dir)), "sha256": hashlib.sha256(text.encode()).hexdigest()}
        previous = previous_backup(root, device.site, device.name, run_dir)
        if previous is not None:
            diff = list(
                difflib.unified_diff(
                    previous.read_text().splitlines(), text.splitlines(), str(previous.relative_to(root)),
                    str(target.relative_to(root)), lineterm="",
                )
            )  # fmt: skip
            entry["previous"] = str(previous.relative_to(root))
            entry["changed_lines"] = sum(1 for line in diff[2:] if line[:1] in "+-")
            if diff:
                write_atomic(target.with_suffix(".diff"), "\n".join(diff) + "\n", mode=0o600)
        else:
            entry["changed_lines"] = None  # first backup of this device
        return entry

    outcomes = run_each(devices, one, workers, label="backup", progress=progress)
    message = f"{reason} backup {run_dir.relative_to(root)}"
    author = operator()
    sites = sorted(saved)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, 4))) as pool:
        found = pool.map(lambda site: record(root, site, saved[site], message, author), sites)
        commits = dict(zip(sites, found, strict=True))
    manifest = {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "reason": reason,
        "operator": author,
        "history": {site: commit for site, commit in sorted(commits.items()) if commit},
        "devices": {
            o.device.name: {"site": o.device.site, **(o.value if o.ok else {"error": o.error})} for o in outcomes
        },
    }
    write_atomic(run_dir / "manifest.json", json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    latest = root / "latest"
    tmp = root / ".latest.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.relative_to(root))
    tmp.replace(latest)
    sync_directory(root)
    return BackupRun(run_dir, outcomes)


# ---------------------------------------------------------------- drift


def snmp_drift(device: Device, users: list[dict]) -> list[Drift]:
    """The policy's SNMPv3 user (authPriv: SHA, AES-128) as `show snmp user` reports it."""
    want = device.intent["snmp"]
    have = {u["user_name"]: u for u in users}
    line = f"snmp-server user {want['user']} {want['group']} v3 auth sha <hidden> priv aes 128 <hidden>"
    got = have.get(want["user"])
    out = []
    if got is None or (got["group_name"], got["authentication_protocol"], got["privacy_protocol"]) != (
        want["group"], "SHA", "AES128",
    ):  # fmt: skip
        out.append(Drift(None, "+", line))
    for name, user in have.items():
        if name != want["user"] or (got is not None and out):
            out.append(
                Drift(None, "-", f"snmp-server user {name} {user['group_name']} v3 auth "
                      f"{user['authentication_protocol'].lower()} priv {user['privacy_protocol'].lower()}")
            )  # fmt: skip
    return out


def read_state(conn) -> dict:
    """The running config and `show snmp user` (IOS never prints the SNMPv3 user in its config)."""
    return {"running": running_config(conn), "snmp_users": parsed(conn, "show snmp user")}


def read_drift(conn, device: Device) -> list[Drift]:
    """Drift of the running config and of the SNMPv3 user."""
    state = read_state(conn)
    return drift(device.intent, state["running"]) + snmp_drift(device, state["snmp_users"])


def device_drift(device: Device, access: GearAccess) -> list[Drift]:
    conn = connect(device, access)
    try:
        return read_drift(conn, device)
    finally:
        conn.disconnect()


def device_state(device: Device, access: GearAccess) -> dict:
    """What `motcua netgear render --running` reads: :func:`read_state` in a session of its own."""
    conn = connect(device, access)
    try:
        return read_state(conn)
    finally:
        conn.disconnect()


def read_states(devices: list[Device], access: GearAccess, workers: int = 32, progress: bool = True) -> list[Outcome]:
    """Every device's :func:`device_state` (``Outcome.value``)."""
    return run_each(devices, lambda d: device_state(d, access), workers, label="running config", progress=progress)


def diff(devices: list[Device], access: GearAccess, workers: int = 32, progress: bool = True) -> list[Outcome]:
    """Every device's drift (``Outcome.value``: a list of Drift; empty when compliant)."""
    return run_each(devices, lambda d: device_drift(d, access), workers, label="diff", progress=progress)


# ---------------------------------------------------------------- verify


def verify_device(device: Device, access: GearAccess) -> list[str]:
    """Log in afresh and check the state the plan asks for; the problems found (none: verified).

    VLANs from `show vlan`, access ports and trunks from `show interfaces status`,
    the SNMPv3 user from `show snmp user` (all parsed with ntc-templates), and
    no drift in the running configuration.
    """
    conn = connect(device, access)
    try:
        vlans = {int(v["vlan_id"]): v for v in parsed(conn, "show vlan")}
        ports = {p["port"]: p for p in parsed(conn, "show interfaces status")}
        drifted = read_drift(conn, device)
    finally:
        conn.disconnect()
    problems = []
    for vlan in device.intent["vlans"]:
        got = vlans.get(vlan["vlan_id"])
        if got is None:
            problems.append(f"VLAN {vlan['vlan_id']} ({vlan['name']}) is missing")
        elif got["vlan_name"] != vlan["name"] or got["status"] != "active":
            problems.append(f"VLAN {vlan['vlan_id']} is {got['vlan_name']} ({got['status']}), expected {vlan['name']}")
    names = {i["name"]: i.get("description", "") for i in device.intent["interfaces"]}
    for item in device.intent["l2_interfaces"]:
        short = _short(item["name"])
        got = ports.get(short)
        expected = str(item["access"]["vlan"]) if item["mode"] == "access" else "trunk"
        if got is None:
            problems.append(f"{item['name']} is not listed by the device")
            continue
        if got["vlan_id"] != expected:
            problems.append(f"{item['name']} is in VLAN {got['vlan_id']}, expected {expected}")
        if got["status"] == "disabled":
            problems.append(f"{item['name']} is shut down")
        if not names.get(item["name"], "").startswith(got["name"]) or not got["name"]:
            problems.append(f"{item['name']} is named {got['name']!r}, expected {names.get(item['name'])!r}")
    problems += [f"running config: {d.sign} {d.parent + ': ' if d.parent else ''}{d.line}" for d in drifted]
    return problems


def verify(devices: list[Device], access: GearAccess, workers: int = 32, progress: bool = True) -> list[Outcome]:
    return run_each(devices, lambda d: verify_device(d, access), workers, label="verify", progress=progress)


def _short(name: str) -> str:
    return name.replace("GigabitEthernet", "Gi")


# ---------------------------------------------------------------- restore


def backup_file(source: Path, device: Device) -> Path:
    """A device's file in a backup run directory (or ``source`` itself if it is a file)."""
    path = source if source.is_file() else source / device.site / f"{device.name}.cfg"
    if not path.exists():
        raise FileNotFoundError(f"no backup of {device.name} at {path}")
    return path


RESTORE_FILE = "motcua-restore.cfg"  # on the device's flash only while a restore runs


def _replace_from(conn, access: GearAccess, path: Path) -> str | None:
    """The backup copied to flash (SCP, checked with ``verify /md5``) and made the running config as a whole
    (``configure replace ... force``), the file deleted afterwards. None when done; why not, when the
    device takes no file (its SCP server is off or refuses): nothing was changed then."""
    from netmiko import file_transfer

    try:
        copied = file_transfer(conn, source_file=str(path), dest_file=RESTORE_FILE, file_system="flash:",
                               direction="put", overwrite_file=True, socket_timeout=access.timeout)  # fmt: skip
    except Exception as exc:  # the scp library and netmiko raise many kinds for a refusal
        return f"SCP to flash: refused ({' '.join(str(exc).split())[:160] or type(exc).__name__})"
    try:
        if not copied.get("file_verified"):
            raise RuntimeError(f"flash:/{RESTORE_FILE} does not match the backup (verify /md5): not replaced")
        out = conn.send_command_timing(f"configure replace flash:/{RESTORE_FILE} force", read_timeout=access.timeout,
                                       last_read=2.0)  # fmt: skip
        conn.set_base_prompt()  # the backup may name the device differently
        if "Rollback Done" not in out:
            raise RuntimeError(f"configure replace failed: {' '.join(out.split())[-300:]}")
    finally:
        # A session that broke leaves the file on flash: the next restore overwrites it.
        with contextlib.suppress(Exception):
            conn.send_command(f"delete /force flash:/{RESTORE_FILE}")
    return None


def restore_device(device: Device, access: GearAccess, source: Path) -> dict:
    """Put a device back to a backup as a whole (``configure replace`` of the backup copied to its flash),
    saved, then compared with the backup line by line. A device whose SCP server is off (a base config
    from before it was enabled) gets the undoing commands instead, and the result says so."""
    path = backup_file(source, device)
    target = path.read_text()
    conn = connect(device, access)
    commands: list[str] = []
    try:
        if not differing_lines(target, running_config(conn)):
            method = "none: already as the backup"
        else:
            why = _replace_from(conn, access, path)
            method = "configure replace"
            if why is not None:
                method = f"commands ({why})"
                commands = rollback_commands(running_config(conn), target)
                if commands:
                    conn.send_config_set(commands, cmd_verify=False, read_timeout=access.timeout)
            conn.save_config()
        after = running_config(conn)
    finally:
        conn.disconnect()
    left = differing_lines(target, after)
    if left:
        raise RuntimeError(f"still differs from the backup after {method}: {'; '.join(left)}")
    return {"method": method, "commands": len(commands), "backup": str(path)}


def restore(
    devices: list[Device], access: GearAccess, source: Path, workers: int = 32, progress: bool = True
) -> list[Outcome]:
    return run_each(devices, lambda d: restore_device(d, access, source), workers, label="restore", progress=progress)
