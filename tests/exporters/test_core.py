"""The exporters' shared core: durations, config sections, exposition, listen addresses, the zipapp bundle."""

from __future__ import annotations

import zipfile
from io import BytesIO

import pytest

from motcua.monitoring.bundle import PACKAGE, bundle_bytes
from motcua_exporters.core.config import ConfigError, Section, parse_duration
from motcua_exporters.core.exposition import Board, Family
from motcua_exporters.core.web import split_address


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("15s", 15), ("1m30s", 90), ("2h", 7200), ("7d", 604800), (3, 3.0)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["15", "fifteen", "-1s", "1x", True, None, ""])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_section_names_file_and_key_in_errors():
    root = Section({"targets": [{"name": "a", "timeout": "x"}]}, "dossier.yml")
    item = root.sections("targets")[0]
    with pytest.raises(ConfigError) as caught:
        item.duration("timeout")
    assert str(caught.value).startswith("dossier.yml: targets[0].timeout: not a duration")
    item.str("name")
    typo = Section({"name": "a", "timeot": 1}, "dossier.yml", "targets[0]")
    typo.str("name")
    with pytest.raises(ConfigError, match=r"^dossier.yml: targets\[0\]\.timeot: unknown key$"):
        typo.done()


def test_board_renders_each_family_once_and_escapes_label_values():
    board = Board([Family("x_up", "gauge", "Up."), Family("x_info", "gauge", "Info.")])
    board.put("a", {"x_up": [({"target": "a"}, 1.0)], "x_info": [({"target": "a", "why": 'say "hi"\\\n'}, 1)]})
    board.put("b", {"x_up": [({"target": "b"}, 0.0)]})
    text = board.render()
    assert text.count("# TYPE x_up gauge") == 1 and text.count("# TYPE x_info gauge") == 1
    assert 'x_up{target="a"} 1\nx_up{target="b"} 0\n' in text
    assert r'why="say \"hi\"\\\n"' in text
    board.keep_only(["b"])
    assert "x_info" not in board.render() and 'target="a"' not in board.render()


@pytest.mark.parametrize(
    ("listen", "expected"), [("127.0.0.1:9110", ("127.0.0.1", 9110)), ("[::1]:9111", ("::1", 9111))]
)
def test_listen_addresses(listen, expected):
    assert split_address(listen) == expected


@pytest.mark.parametrize("listen", [":9110", "localhost", "127.0.0.1:x", "127.0.0.1:70000"])
def test_listen_address_needs_a_host_and_a_port(listen):
    with pytest.raises(ValueError):
        split_address(listen)


def test_bundle_is_reproducible_and_holds_every_module():
    first, second = bundle_bytes(), bundle_bytes()
    assert first == second  # copying it to counters is idempotent
    assert first.startswith(b"#!/usr/bin/python3\n")
    names = zipfile.ZipFile(BytesIO(first.split(b"\n", 1)[1])).namelist()
    modules = sorted(f"motcua_exporters/{p.relative_to(PACKAGE).as_posix()}" for p in PACKAGE.rglob("*.py"))
    assert names == ["__main__.py", *modules]
    assert not any("__pycache__" in name for name in names)
