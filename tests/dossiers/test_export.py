"""Dossier records from a CSV export (motcua/dossiers/export.py): Vietnamese headers, UTF-8 or
Windows-1258, comma or semicolon, dd/mm/yyyy; every bad row reported by line and column."""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import replace
from pathlib import Path

import pytest

from motcua.dossiers.export import DossierInputError, decode, read_export, read_text
from motcua.registry import load_registry
from motcua.times import TZ

from ..conftest import ROOT

CORPUS = Path(__file__).parent.parent / "corpus" / "dossiers"
SITES = list(load_registry(ROOT / "inventory" / "hcmc" / "registry").sites)


def windows_1258(text: str) -> bytes:
    """Text as a Vietnamese Windows spreadsheet saves it: base letters (â, ê, ơ ...) precomposed where the
    code page has them, tone marks as combining characters after them."""
    tones = "\u0300\u0301\u0303\u0309\u0323"  # grave, acute, tilde, hook above, dot below
    out = bytearray()
    for char in unicodedata.normalize("NFC", text):
        try:
            out += char.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        base, *marks = unicodedata.normalize("NFD", char)
        letter = unicodedata.normalize("NFC", base + "".join(m for m in marks if m not in tones))
        out += (letter + "".join(m for m in marks if m in tones)).encode("cp1258")
    return bytes(out)


def test_an_export_in_utf8_is_read_field_by_field():
    dossiers, encoding = read_export(CORPUS / "good.csv", SITES)
    assert encoding == "utf-8"
    assert [d.code for d in dossiers] == ["000.00.26740-H01", "000.00.26740-H02", "000.00.26740-H03",
                                          "000.00.25747-H01", "000.00.ttpv-H01", "000.00.ttpv-H02"]  # fmt: skip
    first = dossiers[0]
    assert (first.site, first.agency, first.procedure_name, first.field) == (
        "26740",
        None,
        "Đăng ký khai sinh",
        "Hộ tịch",
    )
    assert (first.channel, first.status, first.rating) == ("direct", "returned", "very_satisfied")
    assert first.received_at == dt.datetime(2026, 12, 1, 8, 5, tzinfo=TZ)
    assert first.returned_at == dt.datetime(2026, 12, 2, 15, 0, tzinfo=TZ)
    assert (first.paid_online, first.digitised_at_intake, first.digitised_result) == (None, True, True)
    late = dossiers[1]
    assert (late.channel, late.overdue_reason, late.late_step, late.on_time()) == (
        "online",
        "Thiếu cán bộ",
        "Thẩm định",
        False,
    )
    assert dossiers[3].digitised_at_intake is True  # "x"
    assert dossiers[4].agency == "SXD"
    assert (dossiers[5].status, dossiers[5].due_at, dossiers[5].counts_for_time) == ("withdrawn", None, False)


def test_the_same_export_from_a_vietnamese_windows_spreadsheet_reads_the_same(tmp_path):
    text = (CORPUS / "good.csv").read_text(encoding="utf-8").replace(",", ";")
    data = windows_1258(text)
    assert data != text.encode("utf-8")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    path = tmp_path / "xuat.csv"
    path.write_bytes(data)
    dossiers, encoding = read_export(path, SITES)
    assert encoding == "windows-1258"
    utf8 = read_export(CORPUS / "good.csv", SITES)[0]
    assert [replace(d, source="") for d in dossiers] == [replace(d, source="") for d in utf8]
    assert dossiers[0].procedure_name == "Đăng ký khai sinh"  # NFC again, as the registry writes it
    assert unicodedata.is_normalized("NFC", dossiers[1].overdue_reason)


def test_a_byte_order_mark_and_english_headers_in_another_order():
    text = (
        "\ufeffstatus,received at,channel,procedure code,site,code\nin progress,2026-12-06T08:00,online,1.0,26740,X1\n"
    )
    (dossier,) = read_text(text, "api.csv", SITES)
    assert (dossier.code, dossier.status, dossier.received_at.tzinfo) == ("X1", "in_progress", TZ)
    assert decode(text.encode("utf-8"))[1] == "utf-8"


BAD = {
    "missing-column.csv": ["header", "field received_at", "no column for it"],
    "bad-date.csv": [":2:", "dossier A1", "field received at", "'31/02/2026' is not a date"],
    "bad-channel.csv": [":2:", "field channel", "'fax' is not a channel"],
    "duplicate.csv": [":3:", "dossier A1", "field code", "the same dossier code as line 2"],
    "unknown-site.csv": [":2:", "field site", "site '99999' is not in the registry"],
    "due-before-received.csv": [":2:", "field due_at", "before it was received"],
    "finished-without-time.csv": [":2:", "field finished_at", "status finished needs the time the result was ready"],
    "short-row.csv": [":2:", "dossier A1", "5 cells, the header has 6"],
    "empty.csv": ["the file is empty"],
    "bad-flag.csv": [":2:", "field paid online", "'maybe' is not yes or no"],
    "empty-code.csv": [":2:", "row 2", "field code", "empty: required"],
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_export_is_refused_with_file_line_and_column(name):
    with pytest.raises(DossierInputError) as caught:
        read_export(CORPUS / name, SITES)
    message = str(caught.value)
    assert f"{CORPUS / name}" in message, message
    for part in BAD[name]:
        assert part in message, message


def test_every_bad_row_is_listed_not_only_the_first(tmp_path):
    rows = ["code,site,procedure code,channel,received at,status"]
    rows += [f"B{i},26740,1.0,online,{i}/13/2026,Đang xử lý" for i in range(1, 6)]
    path = tmp_path / "many.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(DossierInputError) as caught:
        read_export(path, SITES)
    assert [p.line for p in caught.value.problems] == [2, 3, 4, 5, 6]


def test_the_corpus_has_no_file_without_a_test():
    assert {p.name for p in CORPUS.iterdir()} == set(BAD) | {"good.csv"}
