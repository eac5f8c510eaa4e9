"""What the board shows, worked out from what Alertmanager says (pure functions: the unit tests give them alerts).

Alertmanager has already applied the silences and the topology's inhibition (motcua.monitoring.rules: a site whose
router does not answer hides its switches' and counters' alerts; a counter that is down hides its printer's): an
alert it reports ``active`` counts, one ``suppressed`` is shown apart, as silenced or as hidden by another. So a site
that is offline is one critical tile, not one per counter.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .data import Site

OK, WARNING, CRITICAL, OFFLINE = "ok", "warning", "critical", "offline"
LEVELS = (OK, WARNING, CRITICAL, OFFLINE)  # worst last
RANK = {level: i for i, level in enumerate(LEVELS)}
SEVERITY_RANK = {"critical": 2, "warning": 1}
OFFLINE_ALERT = "SiteOffline"
ACTIVE, SILENCED, INHIBITED = "active", "silenced", "inhibited"
# A silence the relocation tool sets carries this in its comment (motcua.relocation.move.tag).
RELOCATION_TAG = "[motcua relocation "
LEVEL_TEXT = {
    OK: "Bình thường / OK",
    WARNING: "Cảnh báo / warning",
    CRITICAL: "Nghiêm trọng / critical",
    OFFLINE: "Mất kết nối / offline",
}


def _time(text: object) -> dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Alert:
    fingerprint: str
    name: str
    severity: str
    state: str  # active | silenced | inhibited
    labels: dict[str, str] = field(hash=False, compare=False)
    summary_vi: str = ""
    summary_en: str = ""
    runbook: str = ""
    starts: dt.datetime | None = None
    silenced_by: tuple[str, ...] = ()

    @property
    def site(self) -> str:
        return self.labels.get("site", "")

    @property
    def instance(self) -> str:
        return self.labels.get("instance", "")

    @property
    def rank(self) -> int:
        return SEVERITY_RANK.get(self.severity, 0)

    @property
    def slug(self) -> str:
        """The runbook's name (its file in docs/runbooks without .md), from the alert's runbook URL."""
        tail = self.runbook.rstrip("/").rsplit("/", 1)[-1]
        return tail[:-3] if tail.endswith(".md") else tail


def parse_alerts(raw: object) -> list[Alert]:
    """Alertmanager's ``GET /api/v2/alerts`` (every alert, suppressed ones too) as Alerts; the Watchdog and other
    alerts without a severity the board ranks are kept (the alert view lists them) but never colour a tile."""
    out = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        labels = {str(k): str(v) for k, v in (item.get("labels") or {}).items()}
        notes = item.get("annotations") or {}
        status = item.get("status") or {}
        silenced = tuple(status.get("silencedBy") or ())
        suppressed = status.get("state") == "suppressed"
        state = (SILENCED if silenced else INHIBITED) if suppressed else ACTIVE
        out.append(
            Alert(
                str(item.get("fingerprint", "")),
                labels.get("alertname", "?"),
                labels.get("severity", ""),
                state,
                labels,
                str(notes.get("summary_vi", notes.get("summary", ""))),
                str(notes.get("summary_en", "")),
                str(notes.get("runbook_url", "")),
                _time(item.get("startsAt")),
                silenced,
            )
        )
    out.sort(key=lambda a: a.starts or dt.datetime.min.replace(tzinfo=dt.UTC), reverse=True)
    return out


@dataclass(frozen=True)
class Silence:
    id: str
    author: str
    comment: str
    starts: dt.datetime | None
    ends: dt.datetime | None
    matchers: tuple[tuple[str, str, bool], ...]  # (label, value, is regex)

    @property
    def relocation(self) -> bool:
        return RELOCATION_TAG in self.comment

    def names(self, label: str) -> set[str]:
        """The values of ``label`` this silence matches (a regex of alternatives is split: motcua silence writes
        exact values joined by |, escaped)."""
        out = set()
        for name, value, regex in self.matchers:
            if name == label:
                out.update(v.replace("\\", "") for v in value.split("|")) if regex else out.add(value)
        return out


def parse_silences(raw: object, now: dt.datetime) -> list[Silence]:
    """The silences in force or still to come (expired ones are history)."""
    out = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict) or (item.get("status") or {}).get("state") == "expired":
            continue
        ends = _time(item.get("endsAt"))
        if ends is not None and ends <= now:
            continue
        matchers = tuple(
            (str(m.get("name", "")), str(m.get("value", "")), bool(m.get("isRegex")))
            for m in item.get("matchers") or []
            if isinstance(m, dict)
        )
        out.append(
            Silence(
                str(item.get("id", "")),
                str(item.get("createdBy", "")),
                str(item.get("comment", "")),
                _time(item.get("startsAt")),
                ends,
                matchers,
            )
        )
    out.sort(key=lambda s: s.ends or now)
    return out


@dataclass
class SiteState:
    site: Site
    level: str = OK
    firing: list[Alert] = field(default_factory=list)  # active, worst first
    silenced: list[Alert] = field(default_factory=list)
    inhibited: list[Alert] = field(default_factory=list)
    silences: list[Silence] = field(default_factory=list)  # in force or to come, naming the site or its hosts

    @property
    def relocating(self) -> bool:
        return any(s.relocation for s in self.silences)

    @property
    def colour(self) -> str:
        """Offline is shown as critical (one red tile), with its own mark."""
        return CRITICAL if self.level == OFFLINE else self.level


def site_states(sites: dict[str, Site], alerts: list[Alert], silences: list[Silence] = ()) -> dict[str, SiteState]:
    """Each site's state: the worst of its active alerts (offline when its SiteOffline is active)."""
    states = {code: SiteState(site) for code, site in sites.items()}
    hosts = {d.name: code for code, site in sites.items() for d in site.devices}
    for alert in alerts:
        code = alert.site or hosts.get(alert.instance, "")
        state = states.get(code)
        if state is None:
            continue
        if alert.state == SILENCED:
            state.silenced.append(alert)
        elif alert.state == INHIBITED:
            state.inhibited.append(alert)
        elif alert.rank:
            state.firing.append(alert)
            level = OFFLINE if alert.name == OFFLINE_ALERT else CRITICAL if alert.severity == "critical" else WARNING
            if RANK[level] > RANK[state.level]:
                state.level = level
    for state in states.values():
        state.firing.sort(key=lambda a: -a.rank)
    for silence in silences:
        named = silence.names("site") | {hosts.get(h, "") for h in silence.names("instance")}
        for code in named & states.keys():
            states[code].silences.append(silence)
    return states


def counts(states: dict[str, SiteState]) -> dict[str, int]:
    return {level: sum(s.level == level for s in states.values()) for level in LEVELS}


@dataclass(frozen=True)
class DeviceState:
    name: str
    role: str
    level: str  # ok | warning | critical | unreachable | silenced
    alerts: tuple[Alert, ...]


def device_states(state: SiteState) -> list[DeviceState]:
    """Each device of the site: the worst of its own active alerts; ``unreachable`` when its only alerts are hidden
    by another's (the site offline, its counter down); ``silenced`` when they are silenced."""
    out = []
    for device in state.site.devices:
        mine = [a for a in state.firing if a.instance == device.name]
        if mine:
            level = CRITICAL if any(a.severity == "critical" for a in mine) else WARNING
        elif any(a.instance == device.name for a in state.inhibited):
            level, mine = "unreachable", [a for a in state.inhibited if a.instance == device.name]
        elif any(a.instance == device.name for a in state.silenced):
            level, mine = "silenced", [a for a in state.silenced if a.instance == device.name]
        else:
            level = OK
        out.append(DeviceState(device.name, device.role, level, tuple(mine)))
    return out
