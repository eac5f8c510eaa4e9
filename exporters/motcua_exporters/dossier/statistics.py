"""Adapters that read the dossier system's statistics (reporting) API.

The exporter fetches ``adapter.spec`` with the same HTTP probe as everything
else and hands the body to ``adapter.parse``, which returns one
:class:`AgencyStats` per agency. To support another reporting API, subclass
:class:`StatisticsAdapter`, implement ``parse`` (raise ``ValueError`` with a
message for an answer it cannot read) and add the class to ``ADAPTERS``; its
config keys are read in ``from_config``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

from ..core.config import Section
from ..core.httpprobe import Expect, ProbeSpec


@dataclass(frozen=True)
class AgencyStats:
    code: str
    name: str
    received: int  # since the system started counting (only grows)
    resolved_on_time: int  # only grows
    resolved_late: int  # only grows
    overdue: int  # open dossiers past their due date, now


class StatisticsAdapter(ABC):
    kind: ClassVar[str]

    def __init__(self, spec: ProbeSpec, max_agencies: int):
        self.spec = replace(spec, keep_body=True)
        self.max_agencies = max_agencies

    @classmethod
    def from_config(cls, section: Section, ca_file: Path | None, verify: bool) -> StatisticsAdapter:
        try:
            spec = ProbeSpec(
                section.str("url"),
                timeout=section.duration("timeout", 10.0, minimum=0.1),
                expect=Expect(status=(200,)),
                ca_file=section.path("ca_file", ca_file, must_exist=True),
                verify=section.bool("verify", verify),
                max_body_bytes=section.int("max_body_bytes", 4 << 20, minimum=1024),
            )
        except ValueError as exc:
            raise section.error("url", str(exc)) from None
        return cls(spec, section.int("max_agencies", 200, minimum=1, maximum=2000))

    @abstractmethod
    def parse(self, body: bytes) -> list[AgencyStats]:
        """Per-agency figures from the API's answer; ValueError if it cannot be read."""


class ThongKeJSON(StatisticsAdapter):
    """``GET /api/thong-ke``: ``{"thoi_diem": ..., "don_vi": [{"ma_don_vi", "ten_don_vi",
    "da_tiep_nhan", "da_giai_quyet_dung_han", "da_giai_quyet_tre_han", "qua_han"}]}``."""

    kind = "thong-ke-json"
    FIELDS = ("da_tiep_nhan", "da_giai_quyet_dung_han", "da_giai_quyet_tre_han", "qua_han")

    def parse(self, body: bytes) -> list[AgencyStats]:
        try:
            data = json.loads(body)
        except ValueError:
            raise ValueError("statistics answer is not JSON") from None
        rows = data.get("don_vi") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise ValueError("statistics answer has no 'don_vi' list")
        out = []
        for index, row in enumerate(rows):
            if not isinstance(row, dict) or not isinstance(row.get("ma_don_vi"), str):
                raise ValueError(f"don_vi[{index}] has no 'ma_don_vi'")
            values = [row.get(key) for key in self.FIELDS]
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
                raise ValueError(f"don_vi[{index}] ({row['ma_don_vi']}): {', '.join(self.FIELDS)} must be counts")
            out.append(AgencyStats(row["ma_don_vi"], str(row.get("ten_don_vi", row["ma_don_vi"])), *values))
        return out


ADAPTERS: dict[str, type[StatisticsAdapter]] = {ThongKeJSON.kind: ThongKeJSON}
