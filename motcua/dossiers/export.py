"""Dossier records from a CSV or XLSX export, as every dossier system can produce one.

For a site without access to the reporting API. What such exports look like, and what is read:

- headers in Vietnamese or English, accents optional (``Mã hồ sơ``, ``Ma ho so``, ``code``), in
  any order; columns this reader does not know are left alone, a required one missing is an error;
- UTF-8 (with or without a byte-order mark) or Windows-1258, the Vietnamese code page of
  Windows spreadsheets (its tone marks are combining characters: the text is NFC-normalised);
- comma, semicolon (the list separator of a Vietnamese Windows) or tab;
- dates ``dd/mm/yyyy``, ``dd/mm/yyyy HH:MM[:SS]`` or ISO 8601, Vietnam's time unless an offset is given;
- yes/no cells as ``có``/``không``, ``x``/empty, ``1``/``0``, ``yes``/``no``;
- or an XLSX workbook (told by its content, whatever its name): the first sheet, the header in row 1,
  date cells as dates, numbers as written; merged cells are refused (only the first holds the value);
  Excel's "Unicode Text" (UTF-16, tab-separated) reads as a CSV. An Excel 97-2003 ``.xls`` is refused
  with what to do.

A row that cannot be read is reported by its line and column, never dropped: the whole file
is refused with every problem listed (:class:`DossierInputError`), so a report never counts
fewer dossiers than the system holds without saying so.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from motcua_exporters.core.spreadsheet import SpreadsheetError, column_name, read_xlsx
from motcua_exporters.dossier.records import (
    CHANNELS,
    RATINGS,
    STATUSES,
    Dossier,
    RecordProblem,
    check,
    lookup,
    plain,
)

from ..times import TZ
from ..validation.problems import InputError, Problem

MAX_BYTES = 256 << 20
ZIP_MAGIC = b"PK\x03\x04"  # an XLSX workbook is a zip file
XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the older binary workbook (OLE2), which is not read
# field -> header spellings (compared with records.plain: no accents, case, or extra spaces)
HEADERS: dict[str, tuple[str, ...]] = {
    "code": ("mã hồ sơ", "số hồ sơ", "code", "dossier code"),
    "site": ("mã đơn vị", "mã xã", "mã phường xã", "site", "site code"),
    "agency": ("mã cơ quan", "cơ quan giải quyết", "agency"),
    "procedure_code": ("mã thủ tục", "mã tthc", "procedure code"),
    "procedure_name": ("tên thủ tục", "tên tthc", "procedure", "procedure name"),
    "field": ("lĩnh vực", "field"),
    "channel": ("hình thức tiếp nhận", "kênh tiếp nhận", "channel"),
    "received_at": ("ngày tiếp nhận", "thời gian tiếp nhận", "received", "received at"),
    "due_at": ("ngày hẹn trả", "hạn xử lý", "hạn giải quyết", "due", "due at"),
    "finished_at": ("ngày có kết quả", "ngày hoàn thành", "finished", "finished at"),
    "returned_at": ("ngày trả kết quả", "returned", "returned at"),
    "status": ("trạng thái", "tình trạng", "status"),
    "paid_online": ("thanh toán trực tuyến", "paid online"),
    "digitised_at_intake": ("số hóa khi tiếp nhận", "số hóa hồ sơ", "digitised at intake"),
    "digitised_result": ("số hóa kết quả", "digitised result"),
    "overdue_reason": ("lý do quá hạn", "lý do chậm", "overdue reason"),
    "late_step": ("bước quá hạn", "bước chậm", "late step"),
    "rating": ("mức độ hài lòng", "đánh giá", "rating", "satisfaction"),
}
REQUIRED = ("code", "site", "procedure_code", "channel", "received_at", "status")
DATE_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d-%m-%Y")
YES = ("co", "x", "1", "yes", "true", "da", "y")
NO = ("khong", "0", "no", "false", "chua", "n", "")


class DossierInputError(InputError):
    what = "dossier export"


def as_problems(found: Iterable[RecordProblem]) -> list[Problem]:
    """The records model's problems as the project's input problems (file, row, dossier, field)."""
    return [Problem(p.source, p.line, p.code, p.field, p.message, kind="dossier") for p in found]


def decode(data: bytes, file: str = "") -> tuple[str, str]:
    """The text and the encoding it was in: UTF-16 if it starts with its byte-order mark (Excel's
    "Unicode Text"), UTF-8 if it is valid UTF-8, else Windows-1258; bytes that are none of them are
    refused with the line and the byte (DossierInputError)."""
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            text, encoding = data.decode("utf-16"), "utf-16"
        else:
            try:
                text, encoding = data.decode("utf-8-sig"), "utf-8"
            except UnicodeDecodeError:
                text, encoding = data.decode("cp1258"), "windows-1258"
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        message = (f"byte {data[exc.start:exc.start + 1]!r} is not text in UTF-8, Windows-1258 or UTF-16: "
                   "export the file again as CSV UTF-8")  # fmt: skip
        raise DossierInputError([Problem(file, line, "", "", message, kind="file")]) from None
    return unicodedata.normalize("NFC", text), encoding


def _columns(header: list[str], file: str) -> tuple[dict[str, int], list[Problem]]:
    wanted = {plain(spelling): name for name, spellings in HEADERS.items() for spelling in (name, *spellings)}
    columns: dict[str, int] = {}
    problems = []
    for index, cell in enumerate(header):
        name = wanted.get(plain(cell))
        if name is None:
            continue
        if name in columns:
            message = f"a second column for {name} (column {columns[name] + 1} is one)"
            problems.append(Problem(file, 1, "", cell, message, kind="header"))
        columns[name] = index
    for name in REQUIRED:
        if name not in columns:
            spellings = " / ".join((*HEADERS[name][:2], name))
            problems.append(Problem(file, 1, "", name, f"no column for it (a header like {spellings})", kind="header"))
    return columns, problems


def parse_time(value: str) -> dt.datetime:
    text = value.strip()
    for fmt in DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=TZ)
        except ValueError:
            continue
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is not a date (dd/mm/yyyy, dd/mm/yyyy HH:MM[:SS] or ISO 8601)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=TZ)


def parse_flag(value: str) -> bool | None:
    text = plain(value)
    if not text:
        return None
    if text in YES:
        return True
    if text in NO:
        return False
    raise ValueError(f"{value!r} is not yes or no (có / không, x / empty, 1 / 0)")


def _from_table(table: dict[str, tuple[str, ...]], what: str):
    def parse(value: str) -> str:
        key = lookup(table, value)
        if key is None:
            raise ValueError(f"{value!r} is not a {what} ({', '.join(f'{k}: {v[0]}' for k, v in table.items())})")
        return key

    return parse


def _text(value: str) -> str:
    return " ".join(value.split())


PARSERS = {
    "channel": _from_table(CHANNELS, "channel"),
    "status": _from_table(STATUSES, "status"),
    "rating": _from_table(RATINGS, "rating"),
    "received_at": parse_time,
    "due_at": parse_time,
    "finished_at": parse_time,
    "returned_at": parse_time,
    "paid_online": parse_flag,
    "digitised_at_intake": parse_flag,
    "digitised_result": parse_flag,
}
# What an optional field is when its cell is empty or its column missing.
DEFAULTS: dict[str, object] = {
    name: None
    for name in (
        "agency",
        "due_at",
        "finished_at",
        "returned_at",
        "paid_online",
        "digitised_at_intake",
        "digitised_result",
        "overdue_reason",
        "late_step",
        "rating",
    )
}
DEFAULTS.update(procedure_name="", field="")


def read_text(text: str, file: str, sites: Iterable[str] | None = None) -> list[Dossier]:
    """Dossiers of a CSV export's text; DossierInputError lists every problem (the file, line, column)."""
    text = text.removeprefix("\ufeff")
    sample = text[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise DossierInputError([Problem(file, 0, "", "", "the file is empty", kind="file")]) from None
    problems: list[Problem] = []

    def rows() -> Iterator[tuple[int, list[str]]]:
        while True:
            line = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                problems.append(Problem(file, line, "", "", f"not CSV: {exc}", kind="row"))
                return
            yield line, row

    return _read_rows(header, rows(), file, sites, problems)


def read_workbook(data: bytes, file: str, sites: Iterable[str] | None = None) -> list[Dossier]:
    """Dossiers of an XLSX export (its first sheet, the header in its first row); each problem names
    the row and the cell (``cell D5``). Merged cells are refused: only the first cell of a merged
    range holds its value, so the others would read as empty."""
    try:
        rows, merged = read_xlsx(data)
    except SpreadsheetError as exc:
        raise DossierInputError([Problem(file, 0, "", "", str(exc), kind="file")]) from None
    if merged:
        raise DossierInputError([
            Problem(file, _first_row(ref), "", ref, "merged cells: only the first holds the value; unmerge them "
                    "(or export CSV)", kind="row")
            for ref in merged
        ])  # fmt: skip
    if not rows or not any(cell.strip() for cell in rows[0][1]):
        message = "the first sheet's first row is empty: no header"
        raise DossierInputError([Problem(file, 0, "", "", message, kind="file")])
    (header_line, header), body = rows[0], rows[1:]
    if header_line != 1:
        raise DossierInputError([Problem(file, header_line, "", "", "the header is not in row 1", kind="header")])
    width = len(header)
    # A spreadsheet leaves trailing empty cells out: a row is as wide as the header.
    padded = ((line, cells + [""] * (width - len(cells)) if len(cells) < width else cells) for line, cells in body)
    return _read_rows(header, padded, file, sites, [], cell=lambda line, index: f"cell {column_name(index)}{line}: ")


def _first_row(ref: str) -> int:
    digits = "".join(ch for ch in ref.split(":")[0] if ch.isdigit())
    return int(digits) if digits else 0


def _read_rows(
    header: list[str],
    rows: Iterable[tuple[int, list[str]]],
    file: str,
    sites: Iterable[str] | None,
    problems: list[Problem],
    cell: Callable[[int, int], str] = lambda line, index: "",
) -> list[Dossier]:
    """The dossiers of rows under ``header``; ``problems`` gathers every problem (and may hold some
    already, the reader's), and any problem refuses the whole file. ``cell`` names a cell in a message."""
    columns, header_problems = _columns(header, file)
    if header_problems:
        raise DossierInputError(header_problems)
    dossiers = []
    for line, row in rows:
        if not any(c.strip() for c in row):
            continue
        code = _text(row[columns["code"]]) if columns["code"] < len(row) else ""
        where = code or f"row {line}"
        # Fewer cells than the header, or more that hold something (a shifted row); trailing empty ones pass.
        if len(row) < len(header) or any(c.strip() for c in row[len(header) :]):
            problems.append(
                Problem(file, line, where, "", f"{len(row)} cells, the header has {len(header)}", kind="dossier")
            )
            continue
        values: dict[str, object] = {}
        found = len(problems)
        for name, index in columns.items():
            text = row[index].strip()
            if not text:
                if name in DEFAULTS:
                    continue
                problems.append(Problem(file, line, where, header[index], f"{cell(line, index)}empty: required",
                                        kind="dossier"))  # fmt: skip
                continue
            try:
                values[name] = PARSERS.get(name, _text)(text)
            except ValueError as exc:
                problems.append(Problem(file, line, where, header[index], f"{cell(line, index)}{exc}", kind="dossier"))
        if len(problems) > found:
            continue
        values = {**DEFAULTS, **values}
        dossiers.append(Dossier(**values, source=f"{file}:{line}", line=line))  # type: ignore[arg-type]
    for p in check(dossiers, file, sites):  # named by the file's own column header (and cell)
        index = columns.get(p.field)
        field, where = (p.field, "") if index is None else (header[index], cell(p.line, index))
        problems.append(Problem(p.source, p.line, p.code, field, f"{where}{p.message}", kind="dossier"))
    if problems:
        raise DossierInputError(problems)
    return dossiers


def read_export(path: Path, sites: Iterable[str] | None = None) -> tuple[list[Dossier], str]:
    """Dossiers of an export file (CSV, or an XLSX workbook: told by its content, not its name) and what
    it was read as: the CSV's encoding, or ``xlsx``."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise DossierInputError(
                [Problem(str(path), 0, "", "", f"{size} bytes: larger than {MAX_BYTES}", kind="file")]
            )
        data = path.read_bytes()
    except OSError as exc:
        raise DossierInputError([Problem(str(path), 0, "", "", f"cannot read: {exc.strerror}", kind="file")]) from None
    if data.startswith(XLS_MAGIC):
        message = "an Excel 97-2003 workbook (.xls): save it as .xlsx (Excel Workbook) or CSV UTF-8 and read that"
        raise DossierInputError([Problem(str(path), 0, "", "", message, kind="file")])
    if data.startswith(ZIP_MAGIC):
        return read_workbook(data, str(path), sites), "xlsx"
    text, encoding = decode(data, str(path))
    return read_text(text, str(path), sites), encoding
