"""Fleet tools for the people on duty: diagnostic bundles and allow-listed remediations (fabric).

Hosts come from an inventory's registry, the same model the inventory plugin
serves: one counter, a whole site, or every counter of some role; credentials are
:class:`motcua.access.PcAccess`'s (host keys always checked). Every command is
bounded by the timeout; one host's failure is that host's, never the run's.
"""

from __future__ import annotations

import datetime as dt
import getpass
import io
import json
import os
import shlex
import tarfile
import time
from pathlib import Path

from fabric import Connection

from ..access import InventorySource, PcAccess, Target, lab_home, select_hosts
from ..errors import ToolError
from ..registry import Registry

PC_ROLES = ("counter", "kiosk")
COUNTER_EXPORTER_PORT = 9110


class FleetError(ToolError):
    """A fleet command refused its input."""


# The only remediations `motcua fleet exec` asks for: each is an action of the counter's own
# /usr/local/sbin/motcua-support (roles/counter_remote_support), which runs it and its check as
# root and logs who asked; support staff may run that, with exactly these actions, and nothing else.
REMEDY_WRAPPER = "/usr/local/sbin/motcua-support"
REMEDIES: dict[str, str] = {
    "restart-cups": "Khởi động lại dịch vụ in CUPS / restart the CUPS print service",
    "clear-jobs": "Xóa các lệnh in bị kẹt / cancel and purge every stuck print job",
    "enable-printers": "Bật lại máy in bị dừng / re-enable stopped printer queues",
    "restart-pcscd": "Khởi động lại dịch vụ đọc USB token (pcscd) / restart the token reader service",
    "resync-clock": "Đồng bộ lại đồng hồ (chrony) / poll the time servers now and step the clock",
    "pull-now": "Kéo cấu hình đã ký ngay bây giờ / pull and apply the signed configuration now (pull mode)",
}
# motcua-support's exit codes.
_REMEDY_FAILED, _NOT_AN_ACTION, _CHECK_FAILED = 1, 2, 3

# An HTTP GET with the counter's own python3 (counters have no curl): status and time, or the body.
# auth=local: the counter's own exporter on the locked plane (motcua_web) - its CA, and the host-local
# check user's password, which only root and the support group may read; never sent anywhere else.
FETCH = (
    "python3 - {url} {what} {auth} <<'EOF'\n"
    "import base64, ssl, sys, time, urllib.request\n"
    "url, what, auth = sys.argv[1], sys.argv[2], sys.argv[3]\n"
    "start = time.monotonic()\n"
    "request, context = urllib.request.Request(url), None\n"
    "try:\n"
    "    if auth == 'local':\n"
    "        context = ssl.create_default_context(cafile='/etc/motcua/web/ca.pem')\n"
    "        secret = open('/etc/motcua/web/local.password').read().strip()\n"
    "        token = base64.b64encode(('local:' + secret).encode()).decode()\n"
    "        request.add_header('Authorization', 'Basic ' + token)\n"
    "    with urllib.request.urlopen(request, timeout=10, context=context) as r:\n"
    "        body = r.read().decode(errors='replace')\n"
    "        print(body if what == 'body' else f'HTTP {{r.status}} in {{time.monotonic() - start:.2f}}s')\n"
    "except Exception as exc:\n"
    "    print(f'FAILED after {{time.monotonic() - start:.2f}}s: {{exc}}')\n"
    "    sys.exit(1)\n"
    "EOF"
)

# What a diagnostic bundle holds: one file per concern. Read as the support person, without root
# (support accounts read the journal through the systemd-journal group).
DIAG_COMMANDS: dict[str, str] = {
    "system.txt": "hostnamectl; echo; uptime; echo; df -h / /var; echo; free -m; echo; systemctl --failed --no-pager",
    "journal.txt": "journalctl -b --no-pager -o short-iso -n 1500",
    "printers.txt": "lpstat -t; echo '--- jobs'; lpstat -o; echo '--- cups'; systemctl status cups --no-pager",
    "token.txt": "systemctl status pcscd.socket --no-pager; echo; p11-kit list-modules",
    "network.txt": "ip -brief address; echo; ip route; echo; cat /etc/resolv.conf; echo; ss -tln",
    "clock.txt": "timedatectl; echo; chronyc tracking; echo; chronyc sources",
    # The portal the kiosk opens (its desktop entry is readable by all; the exporter's settings are not).
    "dossier.txt": (
        "url=$(grep -m1 -o 'https\\?://[^ \"]*' /usr/share/applications/motcua-dossier.desktop); "
        'echo "portal: $url"; ' + FETCH.format(url='"$url"', what="head", auth="none")
    ),
    "exporter.txt": FETCH.format(url=f"https://{{address}}:{COUNTER_EXPORTER_PORT}/metrics", what="body", auth="local"),
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
    """Run one allow-listed remediation (and its check) on the counter; raise if either fails."""
    if name not in REMEDIES:
        raise FleetError(f"{name}: not an allow-listed remediation ({', '.join(REMEDIES)})")
    with access.connect(target) as conn:
        done = _run(conn, f"sudo -n {REMEDY_WRAPPER} {shlex.quote(name)}", access.timeout)
    said = (done.stdout + done.stderr).strip()[-500:]
    if done.return_code == _CHECK_FAILED:
        raise RuntimeError(f"{name} ran, but its check failed: {said}")
    if done.return_code != 0:
        raise RuntimeError(f"{name} failed (exit {done.return_code}): {said}")
    return {"action": name, "output": said}


def run_log_path(source: InventorySource, env: dict[str, str] | None = None) -> Path:
    """Where the controller keeps its log of fleet runs: MOTCUA_FLEET_LOG, the lab's home, or /var/log/motcua."""
    env = dict(os.environ if env is None else env)
    if env.get("MOTCUA_FLEET_LOG"):
        return Path(env["MOTCUA_FLEET_LOG"])
    if source.lab:
        return lab_home(env) / "fleet.log"
    system = Path("/var/log/motcua")
    return system / "fleet.log" if os.access(system, os.W_OK) else Path.home() / ".local/state/motcua/fleet.log"


def log_run(path: Path, access: PcAccess, what: str, outcomes: list) -> None:
    """One JSON line per fleet run on the controller: when, who (the operator and the account on the
    counters), what, and each host's result (the counter's own journal has motcua-support's lines)."""
    entry = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "operator": getpass.getuser(),
        "account": access.user,
        "what": what,
        "hosts": {o.device.name: {"ok": o.ok, "error": o.error} for o in outcomes},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        out.write(json.dumps(entry, ensure_ascii=False) + "\n")
        out.flush()
        os.fsync(out.fileno())


def collect(target: Target, access: PcAccess) -> dict[str, object]:
    """Every diagnostic command's output (a failing command is recorded, not fatal)."""
    files: dict[str, str] = {}
    summary: dict[str, object] = {}
    with access.connect(target) as conn:
        for name, command in DIAG_COMMANDS.items():
            started = time.monotonic()
            try:
                done = _run(conn, command.replace("{address}", target.address), access.timeout)
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
