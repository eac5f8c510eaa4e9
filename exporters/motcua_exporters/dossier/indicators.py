"""Processing indicators over dossier records: per site, per agency and city-wide, over a window.

What the city asks the centre to follow daily (received, on-time and overdue rates, why late,
which step) and the counts Decision 766/QĐ-TTg's indicators are built from. Each figure is
defined once here; a rate whose denominator is zero is None ("no dossier to judge"), never 0 %.

- ``received``: dossiers received in the window;
- ``finished_on_time`` / ``finished_late``: dossiers whose result was ready in the window, by
  their limit (withdrawn and refused dossiers, and procedures without a limit, are not judged);
- ``open_not_due`` / ``open_overdue``: dossiers in progress at the window's end, by their limit
  (:func:`records.legal_limit`: a limit on a day off ends with the next working day);
  ``open_paused``: those awaiting the applicant's further documents (their clock stopped);
- ``on_time_rate``: on time / (on time + late) of those finished in the window;
- ``online_share``, ``paid_online_share``, ``digitised_intake_share``: of those received (the
  payment share only over dossiers whose payment is recorded); ``digitised_result_share``: of
  those finished; ``satisfaction_rate``: (very) satisfied / rated, of those finished;
- ``late_by_reason``, ``late_by_step``: the late and the overdue dossiers by their recorded
  reason and step ("chưa ghi / not recorded" where the system has none).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .records import TZ, Dossier

NOT_RECORDED = "chưa ghi / not recorded"


@dataclass(frozen=True)
class Window:
    name: str  # today | 7d | month
    start: dt.datetime
    end: dt.datetime

    def holds(self, when: dt.datetime | None) -> bool:
        return when is not None and self.start <= when < self.end


def windows(now: dt.datetime) -> list[Window]:
    """Today, the last 7 days (today and the 6 before) and the month so far, in Vietnam's time."""
    local = now.astimezone(TZ)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return [
        Window("today", midnight, local),
        Window("7d", midnight - dt.timedelta(days=6), local),
        Window("month", midnight.replace(day=1), local),
    ]


def keep_from(now: dt.datetime) -> dt.datetime:
    """The earliest time any figure at ``now`` looks at: the first window's start, less a day for the daily
    report's "yesterday" (and a margin). A closed dossier with every time before it counts nowhere."""
    return min(w.start for w in windows(now)) - dt.timedelta(days=1)


def open_at(d: Dossier, when: dt.datetime) -> bool:
    """In progress at ``when``: received by then, without a result by then, not withdrawn or refused."""
    return (
        d.status not in ("withdrawn", "refused")
        and d.received_at < when
        and (d.finished_at is None or d.finished_at >= when)
    )


def overdue_at(d: Dossier, when: dt.datetime) -> bool:
    """Overdue at ``when``: in progress then (:func:`open_at`), not paused, its limit passed. Judged on the
    times, so a dossier finished since still counts for a window or a cut-off that ended before."""
    return d.status != "paused" and d.limit is not None and when > d.limit and open_at(d, when)


def open_state(d: Dossier, when: dt.datetime) -> str | None:
    """Where ``d`` counts among the dossiers in progress at ``when``: the :class:`Figures` field
    (``open_paused``, ``open_overdue`` or ``open_not_due``), or None if it is not in progress then."""
    if not open_at(d, when):
        return None
    if d.status == "paused":
        return "open_paused"
    # In progress and not paused: overdue_at's other conditions hold, only the limit is left to judge.
    return "open_overdue" if d.limit is not None and when > d.limit else "open_not_due"


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class Figures:
    received: int = 0
    finished_on_time: int = 0
    finished_late: int = 0
    finished_unjudged: int = 0
    open_not_due: int = 0
    open_overdue: int = 0
    open_paused: int = 0
    online: int = 0
    payment_recorded: int = 0
    paid_online: int = 0
    digitised_intake: int = 0
    finished: int = 0
    digitised_result: int = 0
    rated: int = 0
    satisfied: int = 0
    late_by_reason: Counter = field(default_factory=Counter)
    late_by_step: Counter = field(default_factory=Counter)

    @property
    def on_time_rate(self) -> float | None:
        return _rate(self.finished_on_time, self.finished_on_time + self.finished_late)

    @property
    def online_share(self) -> float | None:
        return _rate(self.online, self.received)

    @property
    def paid_online_share(self) -> float | None:
        return _rate(self.paid_online, self.payment_recorded)

    @property
    def digitised_intake_share(self) -> float | None:
        return _rate(self.digitised_intake, self.received)

    @property
    def digitised_result_share(self) -> float | None:
        return _rate(self.digitised_result, self.finished)

    @property
    def satisfaction_rate(self) -> float | None:
        return _rate(self.satisfied, self.rated)

    def add(self, d: Dossier, window: Window) -> None:
        if window.holds(d.received_at):
            self.add_received(d)
        if d.closed and window.holds(d.finished_at):
            self.add_finished(d)
        self.count_open(d, open_state(d, window.end))

    # The three parts of a dossier's figures: the first two are fixed once their time has passed
    # (running.Running keeps them per day), the third changes with the clock.
    # ``sign`` -1 takes a dossier's part out again (running.Running, when its record changes).
    def add_received(self, d: Dossier, sign: int = 1) -> None:
        self.received += sign
        self.online += sign * (d.channel == "online")
        if d.paid_online is not None:
            self.payment_recorded += sign
            self.paid_online += sign * d.paid_online
        self.digitised_intake += sign * bool(d.digitised_at_intake)

    def add_finished(self, d: Dossier, sign: int = 1) -> None:
        self.finished += sign
        self.digitised_result += sign * bool(d.digitised_result)
        verdict = d.on_time()
        if verdict is None:
            self.finished_unjudged += sign
        elif verdict:
            self.finished_on_time += sign
        else:
            self.finished_late += sign
            self.late(d, sign)
        if d.rating is not None:
            self.rated += sign
            self.satisfied += sign * (d.rating in ("very_satisfied", "satisfied"))

    def count_open(self, d: Dossier, where: str | None, sign: int = 1) -> None:
        """``d`` counted (``sign`` 1) or taken out (-1) in the field ``where`` (:func:`open_state`; None:
        nowhere), with its reason and step when it is overdue."""
        if where is None:
            return
        setattr(self, where, getattr(self, where) + sign)
        if where == "open_overdue":
            self.late(d, sign)

    def merge(self, other: Figures) -> None:
        """Add ``other``'s counts."""
        for name, value in other.__dict__.items():
            if isinstance(value, int):
                setattr(self, name, getattr(self, name) + value)
        self.late_by_reason.update(other.late_by_reason)
        self.late_by_step.update(other.late_by_step)

    def late(self, d: Dossier, sign: int = 1) -> None:
        for counts, key in ((self.late_by_reason, d.overdue_reason or NOT_RECORDED),
                            (self.late_by_step, d.late_step or NOT_RECORDED)):  # fmt: skip
            counts[key] += sign
            if not counts[key]:
                del counts[key]  # taken out again: a reason counted zero times is no reason

    def as_dict(self) -> dict[str, object]:
        counts = {k: v for k, v in self.__dict__.items() if isinstance(v, int)}
        rates = {name: getattr(self, name) for name in RATES}
        return {**counts, **rates, "late_by_reason": dict(self.late_by_reason.most_common()),
                "late_by_step": dict(self.late_by_step.most_common())}  # fmt: skip


RATES = ("on_time_rate", "online_share", "paid_online_share", "digitised_intake_share", "digitised_result_share",
         "satisfaction_rate")  # fmt: skip
CITY = "city"


def summarise(
    dossiers: Iterable[Dossier], now: dt.datetime, key: Callable[[Dossier], str | None] = lambda d: d.site
) -> dict[str, dict[str, Figures]]:
    """Figures per ``key`` (a site, an agency; dossiers whose key is None are left out) and city-wide
    (``"city"``), per window: ``{scope: {window name: Figures}}``."""
    spans = windows(now)
    result: dict[str, dict[str, Figures]] = {CITY: {w.name: Figures() for w in spans}}
    for d in dossiers:
        scope = key(d)
        targets = [result[CITY]]
        if scope is not None:
            targets.append(result.setdefault(scope, {w.name: Figures() for w in spans}))
        for window in spans:
            for target in targets:
                target[window.name].add(d, window)
    return result


def by_agency(d: Dossier) -> str | None:
    return d.agency
