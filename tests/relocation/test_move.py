"""One move's steps: the PC's backup script with the store's re-read, the move's silence, the preflight."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from motcua.cli import main
from motcua.relocation import move as relocate
from motcua.times import TZ
from tests.conftest import ALERTMANAGER_URL, ROOT, alertmanager_api

SCRIPT = ROOT / "roles" / "counter_relocation" / "files" / "motcua-relocation-backup"


def back_up(tmp_path: Path, *paths: Path) -> Path:
    """Run the PC's backup script over ``paths`` and put its output where the store keeps it."""
    work = tmp_path / "work"
    out = subprocess.run([str(SCRIPT), str(work), *map(str, paths)], capture_output=True, text=True, check=True)
    host_dir = tmp_path / "store" / "m-1" / "w26740-pc01"
    host_dir.mkdir(parents=True)
    for name in ("data.tar.gz", "manifest.sha256"):
        (work / name).rename(host_dir / name)
    (host_dir / "script.out").write_text(out.stdout)
    return host_dir


@pytest.fixture
def data(tmp_path: Path) -> Path:
    home = tmp_path / "home" / "nguyenvanan"
    (home / "Scans").mkdir(parents=True)
    (home / "Scans" / "hồ sơ 0001.pdf").write_bytes(b"%PDF-1.7 " + bytes(range(256)) * 40)
    (home / "Scans" / "line\nbreak.txt").write_text("a name with a newline\n")
    (home / "Exports").mkdir()
    (home / "Exports" / "danh-sach.csv").write_text("mã hồ sơ,ngày\n000.00.01.H29-250701-0001,2025-07-01\n")
    (home / "empty").write_bytes(b"")
    return tmp_path / "home"


def test_a_backup_is_re_read_against_the_pcs_manifest_and_recorded_once(tmp_path, data):
    host_dir = back_up(tmp_path, data, Path("/nonexistent/motcua-data"))  # a missing path is skipped
    assert (host_dir / "script.out").read_text().split()[:2] == ["files", "4"]
    done, changed = relocate.verify_backup(host_dir)
    assert changed and done["files"] == 4
    assert done["bytes"] == sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
    restored = host_dir / "files" / str(data).lstrip("/")
    assert (restored / "nguyenvanan" / "Scans" / "hồ sơ 0001.pdf").read_bytes() == (
        data / "nguyenvanan" / "Scans" / "hồ sơ 0001.pdf"
    ).read_bytes()
    assert (restored / "nguyenvanan" / "Scans" / "line\nbreak.txt").is_file()
    # Officials' files and citizens' scans: for the DX Centre's operators only, in the store.
    unpacked = [host_dir / "files", *(host_dir / "files").rglob("*")]
    assert {oct(p.stat().st_mode & 0o777) for p in unpacked if p.is_dir()} == {"0o700"}
    assert {oct(p.stat().st_mode & 0o077) for p in unpacked if p.is_file()} == {"0o0"}
    assert oct((host_dir / "verified.json").stat().st_mode & 0o777) == "0o600"
    again, changed = relocate.verify_backup(host_dir)
    assert not changed and again == done


def test_a_file_that_differs_in_the_store_stops_the_move_and_records_nothing(tmp_path, data):
    host_dir = back_up(tmp_path, data)
    manifest = host_dir / "manifest.sha256"
    lines = manifest.read_text().splitlines()
    victim = next(i for i, line in enumerate(lines) if "danh-sach.csv" in line)
    lines[victim] = "0" * 64 + lines[victim][64:]
    manifest.write_text("\n".join(lines) + "\n")
    with pytest.raises(relocate.MoveError, match=r"danh-sach\.csv: SHA-256 .* in the store, 000000000000… on the PC"):
        relocate.verify_backup(host_dir)
    assert not (host_dir / "verified.json").exists() and not (host_dir / "files").exists()


def test_a_file_missing_from_the_archive_or_not_in_the_manifest_is_named(tmp_path, data):
    host_dir = back_up(tmp_path, data)
    manifest = host_dir / "manifest.sha256"
    lines = manifest.read_text().splitlines()
    kept = [line for line in lines if "danh-sach.csv" not in line]
    manifest.write_text("\n".join([*kept, "e" * 64 + "  home/ghost.pdf"]) + "\n")
    with pytest.raises(relocate.MoveError) as caught:
        relocate.verify_backup(host_dir)
    assert "home/ghost.pdf: in the manifest, not in the archive" in str(caught.value)
    assert "danh-sach.csv: in the archive, not in the manifest" in str(caught.value)


def test_an_unsafe_manifest_or_archive_is_refused(tmp_path, data):
    host_dir = back_up(tmp_path, data)
    (host_dir / "manifest.sha256").write_text("a" * 64 + "  ../../etc/passwd\n")
    with pytest.raises(relocate.MoveError, match=r"manifest.sha256:1: '../../etc/passwd': paths in a manifest"):
        relocate.verify_backup(host_dir)
    (host_dir / "manifest.sha256").write_text("not a manifest line\n")
    with pytest.raises(relocate.MoveError, match=r"manifest.sha256:1: not a sha256sum line"):
        relocate.verify_backup(host_dir)
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../outside.txt")
        tar.addfile(info)
    evil.replace(host_dir / "data.tar.gz")
    (host_dir / "manifest.sha256").write_text("")
    with pytest.raises(relocate.MoveError, match="cannot be read"):
        relocate.verify_backup(host_dir)
    assert not (tmp_path / "store" / "m-1" / "outside.txt").exists()


def test_a_pc_with_no_data_backs_up_empty(tmp_path):
    host_dir = back_up(tmp_path, Path("/nonexistent/motcua-data"))
    done, changed = relocate.verify_backup(host_dir)
    assert changed and done["files"] == 0 and done["bytes"] == 0


def test_a_backup_not_fetched_is_named(tmp_path):
    with pytest.raises(relocate.MoveError, match=r"data\.tar\.gz: not in the store"):
        relocate.verify_backup(tmp_path)


def host(at: str, backup=None, machine_id=None) -> dict:
    return {"name": "w26740-pc01", "new_name": "ttpv-pc01", "address": "127.79.77.21", "new_address": "127.79.1.21",
            "at": at, "backup": backup, "machine_id": machine_id}  # fmt: skip


@pytest.mark.parametrize(
    ("h", "problem"),
    [
        (host("source"), None),
        (host("target", {"files": 1}, "abc"), None),  # already moved: the run continues
        (host("none", {"files": 1}, "abc"), None),  # in transit, data safe
        (host("both"), "ttpv-pc01 (127.79.1.21) already answers while w26740-pc01 is still at 127.79.77.21"),
        (host("target"), "ttpv-pc01 (127.79.1.21) answers but this move has no record of w26740-pc01 leaving"),
        (host("none"), "w26740-pc01 does not answer at 127.79.77.21 and its data is not backed up"),
    ],
)
def test_the_preflight_stops_a_move_onto_an_identity_in_use(h, problem):
    problems = relocate.preflight({"hosts": [h]})
    assert problems == [] if problem is None else (len(problems) == 1 and problem in problems[0]), problems


def schedule(tmp_path: Path, hours: float = 2) -> Path:
    now = dt.datetime.now(TZ)  # with microseconds: Alertmanager keeps milliseconds, the reuse must still match
    path = tmp_path / "relocation.yml"
    path.write_text(f"""---
moves:
  - id: tp-test
    site: "26740"
    from: "26740"
    to: ttpv
    start: {(now - dt.timedelta(minutes=5)).isoformat()}
    end: {(now + dt.timedelta(hours=hours)).isoformat()}
    responsible: Nguyễn Văn An (DX)
""")
    return path


def relocation(*args: str) -> int:
    return main(["relocation", *args, "-i", "inventory/lab"])


def test_the_moves_silence_is_made_once_and_covers_old_and_new_names(tmp_path, alertmanager, capsys):
    path = schedule(tmp_path)
    assert relocation("silence", "--move", "tp-test", "--schedule", str(path), "--alertmanager", alertmanager) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["changed"] is True
    assert relocation("silence", "--move", "tp-test", "--schedule", str(path), "--alertmanager", alertmanager) == 0
    second = json.loads(capsys.readouterr().out)
    assert second == {**first, "changed": False}
    made = alertmanager_api("GET", f"/api/v2/silence/{first['id']}")
    assert made["status"]["state"] == "active"
    assert made["createdBy"] == "Nguyễn Văn An (DX)"
    assert "[motcua relocation tp-test]" in made["comment"]
    names = ["ttpv-ki01", "ttpv-pc01", "ttpv-pc02", "w26740-ki01", "w26740-pc01", "w26740-pc02"]  # site: kiosk too
    value = "|".join(n.replace("-", "\\-") for n in names)
    assert made["matchers"] == [{"name": "instance", "value": value, "isRegex": True, "isEqual": True}]
    ends = dt.datetime.fromisoformat(made["endsAt"]) - dt.datetime.fromisoformat(first["until"])
    assert abs(ends) < dt.timedelta(milliseconds=1)  # the window's end, to Alertmanager's milliseconds
    # The schedule moves the window's end: the move's silence is replaced, not kept with the old end.
    path = schedule(tmp_path, hours=3)
    assert relocation("silence", "--move", "tp-test", "--schedule", str(path), "--alertmanager", alertmanager) == 0
    third = json.loads(capsys.readouterr().out)
    assert third["changed"] is True and third["id"] != first["id"]
    assert alertmanager_api("GET", f"/api/v2/silence/{first['id']}")["status"]["state"] == "expired"
    move = relocate.find(relocate_moves(path), "tp-test", path)
    expired = relocate.expire_silences(relocate.Alertmanager(ALERTMANAGER_URL), move)
    assert expired == [third["id"]]
    assert alertmanager_api("GET", f"/api/v2/silence/{third['id']}")["status"]["state"] == "expired"


def relocate_moves(path: Path):
    from motcua.access import read_inventory_source
    from motcua.relocation import load_schedule

    source = read_inventory_source(ROOT / "inventory" / "lab")
    return load_schedule(path, source.load(), dt.datetime.now(TZ), lab=True)


def test_an_unknown_move_is_named(tmp_path, capsys):
    path = schedule(tmp_path)
    assert relocation("show", "--move", "nope", "--schedule", str(path), "--store", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "motcua relocation:" in err and "no move 'nope' in the schedule (moves: tp-test)" in err


MOVED = relocate.HostMove("w26740-pc01", "counter", "ttpv-pc01", "127.79.77.21", "127.79.1.21", "10.79.1.21", 24,
                          "10.79.1.1")  # fmt: skip


def identity(hostname: str, machine_id: str, address: str) -> str:
    return f"## hostname\n{hostname}\n## machine-id\n{machine_id}\n## network\n    address {address}\n"


@pytest.mark.parametrize(
    ("output", "problems"),
    [
        (identity("ttpv-pc01", "abc123", "10.79.1.21/24"), []),
        (identity("ttpv-pc01", "fff999", "10.79.1.21/24"), [("reachable", "another PC answers at 127.79.1.21")]),
        (identity("w26740-pc01", "abc123", "10.79.1.21/24"), [("provisioned", "'w26740-pc01', cần / expected ttpv")]),
        (
            identity("ttpv-pc01", "abc123", "10.79.77.21/24"),
            [("provisioned", "10.79.77.21/24, IP plan: 10.79.1.21/24")],
        ),
        ("## hostname\nttpv-pc01\n## machine-id\nabc123\n## network\n", [("provisioned", "no address, IP plan")]),
    ],
)
def test_a_moved_pc_is_the_one_that_left_under_its_new_name_and_address(output, problems):
    found = relocate.judge_identity(MOVED, output, "abc123")
    assert [(r.check, r.host) for r in found] == [(check, "ttpv-pc01") for check, _ in problems]
    for result, (_check, text) in zip(found, problems, strict=True):
        assert text in result.detail and result.status == "fail"
