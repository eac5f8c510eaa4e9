"""The CSV and XLSX files people open: LibreOffice Calc (headless, Debian's package) keeps every
cell text - no formula runs, in the CSV even with "evaluate formulas" chosen - and the XLSX
keeps every value exactly (no apostrophe, no number, no date)."""

from __future__ import annotations

import csv
import io

import pytest

from motcua.spreadsheet import PREFIXED, csv_document, csv_row, text_cell, xlsx_document
from tests.spreadsheet.calc import CSV_EVALUATING, calc_cells

# What a roster, a registry name or a certificate request may put into a cell.
HOSTILE = [
    "=1+1",
    '=HYPERLINK("http://127.0.0.1/x","Bấm vào đây")',
    "+84 28 0000 0000",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
    "-----BEGIN CERTIFICATE REQUEST-----\nMIIBVzCB/QIBADBr\n-----END CERTIFICATE REQUEST-----",
]
# Values a spreadsheet turns into something else when it guesses types from a CSV.
GUESSED = ["001234", "2025-07-01", "TRUE", "26740", "1e5"]
PLAIN = ["Phường Sài Gòn", "Nguyễn Văn A, Trưởng bộ phận", 'say "xin chào"']
# A value that starts with the apostrophe gets one more (one dropped gives it back).
QUOTED = ["'already quoted"]
VALUES = HOSTILE + GUESSED + PLAIN + QUOTED
HEADER = [f"Cột {i + 1}" for i in range(len(VALUES))]


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    """LibreOffice's user profile, this module's own (never root's)."""
    return tmp_path_factory.mktemp("libreoffice-profile")


def seen(value: str) -> str:
    """A carriage return is a line break to a spreadsheet."""
    return value.replace("\r\n", "\n").replace("\r", "\n")


def test_text_cell_neutralises_exactly_the_formula_starts():
    for value in VALUES:
        expected = "'" + value if value.startswith(PREFIXED) else value
        assert text_cell(value) == expected, value
    assert text_cell(None) == "" and text_cell(26740) == "26740"
    assert csv_row(["a,b", 'c"d', "-1"]) == '"a,b","c""d",\'-1\r\n'


@pytest.mark.parametrize("infilter", [None, CSV_EVALUATING], ids=["no-options", "utf8-evaluate-formulas"])
def test_no_csv_cell_is_a_formula_in_libreoffice(tmp_path, profile, infilter):
    """With no import options headless LibreOffice evaluates formulas and reads the file in the
    system's 8-bit charset (the dialog a person sees takes the byte-order mark); with UTF-8 and
    "evaluate formulas" chosen, every text must come through as well."""
    path = tmp_path / "cells.csv"
    path.write_text(csv_document(HEADER, [VALUES]), encoding="utf-8", newline="")
    # A program reading the file gets each value back with one apostrophe to drop.
    (header, row) = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))
    assert header == HEADER and [v[1:] if v.startswith("'") else v for v in row] == VALUES
    header_cells, cells = calc_cells(path, profile, infilter)
    assert len(cells) == len(VALUES)
    for value, cell in zip(VALUES, cells, strict=True):
        assert cell.formula is None, (value, cell)
        if value in HOSTILE + QUOTED + PLAIN:
            assert cell.type == "string", (value, cell)
    if infilter:
        assert [c.text for c in header_cells] == HEADER
        for value, cell in zip(VALUES, cells, strict=True):
            if value in HOSTILE + QUOTED:
                assert cell.text == seen("'" + value), (value, cell)
            elif value in PLAIN:
                assert cell.text == value, (value, cell)


def test_the_same_cells_unneutralised_do_run_as_formulas(tmp_path, profile):
    """The check above can fail: written as a plain CSV, LibreOffice evaluates them."""
    path = tmp_path / "raw.csv"
    out = io.StringIO()
    csv.writer(out).writerows([HEADER, VALUES])
    path.write_text("\ufeff" + out.getvalue(), encoding="utf-8", newline="")
    _header, cells = calc_cells(path, profile, CSV_EVALUATING)
    formulas = [value for value, cell in zip(VALUES, cells, strict=True) if cell.formula]
    # LibreOffice runs what starts with "="; Excel also what starts with +, - and @ (OWASP's list).
    assert formulas == ["=1+1", '=HYPERLINK("http://127.0.0.1/x","Bấm vào đây")']
    # ... and guesses the types: a staff ID loses its zeros, a code becomes a number.
    assert {cell.type for value, cell in zip(VALUES, cells, strict=True) if value in GUESSED} != {"string"}


def test_every_xlsx_cell_is_text_exactly_as_given(tmp_path, profile):
    path = tmp_path / "cells.xlsx"
    path.write_bytes(xlsx_document(HEADER, [VALUES], sheet="Đăng ký: thử/[1]"))
    header_cells, cells = calc_cells(path, profile)
    assert [c.text for c in header_cells] == HEADER
    assert [(c.type, c.formula) for c in header_cells + cells] == [("string", None)] * (2 * len(VALUES))
    assert [c.text for c in cells] == [seen(v) for v in VALUES]


def test_xlsx_is_the_same_bytes_for_the_same_rows():
    assert xlsx_document(HEADER, [VALUES]) == xlsx_document(HEADER, [VALUES])
    assert xlsx_document(HEADER, [VALUES]) != xlsx_document(HEADER, [VALUES[::-1]])
