"""The indicators as Prometheus metrics (text format, for node_exporter's textfile collector).

Cardinality stays bounded whatever the records hold:

- sites only as the registry names them (label ``site``, the one Alertmanager routes on);
- agencies (``motcua_dossiers_agency_*``, label ``agency``): the ``top`` busiest in the records, the
  rest as ``other``;
- procedures and recorded reasons: the ``top`` with the most overdue or late dossiers, the rest
  as ``other``.

Rates and city-wide sums are left to Prometheus' recording rules: each metric is a count.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable

from .indicators import CITY, Figures, summarise
from .records import Dossier

OTHER = "other"
# (Figures attribute, also the metric's suffix; help): the counts behind the shares of docs/kpis.md
COUNTS_766 = (
    ("payment_recorded", "Dossiers received in the window whose payment is recorded"),
    ("paid_online", "Dossiers received in the window and paid online"),
    ("digitised_intake", "Dossiers received in the window and digitised at intake"),
    ("digitised_result", "Dossiers finished in the window with a digitised result"),
    ("rated", "Dossiers finished in the window that the applicant rated"),
    ("satisfied", "Dossiers finished in the window rated satisfied or very satisfied"),
)


def _label(value: str) -> str:
    return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def top_names(counts: Counter, top: int) -> set[str]:
    """The ``top`` names with the highest counts; a tie goes to the name first in alphabetical order (the
    same names whatever order the counts were made in)."""
    return {name for name, _count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]}


def as_metrics(dossiers: Iterable[Dossier], now: dt.datetime, sites: Iterable[str], top: int = 20) -> str:
    """The metrics text of these dossiers at ``now``, computed from every one (running.Running keeps the
    same figures up to date record by record)."""
    dossiers = list(dossiers)
    busiest = top_names(Counter(d.agency for d in dossiers if d.agency), top)
    per_site = summarise(dossiers, now)
    per_agency = summarise(
        dossiers, now, key=lambda d: (d.agency if d.agency in busiest else OTHER) if d.agency else None
    )
    del per_agency[CITY]
    overdue = Counter(d.procedure_code for d in dossiers if d.overdue(now))
    return render(per_site, per_agency, overdue, now, sites, top)


def render(
    per_site: dict[str, dict[str, Figures]],
    per_agency: dict[str, dict[str, Figures]],
    overdue_by_procedure: Counter,
    now: dt.datetime,
    sites: Iterable[str],
    top: int = 20,
) -> str:
    """The text of the figures per site (and city-wide, under CITY), per agency (the busiest and OTHER) and
    the dossiers overdue now by procedure."""
    known = set(sites)
    # Two families per figure: by site (the label Alertmanager routes on, joined with motcua_site_info) and
    # by agency (the city centre's dossiers again, split by the agency that decides them). No city series:
    # city-wide is the sum over the sites (recording rules), so nothing is counted twice.
    scopes = {
        "site": {code: spans for code, spans in sorted(per_site.items()) if code in known},
        "agency": dict(sorted(per_agency.items())),
    }

    lines: list[str] = []

    def family(name: str, help_text: str) -> None:
        lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} gauge"])

    def sample(name: str, labels: dict[str, str], value: float) -> None:
        text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{text}}} {value:g}")

    for label, figures in scopes.items():
        prefix = "motcua_dossiers" if label == "site" else "motcua_dossiers_agency"
        whose = "per site" if label == "site" else "per agency (the city centre's dossiers)"
        family(f"{prefix}_received", f"Dossiers received in the window (today, 7d, month), {whose}.")
        for code, spans in figures.items():
            for window, f in spans.items():
                sample(f"{prefix}_received", {label: code, "window": window}, f.received)
        verdicts = "by verdict (on_time, late, unjudged)"
        family(f"{prefix}_finished", f"Dossiers whose result was ready in the window, {verdicts}, {whose}.")
        for code, spans in figures.items():
            for window, f in spans.items():
                for verdict, value in (("on_time", f.finished_on_time), ("late", f.finished_late),
                                       ("unjudged", f.finished_unjudged)):  # fmt: skip
                    sample(f"{prefix}_finished", {label: code, "window": window, "verdict": verdict}, value)
        family(
            f"{prefix}_open",
            f"Dossiers in progress now, by state (not_due, overdue, paused: awaiting the applicant), {whose}.",
        )
        for code, spans in figures.items():
            f = spans["today"]  # every window ends now: the same open dossiers
            sample(f"{prefix}_open", {label: code, "state": "not_due"}, f.open_not_due)
            sample(f"{prefix}_open", {label: code, "state": "overdue"}, f.open_overdue)
            sample(f"{prefix}_open", {label: code, "state": "paused"}, f.open_paused)
        family(f"{prefix}_online", f"Dossiers received online in the window, {whose}.")
        for code, spans in figures.items():
            for window, f in spans.items():
                sample(f"{prefix}_online", {label: code, "window": window}, f.online)
        # What Decision 766's digitisation, online-service and satisfaction groups are computed from.
        for count, text in COUNTS_766:
            family(f"{prefix}_{count}", f"{text}, {whose}.")
            for code, spans in figures.items():
                for window, f in spans.items():
                    sample(f"{prefix}_{count}", {label: code, "window": window}, getattr(f, count))

    procedures = top_names(overdue_by_procedure, top)
    family(
        "motcua_dossiers_overdue_by_procedure",
        f"Dossiers overdue now, city-wide, by procedure (the {top} with the most; the rest as other).",
    )
    by_procedure = Counter()
    for procedure, count in overdue_by_procedure.items():
        by_procedure[procedure if procedure in procedures else OTHER] += count
    for procedure, count in sorted(by_procedure.items()):
        sample("motcua_dossiers_overdue_by_procedure", {"procedure": procedure}, count)
    week = per_site[CITY]["7d"]
    reasons = top_names(week.late_by_reason, top)
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
