"""Probes every target in the background and serves the latest results at once."""

from __future__ import annotations

import asyncio
import logging
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
from .config import DossierConfig, Target

log = logging.getLogger("dossier")

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
            self._tasks.append(asyncio.create_task(self._run(target, offset), name=f"probe {target.name}"))
        if config.statistics is not None:
            self._tasks.append(asyncio.create_task(self._run_statistics(config), name="statistics"))
        else:
            self.stats.keep_only([])
        TARGETS.set(len(config.targets))
        log.info("probing %d targets (max %d at once)", len(config.targets), config.max_concurrency)

    # -- background probing ------------------------------------------------
    async def _run(self, target: Target, offset: float) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(offset)
        next_at = loop.time()
        base = {"target": target.name, **dict(target.labels)}
        while True:
            assert self._sem is not None
            async with self._sem:
                result = await probe(target.spec)
            if result.success:
                self._last_success[target.name] = result.finished
            elif result.reason:
                log.debug("%s: %s (%s)", target.name, result.reason, result.detail)
            PROBES.labels("success" if result.success else "failure").inc()
            self.board.put(target.name, target_samples(result, base, self._last_success.get(target.name, 0.0)))
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
                "motcua_dossier_agency_resolved_on_time_total": [
                    ({"agency": a.code}, a.resolved_on_time) for a in kept
                ],
                "motcua_dossier_agency_resolved_late_total": [({"agency": a.code}, a.resolved_late) for a in kept],
                "motcua_dossier_agency_overdue": [({"agency": a.code}, a.overdue) for a in kept],
            }
            self.stats.put("statistics", samples)
            await asyncio.sleep(config.statistics_interval)

    # -- HTTP ---------------------------------------------------------------
    def routes(self):
        return {"/metrics": self.metrics, "/probe": self.probe}

    def metrics(self, _request: Request) -> Response:
        return Response(200, self_metrics() + self.board.render() + self.stats.render(), CONTENT_TYPE)

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
