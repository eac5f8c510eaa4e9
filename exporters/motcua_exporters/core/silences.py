"""An Alertmanager silence as motcua writes it: ``motcua silence``, the relocation tool and the duty board make
their silences here, so a silence from any of them matches and reads the same."""

from __future__ import annotations

import datetime as dt
import re

MAX_WINDOW = dt.timedelta(days=14)  # the launch window; longer work is a change, not a silence


def matcher(label: str, values: list[str]) -> list[dict[str, object]]:
    """Exactly these values of ``label`` (one exact matcher, or an anchored regex of the escaped values)."""
    values = sorted(set(values))
    if len(values) == 1:
        return [{"name": label, "value": values[0], "isRegex": False, "isEqual": True}]
    return [{"name": label, "value": "|".join(re.escape(v) for v in values), "isRegex": True, "isEqual": True}]


def silence_body(match: list[dict], start: dt.datetime, end: dt.datetime, author: str, comment: str) -> dict:
    """The body of ``POST /api/v2/silences``; who and why are required."""
    if not author.strip():
        raise ValueError("author: who sets the silence is required")
    if not comment.strip():
        raise ValueError("comment: why (the work, the ticket) is required")
    return {
        "matchers": match,
        "startsAt": start.astimezone(dt.UTC).isoformat(),
        "endsAt": end.astimezone(dt.UTC).isoformat(),
        "createdBy": author.strip(),
        "comment": comment.strip(),
    }
