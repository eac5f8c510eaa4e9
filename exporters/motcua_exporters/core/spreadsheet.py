"""CSV that people open in a spreadsheet program: every cell stays text.

A spreadsheet reads a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula
(and a tab or carriage return ahead of one still as one): a roster name like
``=HYPERLINK(...)`` would run in the DX Centre's spreadsheet, and every certificate
request (``-----BEGIN CERTIFICATE REQUEST-----``) shows as an error. Such a cell is
written with a leading apostrophe, which spreadsheets show as text and which a program
reading the file drops (OWASP's CSV injection advice; a cell that starts with an apostrophe
gets one more, so one dropped always gives the value); the other cells are as given.
The file starts with a byte-order mark, so that the Vietnamese shows right.

A CSV cell of digits is still a number to a spreadsheet (a staff ID loses its leading
zeros) and the apostrophe shows; where people open the file, ship :func:`xlsx_document`
beside it: every cell a text cell, exactly as given.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
import zipfile
from collections.abc import Iterable
from xml.etree import ElementTree
from xml.sax.saxutils import escape

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# ... and a cell that starts with the apostrophe itself, so that dropping one leading
# apostrophe always gives the value back.
PREFIXED = (*FORMULA_STARTS, "'")
BOM = "\ufeff"


def text_cell(value: object) -> str:
    """The cell as text a spreadsheet will not evaluate."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(PREFIXED) else text


def csv_row(cells: Iterable[object], lineterminator: str = "\r\n") -> str:
    """One CSV line (quoted where needed) of text cells."""
    out = io.StringIO()
    csv.writer(out, lineterminator=lineterminator).writerow([text_cell(c) for c in cells])
    return out.getvalue()


def csv_document(header: Iterable[object], rows: Iterable[Iterable[object]], lineterminator: str = "\r\n") -> str:
    """A whole CSV file: the byte-order mark, the header, the rows, every cell text."""
    return BOM + "".join(csv_row(r, lineterminator) for r in [header, *rows])


# ---- XLSX: what people open; every cell an inline string, so nothing is a formula or a number

_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_OOXML = "http://schemas.openxmlformats.org"
_MAIN = f"{_OOXML}/spreadsheetml/2006/main"
_PACKAGE_RELS = f"{_OOXML}/package/2006/relationships"
_DOCUMENT_RELS = f"{_OOXML}/officeDocument/2006/relationships"
_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def _relationships(*targets: tuple[str, str]) -> str:
    rels = "".join(
        f'<Relationship Id="rId{i}" Type="{_DOCUMENT_RELS}/{kind}" Target="{target}"/>'
        for i, (kind, target) in enumerate(targets, start=1)
    )
    return f'{_XML}<Relationships xmlns="{_PACKAGE_RELS}">{rels}</Relationships>'


_CONTENT_TYPES = (
    f'{_XML}<Types xmlns="{_OOXML}/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_TYPE}.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_TYPE}.worksheet+xml"/>'
    f'<Override PartName="/xl/styles.xml" ContentType="{_TYPE}.styles+xml"/>'
    "</Types>"
)
_WORKBOOK = (
    f'{_XML}<workbook xmlns="{_MAIN}" xmlns:r="{_DOCUMENT_RELS}">'
    '<sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
# Cell style 0: the text format (49, "@"), top-aligned, wrapped; style 1: the same in bold (the header);
# style 2: a number (the general format), for the cells given as int or float.
_TEXT_XF = '<xf numFmtId="49" fontId="{font}" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" applyFont="1" '
_STYLES = (
    f'{_XML}<styleSheet xmlns="{_MAIN}">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="3">'
    + "".join(
        _TEXT_XF.format(font=font) + 'applyAlignment="1"><alignment vertical="top" wrapText="1"/></xf>'
        for font in (0, 1)
    )
    + '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" applyAlignment="1"><alignment vertical="top"/>'
    "</xf></cellXfs></styleSheet>"
)
# Characters XML 1.0 cannot hold at all (the registry and rosters refuse them anyway).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _column(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def _cell(ref: str, value: str | int | float, header: bool) -> str:
    if isinstance(value, int | float) and not header and math.isfinite(value):
        return f'<c r="{ref}" s="2"><v>{value!r}</v></c>'
    text = escape(_NOT_XML.sub("", str(value)))
    return f'<c r="{ref}" s="{1 if header else 0}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


def _sheet(rows: list[list[str | int | float]]) -> str:
    widths = [min(60, max(8, *(len(line) for row in rows if i < len(row) for line in str(row[i]).split("\n"))))
              for i in range(max(map(len, rows)))]  # fmt: skip
    cols = "".join(f'<col min="{i + 1}" max="{i + 1}" width="{w + 2}" style="0" customWidth="1"/>'
                   for i, w in enumerate(widths))  # fmt: skip
    body = []
    for r, row in enumerate(rows, start=1):
        cells = "".join(_cell(f"{_column(c)}{r}", value, r == 1) for c, value in enumerate(row))
        body.append(f'<row r="{r}">{cells}</row>')
    return (
        f'{_XML}<worksheet xmlns="{_MAIN}">'
        '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" '
        'state="frozen"/></sheetView></sheetViews>'
        f"<cols>{cols}</cols><sheetData>{''.join(body)}</sheetData></worksheet>"
    )


def _value(value: object) -> str | int | float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return "" if value is None else str(value)


def xlsx_document(header: Iterable[object], rows: Iterable[Iterable[object]], sheet: str = "Sheet1") -> bytes:
    """An Office Open XML workbook of one sheet: the header (bold, frozen) and the rows, every
    cell an inline string in the text format, exactly as given (no apostrophe needed: a
    spreadsheet reads nothing in it as a formula, a number or a date), except a cell given as an
    int or a float, which is a number (a figure people add up). Byte for byte the same for the
    same rows."""
    table = [[_value(v) for v in row] for row in [header, *rows]]
    name = escape(re.sub(r"[\[\]:*?/\\]", "-", sheet)[:31], {'"': "&quot;"})
    parts = {
        "[Content_Types].xml": _CONTENT_TYPES,
        "_rels/.rels": _relationships(("officeDocument", "xl/workbook.xml")),
        "xl/workbook.xml": _WORKBOOK.format(name=name),
        "xl/_rels/workbook.xml.rels": _relationships(("worksheet", "worksheets/sheet1.xml"), ("styles", "styles.xml")),
        "xl/styles.xml": _STYLES,
        "xl/worksheets/sheet1.xml": _sheet(table),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        for part, text in parts.items():
            book.writestr(zipfile.ZipInfo(part, date_time=(2025, 7, 1, 0, 0, 0)), text.encode("utf-8"),
                          compress_type=zipfile.ZIP_DEFLATED)  # fmt: skip
    return out.getvalue()


# ---------------------------------------------------------------- reading an XLSX

# Excel's built-in number formats that show a date or a time (ECMA-376 part 1, 18.8.30).
_DATE_FORMAT_IDS = frozenset((*range(14, 23), 45, 46, 47))
_QUOTED = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.')
_REL = f"{{{_DOCUMENT_RELS}}}id"
READ_MAX_BYTES = 256 << 20  # uncompressed parts together: a zip bomb is refused, not unpacked


class SpreadsheetError(ValueError):
    """A workbook that cannot be read: the message says why (and where, for a cell)."""


def column_name(index: int) -> str:
    """The column's letters of a 0-based index: 0 -> A, 26 -> AA."""
    return _column(index)


def _column_index(ref: str) -> int:
    letters = "".join(ch for ch in ref if ch.isalpha())
    index = 0
    for ch in letters.upper():
        index = index * 26 + ord(ch) - ord("A") + 1
    return index - 1


def _is_date_format(code: str) -> bool:
    bare = _QUOTED.sub("", code).lower()
    return any(ch in bare for ch in "dmyhs") and "general" not in bare


def _serial_time(serial: float, epoch_1904: bool) -> str:
    """An Excel serial date as ``dd/mm/yyyy HH:MM:SS`` (Vietnam's time is the reader's to assume)."""
    base = dt.datetime(1904, 1, 1) if epoch_1904 else dt.datetime(1899, 12, 30)
    when = base + dt.timedelta(days=serial)
    when = (when + dt.timedelta(microseconds=500_000)).replace(microsecond=0)  # whole seconds, rounded
    return when.strftime("%d/%m/%Y %H:%M:%S")


def _number(text: str) -> str:
    value = float(text)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _texts(element, ns: str) -> str:
    """A string item's text: its runs' ``t`` elements, not the phonetic ones (``rPh``)."""
    parts = []
    for child in element:
        tag = child.tag.removeprefix(ns)
        if tag == "t":
            parts.append(child.text or "")
        elif tag == "r":
            parts.extend(t.text or "" for t in child.iter(f"{ns}t"))
    return "".join(parts)


def read_xlsx(data: bytes) -> tuple[list[tuple[int, list[str]]], list[str]]:
    """The first sheet of a workbook: ``(rows, merged)``. Each row is ``(its number, its cells as text)``
    (numbers without a trailing ``.0``, dates and times in a date format as ``dd/mm/yyyy HH:MM:SS``,
    booleans as 1 / 0, formulas as their cached value); ``merged`` lists the merged ranges (``A1:B1``),
    which a reader of records must refuse: only their first cell holds the value."""
    ns = f"{{{_MAIN}}}"
    try:
        book = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise SpreadsheetError("not an XLSX workbook (not a zip file)") from None
    with book:
        if sum(info.file_size for info in book.infolist()) > READ_MAX_BYTES:
            raise SpreadsheetError(f"its parts unpack to more than {READ_MAX_BYTES} bytes")
        names = set(book.namelist())

        def part(name: str):
            try:
                text = book.read(name)
            except KeyError:
                raise SpreadsheetError(f"no {name} in the workbook") from None
            if text[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16: the check below would not see a declaration
                raise SpreadsheetError(f"{name}: UTF-16 XML, which no spreadsheet program writes")
            if b"<!DOCTYPE" in text or b"<!ENTITY" in text:  # no workbook has one; entities are how XML attacks
                raise SpreadsheetError(f"{name}: a document type declaration, which no workbook has")
            try:
                return ElementTree.fromstring(text)  # noqa: S314 - refused above: a DTD, the only way to declare entities
            except ElementTree.ParseError as exc:
                raise SpreadsheetError(f"{name}: not XML ({exc})") from None

        workbook = part("xl/workbook.xml")
        sheets = workbook.find(f"{ns}sheets")
        first = sheets[0] if sheets is not None and len(sheets) else None
        if first is None:
            raise SpreadsheetError("the workbook has no sheet")
        properties = workbook.find(f"{ns}workbookPr")
        epoch_1904 = properties is not None and properties.get("date1904") in ("1", "true")
        rels = part("xl/_rels/workbook.xml.rels")
        target = next((r.get("Target", "") for r in rels if r.get("Id") == first.get(_REL)), "")
        sheet_name = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
        shared: list[str] = []
        if "xl/sharedStrings.xml" in names:
            shared = [_texts(item, ns) for item in part("xl/sharedStrings.xml").iter(f"{ns}si")]
        date_styles: set[int] = set()
        if "xl/styles.xml" in names:
            styles = part("xl/styles.xml")
            custom = {int(f.get("numFmtId", "0")): f.get("formatCode", "") for f in styles.iter(f"{ns}numFmt")}
            xfs = styles.find(f"{ns}cellXfs")
            for index, xf in enumerate(xfs if xfs is not None else []):
                fmt = int(xf.get("numFmtId", "0"))
                if fmt in _DATE_FORMAT_IDS or (fmt in custom and _is_date_format(custom[fmt])):
                    date_styles.add(index)
        sheet = part(sheet_name)

    def value(cell) -> str:
        kind = cell.get("t", "n")
        v = cell.find(f"{ns}v")
        raw = v.text if v is not None and v.text is not None else ""
        ref = cell.get("r", "?")
        if kind == "inlineStr":
            inline = cell.find(f"{ns}is")
            return _texts(inline, ns) if inline is not None else ""
        if kind == "s":
            try:
                return shared[int(raw)]
            except (ValueError, IndexError):
                raise SpreadsheetError(f"cell {ref}: shared string {raw!r} does not exist") from None
        if kind in ("str", "e"):
            return raw
        if kind == "b":
            return "1" if raw.strip() in ("1", "true") else "0"
        if raw == "":
            return ""
        try:
            if int(cell.get("s", "0")) in date_styles:
                return _serial_time(float(raw), epoch_1904)
            return _number(raw)
        except (ValueError, OverflowError):
            raise SpreadsheetError(f"cell {ref}: {raw!r} is not a number") from None

    rows: list[tuple[int, list[str]]] = []
    data_element = sheet.find(f"{ns}sheetData")
    last = 0
    for row in data_element if data_element is not None else []:
        number = int(row.get("r", last + 1))
        last = number
        cells: list[str] = []
        for position, cell in enumerate(row.iter(f"{ns}c")):
            index = _column_index(cell.get("r", "")) if cell.get("r") else position
            cells.extend([""] * (index + 1 - len(cells)))
            cells[index] = value(cell)
        rows.append((number, cells))
    merged = [m.get("ref", "") for m in sheet.iter(f"{ns}mergeCell")]
    return rows, merged
