"""Vietnam's time, and the checks of a time window that silences and the relocation schedule share."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def local(when: dt.datetime) -> dt.datetime:
    """A time without an offset is Vietnam's time (UTC+7)."""
    return when if when.tzinfo else when.replace(tzinfo=TZ)


def window_problem(start: dt.datetime, end: dt.datetime, now: dt.datetime, longest: dt.timedelta) -> str | None:
    """What is wrong with a window of planned work, or None: reversed, over, or too long."""
    if end <= start:
        return f"the end {end.isoformat()} is not after the start {start.isoformat()}"
    if end <= now:
        return f"the window ended {end.isoformat()}: it is in the past"
    if end - start > longest:
        return (f"the window lasts {end - start}: more than {longest.days} days; work longer than "
                f"{longest.days} days is a change, not a silence")  # fmt: skip
    return None
