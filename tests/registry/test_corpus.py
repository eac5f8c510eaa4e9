"""Every bad registry in tests/corpus/registry is refused with file, site and field.

Each case is a YAML file that edits the small valid registry in
tests/corpus/base (text replacements, appends, a whole-file delete, or a
different encoding) and lists the problems the validator must report.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
import yaml

from motcua.registry import check_registry
from tests.conftest import CORPUS

CASES = sorted((CORPUS / "registry").glob("*.yml"))


def encode_cp1258(text: str) -> bytes:
    """Windows-1258, the way Vietnamese Windows saves text: precomposed vowels
    where the code page has them, a base letter plus combining tone mark elsewhere."""
    out = bytearray()
    for ch in text:
        try:
            out += ch.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        base, *marks = unicodedata.normalize("NFD", ch)
        for mark in list(marks):  # fold in the marks the code page has precomposed (â, ơ, ư)
            joined = unicodedata.normalize("NFC", base + mark)
            if len(joined) == 1 and joined.encode("cp1258", errors="replace") != b"?":
                base = joined
                marks.remove(mark)
        out += (base + "".join(marks)).encode("cp1258")
    return bytes(out)


def apply_case(case: dict, registry: Path) -> None:
    encoding = case.get("encoding", "utf-8")
    for name, edit in case["files"].items():
        path = registry / name
        if edit.get("delete"):
            path.unlink()
            continue
        text = edit["content"] if "content" in edit else path.read_text(encoding="utf-8")
        for old, new in edit.get("replace", []):
            assert old in text, f"case is stale: {old!r} is not in base {name}"
            text = text.replace(old, new, 1)
        text += edit.get("append", "")
        path.write_bytes(encode_cp1258(text) if encoding == "cp1258" else text.encode(encoding))


def test_corpus_is_large_enough():
    assert len(CASES) >= 20


def test_base_registry_is_valid(base_registry):
    registry, problems = check_registry(base_registry)
    assert problems == []
    assert registry is not None and len(registry.sites) == 5


@pytest.mark.parametrize("case_file", CASES, ids=[c.stem for c in CASES])
def test_corpus_case_is_refused(case_file: Path, base_registry: Path):
    case = yaml.safe_load(case_file.read_text(encoding="utf-8"))
    apply_case(case, base_registry)
    registry, problems = check_registry(base_registry)
    assert registry is None, "an invalid registry must not be returned"
    assert problems, "no problem reported"
    rendered = "\n".join(str(p) for p in problems)
    for expected in case["expect"]:
        matches = [
            p
            for p in problems
            if Path(p.file).name == expected["file"]
            and expected["message"] in p.message
            and p.site == str(expected.get("site", p.site))
            and p.field == expected.get("field", p.field)
            and p.line == expected.get("line", p.line)
        ]
        assert matches, f"expected {expected} among:\n{rendered}"
        # Every message names the file, and the site and field when the case says which.
        text = str(matches[0])
        assert expected["file"] in text
        if "site" in expected:
            kind = "site" if Path(expected["file"]).name in ("sites.yml", "wards.csv") else matches[0].kind
            assert f"{kind} {expected['site']}" in text
        if "field" in expected:
            assert f"field {expected['field']}" in text
