"""Dossier records from a CSV export (motcua/dossiers/export.py): Vietnamese headers, UTF-8 or
Windows-1258, comma or semicolon, dd/mm/yyyy; every bad row reported by line and column."""

from __future__ import annotations

import csv
import datetime as dt
import re
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
    "due-before-received.csv": [":2:", "field due at", "before it was received"],
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


# ---------------------------------------------------------------- XLSX exports


def workbook_of(csv_path: Path, path: Path, edit=None) -> Path:
    """The CSV export saved as a spreadsheet program saves it (openpyxl: shared strings, styles): dates as
    date cells in a dd/mm/yyyy hh:mm format, site codes as numbers; ``edit(sheet)`` spoils it."""
    import csv

    from openpyxl import Workbook

    rows = list(csv.reader(csv_path.read_text(encoding="utf-8").splitlines()))
    book = Workbook()
    sheet = book.active
    sheet.title = "Hồ sơ"
    sheet.append(rows[0])
    for row in rows[1:]:
        cells: list[object] = []
        for header, value in zip(rows[0], row, strict=True):
            if header.startswith("Ngày") and value:
                cells.append(dt.datetime.strptime(value, "%d/%m/%Y %H:%M"))
            elif header == "Mã đơn vị" and value.isdigit():
                cells.append(int(value))
            else:
                cells.append(value or None)
        sheet.append(cells)
    for column in sheet.iter_cols(min_row=2):
        for cell in column:
            if isinstance(cell.value, dt.datetime):
                cell.number_format = "dd/mm/yyyy hh:mm"
    if edit:
        edit(sheet)
    book.save(path)
    return path


def test_an_xlsx_export_reads_as_the_same_csv_export(tmp_path):
    path = workbook_of(CORPUS / "good.csv", tmp_path / "xuat.xlsx")
    dossiers, kind = read_export(path, SITES)
    assert kind == "xlsx"
    csv_dossiers = read_export(CORPUS / "good.csv", SITES)[0]
    assert [replace(d, source="") for d in dossiers] == [replace(d, source="") for d in csv_dossiers]
    assert dossiers[0].received_at == dt.datetime(2026, 12, 1, 8, 5, tzinfo=TZ)  # a date cell, not text
    assert dossiers[0].source == f"{path}:2"  # the sheet's row


def with_shared_strings(path: Path) -> Path:
    """The workbook as Excel and LibreOffice save it: every string in xl/sharedStrings.xml (openpyxl writes
    them inline), the first one as rich text in two runs with a phonetic run, which is not its text."""
    import zipfile

    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    strings: list[str] = []

    def shared(match: re.Match) -> str:
        strings.append(match.group(2))
        return f'<c r="{match.group(1)}" t="s"><v>{len(strings) - 1}</v></c>'

    out = path.with_name("shared-" + path.name)
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        for item in source.infolist():
            data = source.read(item).decode("utf-8")
            if item.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(r'<c r="([A-Z]+\d+)" t="inlineStr"><is><t[^>]*>(.*?)</t></is></c>', shared, data)
            elif item.filename == "[Content_Types].xml":
                data = data.replace(
                    "</Types>",
                    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                    'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
                )
            elif item.filename == "xl/_rels/workbook.xml.rels":
                data = data.replace("</Relationships>", '<Relationship Id="rIdSST" Type="http://schemas.openxmlformats'
                                    '.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
                                    "</Relationships>")  # fmt: skip
            book.writestr(item, data)
        first, *rest = strings
        rich = (f"<si><r><t>{first[:2]}</t></r><r><rPr><b/></rPr><t>{first[2:]}</t></r>"
                '<rPh sb="0" eb="1"><t>PHONETIC</t></rPh></si>')  # fmt: skip
        items = [rich] + [f'<si><t xml:space="preserve">{t}</t></si>' for t in rest]
        book.writestr("xl/sharedStrings.xml", f'<sst xmlns="{main}" count="{len(strings)}">{"".join(items)}</sst>')
    return out


def test_an_xlsx_with_shared_strings_and_rich_text_reads_the_same(tmp_path):
    path = with_shared_strings(workbook_of(CORPUS / "good.csv", tmp_path / "xuat.xlsx"))
    dossiers, kind = read_export(path, SITES)
    assert kind == "xlsx"
    csv_dossiers = read_export(CORPUS / "good.csv", SITES)[0]
    assert [replace(d, source="") for d in dossiers] == [replace(d, source="") for d in csv_dossiers]


def test_an_xlsx_named_csv_is_still_read_as_a_workbook(tmp_path):
    path = workbook_of(CORPUS / "good.csv", tmp_path / "xuat.csv")
    assert read_export(path, SITES)[1] == "xlsx"


def _merge_header(sheet):
    sheet.merge_cells("H1:I1")  # "Ngày tiếp nhận" over two columns, as a report layout does


def _us_date(sheet):
    sheet["H3"].value, sheet["H3"].number_format = "12/25/2026 09:00", "@"  # text, month first


def _unknown_ward(sheet):
    sheet["B4"].value = 99999


def _duplicate(sheet):
    sheet["A3"].value = sheet["A2"].value


@pytest.mark.parametrize(
    ("edit", "line", "where", "message"),
    [
        (_merge_header, 1, "H1:I1", "merged cells"),
        (_us_date, 3, "Ngày tiếp nhận", "cell H3: '12/25/2026 09:00' is not a date"),
        (_unknown_ward, 4, "Mã đơn vị", "cell B4: site '99999' is not in the registry"),
        (_duplicate, 3, "Mã hồ sơ", "cell A3: the same dossier code as line 2"),
    ],
    ids=["merged-header", "month-first-date", "unknown-ward", "duplicate-code"],
)
def test_a_bad_xlsx_export_is_refused_by_row_and_column(tmp_path, edit, line, where, message):
    path = workbook_of(CORPUS / "good.csv", tmp_path / "xuat.xlsx", edit)
    with pytest.raises(DossierInputError) as info:
        read_export(path, SITES)
    found = [p for p in info.value.problems if p.line == line and message in p.message + p.site + p.field]
    assert found, [str(p) for p in info.value.problems]
    assert any(where in (p.field, p.site) or where in p.message for p in found), [str(p) for p in found]
    assert all(p.file == str(path) for p in info.value.problems)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504, "Excel 97-2003 workbook (.xls)"),
        (b"PK\x03\x04 not really a zip", "not an XLSX workbook"),
    ],
    ids=["xls", "broken-zip"],
)
def test_a_workbook_that_cannot_be_read_says_why(tmp_path, data, message):
    path = tmp_path / "xuat.xlsx"
    path.write_bytes(data)
    with pytest.raises(DossierInputError, match=re.escape(message)):
        read_export(path, SITES)


def test_a_workbook_with_a_document_type_declaration_is_refused(tmp_path):
    """XML entities (the "billion laughs") need a DTD, which no spreadsheet program writes."""
    import zipfile

    good = workbook_of(CORPUS / "good.csv", tmp_path / "good.xlsx")
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w") as out:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                dtd = b'<!DOCTYPE worksheet [<!ENTITY a "aaaa">]>'
                data = data.replace(b"?>", b"?>" + dtd, 1) if data.startswith(b"<?xml") else dtd + data
            out.writestr(item, data)
    with pytest.raises(DossierInputError, match="document type declaration"):
        read_export(path, SITES)


def test_excels_unicode_text_export_reads_as_the_csv(tmp_path):
    """Excel's "Unicode Text": UTF-16 with a byte-order mark, tab-separated."""
    path = tmp_path / "xuat.txt"
    text = (CORPUS / "good.csv").read_text(encoding="utf-8")
    rows = list(csv.reader(text.splitlines()))
    path.write_bytes("\r\n".join("\t".join(row) for row in rows).encode("utf-16"))
    dossiers, encoding = read_export(path, SITES)
    assert encoding == "utf-16"
    csv_dossiers = read_export(CORPUS / "good.csv", SITES)[0]
    assert [replace(d, source="") for d in dossiers] == [replace(d, source="") for d in csv_dossiers]


def test_bytes_that_are_no_text_encoding_are_refused_by_line(tmp_path):
    path = tmp_path / "xuat.csv"
    good = (CORPUS / "good.csv").read_bytes()
    second = good.index(b"\n") + 1
    path.write_bytes(good[:second] + b"\x81" + good[second:])  # not UTF-8, undefined in Windows-1258
    with pytest.raises(DossierInputError) as info:
        read_export(path, SITES)
    (problem,) = info.value.problems
    assert (problem.file, problem.line) == (str(path), 2) and "b'\\x81'" in problem.message
