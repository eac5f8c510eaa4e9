"""The officials' roster: parsing, user names, and every bad line refused with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from motcua.rosters.officials import accounts_by_site, check_roster, default_username
from tests.conftest import CORPUS, ROOT

BAD = CORPUS / "roster"
CASES = {
    "unknown-site.yml": [(3, "X-1", "site", "unknown site '26999'")],
    "duplicate-staff-id.yml": [(4, "SG-0001", "staff_id", "duplicate staff ID (first at line 3)")],
    "unknown-role.yml": [(3, "SG-0001", "role", "unknown role 'giám đốc'")],
    "malformed-name.yml": [
        (3, "SG-0001", "full_name", "'Hoa' is not a full name"),
        (4, "SG-0002", "full_name", "'Võ Thanh Tùng 2' is not a full name"),
    ],
    "mojibake-name.yml": [(3, "SG-0001", "full_name", "mis-encoded text")],
    "username-clash.yml": [(4, "SG-0002", "username", "user name 'annv' is already taken at site 26740 (line 3)")],
    "missing-field.yml": [(3, "SG-0001", "site", "required field is missing")],
    "bad-line.csv": [
        (3, "SG-0001", "staff_id", "duplicate staff ID (first at line 2)"),
        (4, "SG-0003", "site", "unknown site '99999'"),
    ],
    # An empty roster would lock every official of every counter.
    "empty.yml": [(0, "", "", "the file is empty (or holds only comments)")],
    "empty.csv": [(0, "", "staff", "no official is listed")],
    "header-only.csv": [(0, "", "staff", "no official is listed")],
    "system-account.yml": [
        (3, "SG-0001", "username", "'root' is a system or service account of the counter PCs"),
        (4, "SG-0002", "username", "'dxsupport' is a system or service account"),
    ],
    "control-char-name.yml": [(3, "SG-0001", "full_name", "control character (U+000A line feed) at character 9")],
    "alias-bomb.yml": [(2, "", "", "YAML aliases expand to")],
}


def test_lab_roster_is_valid(production_registry):
    officials, problems = check_roster(ROOT / "inventory" / "lab" / "roster.yml", production_registry)
    assert problems == []
    sites = accounts_by_site(officials)
    assert sorted(sites) == ["25747", "26732", "26740", "ttpv"]
    hoa = next(a for a in sites["26740"] if a["staff_id"] == "SG-0001")
    assert (hoa["username"], hoa["role"], hoa["group"], hoa["admin"]) == (
        "hoapt",
        "tiep_nhan",
        "motcua-tiepnhan",
        False,
    )
    tung = next(a for a in sites["26740"] if a["staff_id"] == "SG-0002")
    assert tung["role"] == "quan_tri" and tung["admin"] is True  # "quản trị" accepted as a label


@pytest.mark.parametrize(
    ("name", "username"),
    [
        ("Nguyễn Văn An", "annv"),
        ("Trần Thị Bích Ngọc", "ngocttb"),
        ("Đặng Văn Đức", "ducdv"),
        ("Lê Minh Quân", "quanlm"),
    ],
)
def test_default_username(name, username):
    assert default_username(name) == username


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_roster_is_refused_with_file_and_line(case, production_registry):
    officials, problems = check_roster(BAD / case, production_registry)
    assert officials == []
    rendered = [str(p) for p in problems]
    for line, staff, field, message in CASES[case]:
        expected = f"{BAD / case}" + (f":{line}" if line else "") + (f": staff {staff}" if staff else "")
        expected += (f": field {field}" if field else "") + ": "
        assert any(r.startswith(expected) and message in r for r in rendered), (expected, message, rendered)


def test_corpus_covers_every_case():
    assert sorted(p.name for p in BAD.iterdir()) == sorted(CASES)


def test_cli(capsys, tmp_path: Path):
    from motcua.cli import main

    assert main(["roster", str(ROOT / "inventory" / "lab" / "roster.yml")]) == 0
    assert "OK: 8 officials at 4 sites" in capsys.readouterr().out
    assert main(["roster", str(BAD / "unknown-role.yml")]) == 1
    assert "unknown role" in capsys.readouterr().err
