"""The dossier indicators kept up to date record by record, for the exporter's refresh at city scale.

:func:`metrics.as_metrics` computes the figures from every dossier each time: about 55 µs a record,
3.3 s for one day of the city's records (bench/dossier_records.py), and every refresh again.
:class:`Running` keeps instead:

- each dossier's received part and finished part (:meth:`Figures.add_received`,
  :meth:`Figures.add_finished`), once its time has passed, in a bucket per (site, agency, day): a
  window's figures (today, 7 days, the month) are the sum of its days' buckets, and no record is
  read again for them;
- a part whose time is still ahead of the clock (a source whose clock runs fast) pending until it
  has passed;
- the dossiers that may be in progress (not withdrawn or refused; no result, or one still ahead):
  judged again at every render, as the clock makes them overdue.

A changed record takes its old parts out and puts its new ones in. :meth:`render` gives the same
text as :func:`metrics.as_metrics` over the same dossiers at the same time
(tests/exporters/test_dossier_running.py checks it on random records).
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
from collections import Counter
from collections.abc import Iterable

from .indicators import CITY, Figures, open_at, windows
from .metrics import OTHER, render, top_names
from .records import TZ, Dossier

RECEIVED, FINISHED = "received", "finished"
Key = tuple[str, "str | None"]  # (site, agency)


def _parts(d: Dossier) -> list[tuple[str, dt.datetime]]:
    parts = [(RECEIVED, d.received_at)]
    if d.closed and d.finished_at is not None:
        parts.append((FINISHED, d.finished_at))
    return parts


def _may_open(d: Dossier, since: dt.datetime | None) -> bool:
    """Whether ``d`` can be in progress at ``since`` or later (:func:`indicators.open_at`)."""
    if d.status in ("withdrawn", "refused"):
        return False
    return d.finished_at is None or since is None or d.finished_at >= since


class Running:
    """The indicators of a set of dossiers that changes one dossier at a time (see the module's text)."""

    def __init__(self) -> None:
        self._dossiers: dict[str, Dossier] = {}
        self._days: dict[Key, dict[dt.date, Figures]] = {}
        self._pending: list[tuple[dt.datetime, int, str, Dossier]] = []  # a heap: parts whose time is ahead
        self._serial = itertools.count()
        self._open: dict[str, Dossier] = {}
        self._sites: Counter = Counter()
        self._agencies: Counter = Counter()
        self._now: dt.datetime | None = None  # parts before it are in the buckets
        self._earliest: dt.date | None = None  # buckets before it are no window's any more

    @classmethod
    def of(cls, dossiers: Iterable[Dossier], now: dt.datetime) -> Running:
        """The running figures of these dossiers, the clock at ``now`` (what has passed placed at once)."""
        running = cls()
        running.advance(now)
        for d in dossiers:
            running.put(d)
        return running

    def __len__(self) -> int:
        return len(self._dossiers)

    def put(self, d: Dossier) -> None:
        """Add ``d``, or put it in place of the dossier with its code."""
        self.remove(d.code)
        self._dossiers[d.code] = d
        self._sites[d.site] += 1
        if d.agency:
            self._agencies[d.agency] += 1
        for part, when in _parts(d):
            if self._now is not None and when < self._now:
                self._place(d, part, when, 1)
            else:
                heapq.heappush(self._pending, (when, next(self._serial), part, d))
        if _may_open(d, self._now):
            self._open[d.code] = d

    def remove(self, code: str) -> None:
        """Take out the dossier with this code, if there is one."""
        d = self._dossiers.pop(code, None)
        if d is None:
            return
        for counts, name in ((self._sites, d.site), (self._agencies, d.agency)):
            if name:
                counts[name] -= 1
                if not counts[name]:
                    del counts[name]
        for part, when in _parts(d):
            if self._now is not None and when < self._now:
                self._place(d, part, when, -1)
        self._open.pop(code, None)  # its pending parts are dropped when they come due (no longer its dossier)

    def advance(self, now: dt.datetime) -> None:
        """Move the clock to ``now``: the parts whose time has passed go into their buckets. A clock that went
        back (a time step) places every dossier again."""
        if self._now is not None and now < self._now:
            dossiers = list(self._dossiers.values())
            self.__init__()
            self._now = now
            for d in dossiers:
                self.put(d)
            return
        self._now = now
        while self._pending and self._pending[0][0] < now:
            when, _serial, part, d = heapq.heappop(self._pending)
            if self._dossiers.get(d.code) is d:
                self._place(d, part, when, 1)

    def _place(self, d: Dossier, part: str, when: dt.datetime, sign: int) -> None:
        day = when.astimezone(TZ).date()
        if self._earliest is not None and day < self._earliest:
            return  # no window reaches that day any more
        bucket = self._days.setdefault((d.site, d.agency), {}).setdefault(day, Figures())
        if part == RECEIVED:
            bucket.add_received(d, sign)
        else:
            bucket.add_finished(d, sign)

    def render(self, now: dt.datetime, sites: Iterable[str], top: int = 20) -> str:
        """The metrics text at ``now`` (not before the last render's: an earlier time places everything again)."""
        self.advance(now)
        spans = windows(now)
        first = {w.name: w.start.date() for w in spans}
        self._earliest = min(first.values())
        for days in self._days.values():
            for day in [day for day in days if day < self._earliest]:
                del days[day]
        busiest = top_names(self._agencies, top)

        def fresh() -> dict[str, Figures]:
            return {w.name: Figures() for w in spans}

        per_site: dict[str, dict[str, Figures]] = {CITY: fresh()}
        per_agency: dict[str, dict[str, Figures]] = {}
        for site in self._sites:
            per_site.setdefault(site, fresh())
        for agency in self._agencies:
            per_agency.setdefault(agency if agency in busiest else OTHER, fresh())
        # The dossiers in progress now, per (site, agency): the same for every window (each ends now).
        now_open: dict[Key, Figures] = {}
        overdue: Counter = Counter()
        for code, d in list(self._open.items()):
            if open_at(d, now):
                now_open.setdefault((d.site, d.agency), Figures()).add_open(d, now)
            elif d.finished_at is not None and d.finished_at < now:
                del self._open[code]  # its result has come: never in progress again
            if d.overdue(now):
                overdue[d.procedure_code] += 1
        for key in self._days.keys() | now_open.keys():
            site, agency = key
            if site not in self._sites:
                continue  # every dossier of it was taken out: its buckets hold zeros
            spans_of_key = fresh()
            for day, figures in self._days.get(key, {}).items():
                for name, start in first.items():
                    if day >= start:
                        spans_of_key[name].merge(figures)
            if key in now_open:
                for figures in spans_of_key.values():
                    figures.merge(now_open[key])
            targets = [per_site[CITY], per_site[site]]
            if agency in self._agencies:
                targets.append(per_agency[agency if agency in busiest else OTHER])
            for target in targets:
                for name, figures in spans_of_key.items():
                    target[name].merge(figures)
        return render(per_site, per_agency, overdue, now, sites, top)
