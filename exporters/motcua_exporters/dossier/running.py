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
- the dossiers in progress now, as counts per (site, agency): not yet due, overdue (with their
  reasons and steps) and paused, and overdue per procedure. A dossier's place in them changes only
  when the clock passes its reception, its legal limit or its result: those times wait in a heap,
  and a render moves only the dossiers whose time came since the last one, not every one in
  progress.

It does not keep the dossiers themselves (a month of the city is 1.5 million): a changed record's
old version comes from the store (:attr:`source.RecordStore.replaced`), its old parts are taken out
and its new ones put in. :meth:`render` gives the same
text as :func:`metrics.as_metrics` over the same dossiers at the same time
(tests/dossiers/test_running.py checks it on random records).
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import logging
import multiprocessing
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from .indicators import CITY, Figures, open_state, windows
from .metrics import OTHER, render, top_names
from .records import TZ, Dossier, RecordProblem
from .source import RecordStore

log = logging.getLogger("dossier")  # the dossier exporter's log
RECEIVED, FINISHED, STATE = "received", "finished", "state"
Key = tuple[str, "str | None"]  # (site, agency)


def _parts(d: Dossier) -> list[tuple[str, dt.datetime]]:
    parts = [(RECEIVED, d.received_at)]
    if d.closed and d.finished_at is not None:
        parts.append((FINISHED, d.finished_at))
    return parts


def _state(d: Dossier, when: dt.datetime | None) -> tuple[str | None, bool]:
    """Where ``d`` counts among the dossiers in progress at ``when`` (:func:`indicators.open_state`: None if
    it is not in progress), and whether it counts as overdue for its procedure (:meth:`Dossier.overdue`)."""
    if when is None:
        return None, False
    return open_state(d, when), d.overdue(when)


def _may_open(d: Dossier, since: dt.datetime | None) -> bool:
    """Whether ``d`` can be in progress, or overdue for its procedure, at ``since`` or later (else
    :func:`_state` is (None, False) from ``since`` on: a result already in, or withdrawn or refused).
    Most of a month's dossiers are such: they are never judged again, nor kept for it."""
    if d.status in ("withdrawn", "refused"):
        return False
    return d.finished_at is None or since is None or d.finished_at >= since


def _moments(d: Dossier) -> list[dt.datetime]:
    """The times at which :func:`_state` of ``d`` can change."""
    return [t for t in (d.received_at, d.limit, d.finished_at) if t is not None]


class ClockWentBackError(Exception):
    """The clock was set back (a time step): the running figures cannot undo what has passed."""


class Running:
    """The indicators of a set of dossiers that changes one dossier at a time (see the module's text)."""

    def __init__(self) -> None:
        self._count = 0
        self._days: dict[Key, dict[dt.date, Figures]] = {}
        # A heap of what waits for the clock: a part whose time is ahead, a moment a dossier's state changes:
        # (time, order, the put's id, part or STATE, dossier).
        self._pending: list[tuple[dt.datetime, int, int, str, Dossier]] = []
        self._serial = itertools.count()
        self._waiting: dict[str, tuple[int, int]] = {}  # code: the id of its put with something pending, how many
        self._open: dict[Key, Figures] = {}  # the dossiers in progress now (only the open_* counts are used)
        self._procedures: Counter = Counter()  # in progress and overdue now, by procedure
        self._sites: Counter = Counter()
        self._agencies: Counter = Counter()
        self._now: dt.datetime | None = None  # parts before it are in the buckets
        self._earliest: dt.date | None = None  # buckets before it are no window's any more

    @classmethod
    def of(cls, dossiers: Iterable[Dossier], now: dt.datetime) -> Running:
        """The running figures of these dossiers (codes unique), the clock at ``now`` (what has passed
        placed at once)."""
        running = cls()
        running.advance(now)
        for d in dossiers:
            running.put(d)
        return running

    def __len__(self) -> int:
        return self._count

    def __getstate__(self) -> dict[str, object]:
        """For a build's part made in another process (:func:`build`): the serial counter as its next value."""
        state = dict(self.__dict__)
        state["_serial"] = next(self._serial)
        self._serial = itertools.count(state["_serial"])  # type: ignore[arg-type]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._serial = itertools.count(state["_serial"])  # type: ignore[arg-type]

    def absorb(self, other: Running) -> None:
        """Add ``other``'s dossiers (none of them in this one), both at the same clock: a build made in
        parts is their sum. ``other`` is used up."""
        if other._now != self._now or other._earliest != self._earliest:
            raise ValueError("running figures at different clocks cannot be added")
        self._count += other._count
        self._sites.update(other._sites)
        self._agencies.update(other._agencies)
        self._procedures.update(other._procedures)
        for key, days in other._days.items():
            mine = self._days.setdefault(key, {})
            for day, figures in days.items():
                if day in mine:
                    mine[day].merge(figures)
                else:
                    mine[day] = figures
        for key, figures in other._open.items():
            if key in self._open:
                self._open[key].merge(figures)
            else:
                self._open[key] = figures
        # The other's serials (heap order and put ids) after this one's, so they stay unique.
        offset = next(self._serial)
        self._pending.extend((when, serial + offset, put_id + offset, part, d)
                             for when, serial, put_id, part, d in other._pending)  # fmt: skip
        heapq.heapify(self._pending)
        self._waiting.update((code, (put_id + offset, n)) for code, (put_id, n) in other._waiting.items())
        self._serial = itertools.count(offset + next(other._serial))

    @property
    def clock(self) -> dt.datetime | None:
        return self._now

    def replace(self, old: Dossier | None, new: Dossier | None) -> None:
        """A record changed: ``old`` (as it was put; None if it was not) out, ``new`` (None: gone) in."""
        if old is not None:
            self.remove(old)
        if new is not None:
            self.put(new)

    def put(self, d: Dossier) -> None:
        """Add ``d``; a dossier with its code must not be in (:meth:`replace`)."""
        self._count += 1
        self._sites[d.site] += 1
        if d.agency:
            self._agencies[d.agency] += 1
        put_id, waiting = next(self._serial), 0
        for part, when in _parts(d):
            if self._now is not None and when < self._now:
                self._place(d, part, when, 1)
            else:
                heapq.heappush(self._pending, (when, next(self._serial), put_id, part, d))
                waiting += 1
        if _may_open(d, self._now):
            for when in _moments(d):
                if self._now is None or when >= self._now:
                    heapq.heappush(self._pending, (when, next(self._serial), put_id, STATE, d))
                    waiting += 1
            self._count_open(d, _state(d, self._now), 1)
        if waiting:
            self._waiting[d.code] = (put_id, waiting)

    def remove(self, d: Dossier) -> None:
        """Take out ``d``, as it was put (the same fields; it may be another object, mapped again)."""
        self._count -= 1
        for counts, name in ((self._sites, d.site), (self._agencies, d.agency)):
            if name:
                counts[name] -= 1
                if not counts[name]:
                    del counts[name]
        # Every part before the clock has been placed (put or advance placed it); the rest are pending, and
        # are dropped when they come due, as they are no longer of a dossier put. So are its moments.
        self._waiting.pop(d.code, None)
        for part, when in _parts(d):
            if self._now is not None and when < self._now:
                self._place(d, part, when, -1)
        if _may_open(d, self._now):
            self._count_open(d, _state(d, self._now), -1)

    @property
    def in_progress(self) -> int:
        """How many dossiers are in progress at the clock."""
        return sum(f.open_paused + f.open_not_due + f.open_overdue for f in self._open.values())

    def advance(self, now: dt.datetime) -> None:
        """Move the clock to ``now``: the parts whose time has passed go into their buckets, the dossiers
        whose state changed move. The clock never goes back (:class:`ClockWentBackError`: the figures are
        built again from the store)."""
        if self._now is not None and now < self._now:
            raise ClockWentBackError(f"the clock went back from {self._now.isoformat()} to {now.isoformat()}")
        before, self._now = self._now, now
        moved: dict[str, Dossier] = {}
        while self._pending and self._pending[0][0] < now:
            when, _serial, put_id, part, d = heapq.heappop(self._pending)
            waiting = self._waiting.get(d.code)
            if waiting is None or waiting[0] != put_id:
                continue  # of a dossier taken out since
            if part == STATE:
                moved[d.code] = d
            else:
                self._place(d, part, when, 1)
            if waiting[1] > 1:
                self._waiting[d.code] = (put_id, waiting[1] - 1)
            else:
                del self._waiting[d.code]
        for d in moved.values():
            self._count_open(d, _state(d, before), -1)
            self._count_open(d, _state(d, now), 1)

    def _count_open(self, d: Dossier, state: tuple[str | None, bool], sign: int) -> None:
        where, procedure = state
        if procedure:
            self._procedures[d.procedure_code] += sign
            if not self._procedures[d.procedure_code]:
                del self._procedures[d.procedure_code]
        if where is None:
            return
        figures = self._open.get((d.site, d.agency))
        if figures is None:
            figures = self._open[d.site, d.agency] = Figures()
        figures.count_open(d, where, sign)

    def _place(self, d: Dossier, part: str, when: dt.datetime, sign: int) -> None:
        day = when.astimezone(TZ).date()
        if self._earliest is not None and day < self._earliest:
            return  # no window reaches that day any more
        days = self._days.get((d.site, d.agency))
        if days is None:
            days = self._days[d.site, d.agency] = {}
        bucket = days.get(day)
        if bucket is None:  # (not setdefault: it would make a Figures for every part placed)
            bucket = days[day] = Figures()
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
        now_open = {k: f for k, f in self._open.items() if f.open_paused or f.open_not_due or f.open_overdue}
        overdue = Counter(self._procedures)
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


def build(
    store: RecordStore, sites: tuple[str, ...] | None, now: dt.datetime, workers: int = 1
) -> tuple[Running, set[str], list[RecordProblem]]:
    """The running figures of every stored record, read one at a time (never all in memory): the figures,
    the codes refused and their problems. With ``workers`` > 1 and a store of at least PARALLEL_MIN
    records, the store is cut into that many parts by code, each built in a process of its own and the
    parts added up here: the build takes about 1/workers of the time on as many cores, and the process
    that calls it (the exporter, which serves /metrics meanwhile) waits instead of working."""
    if workers > 1 and len(store) >= PARALLEL_MIN:
        parts = store.parts(workers)
        try:
            # spawn, not fork: the exporter has threads (its HTTP server, the probes), whose locks a fork would copy.
            with ProcessPoolExecutor(len(parts), mp_context=multiprocessing.get_context("spawn")) as pool:
                done = list(pool.map(build_part, itertools.repeat(store.path), itertools.repeat(sites),
                                     itertools.repeat(now), parts))  # fmt: skip
        except (BrokenProcessPool, OSError) as exc:  # a process killed (memory), or none could start
            log.warning("building the figures in %d processes failed (%s): building them in this one", len(parts),
                        exc or type(exc).__name__)  # fmt: skip
            return build_part(store, sites, now)
        running, refused, problems = done[0]
        for more_running, more_refused, more_problems in done[1:]:
            running.absorb(more_running)
            refused |= more_refused
            problems += more_problems
        return running, refused, problems
    return build_part(store, sites, now)


PARALLEL_MIN = 100_000  # fewer records build in a few seconds: starting processes would not pay


def build_part(
    store: RecordStore | Path,
    sites: tuple[str, ...] | None,
    now: dt.datetime,
    part: tuple[str, str | None, int] = ("", None, 1),
) -> tuple[Running, set[str], list[RecordProblem]]:
    """:func:`build` of one part of the store (a path: opened here, in a process of the build's)."""
    own = isinstance(store, Path)
    source = RecordStore(store) if isinstance(store, Path) else store
    try:
        running, refused, problems = Running(), set(), []
        running.advance(now)
        for dossier, wrong in source.each_checked(sites, part):
            problems += wrong
            if dossier is not None:
                running.put(dossier)
            elif wrong:
                refused.add(wrong[0].code)
        return running, refused, problems
    finally:
        if own:
            source.close()


def apply(
    running: Running, refused: set[str], store: RecordStore, sites: tuple[str, ...] | None
) -> list[RecordProblem]:
    """The store's last merge into the running figures: each changed record's old version out (as the
    store held it, if it was counted), the new one in. ``refused`` is kept up to date. The problems."""
    problems = []
    known = frozenset(sites) if sites is not None else None
    for code, item in store.changed.items():
        old = store.replaced.get(code)
        if old is not None and code not in refused:
            before, _wrong = store.map_one(code, old, known)
            if before is not None:
                running.remove(before)
        dossier, wrong = store.map_one(code, item, known)
        problems += wrong
        if dossier is None:
            refused.add(code)
        else:
            running.put(dossier)
            refused.discard(code)
    return problems


def forgetting(running: Running, refused: set[str]) -> Callable[[Dossier], None]:
    """What takes a dossier the store prunes (:meth:`source.RecordStore.prune`) out of the running figures
    too: its days are no window's any more, but it still counts towards its site's and agency's dossiers."""

    def forget(d: Dossier) -> None:
        if d.code in refused:
            refused.discard(d.code)
        else:
            running.remove(d)

    return forget
