"""One move of the relocation schedule, step by step: what ``playbooks/relocation.yml`` calls.

The playbook runs the steps on the hosts; this module keeps the move's record in
the central store and talks to Alertmanager::

    <store>/<move id>/
        <old name>/data.tar.gz      the PC's data (scans, exports), fetched from the PC
        <old name>/manifest.sha256  SHA-256 of every file, computed on the PC before the move
        <old name>/files/           the archive unpacked, every file re-read against the manifest
        <old name>/verified.json    what the re-read found (files, bytes, the archive's SHA-256)
        <old name>/machine-id       the PC's /etc/machine-id: the same PC must answer at the new address
        verification/               readiness.html, .csv, .json of the moved PCs at the new site
        result.json                 passed | failed, with the silence and the hosts that failed

Every step can run again: a verified backup is not taken twice, the move's
silence (tagged ``[motcua relocation <id>]`` in its comment) is found and
reused, and a move whose verification passed is not started again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import socket
import tarfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..access import PcAccess, Target
from ..durable import write_atomic
from ..errors import ToolError
from ..readiness import checks
from ..readiness.report import write_report
from ..registry import Registry
from ..silences import Alertmanager, check_window, matchers, silence
from ..times import TZ
from .schedule import HostMove, Move

SSH_PORT = 22
_MANIFEST_LINE = re.compile(r"^(\\?)([0-9a-f]{64}) [ *](.+)$")


class MoveError(ToolError):
    """A step of a move was refused or failed; the message says why and what to do."""


def tag(move: Move) -> str:
    return f"[motcua relocation {move.id}]"


def find(moves: list[Move], move_id: str, path: Path) -> Move:
    for move in moves:
        if move.id == move_id:
            return move
    known = ", ".join(m.id for m in moves) or "none"
    raise MoveError(f"{path}: no move {move_id!r} in the schedule (moves: {known})")


def _write(path: Path, text: str) -> None:
    write_atomic(path, text, mode=0o600)


def answers(address: str, port: int = SSH_PORT, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def result_of(store: Path, move: Move) -> dict | None:
    path = store / move.id / "result.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def status(move: Move, store: Path, now: dt.datetime) -> dict[str, object]:
    """Where each PC answers, what the store holds for it, and whether the move is done."""
    from concurrent.futures import ThreadPoolExecutor

    where = {(True, False): "source", (False, True): "target", (True, True): "both", (False, False): "none"}
    with ThreadPoolExecutor(max_workers=32) as pool:  # a PC that does not answer costs its timeout: at once
        found = list(pool.map(lambda h: (answers(h.address), answers(h.new_address)), move.hosts))
    hosts = []
    for h, seen in zip(move.hosts, found, strict=True):
        verified = store / move.id / h.name / "verified.json"
        hosts.append({
            **h.__dict__,
            "at": where[seen],
            "backup": json.loads(verified.read_text(encoding="utf-8")) if verified.is_file() else None,
            "machine_id": _read(store / move.id / h.name / "machine-id"),
        })  # fmt: skip
    result = result_of(store, move)
    return {
        **move.as_dict(),
        "open": move.is_open(now),
        "store": str(store / move.id),
        "completed": bool(result and result.get("status") == "passed"),
        "result": result,
        "hosts": hosts,
    }


def _read(path: Path) -> str | None:
    return path.read_text().strip() if path.is_file() else None


def preflight(state: dict[str, object]) -> list[str]:
    """Problems that stop a move before anything is done: each names the host and says what to do."""
    problems = []
    for h in state["hosts"]:  # type: ignore[attr-defined]
        if h["at"] == "both":
            problems.append(f"{h['new_name']} ({h['new_address']}) already answers while {h['name']} is still at "
                            f"{h['address']}: another PC uses that identity; choose a free one (to_hosts)")  # fmt: skip
        elif h["at"] == "target" and not h["machine_id"]:
            problems.append(f"{h['new_name']} ({h['new_address']}) answers but this move has no record of "
                            f"{h['name']} leaving: another PC uses that identity; "
                            "choose a free one (to_hosts)")  # fmt: skip
        elif h["at"] == "none" and not h["backup"]:
            problems.append(f"{h['name']} does not answer at {h['address']} and its data is not backed up: "
                            "switch it on at the old site first")  # fmt: skip
    return problems


# ---------------------------------------------------------------- silences


def ensure_silence(am: Alertmanager, registry: Registry, move: Move, author: str) -> tuple[str, bool]:
    """The move's silence, old and new names, for exactly its window: reused when it exists."""
    names = sorted({h.name for h in move.hosts} | {h.new_name for h in move.hosts})
    match = matchers(registry, names, [])
    for s in move_silences(am, move):
        # Alertmanager keeps milliseconds: the same end within a second.
        same_end = abs(dt.datetime.fromisoformat(str(s.get("endsAt"))) - move.end) < dt.timedelta(seconds=1)
        if _keys(s.get("matchers", [])) == _keys(match) and same_end:
            return str(s["id"]), False
        am.expire(str(s["id"]))  # the schedule changed the move's hosts or window: replace it
    comment = (f"{tag(move)} relocation {move.source} -> {move.target}: {', '.join(h.name for h in move.hosts)} "
               f"become {', '.join(h.new_name for h in move.hosts)}; responsible: {move.responsible}")  # fmt: skip
    window = check_window(move.start, move.end, dt.datetime.now(TZ))
    return silence(am, match, window, author or move.responsible, comment), True


def _keys(match: list[dict]) -> list[tuple]:
    return sorted((m.get("name"), m.get("value"), bool(m.get("isRegex"))) for m in match)


def move_silences(am: Alertmanager, move: Move) -> list[dict]:
    """The move's silences that are in force or still to come (tagged in their comment)."""
    mine = [s for s in am.silences() if tag(move) in s.get("comment", "")]
    return [s for s in mine if s.get("status", {}).get("state") in ("active", "pending")]


def expire_silences(am: Alertmanager, move: Move) -> list[str]:
    expired = [str(s["id"]) for s in move_silences(am, move)]
    for silence_id in expired:
        am.expire(silence_id)
    return expired


# ---------------------------------------------------------------- backups


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(path: Path) -> dict[str, str]:
    """``sha256sum`` output: relative path -> digest. Malformed lines are refused."""
    out: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = _MANIFEST_LINE.fullmatch(line)
        if not m:
            raise MoveError(f"{path}:{number}: not a sha256sum line: {line[:80]!r}")
        name = m.group(3)
        if m.group(1):  # sha256sum escapes a name with a newline or backslash: "\\<sha>  a\\nb"
            name = re.sub(r"\\(.)", lambda c: {"n": "\n", "\\": "\\", "r": "\r"}.get(c.group(1), c.group(0)), name)
        name = name.removeprefix("./")
        if name.startswith("/") or ".." in Path(name).parts:
            raise MoveError(f"{path}:{number}: {name!r}: paths in a manifest are relative and stay inside")
        out[name] = m.group(2)
    return out


def _private(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
    """tarfile's "data" filter, and officials' files and citizens' scans readable by their owner only."""
    safe = tarfile.data_filter(member, path)
    return safe.replace(mode=(safe.mode or 0) & 0o700, deep=False)


def verify_backup(host_dir: Path) -> tuple[dict[str, object], bool]:
    """Unpack ``data.tar.gz`` into ``files/`` and re-read every file against ``manifest.sha256``.

    Returns what was verified and whether anything was done (False: this archive was verified before).
    Any file missing, different, or not in the manifest is an error, and nothing is recorded.
    """
    archive, manifest_path = host_dir / "data.tar.gz", host_dir / "manifest.sha256"
    for path in (archive, manifest_path):
        if not path.is_file():
            raise MoveError(f"{path}: not in the store: the backup was not fetched")
    archive_sha = sha256_file(archive)
    record = host_dir / "verified.json"
    if record.is_file():
        done = json.loads(record.read_text(encoding="utf-8"))
        if done.get("archive_sha256") == archive_sha:
            return done, False
    manifest = read_manifest(manifest_path)
    files = host_dir / "files"
    tmp = host_dir / ".files.tmp"
    if tmp.exists():
        shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True, mode=0o700)
    try:
        previous_umask = os.umask(0o077)  # the folders tar makes on its own too (parents not in the archive)
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = tar.getmembers()
                tar.extractall(tmp, filter=_private)  # noqa: S202 - the data filter: no absolute paths, '..', devices, links out
        finally:
            os.umask(previous_umask)
    except (tarfile.TarError, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise MoveError(f"{archive}: cannot be read: {exc}") from None
    in_tar = {m.name.removeprefix("./") for m in members if m.isfile()}
    problems = []
    problems += [f"{name}: in the manifest, not in the archive" for name in sorted(set(manifest) - in_tar)]
    problems += [f"{name}: in the archive, not in the manifest" for name in sorted(in_tar - set(manifest))]
    total = 0
    for name in sorted(set(manifest) & in_tar):
        path = tmp / name
        digest = sha256_file(path)  # re-read from the store's disk, not from memory
        if digest != manifest[name]:
            problems.append(f"{name}: SHA-256 {digest[:12]}… in the store, {manifest[name][:12]}… on the PC")
        total += path.stat().st_size
    if problems:
        shutil.rmtree(tmp, ignore_errors=True)
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise MoveError(f"{host_dir.name}: the backup does not match the PC's manifest ({shown}): "
                        "nothing was recorded; the move must not go on")  # fmt: skip
    if files.exists():
        shutil.rmtree(files, ignore_errors=True)
    tmp.rename(files)
    done = {
        "files": len(manifest),
        "bytes": total,
        "archive_sha256": archive_sha,
        "verified_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    _write(record, json.dumps(done, indent=1) + "\n")
    return done, True


# ---------------------------------------------------------------- verification


def identity_script(new: HostMove, network_file: str) -> str:
    return "; ".join([
        "echo '## hostname'", "hostname",
        "echo '## machine-id'", "cat /etc/machine-id",
        "echo '## network'", f"grep -E '^[[:space:]]*address[[:space:]]' {network_file} 2>/dev/null || true",
    ])  # fmt: skip


def judge_identity(h: HostMove, output: str, machine_id: str | None) -> list:
    """Is it the PC that left, under its new name and with the IP plan's address staged?"""
    parts = checks.sections(output)
    out = []
    got_id = (parts.get("machine-id") or [""])[0].strip()
    if machine_id and got_id != machine_id:
        detail = (f"một máy khác trả lời / another PC answers at {h.new_address} "
                  f"(machine-id {got_id[:8]}…, expected {machine_id[:8]}… of {h.name})")  # fmt: skip
        out.append(checks.Result("reachable", checks.FAIL, detail, h.new_name))
    hostname = (parts.get("hostname") or [""])[0].strip()
    if hostname != h.new_name:
        detail = f"tên máy / hostname {hostname!r}, cần / expected {h.new_name}"
        out.append(checks.Result("provisioned", checks.FAIL, detail, h.new_name))
    staged = [line.split()[1] for line in parts.get("network", []) if len(line.split()) > 1]
    if f"{h.plan_address}/{h.prefix}" not in staged:
        detail = (f"cấu hình mạng / network config: {', '.join(staged) or 'no address'}, "
                  f"IP plan: {h.plan_address}/{h.prefix}")  # fmt: skip
        out.append(checks.Result("provisioned", checks.FAIL, detail, h.new_name))
    return out


def verify_move(
    move: Move,
    registry: Registry,
    source,
    officials: dict[str, list[str]],
    store: Path,
    wait: float,
    network_file: str,
    timeout: float = 30.0,
):
    """Every moved PC at its new site: readiness's counter checks plus its identity; retried for ``wait`` s.

    The site's signing certificate is one per site (``golive_check.yml`` judges it): a moved PC's
    token is reported, never failed here.
    """
    access = PcAccess.for_inventory(source, timeout)
    expected = checks.expected_for(registry, move.target, officials)
    deadline = time.monotonic() + wait
    while True:
        site = checks.SiteReadiness(move.target, registry.sites[move.target].name)
        for h in move.hosts:
            target = Target(h.new_name, move.target, h.role, h.new_address)
            results = checks.probe_counter(target, access, expected)
            if all(r.status != checks.FAIL for r in results if r.check == "reachable"):
                try:
                    with access.connect(target) as conn:
                        done = conn.run(identity_script(h, network_file), timeout=timeout,
                                        in_stream=False)  # fmt: skip
                    results += judge_identity(h, done.stdout, _read(store / move.id / h.name / "machine-id"))
                except Exception as exc:  # any failure of the session is a failed check
                    results.append(checks.Result("reachable", checks.FAIL, f"{type(exc).__name__}: {exc}"[:200],
                                                 h.new_name))  # fmt: skip
            site.results += [replace(r, status=checks.WARN, detail=f"{r.detail} (chứng thư số của đơn vị: xem "
                                     "golive_check / the site's certificate: see golive_check)")
                             if r.check == "token" and r.status == checks.FAIL else r for r in results]  # fmt: skip
        failed = [r for r in site.results if r.status == checks.FAIL]
        if not failed or time.monotonic() >= deadline:
            return site
        time.sleep(5)


@dataclass
class Verification:
    """What :func:`verify_and_record` found and did: the site's checks, the report, the silences, the record."""

    passed: bool
    site: checks.SiteReadiness
    report: dict[str, Path]
    silences: list[str]  # expired early when passed, else kept until the move's end
    result: dict[str, object]


def verify_and_record(
    move: Move,
    registry: Registry,
    source,
    officials: dict[str, list[str]],
    store: Path,
    am: Alertmanager,
    wait: float,
    network_file: str,
    timeout: float = 30.0,
) -> Verification:
    """The move's last step: verify the PCs at the new site, write the report, then expire the move's
    silence early if every check passed (else keep it to the window's end), and record the result."""
    site = verify_move(move, registry, source, officials, store, wait, network_file, timeout)
    passed = not any(r.status == checks.FAIL for r in site.results)
    now = time.time()
    created = dt.datetime.fromtimestamp(now, TZ).isoformat(timespec="seconds")
    report = write_report(store / move.id / "verification", [site], created, now, f"relocation {move.id}")
    silences = expire_silences(am, move) if passed else [str(s["id"]) for s in move_silences(am, move)]
    result = record_result(store, move, site, silences, passed)
    return Verification(passed, site, report, silences, result)


def record_result(store: Path, move: Move, site, silence_ids: list[str], passed: bool) -> dict[str, object]:
    failed = sorted({r.host or move.target for r in site.results if r.status == "fail"})
    result = {
        "move": move.id,
        "status": "passed" if passed else "failed",
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "hosts": {h.name: h.new_name for h in move.hosts},
        "failed_hosts": failed,
        "problems": [f"{r.host}: {r.check}: {r.detail}" for r in site.results if r.status == "fail"],
        "silences": silence_ids,
        "silenced_until": None if passed else move.end.isoformat(),
        "responsible": move.responsible,
    }
    _write(store / move.id / "result.json", json.dumps(result, ensure_ascii=False, indent=1) + "\n")
    return result


def store_dir(value: str | None) -> Path:
    return Path(value or os.environ.get("MOTCUA_RELOCATION_STORE") or "relocation")
