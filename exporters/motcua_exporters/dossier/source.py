"""Dossier records from the dossier system's reporting API: paged, with a token, incremental.

:func:`fetch` reads every page of the records updated since a time. :class:`RecordStore` keeps
what was read (an SQLite file, one row per dossier: on the controller for ``motcua dossiers``, on
the monitoring host for the dossier exporter) and asks only for what changed since its high-water
mark, less an overlap for clocks that disagree; a record read again replaces the older copy. In
strict mode (the command) a page with a record that cannot be mapped refuses the whole fetch with
every problem named (the URL, the page, the item, the field), and the store is left as it was,
never partly updated; the exporter keeps such records and :meth:`RecordStore.checked` leaves
them out.

The format is in :mod:`.api_format`; this module knows only pages and tokens.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import api_format as fmt
from .records import Dossier, RecordProblem, check

OVERLAP = dt.timedelta(minutes=5)
MAX_PAGES = 10_000


class DossierSourceError(Exception):
    """The reporting API could not be read; the message says why, ``reason`` in a word (a metric's label):
    refused (the token), http (another HTTP error), unreachable, format (not the API's answer), paging, store."""

    def __init__(self, message: str, reason: str = "format"):
        super().__init__(message)
        self.reason = reason


class DossierRecordError(Exception):
    """Records that cannot be mapped or break the rules: every problem, sorted."""

    what = "dossier records from the reporting API"

    def __init__(self, problems: list[RecordProblem]):
        self.problems = sorted(problems)
        count = len(self.problems)
        lines = "\n".join(f"  {p}" for p in self.problems[:50])
        more = f"\n  ... and {count - 50} more" if count > 50 else ""
        super().__init__(f"{self.what} are invalid ({count} problem{'s' if count != 1 else ''}):\n{lines}{more}")


@dataclass(frozen=True)
class Api:
    url: str  # the records endpoint, e.g. https://dvc.example/api/ho-so
    token: str
    ca_file: Path | None = None
    timeout: float = 30.0
    page_size: int = 500

    def __post_init__(self) -> None:
        if urllib.parse.urlsplit(self.url).scheme not in ("http", "https"):
            raise DossierSourceError(f"{self.url}: the reporting API's URL must be http(s)", "config")
        if not self.token:
            raise DossierSourceError(f"{self.url}: no token for the reporting API", "config")

    def _context(self) -> ssl.SSLContext | None:
        if not self.url.startswith("https:"):
            return None
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def page(self, since: str, after: str | None) -> dict:
        query = {fmt.SINCE_PARAM: since, fmt.SIZE_PARAM: str(self.page_size)}
        if after:
            query[fmt.PAGE_PARAM] = after
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        request = urllib.request.Request(f"{self.url}?{urllib.parse.urlencode(query)}", headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context()) as answer:  # noqa: S310
                body = answer.read(64 << 20)
        except urllib.error.HTTPError as exc:
            refused = exc.code in (401, 403)
            why = "the token was refused" if refused else exc.reason
            raise DossierSourceError(f"{self.url}: HTTP {exc.code}: {why}", "refused" if refused else "http") from None
        except (urllib.error.URLError, OSError) as exc:
            raise DossierSourceError(
                f"{self.url}: not reachable: {getattr(exc, 'reason', exc)}", "unreachable"
            ) from None
        try:
            data = json.loads(body)
        except ValueError:
            raise DossierSourceError(f"{self.url}: the answer is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get(fmt.ITEMS_KEY), list):
            raise DossierSourceError(f"{self.url}: the answer has no {fmt.ITEMS_KEY!r} list (not the reporting API?)")
        return data


@dataclass(frozen=True)
class Fetched:
    items: list[dict]  # the raw items, in the API's order
    dossiers: list[Dossier]
    pages: int
    server_time: str


def fetch(api: Api, since: str = "", strict: bool = True) -> Fetched:
    """Every record updated at or after ``since`` (ISO 8601; empty: all), every page.

    ``strict`` (``motcua dossiers``): a record that does not map refuses the whole fetch. Otherwise (the
    exporter, which must keep counting when one record is wrong) every item with a code and an update
    time is kept, and :meth:`RecordStore.checked` leaves out, and names, the ones that do not map."""
    items: list[dict] = []
    dossiers: list[Dossier] = []
    problems: list[RecordProblem] = []
    after: str | None = None
    server_time = ""
    tokens: set[str] = set()
    for number in range(1, MAX_PAGES + 1):
        data = api.page(since, after)
        server_time = str(data.get(fmt.TIME_KEY) or server_time)
        for index, item in enumerate(data[fmt.ITEMS_KEY], 1):
            where = f"{api.url} page {number} item {index}"
            dossier, wrong = fmt.map_item(item, where)
            code = str(item.get(fmt.CODE_KEY) or f"item {index}") if isinstance(item, dict) else f"item {index}"
            problems += [RecordProblem(f"{api.url} page {number}", index, code, key, message)
                         for key, message in wrong]  # fmt: skip
            if dossier is not None:
                items.append(item)
                dossiers.append(dossier)
            elif not strict and isinstance(item, dict) and item.get(fmt.CODE_KEY) and fmt.updated_at(item):
                items.append(item)
        after = data.get(fmt.NEXT_KEY)
        if not after:
            break
        if str(after) in tokens:  # the same page again: it would never end
            raise DossierSourceError(
                f"{api.url}: page {number} gives the next-page token of an earlier page again: the API's paging is"
                " broken (nothing read is kept)",
                "paging",
            )
        tokens.add(str(after))
    else:
        raise DossierSourceError(f"{api.url}: more than {MAX_PAGES} pages: is the page token ignored?", "paging")
    if problems and strict:
        raise DossierRecordError(problems)
    return Fetched(items, dossiers, number, server_time)


class RecordStore:
    """The records read so far, by code, and the high-water mark of their update times, in SQLite.

    One row per dossier code (the item as the API gave it, and its update time), so a read of five
    minutes writes a few hundred rows, not the whole store, and readers (the daily report, a second
    process) see the last committed read. The file is created by the first read that succeeds:
    a failed read leaves no file, or the file as it was. A store of the old format (one JSON
    document) is converted in place the first time it is opened."""

    def __init__(self, path: Path):
        self.path = path
        self._db: sqlite3.Connection | None = None
        self.high_water = ""
        # When the source last answered, by its own clock (its answer's time; ours if it gives none): the
        # store is current as of then, even on a day without a single update (a Sunday).
        self.read_at = ""
        self.changed: dict[str, dict] = {}  # the records the last update added or changed, by code
        self.replaced: dict[str, dict] = {}  # of those, the ones it held before, as they were
        if path.exists():
            try:
                with path.open("rb") as head:
                    magic = head.read(len(SQLITE_MAGIC))
                if magic != SQLITE_MAGIC:
                    self._convert()
                self._open()
                meta = dict(self._db.execute("SELECT key, value FROM meta"))  # type: ignore[union-attr]
            except (OSError, ValueError, sqlite3.Error) as exc:
                self.close()
                raise DossierSourceError(f"{path}: cannot read the record store: {exc}", "store") from None
            self.high_water, self.read_at = meta.get("high_water", ""), meta.get("read_at", "")

    def _open(self) -> None:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            if created:
                self.path.chmod(0o600)
                self._db.executescript(SCHEMA)

    def _convert(self) -> None:
        """The old store (a JSON document) into SQLite at the same path, atomically."""
        data = json.loads(self.path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("items", {}), dict):
            raise ValueError("neither SQLite nor a JSON record store")
        partial = self.path.with_name(f".{self.path.name}.converting")
        partial.unlink(missing_ok=True)
        db = sqlite3.connect(partial)
        try:
            db.executescript(SCHEMA)
            db.executemany(
                "INSERT OR REPLACE INTO records VALUES (?, ?, ?)",
                ((str(code), fmt.updated_at(item), json.dumps(item, ensure_ascii=False))
                 for code, item in data.get("items", {}).items()),
            )  # fmt: skip
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           [(k, str(data.get(k) or "")) for k in ("high_water", "read_at")])  # fmt: skip
            db.commit()
        finally:
            db.close()
        partial.chmod(0o600)
        partial.replace(self.path)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __len__(self) -> int:
        if self._db is None:
            return 0
        return self._db.execute("SELECT count(*) FROM records").fetchone()[0]

    def item(self, code: str) -> dict | None:
        if self._db is None:
            return None
        row = self._db.execute("SELECT item FROM records WHERE code = ?", (code,)).fetchone()
        return json.loads(row[0]) if row else None

    def items(self, after: str = "", upto: str | None = None) -> Iterator[tuple[str, dict]]:
        """Every stored record, by code in order, read a batch at a time (never all in memory); with
        ``after`` and ``upto``, those whose code is in (after, upto] only (a part: :meth:`parts`)."""
        if self._db is None:
            return
        if upto is None:
            rows = self._db.execute("SELECT code, item FROM records WHERE code > ? ORDER BY code", (after,))
        else:
            rows = self._db.execute(
                "SELECT code, item FROM records WHERE code > ? AND code <= ? ORDER BY code", (after, upto)
            )
        for code, text in rows:
            yield code, json.loads(text)

    def parts(self, count: int) -> list[tuple[str, str | None, int]]:
        """The store cut into ``count`` parts of about as many records, by code: (after, upto, the line of
        the part's first record in a read of the whole store); the last part's ``upto`` is None."""
        total = len(self)
        if self._db is None or count < 2 or total < count:
            return [("", None, 1)]
        cuts = [
            self._db.execute(
                "SELECT code FROM records ORDER BY code LIMIT 1 OFFSET ?", (total * i // count - 1,)
            ).fetchone()[0]
            for i in range(1, count)
        ]
        bounds = ["", *cuts]
        return [(bounds[i], cuts[i] if i < len(cuts) else None, total * i // count + 1) for i in range(count)]

    def since(self) -> str:
        """Where the next fetch starts: the high-water mark less the overlap (empty: from the beginning)."""
        if not self.high_water:
            return ""
        return (fmt.parse_time(self.high_water) - OVERLAP).isoformat(timespec="seconds")

    def update(self, api: Api, strict: bool = True) -> tuple[int, int]:
        """Fetch what changed and merge it: (records read, records new or changed). ``strict``: as :func:`fetch`.
        Nothing is written unless the whole fetch succeeded; the merge is one transaction."""
        return self.merge(fetch(api, self.since(), strict))

    def merge(self, fetched: Fetched) -> tuple[int, int]:
        """Merge a fetch's records (:meth:`update`'s second half): (records read, records new or changed)."""
        latest: dict[str, dict] = {}
        for item in fetched.items:  # the same code twice in one read (it changed while we paged): the newer
            code = str(item[fmt.CODE_KEY])
            if code not in latest or fmt.updated_at(latest[code]) <= fmt.updated_at(item):
                latest[code] = item
        try:
            self._open()
            db = self._db
            assert db is not None
            changed: dict[str, dict] = {}
            replaced: dict[str, dict] = {}
            codes = list(latest)
            for start in range(0, len(codes), 500):
                batch = codes[start : start + 500]
                marks = ",".join("?" * len(batch))
                held = dict(db.execute(f"SELECT code, item FROM records WHERE code IN ({marks})", batch))  # noqa: S608
                for code in batch:
                    item, old = latest[code], json.loads(held[code]) if code in held else None
                    # A newer update wins; so does a different record with the same update time (its times
                    # have whole seconds: a change within the second of the last read is this read's).
                    if (
                        old is None
                        or fmt.updated_at(old) < fmt.updated_at(item)
                        or (fmt.updated_at(old) == fmt.updated_at(item) and old != item)
                    ):
                        changed[code] = item
                        if old is not None:
                            replaced[code] = old
            high_water = max([self.high_water, *(fmt.updated_at(i) for i in fetched.items)])
            try:
                answered = fmt.parse_time(fetched.server_time) if fetched.server_time else None
            except ValueError:
                answered = None
            read_at = (answered or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
            with _transaction(db):
                db.executemany(
                    "INSERT OR REPLACE INTO records VALUES (?, ?, ?)",
                    ((code, fmt.updated_at(item), json.dumps(item, ensure_ascii=False))
                     for code, item in changed.items()),
                )  # fmt: skip
                db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                               [("high_water", high_water), ("read_at", read_at)])  # fmt: skip
        except (OSError, sqlite3.Error) as exc:
            raise DossierSourceError(f"{self.path}: cannot write the record store: {exc}", "store") from None
        self.high_water, self.read_at = high_water, read_at
        self.changed, self.replaced = changed, replaced
        return len(fetched.items), len(changed)

    def prune(self, before: dt.datetime, dropped: Callable[[Dossier], None] | None = None) -> int:
        """Drop the records of dossiers closed with everything before ``before`` (received, result and
        hand-over): no window the figures or the report look at reaches them. ``dropped`` is given each
        one, as a dossier, before it goes (never all at once: a month's pruning is a million). Returns
        how many went. A record that changes again later is read again, as a new one."""
        if self._db is None:
            return 0
        # Update times are ISO 8601 text as the source wrote them (offsets may differ): a day's margin makes the
        # text comparison safe, and the dossier's own times decide. A batch at a time, each deleted in its own
        # transaction before its dossiers are handed to ``dropped``: what was handed over is gone.
        margin = (before - dt.timedelta(days=1)).isoformat()
        where, after, count = str(self.path), "", 0
        while True:
            rows = self._db.execute(
                "SELECT code, item FROM records WHERE updated < ? AND code > ? ORDER BY code LIMIT 10000",
                (margin, after),
            ).fetchall()
            if not rows:
                return count
            after = rows[-1][0]
            old = []
            for _code, text in rows:
                dossier, _wrong = fmt.map_item(json.loads(text), where)
                if (
                    dossier is not None
                    and dossier.closed
                    and all(
                        t is None or t < before for t in (dossier.received_at, dossier.finished_at, dossier.returned_at)
                    )
                ):
                    old.append(dossier)
            try:
                with _transaction(self._db):
                    self._db.executemany("DELETE FROM records WHERE code = ?", [(d.code,) for d in old])
            except sqlite3.Error as exc:
                raise DossierSourceError(f"{self.path}: cannot prune the record store: {exc}", "store") from None
            count += len(old)
            for d in old if dropped is not None else ():
                dropped(d)

    def map_one(
        self, code: str, item: dict, sites: Iterable[str] | None = None, line: int = 0
    ) -> tuple[Dossier | None, list[RecordProblem]]:
        """A record as a dossier, checked like :meth:`checked` does (None if it has problems). ``line``: its
        place in a read of the whole store (:meth:`each_checked`), 0 for one record."""
        where = str(self.path)  # one string for every dossier (a problem names the code beside it)
        dossier, wrong = fmt.map_item(item, where, line)
        problems = [RecordProblem(where, line, code, key, message) for key, message in wrong]
        if dossier is not None:
            problems += check([dossier], where, sites)
        return (None if problems else dossier), problems

    def each_checked(
        self, sites: Iterable[str] | None = None, part: tuple[str, str | None, int] = ("", None, 1)
    ) -> Iterator[tuple[Dossier | None, list[RecordProblem]]]:
        """Every stored record (or those of one :meth:`parts` part), one at a time, as :meth:`map_one`
        gives it (codes are unique in the store)."""
        known = frozenset(sites) if sites is not None else None  # made once, not per record
        after, upto, first_line = part
        for line, (code, item) in enumerate(self.items(after, upto), first_line):
            yield self.map_one(code, item, known, line)

    def checked(self, sites: Iterable[str] | None = None) -> tuple[list[Dossier], list[RecordProblem]]:
        """The stored records that map and pass :func:`check`, and the problems of those that do not."""
        result, problems = [], []
        for dossier, wrong in self.each_checked(sites):
            problems += wrong
            if dossier is not None:
                result.append(dossier)
        return result, problems

    def dossiers(self, sites: Iterable[str] | None = None) -> list[Dossier]:
        """The stored records as dossiers, checked like every source's: any problem refuses them all."""
        result, problems = self.checked(sites)
        if problems:
            raise DossierRecordError(problems)
        return result


SQLITE_MAGIC = b"SQLite format 3\x00"
SCHEMA = """
CREATE TABLE IF NOT EXISTS records (code TEXT PRIMARY KEY, updated TEXT NOT NULL, item TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_updated ON records (updated);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
