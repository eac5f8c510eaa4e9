"""Reading registry files: strict UTF-8, YAML with line numbers, CSV.

Everything here returns problems instead of raising, so that one run reports
every error in every file.
"""

from __future__ import annotations

import csv
import io
import re
import reprlib
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


_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]*)")


class _AmbiguousNumber(yaml.MarkedYAMLError):
    pass


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    """YAML 1.1 numbers, but only as people write them: 026740 would be octal 11744, 0x1A hex, 1_000 a thousand."""
    value = loader.construct_yaml_int(node)
    if not _DECIMAL.fullmatch(node.value):
        raise _AmbiguousNumber(
            "while reading a number", None,
            f"{node.value} is read by YAML as the number {value}; write it without a leading 0 "
            f'(or quote it, "{node.value}", where it is a code)', node.start_mark,
        )  # fmt: skip
    return value


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
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


# How many values a document may hold once its aliases are expanded. A hand-written
# input holds a few thousand; YAML's "billion laughs" (aliases of aliases) holds 10^9
# and hangs whatever prints or walks it.
MAX_EXPANDED_NODES = 200_000


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many nodes ``node`` stands for with every alias expanded (each shared node counted once per use)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # a node that contains itself counts once (PyYAML builds such recursive values)
    if isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    else:
        total = 1
    sizes[id(node)] = total
    return total


def load_yaml(path: Path, label: str, problems: list[Problem]) -> object | None:
    """Parse one YAML file; ``None`` (with a problem recorded) when unusable.

    An empty file (or one with only comments) is a problem too, and so is a document whose
    aliases expand beyond MAX_EXPANDED_NODES values.
    """
    text = read_text(path, label, problems)
    if text is None:
        return None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"):
            problems.append(Problem(label, 0, "", "", "the file is empty (or holds only comments)"))
            return None
        size = _expanded_size(node, {})
        if size > MAX_EXPANDED_NODES:
            problems.append(Problem(label, node.start_mark.line + 1, "", "",
                                    f"YAML aliases expand to {size:,} values (more than {MAX_EXPANDED_NODES:,}): "
                                    "write the values out instead of nesting anchors"))  # fmt: skip
            return None
        return loader.construct_document(node)
    except (_DuplicateKey, _AmbiguousNumber) as exc:
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
    finally:
        loader.dispose()
    return None


_EXTRA = "\0extra"  # DictReader's keys for values beyond the header, and missing ones
_MISSING_VALUE = object()


def load_csv(path: Path, label: str, problems: list[Problem]) -> list[tuple[int, dict[str, str]]] | None:
    """Rows of a CSV file with their line numbers (header is line 1)."""
    text = read_text(path, label, problems)
    if text is None:
        return None
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey=_EXTRA, restval=_MISSING_VALUE)
    rows = []
    try:
        for row in reader:
            header = len(reader.fieldnames or ())
            if _EXTRA in row or _MISSING_VALUE in row.values():
                given = header + len(row.get(_EXTRA, ())) - sum(v is _MISSING_VALUE for v in row.values())
                problems.append(Problem(label, reader.line_num, "", "row",
                                        f"{given} values, but the header names {header} columns "
                                        f"({', '.join(reader.fieldnames or ())}): a stray comma, "
                                        "or a value with a comma that is not in quotes"))  # fmt: skip
                continue
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


# Characters that print nothing (or break a line) yet change what a name is: a zero-width
# space makes two names that look the same different, a line separator starts a new
# line in a device's configuration.
_INVISIBLE = frozenset({"Cf", "Co", "Cs", "Cn", "Zl", "Zp"})


def text_problem(value: str, multiline: bool = False) -> str | None:
    """Say what is wrong with a piece of Vietnamese text, or ``None``.

    Refuses control characters (a line break too, even a trailing one, unless the text
    is ``multiline``) and invisible characters (zero-width spaces, direction marks,
    private-use and unassigned code points), naming the first one and where it is. Then
    catches the three ways names get damaged between spreadsheets, e-mail and editors:
    UTF-8 read as Windows-1252 ("PhÆ°á»ng" for "Phường"), characters lost to U+FFFD, and
    decomposed (NFD) diacritics that look right but never compare equal to the official name.
    """
    if any(mark in value for mark in ("{{", "{%", "{#")):
        return "contains a Jinja template delimiter ({{, {% or {#): registry text is data, never a template"
    if "\ufffd" in value:
        return "contains U+FFFD replacement characters: the text was damaged by a wrong encoding"
    if any(ch in _MOJIBAKE_HINTS for ch in value):
        raw = _as_single_bytes(value)
        if raw is not None:
            try:
                fixed = raw.decode("utf-8")
            except UnicodeDecodeError:
                fixed = None
            if fixed is not None and fixed != value:
                return f"mis-encoded text (UTF-8 read as Windows-1252): probably {fixed!r}"
    allowed = "\n\t" if multiline else ""
    for position, ch in enumerate(value, 1):
        category = unicodedata.category(ch)
        if category == "Cc" and ch not in allowed:
            return f"contains a control character ({_codepoint(ch)}) at character {position}: one line of plain text"
        if category in _INVISIBLE:
            return f"contains an invisible character ({_codepoint(ch)}) at character {position}"
    if not unicodedata.is_normalized("NFC", value):
        return "text is not in Unicode NFC form (decomposed diacritics): re-save it as NFC"
    return None


_CONTROL_NAMES = {"\n": "line feed", "\r": "carriage return", "\t": "tab"}


def _codepoint(ch: str) -> str:
    name = unicodedata.name(ch, "") or _CONTROL_NAMES.get(ch, "")
    return f"U+{ord(ch):04X}" + (f" {name}" if name else "")


_SHOWN = reprlib.Repr()
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlevel = 60, 60, 2
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = _SHOWN.maxset = 4


def shown(value: object) -> str:
    """``repr(value)`` cut short for a message: long text, deep or aliased structures never flood it."""
    return _SHOWN.repr(value)
