"""Validation problems: every one names the file, the line, the entry and the field."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input file (the registry, a roster, a schedule, a ledger).

    ``file`` is the path as given to the loader, ``line`` is 1-based (0 when
    the problem is about a whole file), ``site`` is the site code or a
    description of the section (``network``, ``teams``), ``field`` is a
    dotted path inside that entry.
    """

    file: str
    line: int
    site: str
    field: str
    message: str
    kind: str = "site"  # what ``site`` names: a site, or a "team" / "section"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        parts = [where]
        if self.site:
            parts.append(f"{self.kind} {self.site}")
        if self.field:
            parts.append(f"field {self.field}")
        return ": ".join(parts) + f": {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "site": self.site,
            "field": self.field,
            "message": self.message,
            "kind": self.kind,
        }


class InputError(Exception):
    """An input file is invalid; carries every problem found, so one run reports them all."""

    what = "input"

    def __init__(self, problems: list[Problem], what: str | None = None):
        what = what or self.what
        self.problems = sorted(problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{what} is invalid ({count} {noun}):\n{lines}")
