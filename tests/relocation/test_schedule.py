"""The relocation schedule: every bad input refused with file, line, move and field; a good one resolved."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from motcua.cli import main
from motcua.relocation import check_schedule
from motcua.times import TZ
from tests.conftest import CORPUS

BAD = CORPUS / "relocation"
NOW = dt.datetime(2027, 2, 1, 8, 0, tzinfo=TZ)
CASES = {
    "unknown-host.yml": [(4, "tp-1", "hosts", "w26740-pc99: not a host of the registry")],
    "unknown-site.yml": [(6, "tp-1", "to", "unknown site '99999'")],
    "overlap.yml": [(10, "tp-2", "start", "w26740-pc03 also move(s) in tp-1 (line 3) and the windows overlap")],
    "past.yml": [(8, "tp-1", "end", "the window ended 2025-06-30T22:00:00+07:00: it is in the past")],
    "end-before-start.yml": [(8, "tp-1", "end", "is not after the start")],
    "too-long.yml": [(8, "tp-1", "end", "more than 14 days")],
    "not-at-from.yml": [(4, "tp-1", "hosts", "w25747-pc02 is at site 25747, not 26740")],
    "not-a-pc.yml": [(4, "tp-1", "hosts", "w26740-sw01 is a switch: only counter and kiosk PCs are relocated")],
    "no-such-pc-at-target.yml": [(7, "tp-1", "to_hosts", "w25747-pc09: not a counter of site 25747")],
    "hosts-and-site.yml": [(3, "tp-1", "hosts", "give either hosts: [NAME, ...] or site: CODE")],
    "duplicate-id.yml": [(10, "tp-1", "id", "duplicate move ID (first at line 3)")],
    "bad-time.yml": [(7, "tp-1", "start", "'tomorrow evening' is not a date and time")],
    "missing-responsible.yml": [(3, "tp-1", "responsible", "required field is missing")],
    "same-site.yml": [(6, "tp-1", "to", "the same site as from (26740)")],
    "unknown-key.yml": [(9, "tp-1", "responsable", "did you mean 'responsible'?")],
    "same-new-identity.yml": [(11, "tdm-1", "to_hosts", "ttpv-pc09 is also the new identity of a PC in tp-1")],
    "desk-left-while-taken.yml": [
        (11, "out-1", "start", "ttpv-pc09 is left by one PC while another becomes it in tp-1")
    ],
    "same-identity-different-days.yml": [
        (11, "tdm-1", "to_hosts", "ttpv-pc09 is also the new identity of a PC in tp-1 (line 3), and no move between")
    ],
    "empty.yml": [(0, "", "", "the file is empty (or holds only comments)")],
    "alias-bomb.yml": [(2, "", "", "YAML aliases expand to")],
}
GOOD = """---
moves:
  - id: tu-phap-1
    hosts: [w26740-pc02, w26740-pc03]
    from: "26740"
    to: ttpv
    to_hosts: [ttpv-pc41, ttpv-pc42]
    start: 2027-03-01T18:00:00+07:00
    end: 2027-03-01T22:00:00+07:00
    responsible: Nguyễn Văn An (Trung tâm Chuyển đổi số)
  - id: tdm-all
    site: "25747"
    from: "25747"
    to: ttpv
    start: "2027-03-02T18:00"
    end: "2027-03-02T23:00"
    responsible: Trần Thị Bích Ngọc
  - id: tu-phap-2
    hosts: [w26740-pc02]
    from: "26740"
    to: ttpv
    to_hosts: [ttpv-pc43]
    start: 2027-03-01T22:00:00+07:00
    end: 2027-03-02T02:00:00+07:00
    responsible: Nguyễn Văn An
"""


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_schedule_is_refused_with_file_line_move_and_field(case, production_registry):
    moves, problems = check_schedule(BAD / case, production_registry, NOW)
    assert moves == []
    rendered = [str(p) for p in problems]
    for line, who, field, message in CASES[case]:
        where = f"{BAD / case}" + (f":{line}" if line else "") + (f": move {who}" if who else "")
        where += (f": field {field}" if field else "") + ": "
        assert any(r.startswith(where) and message in r for r in rendered), (where, message, rendered)


def test_corpus_covers_every_case():
    assert sorted(p.name for p in BAD.iterdir()) == sorted(CASES)


def test_a_good_schedule_resolves_new_identities_and_addresses(tmp_path, production_registry):
    path = tmp_path / "relocation.yml"
    path.write_text(GOOD, encoding="utf-8")
    moves, problems = check_schedule(path, production_registry, NOW)
    assert problems == []
    by_id = {m.id: m for m in moves}
    assert [(h.name, h.new_name, h.new_address) for h in by_id["tu-phap-1"].hosts] == [
        ("w26740-pc02", "ttpv-pc41", "10.79.1.61"),
        ("w26740-pc03", "ttpv-pc42", "10.79.1.62"),
    ]
    # A site means every counter and kiosk PC of it, each to the same role and number at the new site.
    tdm = by_id["tdm-all"]
    assert len(tdm.hosts) == 9 and ("w25747-pc08", "ttpv-pc08") in {(h.name, h.new_name) for h in tdm.hosts}
    assert ("w25747-ki01", "ttpv-ki01") in {(h.name, h.new_name) for h in tdm.hosts}
    assert tdm.start == dt.datetime(2027, 3, 2, 18, 0, tzinfo=TZ)  # no offset: UTC+7
    # Back to back is not an overlap.
    assert by_id["tu-phap-2"].start == by_id["tu-phap-1"].end
    assert by_id["tu-phap-1"].is_open(dt.datetime(2027, 3, 1, 19, 0, tzinfo=TZ))
    lab_moves, _ = check_schedule(path, production_registry, NOW, lab=True)
    assert next(m for m in lab_moves if m.id == "tu-phap-1").hosts[0].new_address == "127.79.1.61"


def test_cli_check(tmp_path, capsys):
    path = tmp_path / "relocation.yml"
    path.write_text(GOOD, encoding="utf-8")
    argv = ["relocation", "check", "-i", "inventory/hcmc", "--schedule", str(path), "--now", NOW.isoformat()]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"{path}: OK: 3 move(s), 12 PC(s)" in out
    assert "w26740-pc02 (10.79.77.22) -> ttpv-pc41 (10.79.1.61)" in out
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["hosts"][0]["new_name"] == "ttpv-pc41"
    bad = [
        "relocation",
        "check",
        "-i",
        "inventory/hcmc",
        "--schedule",
        str(BAD / "overlap.yml"),
        "--now",
        NOW.isoformat(),
    ]
    assert main(bad) == 1
    assert "INVALID, 1 problem(s)" in capsys.readouterr().err
    assert main(["relocation", "check", "--schedule", str(tmp_path / "none.yml")]) == 2
