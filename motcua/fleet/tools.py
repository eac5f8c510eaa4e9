"""Fleet tools for the people on duty: diagnostic bundles and allow-listed remediations (fabric).

Hosts come from an inventory's registry, the same model the inventory plugin
serves: one counter, a whole site, or every counter of some role; credentials are
:class:`motcua.access.PcAccess`'s (host keys always checked). Every command is
bounded by the timeout; one host's failure is that host's, never the run's.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from fabric import Connection

from ..access import PcAccess, Target, select_hosts
from ..errors import ToolError
from ..registry import Registry

PC_ROLES = ("counter", "kiosk")
COUNTER_EXPORTER_PORT = 9110


class FleetError(ToolError):
    """A fleet command refused its input."""


@dataclass(frozen=True)
class Remedy:
    """One allow-listed remediation: what it does (Vietnamese / English), the command, and its check."""

    summary: str
    command: str
    check: str


# The only commands `motcua fleet exec` runs. Each check must pass for the host to count as fixed.
REMEDIES: dict[str, Remedy] = {
    "restart-cups": Remedy(
        "Khởi động lại dịch vụ in CUPS / restart the CUPS print service",
        "systemctl restart cups",
        "systemctl is-active cups",
    ),
    "clear-jobs": Remedy(
        "Xóa các lệnh in bị kẹt / cancel and purge every stuck print job",
        "cancel -a -x",
        'test -z "$(lpstat -o)"',
    ),
    "enable-printers": Remedy(
        "Bật lại máy in bị dừng / re-enable stopped printer queues",
        'for q in $(lpstat -p | awk \'/disabled/ {print $2}\'); do cupsenable "$q" && cupsaccept "$q"; done',
        "! lpstat -p | grep -q disabled",
    ),
    "restart-pcscd": Remedy(
        "Khởi động lại dịch vụ đọc USB token (pcscd) / restart the token reader service",
        "systemctl restart pcscd.socket pcscd.service",
        "systemctl is-active pcscd.socket",
    ),
    "resync-clock": Remedy(
        "Đồng bộ lại đồng hồ (chrony) / poll the time servers now and step the clock",
        # A chronyd without clock control (a container, as in the lab) cannot step: the check decides.
        "chronyc -a 'burst 4/4' && sleep 5 && { chronyc -a makestep || echo 'not stepped: no clock control'; }",
        "chronyc tracking | grep -Eq '^Leap status +: Normal'",
    ),
}

# An HTTP GET with the counter's own python3 (counters have no curl): status and time, or the body.
FETCH = (
    "python3 - {url} {what} <<'EOF'\n"
    "import sys, time, urllib.request\n"
    "url, what = sys.argv[1], sys.argv[2]\n"
    "start = time.monotonic()\n"
    "try:\n"
    "    with urllib.request.urlopen(url, timeout=10) as r:\n"
    "        body = r.read().decode(errors='replace')\n"
    "        print(body if what == 'body' else f'HTTP {{r.status}} in {{time.monotonic() - start:.2f}}s')\n"
    "except Exception as exc:\n"
    "    print(f'FAILED after {{time.monotonic() - start:.2f}}s: {{exc}}')\n"
    "    sys.exit(1)\n"
    "EOF"
)

# What a diagnostic bundle holds: one file per concern.
DIAG_COMMANDS: dict[str, str] = {
    "system.txt": "hostnamectl; echo; uptime; echo; df -h / /var; echo; free -m; echo; systemctl --failed --no-pager",
    "journal.txt": "journalctl -b --no-pager -o short-iso -n 1500",
    "printers.txt": "lpstat -t; echo '--- jobs'; lpstat -o; echo '--- cups'; systemctl status cups --no-pager",
    "token.txt": "systemctl status pcscd.socket --no-pager; echo; p11-kit list-modules",
    "network.txt": "ip -brief address; echo; ip route; echo; cat /etc/resolv.conf; echo; ss -tln",
    "clock.txt": "timedatectl; echo; chronyc tracking; echo; chronyc sources",
    "dossier.txt": (
        'url=$(grep -m1 -o \'https\\?://[^ "]*\' /etc/motcua/counter-exporter.yml); echo "portal: $url"; '
        + FETCH.format(url='"$url"', what="head")
    ),
    "exporter.txt": FETCH.format(url=f"http://{{address}}:{COUNTER_EXPORTER_PORT}/metrics", what="body"),
}


def select_targets(
    registry: Registry,
    lab: bool,
    hosts: list[str] | None = None,
    sites: list[str] | None = None,
    roles: list[str] | None = None,
) -> list[Target]:
    """Counter PCs (and kiosks) by host, site or role; unknown names are refused before any connection."""
    if not (hosts or sites or roles):
        raise FleetError("choose hosts: --hosts NAME[,NAME], --sites CODE[,CODE] or --roles counter|kiosk")
    bad_roles = set(roles or []) - set(PC_ROLES)
    if bad_roles:
        raise FleetError(f"role(s) {', '.join(sorted(bad_roles))}: the fleet tools reach {' and '.join(PC_ROLES)} PCs")
    # A site means its counters unless kiosks are asked for.
    site_roles = None if (hosts or roles) else ("counter",)
    return select_hosts(registry, lab, roles or PC_ROLES, "counter or kiosk PC", hosts=hosts, sites=sites,
                        site_roles=site_roles)  # fmt: skip


def _run(conn: Connection, command: str, timeout: float):
    return conn.run(command, timeout=timeout, in_stream=False)


def remedy(target: Target, access: PcAccess, name: str) -> dict[str, object]:
    """Run one allow-listed remediation and its check; raise if either fails (the host's failure)."""
    action = REMEDIES[name]
    with access.connect(target) as conn:
        done = _run(conn, access.root(action.command), access.timeout)
        if done.return_code != 0:
            raise RuntimeError(
                f"{name} failed (exit {done.return_code}): {(done.stderr or done.stdout).strip()[-300:]}"
            )
        check = _run(conn, access.root(action.check), access.timeout)
        if check.return_code != 0:
            raise RuntimeError(f"{name} ran, but its check failed: {action.check} (exit {check.return_code}) "
                               f"{(check.stderr or check.stdout).strip()[-300:]}")  # fmt: skip
    return {"action": name, "output": done.stdout.strip()[-500:], "check": check.stdout.strip()[-300:]}


def collect(target: Target, access: PcAccess) -> dict[str, object]:
    """Every diagnostic command's output (a failing command is recorded, not fatal)."""
    files: dict[str, str] = {}
    summary: dict[str, object] = {}
    with access.connect(target) as conn:
        for name, command in DIAG_COMMANDS.items():
            started = time.monotonic()
            try:
                done = _run(conn, access.root(command.replace("{address}", target.address)), access.timeout)
                files[name] = done.stdout + (f"\n--- stderr\n{done.stderr}" if done.stderr.strip() else "")
                summary[name] = {"exit": done.return_code, "seconds": round(time.monotonic() - started, 2)}
            except Exception as exc:  # a command that timed out: say so in the bundle, go on
                files[name] = f"(not collected: {type(exc).__name__}: {exc})\n"
                summary[name] = {"exit": None, "error": f"{type(exc).__name__}: {exc}"}
    return {"files": files, "summary": summary}


def write_bundle(out_dir: Path, scope: str, results: list, stamp: str | None = None) -> Path:
    """One tarball: ``<host>/<file>`` per reached host, and summary.json for every host."""
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"diag-{scope}-{stamp}.tar.gz"
    summary = {}
    # 0600 from the first byte: journals name people and hosts.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for outcome in results:
            target = outcome.device
            entry: dict[str, object] = {"site": target.site, "address": target.address, "ok": outcome.ok}
            if outcome.ok:
                entry["commands"] = outcome.value["summary"]
                for name, text in outcome.value["files"].items():
                    _add(tar, f"{target.name}/{name}", text.encode())
            else:
                entry["error"] = outcome.error
            summary[target.name] = entry
        _add(tar, "summary.json", json.dumps(summary, ensure_ascii=False, indent=2).encode())
    return path


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
    tar.addfile(info, io.BytesIO(data))
