"""The official list of the city's commune-level units, and the record of the last one accepted.

``wards.csv`` is reference data: the 168 units the 1 July 2025 reorganisation made. A
169th unit, or one that disappears from it (and from ``sites.yml`` with it), would pass
every other check, so the registry keeps a record of the list it last accepted,
``wards.official.yml``: the count, the SHA-256 of the file, every code, and the note
that says which decision made it. ``motcua validate`` refuses a ``wards.csv`` that
differs from the record, naming what was added and removed; after a real decision,
``motcua accept-wards --note "..."`` records the new list (the old record is kept in
its history), so the change is deliberate and says why.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import yaml

from ..durable import write_atomic
from ..validation import Checker, Field, LineDict, Problem, load_yaml

RECORD_NAME = "wards.official.yml"
MISMATCH_FIELD = "official list"  # the field of the problem that wards.csv differs from the record
RECORD_SPEC = {
    "count": Field("int", required=True, minimum=1),
    "sha256": Field("text", required=True),
    "accepted": Field("any", required=True),
    "note": Field("text", required=True),
    "codes": Field("list", required=True),
    "history": Field("list"),
}


class _YamllintDumper(yaml.SafeDumper):
    """Lists indented under their key, as yamllint's default (and the project's YAML) has them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_record(directory: Path, label: str, wards_label: str, codes: list[str], problems: list[Problem]) -> None:
    """Compare wards.csv (its ``codes``, in order) with the recorded official list; report any difference."""
    record_path = directory / RECORD_NAME
    if not record_path.exists():
        message = ("not found: the record of the official list of units; after checking wards.csv, "
                   'create it: `motcua accept-wards --note "<its source>"`')  # fmt: skip
        problems.append(Problem(label, 0, "", MISMATCH_FIELD, message))
        return
    doc = load_yaml(record_path, label, problems)
    if doc is None:
        return
    check = Checker(label, problems, kind="section")
    top = check.mapping(doc, 1, "official list", "")
    if top is None:
        return
    values = check.fields(top, "official list", "", RECORD_SPEC)
    recorded = [str(c) for c in values.get("codes") or []]
    if "sha256" not in values or "codes" not in values:
        return
    if values.get("count") != len(recorded):
        check.report(top.line_of("count"), "official list", "count",
                     f"{values.get('count')} does not match the {len(recorded)} codes recorded")  # fmt: skip
    if values["sha256"] == digest(directory / "wards.csv") and recorded == codes:
        return
    added = [c for c in codes if c not in set(recorded)]
    removed = [c for c in recorded if c not in set(codes)]
    what = "; ".join(
        part
        for part in (
            f"added {', '.join(added[:10])}{' …' if len(added) > 10 else ''}" if added else "",
            f"removed {', '.join(removed[:10])}{' …' if len(removed) > 10 else ''}" if removed else "",
            "the same codes, other names, types or order" if not added and not removed else "",
        )
        if part
    )
    message = (
        f"differs from the official list recorded in {RECORD_NAME} ({len(recorded)} units, accepted "
        f"{values.get('accepted')}: {values.get('note')}): it lists {len(codes)} units ({what}). The official "
        'list changes only by a decision: then run `motcua accept-wards --note "<the decision, its date>"`'
    )
    problems.append(Problem(wards_label, 0, "", MISMATCH_FIELD, message))


def accept(directory: Path, note: str, codes: list[str], today: dt.date | None = None) -> dict[str, object]:
    """Record wards.csv as the official list, with the note; the previous record goes into the history."""
    if not note.strip():
        raise ValueError("--note: say which decision changed the official list")
    path = directory / RECORD_NAME
    previous: dict = {}
    if path.is_file():
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        previous = dict(loaded) if isinstance(loaded, LineDict | dict) else {}
    history = list(previous.pop("history", None) or [])
    if previous:
        history.insert(0, {k: previous[k] for k in ("count", "sha256", "accepted", "note") if k in previous})
    record = {
        "count": len(codes),
        "sha256": digest(directory / "wards.csv"),
        "accepted": str(today or dt.date.today()),
        "note": note.strip(),
        "codes": codes,
        "history": history,
    }
    write(path, record)
    return record


def write(path: Path, record: dict[str, object]) -> None:
    """Write the record as the project keeps YAML (yamllint-clean), atomically."""
    text = (
        "---\n"
        "# The official list of the city's commune-level units (wards.csv), as last accepted.\n"
        "# motcua validate refuses a wards.csv that differs from it; after a decision changes the\n"
        '# list: update wards.csv, then `motcua accept-wards --note "<the decision, its date>"`.\n'
        + yaml.dump(record, Dumper=_YamllintDumper, allow_unicode=True, sort_keys=False, width=120)
    )
    write_atomic(path, text)
