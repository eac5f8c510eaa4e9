"""Prometheus text exposition for results that are kept between scrapes.

Probe results change when a probe finishes, not when Prometheus scrapes. A
:class:`Board` therefore renders each target's lines once, when its result
arrives, and ``/metrics`` only joins strings: a scrape of thousands of targets
costs milliseconds and never waits for a probe. Label sets are rebuilt with
every result, so a label value that is gone (an old failure reason) never
lingers.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

CONTENT_TYPE = CONTENT_TYPE_LATEST


def escape(value: object) -> str:
    return str(value).replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def labels(pairs: Mapping[str, object]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{name}="{escape(value)}"' for name, value in pairs.items()) + "}"


def number(value: float) -> str:
    """Go-style float formatting, as Prometheus writes it."""
    if value is None or math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


@dataclass(frozen=True)
class Family:
    name: str
    kind: str  # gauge | counter | info-style gauge
    help: str

    def header(self) -> str:
        return f"# HELP {self.name} {escape(self.help)}\n# TYPE {self.name} {self.kind}\n"


Sample = tuple[Mapping[str, object], float]


def _lines(name: str, samples: Iterable[Sample]) -> str:
    return "".join(f"{name}{labels(pairs)} {number(value)}\n" for pairs, value in samples)


def render_family(family: Family, samples: Iterable[Sample]) -> str:
    return family.header() + _lines(family.name, samples)


class Board:
    """The latest samples of every key (a target), pre-rendered per family."""

    def __init__(self, families: Iterable[Family]):
        self.families = {family.name: family for family in families}
        self._rows: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def put(self, key: str, samples: Mapping[str, Iterable[Sample]]) -> None:
        row = {}
        for name, items in samples.items():
            if name not in self.families:
                raise KeyError(f"unknown metric family {name}")
            row[name] = _lines(name, items)
        with self._lock:
            self._rows[key] = row

    def keep_only(self, keys: Iterable[str]) -> None:
        wanted = set(keys)
        with self._lock:
            for key in [k for k in self._rows if k not in wanted]:
                del self._rows[key]

    def render(self) -> str:
        with self._lock:
            rows = list(self._rows.values())
        parts = []
        for name, family in self.families.items():
            body = "".join(row.get(name, "") for row in rows)
            if body:
                parts.append(family.header() + body)
        return "".join(parts)


def render_registry(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode("utf-8")
