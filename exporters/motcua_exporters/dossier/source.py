"""Dossier records from the dossier system's reporting API: paged, with a token, incremental.

:func:`fetch` reads every page of the records updated since a time. :class:`RecordStore` keeps
what was read (one JSON file, written atomically: on the controller for ``motcua dossiers``, on
the monitoring host for the dossier exporter) and asks only for what changed since its high-water
mark, less an overlap for clocks that disagree; a record read again replaces the older copy. In
strict mode (the command) a page with a record that cannot be mapped refuses the whole fetch with
every problem named (the URL, the page, the item, the field), and the store is left as it was,
never partly updated; the exporter keeps such records and :meth:`RecordStore.checked` leaves
them out.

The format is in :mod:`.api_format`; this module knows only pages and tokens.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..core.files import write_atomic
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
    """The records read so far, by code, and the high-water mark of their update times."""

    def __init__(self, path: Path):
        self.path = path
        try:
            data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except (OSError, ValueError) as exc:
            raise DossierSourceError(f"{path}: cannot read the record store: {exc}", "store") from None
        self.items: dict[str, dict] = data.get("items", {})
        self.high_water: str = data.get("high_water", "")
        # When the source last answered, by its own clock (its answer's time; ours if it gives none): the
        # store is current as of then, even on a day without a single update (a Sunday).
        self.read_at: str = data.get("read_at", "")
        self.changed: list[str] = []  # the codes the last update added or changed

    def since(self) -> str:
        """Where the next fetch starts: the high-water mark less the overlap (empty: from the beginning)."""
        if not self.high_water:
            return ""
        return (fmt.parse_time(self.high_water) - OVERLAP).isoformat(timespec="seconds")

    def update(self, api: Api, strict: bool = True) -> tuple[int, int]:
        """Fetch what changed and merge it: (records read, records new or changed). ``strict``: as :func:`fetch`."""
        fetched = fetch(api, self.since(), strict)
        changed: dict[str, None] = {}
        for item in fetched.items:
            code = str(item[fmt.CODE_KEY])
            old = self.items.get(code)
            # A newer update wins; so does a different record with the same update time (its times
            # have whole seconds: a change within the second of the last read is this read's).
            if (
                old is None
                or fmt.updated_at(old) < fmt.updated_at(item)
                or (fmt.updated_at(old) == fmt.updated_at(item) and old != item)
            ):
                self.items[code] = item
                changed[code] = None
        self.high_water = max([self.high_water, *(fmt.updated_at(i) for i in fetched.items)])
        try:
            answered = fmt.parse_time(fetched.server_time) if fetched.server_time else None
        except ValueError:
            answered = None
        self.read_at = (answered or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
        body = {"high_water": self.high_water, "read_at": self.read_at, "items": self.items}
        write_atomic(self.path, json.dumps(body, ensure_ascii=False), mode=0o600)
        self.changed = list(changed)
        return len(fetched.items), len(changed)

    def check_one(self, code: str, sites: Iterable[str] | None = None) -> tuple[Dossier | None, list[RecordProblem]]:
        """One stored record as a dossier, checked like :meth:`checked` does (None if it has problems)."""
        item = self.items[code]
        dossier, wrong = fmt.map_item(item, f"{self.path} {code}")
        problems = [RecordProblem(str(self.path), 0, code, key, message) for key, message in wrong]
        if dossier is not None:
            problems += check([dossier], str(self.path), sites)
        return (None if problems else dossier), problems

    def checked(self, sites: Iterable[str] | None = None) -> tuple[list[Dossier], list[RecordProblem]]:
        """The stored records that map and pass :func:`check`, and the problems of those that do not."""
        result, problems = [], []
        for line, (code, item) in enumerate(sorted(self.items.items()), 1):
            dossier, wrong = fmt.map_item(item, f"{self.path} {code}", line)
            problems += [RecordProblem(str(self.path), line, code, key, message) for key, message in wrong]
            if dossier is not None:
                result.append(dossier)
        problems += check(result, str(self.path), sites)
        refused = {p.code for p in problems}
        return [d for d in result if d.code not in refused], problems

    def dossiers(self, sites: Iterable[str] | None = None) -> list[Dossier]:
        """The stored records as dossiers, checked like every source's: any problem refuses them all."""
        result, problems = self.checked(sites)
        if problems:
            raise DossierRecordError(problems)
        return result
