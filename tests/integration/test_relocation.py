"""playbooks/relocation.yml on the lab: ward 26740's two counter PCs move to the city centre.

The city centre's two desks are vacated first (`motcua lab vacate`: their PCs set aside), so
the wards' PCs can take those identities; `motcua lab move` carries each PC (the same disk,
booted on the new address). The first run is made to fail its verification (the dossier
system is down): the silence is kept and the hosts are reported. The second run, after the
fault is cleared, continues and passes: the silence is expired early. A third run does
nothing. Then the PCs move back the same way, and the city centre's PCs are reinstated; the
ward's PCs get their disks from before the test back, so the tests after it find them as they were.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import subprocess

import pytest

from motcua.lab import make_plan
from motcua.lab.dossier import write_fault
from motcua.times import TZ
from tests.conftest import LAB_HOME, ROOT, alertmanager_api, recap, run
from tests.conftest import lab_ssh as ssh

pytestmark = pytest.mark.lab
INVENTORY = ROOT / "inventory" / "lab"
OLD, NEW = ["w26740-pc01", "w26740-pc02"], ["ttpv-pc01", "ttpv-pc02"]
DATA = {  # what officials keep on the counters: it must arrive in the store, byte for byte
    "w26740-pc01": "/home/relocation-test/Scans/hồ sơ 0001.pdf",
    "w26740-pc02": "/srv/motcua/exports/danh sách 2025-07.csv",
}


def schedule(path, now: dt.datetime, back: bool = False) -> None:
    """The schedule with the move there, or (back) the next one with the move back: one PC per
    identity, so the two never share a schedule with overlapping windows, and a window is open
    when its move runs."""
    start, end = (now - dt.timedelta(minutes=5)).isoformat(), (now + dt.timedelta(hours=2)).isoformat()
    there = f"""
  - id: p26740-to-ttpv
    hosts: [{", ".join(OLD)}]
    from: "26740"
    to: ttpv
    start: {start}
    end: {end}
    responsible: Nguyễn Văn An (Trung tâm Chuyển đổi số)
"""
    returning = f"""
  - id: p26740-back
    hosts: [{", ".join(NEW)}]
    from: ttpv
    to: "26740"
    to_hosts: [{", ".join(OLD)}]
    start: {start}
    end: {end}
    responsible: Nguyễn Văn An (Trung tâm Chuyển đổi số)
"""
    path.write_text("---\nmoves:" + (returning if back else there))


def relocate(move: str, env: dict, *extra: str) -> subprocess.CompletedProcess[str]:
    values = {"move": move, "schedule": env["schedule"], "store": env["store"], "alertmanager": env["alertmanager"]}
    args = [a for key, value in values.items() for a in ("-e", f"relocation_{key}={value}")]
    return run(["ansible-playbook", "-i", str(INVENTORY), "playbooks/relocation.yml", *args, *extra], timeout=1800)


def said(result: subprocess.CompletedProcess[str]) -> str:
    """The run's output with whitespace collapsed (the YAML callback wraps long lines)."""
    return " ".join(result.stdout.split())


def silences_of(move: str) -> list[dict]:
    return [s for s in alertmanager_api("GET", "/api/v2/silences") if f"[motcua relocation {move}]" in s["comment"]]


@pytest.fixture(scope="module")
def moved(lab, alertmanager, tmp_path_factory):
    """The first run, with the dossier system down: the PCs move and are provisioned, verification fails."""
    from motcua.lab import Lab

    home = tmp_path_factory.mktemp("relocation")
    env = {"schedule": home / "relocation.yml", "store": home / "store", "alertmanager": alertmanager}
    schedule(env["schedule"], dt.datetime.now(TZ))
    faults = LAB_HOME / "dossier" / "faults.json"
    sums = {}
    for name, path in DATA.items():
        directory = path.rsplit("/", 1)[0]
        ssh(lab, name, f"mkdir -p '{directory}' && head -c 300000 /dev/urandom > '{path}' && sha256sum '{path}'")
        sums[name] = ssh(lab, name, f"sha256sum '{path}'").split()[0]
    ids = {n: ssh(lab, n, "cat /etc/machine-id").strip() for n in OLD}
    desks = Lab(INVENTORY, home=LAB_HOME)
    # Provisioned as the city centre's, the ward's PCs would keep its officials (locked) and printer
    # queues after moving back: their disks as they are now are put back afterwards, for the tests after.
    before = {name: LAB_HOME / "aside" / f"{name}.before-relocation-test" for name in OLD}
    for name, copy in before.items():
        desks.stop_host(name)
        shutil.rmtree(copy, ignore_errors=True)
        copy.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", str(LAB_HOME / "hosts" / name), str(copy)], check=True)  # overlay whiteouts too
    desks.up()
    try:
        for name in NEW:
            desks.vacate(name)
        write_fault(faults, "down")
        first = relocate("p26740-to-ttpv", env, "-e", "relocation_verify_wait=15")
        write_fault(faults, None)
        yield {"env": env, "first": first, "sums": sums, "ids": ids, "lab": desks}
    finally:
        write_fault(faults, None)
        plan = make_plan(INVENTORY, LAB_HOME)
        by_name = {h.name: h for h in plan.counters}
        for old, new in zip(OLD, NEW, strict=True):  # a test that stopped half-way: carry the PCs back
            if (by_name[old].root / "vacant").exists() and not (by_name[new].root / "vacant").exists():
                desks.move(new, old)
        for name in NEW:
            desks.reinstate(name)
            (ROOT / ".cache" / "ansible" / "facts" / name).unlink(missing_ok=True)  # they were the movers' facts
        for name, copy in before.items():
            if copy.exists():
                desks.stop_host(name)
                shutil.rmtree(LAB_HOME / "hosts" / name)
                copy.rename(LAB_HOME / "hosts" / name)
        desks.up()
        for name, path in DATA.items():
            ssh(lab, name, f"rm -rf /home/relocation-test '{path}'", check=False)


def test_a_failed_verification_keeps_the_silence_and_names_the_hosts(moved, lab):
    first = moved["first"]
    out = said(first)
    assert first.returncode != 0, first.stdout[-3000:]
    assert "VERIFICATION FAILED on ttpv-pc01, ttpv-pc02" in out, out[-6000:]
    assert re.search(r"ttpv-pc0[12]: dossier: .*unreachable", out), out[-6000:]
    assert "the silence stays until" in out
    store = moved["env"]["store"] / "p26740-to-ttpv"
    result = json.loads((store / "result.json").read_text())
    assert result["status"] == "failed" and result["failed_hosts"] == NEW
    # The silence: exactly the moving PCs, old and new names, kept to the window's end.
    (kept,) = silences_of("p26740-to-ttpv")
    assert kept["status"]["state"] == "active" and result["silences"] == [kept["id"]]
    assert kept["matchers"][0]["value"] == "ttpv\\-pc01|ttpv\\-pc02|w26740\\-pc01|w26740\\-pc02"
    assert kept["createdBy"] == "Nguyễn Văn An (Trung tâm Chuyển đổi số)"
    assert (store / "verification" / "readiness.html").is_file()
    for old, new in zip(OLD, NEW, strict=True):
        # Backed up and re-read: the official's file is in the store, byte for byte, and still on the PC.
        verified = json.loads((store / old / "verified.json").read_text())
        assert verified["files"] >= 1
        kept_file = store / old / "files" / DATA[old].lstrip("/")
        assert hashlib.sha256(kept_file.read_bytes()).hexdigest() == moved["sums"][old]
        assert ssh(lab, new, f"sha256sum '{DATA[old]}'").split()[0] == moved["sums"][old]
        # The same machine, at its new address, provisioned as its new registry host.
        assert ssh(lab, new, "cat /etc/machine-id").strip() == moved["ids"][old]
        assert ssh(lab, new, "hostname").strip() == new
        staged = ssh(lab, new, "cat /etc/network/interfaces.d/motcua")
        assert f"address 10.79.1.{20 + int(new[-1])}/24" in staged and "gateway 10.79.1.1" in staged, staged
        assert "ttpv" in ssh(lab, new, "lpstat -e")  # the city centre's printers


def test_the_next_run_continues_passes_and_expires_the_silence_early(moved):
    env = moved["env"]
    backups = {old: (env["store"] / "p26740-to-ttpv" / old / "verified.json").read_text() for old in OLD}
    second = relocate("p26740-to-ttpv", env)
    assert second.returncode == 0, second.stdout[-6000:]
    assert "VERIFIED: w26740-pc01 -> ttpv-pc01, w26740-pc02 -> ttpv-pc02" in said(second), second.stdout[-6000:]
    assert all(s["status"]["state"] == "expired" for s in silences_of("p26740-to-ttpv"))
    assert len(silences_of("p26740-to-ttpv")) == 1  # the first run's, reused and then expired
    # The PCs had left: no second backup (the store's record is the first run's).
    assert {old: (env["store"] / "p26740-to-ttpv" / old / "verified.json").read_text() for old in OLD} == backups
    assert json.loads((env["store"] / "p26740-to-ttpv" / "result.json").read_text())["status"] == "passed"
    third = relocate("p26740-to-ttpv", env)
    assert third.returncode == 0, third.stdout[-3000:]
    assert "passed its verification at" in said(third), third.stdout[-3000:]
    assert all(r["changed"] == 0 for r in recap(third).values()), third.stdout[-3000:]


def test_the_pcs_move_back_in_one_run(moved, lab):
    env = moved["env"]
    schedule(env["schedule"], dt.datetime.now(TZ), back=True)
    back = relocate("p26740-back", env)
    assert back.returncode == 0, back.stdout[-6000:]
    assert "VERIFIED: ttpv-pc01 -> w26740-pc01, ttpv-pc02 -> w26740-pc02" in said(back), back.stdout[-6000:]
    for old in OLD:
        assert ssh(lab, old, "cat /etc/machine-id").strip() == moved["ids"][old]
        assert ssh(lab, old, "hostname").strip() == old
    assert all(s["status"]["state"] == "expired" for s in silences_of("p26740-back"))
