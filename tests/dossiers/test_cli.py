"""`motcua dossiers report` on the corpus' export: the table, the JSON, and a refused file."""

from __future__ import annotations

import json
from pathlib import Path

from motcua.cli import main

CORPUS = Path(__file__).parent.parent / "corpus" / "dossiers"


def test_the_report_prints_each_site_and_the_city_and_writes_json(tmp_path, capsys):
    out = tmp_path / "report.json"
    argv = ["dossiers", "report", "--export", str(CORPUS / "good.csv"), "--now", "2026-12-06T11:00",
            "--window", "7d", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("6 dossiers (utf-8); at 06/12/2026 11:00; window 7d")
    rows = {line.split()[0]: line.split() for line in lines[2:5]}
    assert rows["26740"][-8:] == ["3", "1", "1", "0", "1", "0", "50.0%", "33.3%"]  # the overdue ward first
    assert lines[2].startswith("26740")
    assert lines[5].split()[-8:] == ["4", "1", "1", "1", "1", "0", "50.0%", "50.0%"]
    assert "lý do chậm / why late: Thiếu cán bộ 1; Chờ xác minh 1" in lines
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["scopes"]["city"]["7d"]["paid_online_share"] == 2 / 3
    assert data["scopes"]["25747"]["today"]["open_not_due"] == 1


def test_by_agency(capsys):
    argv = ["dossiers", "report", "--export", str(CORPUS / "good.csv"), "--now", "2026-11-30T12:00",
            "--window", "month", "--by", "agency"]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split()[:3] == ["SXD", "2", "1"]


def test_a_bad_export_exits_2_and_names_the_line(capsys):
    assert main(["dossiers", "report", "--export", str(CORPUS / "bad-channel.csv")]) == 2
    assert "bad-channel.csv:2: dossier A1: field channel: 'fax' is not a channel" in capsys.readouterr().err
