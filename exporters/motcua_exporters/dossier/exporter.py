"""Probes every target in the background and serves the latest results at once."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
import zlib
from dataclasses import replace
from pathlib import Path

from prometheus_client import Counter, Gauge

from ..core.exposition import CONTENT_TYPE, Board, Family
from ..core.httpprobe import ProbeResult, ProbeSpec, probe, result_families, result_samples
from ..core.prober import LoopThread
from ..core.runner import self_metrics
from ..core.web import Request, Response
from . import config as config_module
from .api_format import parse_time
from .config import DossierConfig, RecordsSpec, StatisticsAdapter, Target
from .indicators import keep_from
from .records import TZ, RecordProblem
from .running import Running, apply, build, forgetting
from .source import Api, DossierSourceError, RecordStore

log = logging.getLogger("dossier")


def _task(coro, name: str) -> asyncio.Task:
    """A background loop; if it ever ends other than by cancellation, the log says so and why."""
    task = asyncio.create_task(coro, name=name)
    task.add_done_callback(_report_end)
    return task


def _report_end(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped: %r", task.get_name(), task.exception(), exc_info=task.exception())


PROBE_FAMILIES = (
    *result_families("motcua_dossier_probe"),
    Family(
        "motcua_dossier_probe_tls_not_after_timestamp_seconds",
        "gauge",
        "When the TLS certificate the target presented expires (Unix time), also when it failed verification.",
    ),
    Family(
        "motcua_dossier_probe_last_success_timestamp_seconds",
        "gauge",
        "When a probe of the target last succeeded (Unix time); 0 if none has since the exporter started.",
    ),
    Family(
        "motcua_dossier_probe_last_run_timestamp_seconds",
        "gauge",
        "When the last probe of the target finished (Unix time).",
    ),
)
STATS_FAMILIES = (
    Family("motcua_dossier_statistics_up", "gauge", "1 if the last read of the statistics API worked."),
    Family(
        "motcua_dossier_statistics_last_success_timestamp_seconds",
        "gauge",
        "When the statistics API was last read (Unix time).",
    ),
    Family(
        "motcua_dossier_statistics_agencies_dropped", "gauge", "Agencies left out because of statistics.max_agencies."
    ),
    Family("motcua_dossier_agency_info", "gauge", "1 per agency, with its name."),
    Family(
        "motcua_dossier_agency_received_total",
        "counter",
        "Dossiers received by the agency (as counted by the dossier system).",
    ),
    Family("motcua_dossier_agency_resolved_on_time_total", "counter", "Dossiers the agency resolved on time."),
    Family("motcua_dossier_agency_resolved_late_total", "counter", "Dossiers the agency resolved late."),
    Family("motcua_dossier_agency_overdue", "gauge", "Open dossiers of the agency that are past their due date."),
)

RECORDS_FAMILIES = (
    Family(
        "motcua_dossier_records_up",
        "gauge",
        "1 if the last read of the reporting API worked; 0: the dossier figures are those of the last good read.",
    ),
    Family(
        "motcua_dossier_records_last_success_timestamp_seconds",
        "gauge",
        "When the reporting API was last read whole (Unix time); 0 if never since the exporter started.",
    ),
    Family("motcua_dossier_records_last_run_timestamp_seconds", "gauge", "When the last read ended (Unix time)."),
    Family(
        "motcua_dossier_records_newest_update_timestamp_seconds",
        "gauge",
        "The newest update time among the records read (Unix time): it stands still when the API answers with "
        "old data.",
    ),
    Family("motcua_dossier_records_stored", "gauge", "Dossier records in the exporter's store."),
    Family(
        "motcua_dossier_records_invalid",
        "gauge",
        "Stored records left out of the figures (they break the model's rules; the exporter's log names them).",
    ),
    Family("motcua_dossier_records_read_duration_seconds", "gauge", "How long the last read took (every page)."),
)
RECORD_READS = Counter(
    "motcua_dossier_records_reads_total",
    "Reads of the reporting API, by result (ok, or why not: refused, http, unreachable, format, paging, store,"
    " token; error: a fault in the exporter itself, logged).",
    ["result"],
)

PROBES = Counter("motcua_dossier_exporter_probes_total", "Background probes run, by result.", ["result"])
OVERRUNS = Counter(
    "motcua_dossier_exporter_schedule_overruns_total",
    "Probe rounds that started a full interval late (exporter overloaded).",
)
TARGETS = Gauge("motcua_dossier_exporter_targets", "Targets in the running config.")


def target_samples(result: ProbeResult, base: dict[str, str], last_success: float | None) -> dict[str, list]:
    samples = result_samples(result, "motcua_dossier_probe", base)
    if result.tls_not_after is not None:
        samples["motcua_dossier_probe_tls_not_after_timestamp_seconds"] = [(base, result.tls_not_after)]
    if last_success is not None:
        samples["motcua_dossier_probe_last_success_timestamp_seconds"] = [(base, round(last_success, 3))]
        samples["motcua_dossier_probe_last_run_timestamp_seconds"] = [(base, round(result.finished, 3))]
    return samples


class DossierExporter:
    def __init__(self, config: DossierConfig):
        self.config = config
        self.board = Board(PROBE_FAMILIES)
        self.stats = Board(STATS_FAMILIES)
        self.records = Board(RECORDS_FAMILIES)
        self._figures = ""  # the last good read's indicators (text format), kept while the source fails
        self._store: RecordStore | None = None
        # The indicators kept up to date with the store (running.Running), for these sites; the codes refused.
        self._running: Running | None = None
        self._running_sites: tuple[str, ...] = ()
        self._refused: set[str] = set()
        self._pruned_to: dt.datetime | None = None  # the store's horizon at its last pruning
        self._records_lock = threading.Lock()  # one read at a time, across reloads
        self.loop = LoopThread("probes")
        self._last_success: dict[str, float] = {}
        self._tasks: list[asyncio.Task] = []
        self._sem: asyncio.Semaphore | None = None

    @classmethod
    def from_file(cls, path: Path) -> DossierExporter:
        return cls(config_module.load(path))

    # -- lifecycle --------------------------------------------------------
    def start(self) -> None:
        self.loop.start()
        self.loop.submit(self._schedule(self.config)).result(30)

    def stop(self) -> None:
        self.loop.stop()

    def reload(self, path: Path) -> None:
        new = config_module.load(path)  # ConfigError leaves the running config alone
        self.loop.submit(self._schedule(new)).result(30)
        self.config = new

    async def _schedule(self, config: DossierConfig) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        self._sem = asyncio.Semaphore(config.max_concurrency)
        names = [t.name for t in config.targets]
        self.board.keep_only(names)
        self._last_success = {k: v for k, v in self._last_success.items() if k in names}
        for target in config.targets:
            # Spread first probes over the interval, stable per name, so targets do not all fire at once.
            offset = (zlib.crc32(target.name.encode()) % 10_000) / 10_000 * target.interval
            self._tasks.append(_task(self._run(target, offset), f"probe {target.name}"))
        if config.statistics is not None:
            self._tasks.append(_task(self._run_statistics(config), "statistics"))
        else:
            self.stats.keep_only([])
        if config.records is not None:
            self._tasks.append(_task(self._run_records(config.records), "records"))
        else:
            self.records.keep_only([])
            self._figures = ""
        TARGETS.set(len(config.targets))
        log.info("probing %d targets (max %d at once)", len(config.targets), config.max_concurrency)

    # -- background probing ------------------------------------------------
    async def _run(self, target: Target, offset: float) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(offset)
        next_at = loop.time()
        base = {"target": target.name, **dict(target.labels)}
        while True:
            try:
                assert self._sem is not None
                async with self._sem:
                    result = await probe(target.spec)
                if result.success:
                    self._last_success[target.name] = result.finished
                elif result.reason:
                    log.debug("%s: %s (%s)", target.name, result.reason, result.detail)
                PROBES.labels("success" if result.success else "failure").inc()
                self.board.put(target.name, target_samples(result, base, self._last_success.get(target.name, 0.0)))
            except Exception:  # a round that fails inside the exporter is logged; the next one runs on time
                log.exception("probe round of %s failed", target.name)
            next_at += target.interval
            now = loop.time()
            if next_at <= now:
                OVERRUNS.inc()
                next_at = now + target.interval * 0.1
            await asyncio.sleep(next_at - now)

    async def _run_statistics(self, config: DossierConfig) -> None:
        adapter = config.statistics
        assert adapter is not None
        last_ok = 0.0
        while True:
            try:
                last_ok = await self._statistics_round(adapter, last_ok)
            except Exception:  # as a probe round: logged, and the next read runs on time
                log.exception("statistics round failed")
            await asyncio.sleep(config.statistics_interval)

    async def _statistics_round(self, adapter: StatisticsAdapter, last_ok: float) -> float:
        """One read of the statistics API into the board; the new last-success time."""
        result = await probe(adapter.spec)
        rows, problem = [], result.detail
        if result.success:
            try:
                rows = adapter.parse(result.body)
            except ValueError as exc:
                problem = str(exc)
                result.success = False
        if result.success:
            last_ok = result.finished
        else:
            log.warning("statistics API %s: %s", adapter.spec.url, problem or result.reason)
        kept = rows[: adapter.max_agencies]
        samples: dict[str, list] = {
            "motcua_dossier_statistics_up": [({}, 1.0 if result.success else 0.0)],
            "motcua_dossier_statistics_last_success_timestamp_seconds": [({}, round(last_ok, 3))],
            "motcua_dossier_statistics_agencies_dropped": [({}, float(len(rows) - len(kept)))],
            "motcua_dossier_agency_info": [({"agency": a.code, "name": a.name}, 1.0) for a in kept],
            "motcua_dossier_agency_received_total": [({"agency": a.code}, a.received) for a in kept],
            "motcua_dossier_agency_resolved_on_time_total": [({"agency": a.code}, a.resolved_on_time) for a in kept],
            "motcua_dossier_agency_resolved_late_total": [({"agency": a.code}, a.resolved_late) for a in kept],
            "motcua_dossier_agency_overdue": [({"agency": a.code}, a.overdue) for a in kept],
        }
        self.stats.put("statistics", samples)
        return last_ok

    async def _run_records(self, spec: RecordsSpec) -> None:
        """Read what changed every interval. A failed read keeps the last good figures and the counts that
        describe them (never zero dossiers): ``records_up`` 0 and the success time say how old they are."""
        loop = asyncio.get_running_loop()
        last_ok, counts = 0.0, {}
        while True:
            started = time.time()
            try:
                figures, counts = await loop.run_in_executor(None, self._read_records, spec)
            except DossierSourceError as exc:
                RECORD_READS.labels(exc.reason).inc()
                log.warning("reporting API %s: %s", spec.url, exc)
                ok = False
            except Exception:  # a fault in the exporter itself: counted and logged, the figures kept, next read on time
                RECORD_READS.labels("error").inc()
                log.exception("reading the reporting API %s failed inside the exporter", spec.url)
                ok = False
            else:
                RECORD_READS.labels("ok").inc()
                ok, last_ok, self._figures = True, time.time(), figures
            finished = time.time()
            self.records.put("records", {
                **counts,
                "motcua_dossier_records_up": [({}, 1.0 if ok else 0.0)],
                "motcua_dossier_records_last_success_timestamp_seconds": [({}, round(last_ok, 3))],
                "motcua_dossier_records_last_run_timestamp_seconds": [({}, round(finished, 3))],
                "motcua_dossier_records_read_duration_seconds": [({}, round(finished - started, 3))],
            })  # fmt: skip
            await asyncio.sleep(max(0.0, spec.interval - (finished - started)))

    def _read_records(self, spec: RecordsSpec) -> tuple[str, dict[str, list]]:
        """One incremental read into the store, then the indicators of every stored record (in a thread):
        the figures (text format) and the samples that describe the store."""
        with self._records_lock:
            try:
                token = spec.token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise DossierSourceError(f"{spec.token_file}: {exc.strerror}", "token") from None
            api = Api(spec.url, token, spec.ca_file, timeout=spec.timeout, page_size=spec.page_size)
            if self._store is None or self._store.path != spec.store:
                self._store, self._running = RecordStore(spec.store), None
            store = self._store
            store.update(api, strict=False)
            now = dt.datetime.now(TZ)
            try:
                horizon = keep_from(now)
                if horizon != self._pruned_to:
                    # Closed dossiers older than every window (and the report's yesterday) leave the store, and
                    # the running figures, once a day.
                    forget = forgetting(self._running, self._refused) if self._running is not None else None
                    dropped = store.prune(horizon, forget)
                    self._pruned_to = horizon
                    if dropped:
                        log.info("record store: %d closed dossiers older than %s dropped", dropped, horizon.date())
                problems = self._apply(store, spec, now)
                figures = self._running.render(now, spec.sites, top=spec.top)
            except BaseException:
                self._running = None  # the store has this read's records: the next read starts from all of them
                raise
            for problem in problems[:5]:
                log.warning("record left out: %s", problem)
            if len(problems) > 5:
                log.warning("... and %d more problems", len(problems) - 5)
            newest = parse_time(store.high_water).timestamp() if store.high_water else 0.0
            return figures, {
                "motcua_dossier_records_stored": [({}, float(len(store)))],
                "motcua_dossier_records_invalid": [({}, float(len(self._refused)))],
                "motcua_dossier_records_newest_update_timestamp_seconds": [({}, newest)],
            }

    def _apply(self, store: RecordStore, spec: RecordsSpec, now: dt.datetime) -> list[RecordProblem]:
        """Bring the running indicators to the store: every record the first time (or when the sites
        changed, or the clock went back), then only those the last read changed: the old version out
        (as the store held it), the new in. The problems of the records looked at."""
        running = self._running
        if running is None or self._running_sites != spec.sites or (running.clock and now < running.clock):
            # The old figures go first: what is served meanwhile is their text, and a month's are 180 MiB.
            self._running = running = None
            self._running, self._refused, problems = build(store, spec.sites, now, spec.workers)
            self._running_sites = spec.sites
            return problems
        return apply(running, self._refused, store, spec.sites)

    # -- HTTP ---------------------------------------------------------------
    def routes(self):
        return {"/metrics": self.metrics, "/probe": self.probe}

    def metrics(self, _request: Request) -> Response:
        body = self_metrics() + self.board.render() + self.stats.render() + self.records.render() + self._figures
        return Response(200, body, CONTENT_TYPE)

    def probe(self, request: Request) -> Response:
        """``/probe?target=NAME`` (a configured target) or ``?target=URL&module=NAME`` (URL under probe.allow_urls,
        checked like the target NAME). Probes now, from this exporter's vantage point; labels come from Prometheus."""
        wanted = request.query.get("target", "")
        if not wanted:
            return Response(400, "target= is required\n")
        config = self.config
        target = config.target(wanted)
        if target is not None:
            spec = target.spec
        elif any(wanted.startswith(prefix) for prefix in config.probe_allow_urls):
            module_name = request.query.get("module", "")
            module = config.target(module_name) if module_name else None
            if module_name and module is None:
                return Response(400, f"unknown module {module_name!r}: name a configured target\n")
            try:
                # Without module=: status 200, with the config's own TLS trust (tls.ca_file).
                spec = (
                    replace(module.spec, url=wanted)
                    if module
                    else ProbeSpec(wanted, ca_file=config.ca_file, verify=config.verify)
                )
            except ValueError as exc:
                return Response(400, f"{exc}\n")
        else:
            return Response(400, f"target {wanted!r} is neither a configured target nor under probe.allow_urls\n")
        budget = request.scrape_timeout(spec.timeout + 0.5) - 0.5
        spec = replace(spec, timeout=max(0.1, min(spec.timeout, budget)))
        result = self.loop.submit(probe(spec)).result(spec.timeout + 5)
        samples = target_samples(result, {}, None)
        board = Board(PROBE_FAMILIES)
        board.put(wanted, samples)
        return Response(200, board.render(), CONTENT_TYPE)
