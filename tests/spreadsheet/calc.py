"""Open a file in LibreOffice Calc (Debian's libreoffice-calc-nogui, headless) and read back
what the spreadsheet made of each cell: its type, its formula if any, its text."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

NS = {
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
}
# LibreOffice's CSV import with its options given: comma, double quote, UTF-8 (76), from line 1,
# no column types, en-US, quoted fields not forced to text, special numbers detected (dates, as
# a user gets them), ..., and token 13 "evaluate formulas" on: the worst a user can choose. (With
# no options, as here by default, headless LibreOffice 7.4 evaluates formulas too.)
CSV_EVALUATING = "Text - txt - csv (StarCalc):44,34,76,1,,1033,false,true,false,false,false,-1,true"


@dataclass(frozen=True)
class Cell:
    type: str  # office:value-type: string, float, date, boolean, ...
    formula: str | None
    text: str


def _inline(node: ET.Element) -> str:
    tag = node.tag.rsplit("}", 1)[-1]
    if tag == "s":
        return " " * int(node.get(f"{{{NS['text']}}}c", "1"))
    if tag == "tab":
        return "\t"
    if tag == "line-break":
        return "\n"
    return (node.text or "") + "".join(_inline(child) + (child.tail or "") for child in node)


def _text(cell: ET.Element) -> str:
    """A cell's text as the user sees it: one line per paragraph."""
    return "\n".join(_inline(p) for p in cell.findall("text:p", NS))


def calc_cells(path: Path, profile: Path, infilter: str | None = None) -> list[list[Cell]]:
    """The first sheet's rows as LibreOffice Calc opened ``path`` (converted to flat ODS)."""
    out = path.parent / f"{path.stem}-calc"
    argv = ["soffice", f"-env:UserInstallation={profile.as_uri()}", "--headless"]
    if infilter:
        argv.append(f"--infilter={infilter}")
    argv += ["--convert-to", "fods", "--outdir", str(out), str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    converted = out / f"{path.stem}.fods"
    assert done.returncode == 0 and converted.is_file(), done.stdout + done.stderr
    table = ET.parse(converted).getroot().find(".//table:table", NS)  # noqa: S314 - LibreOffice wrote it, here
    assert table is not None, f"{converted}: no sheet"
    rows = []
    for row in table.iter(f"{{{NS['table']}}}table-row"):
        cells = []
        for cell in row.findall("table:table-cell", NS):
            repeat = int(cell.get(f"{{{NS['table']}}}number-columns-repeated", "1"))
            found = Cell(cell.get(f"{{{NS['office']}}}value-type", ""), cell.get(f"{{{NS['table']}}}formula"),
                         _text(cell))  # fmt: skip
            cells += [found] * min(repeat, 64)  # the empty rest of a row is one element repeated
        while cells and cells[-1] == Cell("", None, ""):
            cells.pop()
        if cells:
            rows.append(cells)
    return rows
