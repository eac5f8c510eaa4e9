"""The safety net of a change on the gear: the device's own revert timer, and a journal on the controller.

A change to a batch of sites goes:

1. **journal** (per site, ``<backup tree>/journal/<site>.json``): written
   atomically and fsynced before the first line goes to any device of the
   site. It names the pre-change backup, the operator, the devices and, once
   armed, each device's archive file and revert deadline.
2. **arm**: ``configure terminal revert timer N`` (IOS-XE's Configuration
   Rollback Confirmed Change): the device archives its running config and
   puts it back by itself after N minutes unless confirmed. If the controller
   dies, its link drops or the change locks the DX Centre out, nobody confirms,
   and the device reverts.
3. the change (ios_config), then **verify** in a new session, from the
   management range;
4. **confirm** (``configure confirm``), then ``write memory``: only now does
   the change reach the startup config. The journal is closed.

On failure the site is **reverted**: ``configure revert now`` where the
timer is pending, else ``configure replace <archive> force`` (the whole
pre-change config, never a list of ``no`` lines), and the running config is
compared with the journal's backup. A device that refuses logins (locked
out) is waited for until its timer has put it back.

A run that finds a site's journal still open (the last run was interrupted)
**recovers** it first in the same way, before it takes a new backup, so a
half-changed device is never taken as the "pre-change" state.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import socket
import time
from collections import defaultdict
from pathlib import Path

from ..access import GearAccess
from ..durable import write_atomic
from ..parallel import Outcome, run_each
from .config import differing_lines
from .devices import Device, NetgearError
from .history import operator
from .ops import backup_file, connect, running_config

JOURNAL = "journal"
ARCHIVE_BLOCK = ["archive", "path flash:motcua", "maximum 14"]
NO_PENDING = "%No Rollback Confirmed Change pending"
# After a device's deadline, how long to keep trying to log in while it reverts.
GRACE_SECONDS = 60.0


def journal_path(root: Path, site: str) -> Path:
    return root / JOURNAL / f"{site}.json"


def read_journal(root: Path, site: str) -> dict | None:
    path = journal_path(root, site)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise NetgearError(f"{path}: the change journal cannot be read ({exc}); look at it before any change") from None
    if not isinstance(data, dict) or "state" not in data or "devices" not in data:
        raise NetgearError(f"{path}: not a change journal; look at it before any change")
    return data


def _write_journal(root: Path, site: str, data: dict) -> None:
    write_atomic(journal_path(root, site), json.dumps(data, indent=1, ensure_ascii=False) + "\n", mode=0o600)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def open_journals(root: Path, sites: list[str]) -> dict[str, dict]:
    """The sites among ``sites`` whose last change was never closed."""
    found = {}
    for site in sites:
        journal = read_journal(root, site)
        if journal is not None and journal["state"] == "open":
            found[site] = journal
    return found


def _close(root: Path, site: str, journal: dict, state: str, detail: dict | None = None) -> None:
    journal = {**journal, "state": state, "closed": _now(), **(detail or {})}
    _write_journal(root, site, journal)
    with (root / JOURNAL / f"{site}.log").open("a", encoding="utf-8") as log:
        log.write(json.dumps(journal, ensure_ascii=False) + "\n")
        log.flush()
        os.fsync(log.fileno())


# ---------------------------------------------------------------- arm


def _arm_device(device: Device, access: GearAccess, minutes: int) -> dict:
    conn = connect(device, access)
    try:
        if re.search(r"Archive.*not.enabled", conn.send_command("show archive")):
            conn.send_config_set(ARCHIVE_BLOCK, cmd_verify=False)
        pending = conn.send_command("show archive config rollback timer")
        if NO_PENDING not in pending:
            raise RuntimeError("a Rollback Confirmed Change is already pending on the device (an interrupted change?)")
        out = conn.config_mode(config_command=f"configure terminal revert timer {minutes}")
        conn.exit_config_mode()
        match = re.search(r"Backing up current running config to (\S+)", out)
        if not match:
            raise RuntimeError(f"the revert timer was not armed: {out.strip()[-200:]}")
        return {"archive": match.group(1), "minutes": minutes, "deadline": time.time() + minutes * 60}
    finally:
        conn.disconnect()


def arm(
    devices: list[Device], access: GearAccess, root: Path, backup_run: Path, minutes: int, workers: int = 32,
    progress: bool = True,
) -> list[Outcome]:  # fmt: skip
    """Open each site's journal (before the first line reaches a device), then arm every device's revert timer."""
    if not 1 <= minutes <= 120:
        raise NetgearError(f"--minutes {minutes}: IOS takes a revert timer of 1 to 120 minutes")
    by_site: dict[str, list[Device]] = defaultdict(list)
    for device in devices:
        by_site[device.site].append(device)
    still_open = open_journals(root, sorted(by_site))
    if still_open:
        raise NetgearError(
            f"an interrupted change is still open at site(s) {', '.join(still_open)}: "
            f"recover first (motcua netgear recover --sites {','.join(still_open)})"
        )
    journals = {}
    for site, members in by_site.items():
        journals[site] = {
            "state": "open", "site": site, "started": _now(), "operator": operator(),
            "controller": socket.gethostname(), "backup": str(backup_run), "minutes": minutes,
            "devices": {d.name: {} for d in members},
        }  # fmt: skip
        _write_journal(root, site, journals[site])
    outcomes = run_each(devices, lambda d: _arm_device(d, access, minutes), workers, label="arm", progress=progress)
    for outcome in outcomes:
        entry = outcome.value if outcome.ok else {"error": outcome.error}
        journals[outcome.device.site]["devices"][outcome.device.name] = entry
    for site, journal in journals.items():
        _write_journal(root, site, journal)
    return outcomes


# ---------------------------------------------------------------- confirm


def _confirm_device(device: Device, access: GearAccess) -> dict:
    conn = connect(device, access)
    try:
        out = conn.send_command("configure confirm")
        if NO_PENDING in out:
            raise RuntimeError("nothing to confirm: the device had already reverted (the change is gone)")
        if out.strip():
            raise RuntimeError(f"configure confirm: {out.strip()[-200:]}")
        conn.save_config()
    finally:
        conn.disconnect()
    return {"confirmed": True}


def confirm(devices: list[Device], access: GearAccess, root: Path, workers: int = 32,
            progress: bool = True) -> list[Outcome]:  # fmt: skip
    """Confirm each device's change and save it; close the journal of each site whose devices all confirmed.

    A site is confirmed whole or not at all: when one of its journal's devices is
    not among ``devices`` (it failed earlier in the run), none of them is
    confirmed, so the site's revert puts every device back.
    """
    given = {d.name for d in devices}
    journals = {site: read_journal(root, site) for site in sorted({d.site for d in devices})}
    still_open = {site: journal for site, journal in journals.items() if journal and journal["state"] == "open"}
    incomplete: dict[str, list[str]] = {}
    for site, journal in still_open.items():
        missing = sorted(set(journal["devices"]) - given)
        if missing:
            incomplete[site] = missing

    def one(device: Device) -> dict:
        if device.site in incomplete:
            raise RuntimeError(f"not confirmed: {', '.join(incomplete[device.site])} of site {device.site} failed, "
                               "so the whole site goes back")  # fmt: skip
        return _confirm_device(device, access)

    outcomes = run_each(devices, one, workers, label="confirm", progress=progress)
    failed_sites = {o.device.site for o in outcomes if not o.ok}
    for site, journal in still_open.items():
        if site not in failed_sites:
            _close(root, site, journal, "confirmed")
    return outcomes


# ---------------------------------------------------------------- revert, recover


def _login_when_back(device: Device, access: GearAccess, until: float):
    """A session on the device, retried until ``until`` (a locked-out device lets us in once it reverted)."""
    while True:
        try:
            return connect(device, access)
        except Exception as exc:  # netmiko raises several kinds; each is retried alike
            if time.time() >= until:
                raise RuntimeError(f"no login until its revert timer had run out: {exc}") from None
            time.sleep(min(5.0, max(0.5, until - time.time())))


def _revert_device(device: Device, access: GearAccess, journal: dict) -> dict:
    entry = journal["devices"].get(device.name) or {}
    backup = backup_file(Path(journal["backup"]), device)
    deadline = float(entry.get("deadline") or 0)
    conn = _login_when_back(device, access, max(time.time(), deadline) + GRACE_SECONDS)
    how = "unchanged"
    try:
        if NO_PENDING not in conn.send_command("show archive config rollback timer"):
            conn.send_command("configure revert now", read_timeout=access.timeout)
            how = "configure revert now"
        want = backup.read_text()
        left = differing_lines(want, running_config(conn))
        if left and entry.get("archive"):
            out = conn.send_command(f"configure replace {entry['archive']} force", read_timeout=access.timeout * 3)
            if "Rollback Done" not in out:
                raise RuntimeError(f"configure replace {entry['archive']}: {out.strip()[-200:]}")
            how = f"configure replace {entry['archive']}"
            left = differing_lines(want, running_config(conn))
        if left:
            raise RuntimeError(
                f"still differs from the pre-change backup {backup} ({'; '.join(left)}); restore it by hand: "
                f"motcua netgear restore --hosts {device.name} --from {journal['backup']}"
            )
        conn.save_config()
    finally:
        conn.disconnect()
    return {"restored": how, "backup": str(backup)}


@contextlib.contextmanager
def _site_locks(root: Path, sites: list[str]):
    """Exclusive locks on the sites' journals, in order (two rescues of one site never interleave)."""
    with contextlib.ExitStack() as stack:
        for site in sorted(sites):
            path = root / JOURNAL / f"{site}.lock"
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            handle = stack.enter_context(path.open("a"))
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def revert(devices: list[Device], access: GearAccess, root: Path, state: str = "rolled-back", workers: int = 32,
           progress: bool = True) -> list[Outcome]:  # fmt: skip
    """Put each site of ``devices`` back to its journal's pre-change backup; close the journals that made it."""
    with _site_locks(root, sorted({d.site for d in devices})):
        return _revert(devices, access, root, state, workers, progress)


def _revert(devices: list[Device], access: GearAccess, root: Path, state: str, workers: int,
            progress: bool) -> list[Outcome]:  # fmt: skip
    journals = {}
    for site in sorted({d.site for d in devices}):
        journal = read_journal(root, site)
        if journal is None:
            raise NetgearError(f"site {site}: no change journal in {root / JOURNAL}, so nothing to revert to")
        journals[site] = journal
    outcomes = run_each(devices, lambda d: _revert_device(d, access, journals[d.site]), workers, label="revert",
                        progress=progress)  # fmt: skip
    failed = {o.device.site for o in outcomes if not o.ok}
    for site, journal in journals.items():
        if site not in failed and journal["state"] == "open":
            _close(root, site, journal, state, {"reverted": {o.device.name: o.value for o in outcomes
                                                             if o.device.site == site}})  # fmt: skip
    return outcomes


def recover(devices: list[Device], access: GearAccess, root: Path, workers: int = 32,
            progress: bool = True) -> tuple[dict[str, dict], list[Outcome]]:  # fmt: skip
    """Sites of ``devices`` whose last change was interrupted (journal still open): each put back to its backup.

    Returns the open journals found and the outcome per device of those sites.
    """
    found = open_journals(root, sorted({d.site for d in devices}))
    if not found:
        return {}, []
    members = [d for d in devices if d.site in found]
    return found, revert(members, access, root, state="recovered", workers=workers, progress=progress)
