"""Reading registry files: strict UTF-8, YAML with line numbers, CSV.

Everything here returns problems instead of raising, so that one run reports
every error in every file.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from pathlib import Path

import yaml

from .problems import Problem

try:  # libyaml is ~5x faster; the pure-Python loader gives the same nodes.
    _BaseLoader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _BaseLoader = yaml.SafeLoader


class LineDict(dict):
    """A mapping that remembers the line of each key (1-based)."""

    line: int = 0
    key_lines: dict

    def line_of(self, key: object) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list):
    """A sequence that remembers the line of each item (1-based)."""

    line: int = 0
    item_lines: list

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class _Loader(_BaseLoader):
    """SafeLoader that records line numbers and refuses duplicate keys."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise _DuplicateKey(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r} (first at line {result.key_lines[key]})",
                key_node.start_mark,
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def read_text(path: Path, label: str, problems: list[Problem]) -> str | None:
    """Read a file as strict UTF-8; report where the first bad byte is."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        problems.append(Problem(label, 0, "", "", "file not found"))
        return None
    except OSError as exc:
        problems.append(Problem(label, 0, "", "", f"cannot read file: {exc.strerror}"))
        return None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # spreadsheet exports add a BOM; it carries no meaning
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        problems.append(
            Problem(
                label,
                line,
                "",
                "",
                f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {column}); "
                "the file was probably saved as Windows-1258 or Latin-1: re-save it as UTF-8",
            )
        )
        return None


def load_yaml(path: Path, label: str, problems: list[Problem]) -> object | None:
    """Parse one YAML file; ``None`` (with a problem recorded) when unusable."""
    text = read_text(path, label, problems)
    if text is None:
        return None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader derives from SafeLoader
    except _DuplicateKey as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        problems.append(Problem(label, line, "", "", f"YAML error: {exc.problem}"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        column = f" column {mark.column + 1}" if mark else ""
        what = exc.problem or "syntax error"
        context = f" ({exc.context})" if exc.context else ""
        problems.append(Problem(label, line, "", "", f"YAML syntax error at{column}: {what}{context}"))
    except yaml.YAMLError as exc:
        problems.append(Problem(label, 0, "", "", f"YAML error: {exc}"))
    return None


def load_csv(path: Path, label: str, problems: list[Problem]) -> list[tuple[int, dict[str, str]]] | None:
    """Rows of a CSV file with their line numbers (header is line 1)."""
    text = read_text(path, label, problems)
    if text is None:
        return None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = []
    try:
        for row in reader:
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        problems.append(Problem(label, reader.line_num, "", "", f"CSV syntax error: {exc}"))
        return None
    return rows


_MOJIBAKE_HINTS = frozenset("ÃÂÄÆáº»¡¿Å")


def _as_single_bytes(text: str) -> bytes | None:
    """Map each character back to the byte a UTF-8-as-Windows-1252 reader saw."""
    out = bytearray()
    for ch in text:
        try:
            out += ch.encode("cp1252")
        except UnicodeEncodeError:
            if ord(ch) < 256:
                out.append(ord(ch))  # bytes undefined in cp1252 survive as C1 controls
            else:
                return None
    return bytes(out)


def strip_diacritics(text: str) -> str:
    """'Phường Sài Gòn' -> 'Phuong Sai Gon' (case kept; đ/Đ become d/D)."""
    decomposed = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")


def text_problem(value: str) -> str | None:
    """Say what is wrong with a piece of Vietnamese text, or ``None``.

    Catches the three ways names get damaged between spreadsheets, e-mail and
    editors: UTF-8 read as Windows-1252 ("PhÆ°á»ng" for "Phường"), characters
    lost to U+FFFD, and decomposed (NFD) diacritics that look right but never
    compare equal to the official name.
    """
    if any(mark in value for mark in ("{{", "{%", "{#")):
        return "contains a Jinja template delimiter ({{, {% or {#): registry text is data, never a template"
    if "\ufffd" in value:
        return "contains U+FFFD replacement characters: the text was damaged by a wrong encoding"
    if any(unicodedata.category(ch) == "Cc" and ch not in "\t\n" for ch in value):
        return "contains control characters"
    if any(ch in _MOJIBAKE_HINTS for ch in value):
        raw = _as_single_bytes(value)
        if raw is not None:
            try:
                fixed = raw.decode("utf-8")
            except UnicodeDecodeError:
                fixed = None
            if fixed is not None and fixed != value:
                return f"mis-encoded text (UTF-8 read as Windows-1252): probably {fixed!r}"
    if not unicodedata.is_normalized("NFC", value):
        return "text is not in Unicode NFC form (decomposed diacritics): re-save it as NFC"
    return None
