"""The indicators as Prometheus metrics (text format, for node_exporter's textfile collector).

Cardinality stays bounded whatever the records hold:

- sites only as the registry names them;
- agencies: the ``top`` busiest in the records, the rest as ``other``;
- procedures and recorded reasons: the ``top`` with the most overdue or late dossiers, the rest
  as ``other``.

Rates are left to Prometheus' recording rules: each metric is a count.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable

from .indicators import CITY, Figures, summarise
from .records import Dossier

OTHER = "other"


def _label(value: str) -> str:
    return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def _top(counts: Counter, top: int) -> set[str]:
    return {name for name, _count in counts.most_common(top)}


def as_metrics(dossiers: Iterable[Dossier], now: dt.datetime, sites: Iterable[str], top: int = 20) -> str:
    dossiers = list(dossiers)
    known = set(sites)
    busiest = _top(Counter(d.agency for d in dossiers if d.agency), top)
    per_site = summarise(dossiers, now)
    per_agency = summarise(
        dossiers, now, key=lambda d: (d.agency if d.agency in busiest else OTHER) if d.agency else None
    )
    del per_agency[CITY]
    scopes: list[tuple[str, str, dict[str, Figures]]] = [("city", "", per_site[CITY])]
    scopes += [("site", code, spans) for code, spans in sorted(per_site.items()) if code in known]
    scopes += [("agency", code, spans) for code, spans in sorted(per_agency.items())]

    lines: list[str] = []

    def family(name: str, help_text: str) -> None:
        lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} gauge"])

    def sample(name: str, labels: dict[str, str], value: float) -> None:
        text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{text}}} {value:g}")

    family("motcua_dossiers_received", "Dossiers received in the window (today, 7d, month), per site, agency and city.")
    for kind, code, spans in scopes:
        for window, f in spans.items():
            sample("motcua_dossiers_received", {"scope": kind, "code": code, "window": window}, f.received)
    family(
        "motcua_dossiers_finished",
        "Dossiers whose result was ready in the window, by verdict (on_time, late, unjudged).",
    )
    for kind, code, spans in scopes:
        for window, f in spans.items():
            for verdict, value in (("on_time", f.finished_on_time), ("late", f.finished_late),
                                   ("unjudged", f.finished_unjudged)):  # fmt: skip
                sample("motcua_dossiers_finished", {"scope": kind, "code": code, "window": window, "verdict": verdict},
                       value)  # fmt: skip
    family("motcua_dossiers_open", "Dossiers in progress now, by state (not_due, overdue).")
    for kind, code, spans in scopes:
        f = spans["today"]  # every window ends now: the same open dossiers
        sample("motcua_dossiers_open", {"scope": kind, "code": code, "state": "not_due"}, f.open_not_due)
        sample("motcua_dossiers_open", {"scope": kind, "code": code, "state": "overdue"}, f.open_overdue)
    family("motcua_dossiers_online", "Dossiers received online in the window, per site, agency and city.")
    for kind, code, spans in scopes:
        for window, f in spans.items():
            sample("motcua_dossiers_online", {"scope": kind, "code": code, "window": window}, f.online)

    overdue = [d for d in dossiers if d.overdue(now)]
    procedures = _top(Counter(d.procedure_code for d in overdue), top)
    family(
        "motcua_dossiers_overdue_by_procedure",
        f"Dossiers overdue now, city-wide, by procedure (the {top} with the most; the rest as other).",
    )
    by_procedure = Counter(d.procedure_code if d.procedure_code in procedures else OTHER for d in overdue)
    for procedure, count in sorted(by_procedure.items()):
        sample("motcua_dossiers_overdue_by_procedure", {"procedure": procedure}, count)
    week = per_site[CITY]["7d"]
    reasons = _top(week.late_by_reason, top)
    family(
        "motcua_dossiers_late_by_reason",
        f"Late and overdue dossiers of the last 7 days, city-wide, by recorded reason (the {top} most common; "
        "the rest as other).",
    )
    by_reason = Counter()
    for reason, count in week.late_by_reason.items():
        by_reason[reason if reason in reasons else OTHER] += count
    for reason, count in sorted(by_reason.items()):
        sample("motcua_dossiers_late_by_reason", {"reason": reason}, count)
    family("motcua_dossiers_last_update_timestamp_seconds", "When these figures were computed (Unix time).")
    lines.append(f"motcua_dossiers_last_update_timestamp_seconds {now.timestamp():.0f}")
    return "\n".join(lines) + "\n"
