"""The Alertmanager configuration a duty roster compiles into.

:func:`compile_alertmanager` turns a valid duty roster (:mod:`motcua.rosters.duty`)
into an Alertmanager config: one receiver per person, one time interval per shift,
routes that send each alert to whoever is on duty for its site at that moment, the
go-live phase's pace, escalation to the DX Centre lead, and inhibition rules from the
registry's topology (:mod:`motcua.monitoring.rules`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from ..registry import PHASES, REGIONS, Registry
from ..rosters.duty import WINDOW_INTERVAL, DutyRoster, Shift
from . import rules


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# ---------------------------------------------------------------- compiling
@dataclass(frozen=True)
class PhasePace:
    """How fast and to whom alerts of sites in a go-live phase go."""

    group_wait: str
    group_interval: str
    repeat_interval: str
    copy_lead: bool  # the DX Centre lead gets every alert too


HEARTBEAT_RECEIVER = "heartbeat"
# How often the Watchdog reaches the bridges (production): with the bridges' heartbeat timeout of 3m,
# a silent peer is noticed within about 2 minutes of its Watchdog ending (its resolved notification)
# and at worst 3 minutes after the last repeat.
HEARTBEAT_PACE = {"group_interval": "30s", "repeat_interval": "1m"}

DEFAULT_PACE = {
    "default": PhasePace("30s", "5m", "4h", False),  # the root route: the webhooks, escalation
    "system": PhasePace("10s", "1m", "1h", False),  # the dossier system, city-wide
    "cut-over": PhasePace("10s", "1m", "30m", True),
    "hypercare": PhasePace("10s", "2m", "1h", True),
    "pre-production": PhasePace("1m", "5m", "4h", False),
    "steady": PhasePace("1m", "5m", "4h", False),
}


def _time_interval(shift: Shift, tz: str) -> dict[str, object]:
    """The shift's spans as Alertmanager time ranges (a span over midnight becomes two)."""
    pieces: dict[tuple[str, str, int, int], list[int]] = {}
    for start, end in shift.spans():
        cursor = start
        while cursor < end:
            midnight_after = datetime.combine(cursor.date() + timedelta(days=1), time())
            stop = min(end, midnight_after)
            begin = cursor.hour * 60 + cursor.minute
            finish = 1440 if stop == midnight_after else stop.hour * 60 + stop.minute
            key = (_clock(begin), _clock(finish), cursor.year, cursor.month)
            pieces.setdefault(key, []).append(cursor.day)
            cursor = stop
    ranges = []
    for (begin, finish, year, month), days in sorted(pieces.items(), key=lambda kv: (kv[0][2], kv[0][3], kv[1][0])):
        ranges.append(
            {
                "times": [{"start_time": begin, "end_time": finish}],
                "days_of_month": _day_ranges(sorted(set(days))),
                "months": [str(month)],
                "years": [str(year)],
                "location": tz,
            }
        )
    return {"name": shift.name, "time_intervals": ranges}


def _day_ranges(days: list[int]) -> list[str]:
    out, first, prev = [], days[0], days[0]
    for day in [*days[1:], None]:
        if day is not None and day == prev + 1:
            prev = day
            continue
        out.append(str(first) if first == prev else f"{first}:{prev}")
        if day is not None:
            first = prev = day
    return out


def _date_ranges(first: date, last: date) -> list[dict[str, object]]:
    """Whole days first..last as Alertmanager time ranges (one per month)."""
    out: list[dict[str, object]] = []
    day = first
    while day <= last:
        month_end = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        stop = min(last, month_end)
        out.append(
            {
                "days_of_month": [f"{day.day}:{stop.day}" if stop != day else str(day.day)],
                "months": [str(day.month)],
                "years": [str(day.year)],
            }
        )
        day = stop + timedelta(days=1)
    return out


def site_matcher(sites: frozenset[str] | set[str]) -> str:
    return 'site=~"' + "|".join(sorted(sites)) + '"'


def compile_alertmanager(roster: DutyRoster, settings: dict[str, object]) -> dict[str, object]:
    """The Alertmanager config for this roster.

    ``settings`` (the alertmanager role passes its variables):
      smtp: {smarthost, from, auth_username?, auth_password_file?, require_tls?} or absent (no e-mail)
      telegram: {api_url?, bot_token} or absent (no Telegram)
      webhooks: [{name, url}] receive every alert (the DX Centre's incident board)
      bridge: {url} motcua-notify's webhook: each person with channels (Zalo, ZNS, SMS) gets their
              alerts through it, and the lead's critical ones through an urgent receiver (SMS first)
      http_config: how Alertmanager reaches the bridges on the locked plane (tls_config, basic_auth with
              password_file): applied to the bridge's and the heartbeat's webhooks, not to the board's
      heartbeat: {urls: [every bridge's /heartbeat], group_interval?, repeat_interval?} the dead man's switch:
              the Watchdog of each Prometheus goes to every bridge (never to a person) this often;
              without urls it goes nowhere
      pace: {phase | "system" | "default": {group_wait, group_interval, repeat_interval, copy_lead}}
            over DEFAULT_PACE (copy_lead for "system": the lead hears of every city-wide alert,
            not only the critical ones)
    (How long a critical alert fires before EscalateToLead is a rule's pace: rules.DEFAULT_FOR.)
    """
    smtp = settings.get("smtp") or {}
    telegram = settings.get("telegram") or {}
    webhooks = list(settings.get("webhooks") or [])
    bridge = settings.get("bridge") or {}
    http_config = settings.get("http_config") or {}

    def plane() -> dict[str, object]:  # a copy each: YAML would otherwise write anchors and aliases
        return {"http_config": copy.deepcopy(http_config)} if http_config else {}

    heartbeat = {**HEARTBEAT_PACE, **(settings.get("heartbeat") or {})}
    unknown_keys = set(heartbeat) - {"urls", *HEARTBEAT_PACE}
    if unknown_keys:
        raise ValueError(f"heartbeat: unknown setting(s) {', '.join(sorted(unknown_keys))}")
    pace = dict(DEFAULT_PACE)
    for phase, values in (settings.get("pace") or {}).items():
        if phase not in DEFAULT_PACE:
            raise ValueError(f"pace: unknown key {phase!r} (known: {', '.join(DEFAULT_PACE)})")
        unknown = set(values) - set(PhasePace.__dataclass_fields__)
        if unknown:
            raise ValueError(f"pace.{phase}: unknown setting(s) {', '.join(sorted(unknown))}")
        pace[phase] = PhasePace(**{**DEFAULT_PACE[phase].__dict__, **values})

    global_cfg: dict[str, object] = {"resolve_timeout": "5m"}
    if smtp:
        global_cfg["smtp_smarthost"] = smtp["smarthost"]
        global_cfg["smtp_from"] = smtp["from"]
        global_cfg["smtp_require_tls"] = bool(smtp.get("require_tls", True))
        if smtp.get("auth_username"):
            global_cfg["smtp_auth_username"] = smtp["auth_username"]
            global_cfg["smtp_auth_password_file"] = smtp["auth_password_file"]
    if telegram.get("api_url"):
        global_cfg["telegram_api_url"] = telegram["api_url"]

    receivers: list[dict[str, object]] = [{"name": "board", "webhook_configs": []}]
    watchdog: dict[str, object] = {"name": HEARTBEAT_RECEIVER}
    if heartbeat.get("urls"):
        watchdog["webhook_configs"] = [
            {"url": url, "send_resolved": True, "max_alerts": 0, **plane()}
            for url in heartbeat["urls"]  # type: ignore[union-attr]
        ]
    receivers.append(watchdog)
    for hook in webhooks:
        receivers[0]["webhook_configs"].append({"url": hook["url"], "send_resolved": True, "max_alerts": 50})  # type: ignore[union-attr]
    if not webhooks:
        receivers[0].pop("webhook_configs")
    people = [
        (roster.lead, roster.lead.receiver),
        *[(p, p.receiver) for p in roster.people.values() if p.id != roster.lead.id],
    ]
    people.append((roster.lead, roster.lead.urgent_receiver))
    for person, name in people:
        receiver: dict[str, object] = {"name": name}
        if bridge.get("url") and (person.urgent_channels if name == person.urgent_receiver else person.channels):
            # One webhook call per alert group; the bridge says it once per person and channel.
            receiver["webhook_configs"] = [{"url": bridge["url"], "send_resolved": True, "max_alerts": 0, **plane()}]
        if person.email and smtp:
            receiver["email_configs"] = [
                {
                    "to": person.email,
                    "send_resolved": True,
                    "headers": {"Subject": '{{ template "motcua.subject" . }}'},
                    "html": '{{ template "motcua.email" . }}',
                }
            ]
        if person.telegram_chat_id is not None and telegram.get("bot_token"):
            receiver["telegram_configs"] = [
                {
                    "bot_token": telegram["bot_token"],
                    "chat_id": person.telegram_chat_id,
                    "parse_mode": "",
                    "message": '{{ template "motcua.telegram" . }}',
                    "send_resolved": True,
                }
            ]
        receivers.append(receiver)
    lead = roster.lead.receiver
    urgent = roster.lead.urgent_receiver

    def shift_routes(system: bool) -> list[dict[str, object]]:
        out = []
        for shift in roster.shifts:
            if shift.scope.system != system:
                continue
            route: dict[str, object] = {"receiver": shift.person.receiver, "active_time_intervals": [shift.name]}
            if not system:
                route["matchers"] = [site_matcher(shift.scope.sites)]
            route["continue"] = True
            out.append(route)
        return out

    # Before and after the launch window nobody's shift is active: the lead gets everything.
    outside_window = {"receiver": lead, "mute_time_intervals": [WINDOW_INTERVAL], "continue": True}
    system_pace, root_pace = pace["system"], pace["default"]
    system_route = {
        "matchers": [f'scope="{rules.SCOPE_SYSTEM}"'],
        "receiver": lead,
        "group_by": ["alertname"],
        "group_wait": system_pace.group_wait,
        "group_interval": system_pace.group_interval,
        "repeat_interval": system_pace.repeat_interval,
        # Nobody on duty matched -> the lead (the parent's receiver). The lead
        # hears of the dossier system's critical alerts at once in any case.
        "routes": [
            *shift_routes(system=True),
            {"matchers": ['severity="critical"'], "receiver": urgent, "continue": True},
            *(
                [{"matchers": ['severity!="critical"'], "receiver": lead, "continue": True}]
                if system_pace.copy_lead
                else []
            ),
            # (the lead has the critical ones already: no second copy outside the window)
            *([] if system_pace.copy_lead else [{**outside_window, "matchers": ['severity!="critical"']}]),
        ],
    }
    phase_routes = []
    for phase in sorted((p for p in pace if p not in ("default", "system")), key=PHASES.index):
        p = pace[phase]
        children = shift_routes(system=False)
        children.append({"receiver": lead, "continue": True} if p.copy_lead else outside_window)
        phase_routes.append(
            {
                "matchers": [f'phase="{phase}"'],
                "receiver": lead,
                "group_wait": p.group_wait,
                "group_interval": p.group_interval,
                "repeat_interval": p.repeat_interval,
                "routes": children,
            }
        )
    route = {
        "receiver": lead,
        "group_by": ["alertname", "site"],
        "group_wait": root_pace.group_wait,
        "group_interval": root_pace.group_interval,
        "repeat_interval": root_pace.repeat_interval,
        "routes": [
            # The Watchdog of each Prometheus (always firing) goes to every bridge's dead man's switch, never
            # to a person or the board; one group per origin, repeated often: its absence is the signal.
            {
                "matchers": [f'alertname="{rules.WATCHDOG}"'],
                "receiver": HEARTBEAT_RECEIVER,
                "group_by": ["origin"],
                "group_wait": "0s",
                "group_interval": heartbeat["group_interval"],
                "repeat_interval": heartbeat["repeat_interval"],
            },
            # Every alert reaches the webhooks (the incident board), then the people.
            *([{"receiver": "board", "continue": True, "group_wait": "0s"}] if webhooks else []),
            {
                "matchers": [f'alertname="{rules.ESCALATION_ALERT}"'],
                "receiver": urgent,
                "group_by": ["alertname", "site", "escalated"],
            },
            system_route,
            *phase_routes,
        ],
    }
    return {
        "global": global_cfg,
        # Relative to the config file's directory (Alertmanager and amtool resolve it there).
        "templates": [str(settings.get("templates_glob", "alertmanager_templates/*.tmpl"))],
        "route": route,
        "inhibit_rules": rules.inhibit_rules(),
        "receivers": receivers,
        "time_intervals": [
            {
                "name": WINDOW_INTERVAL,
                "time_intervals": [
                    {**r, "location": roster.timezone} for r in _date_ranges(roster.window[0], roster.window[1])
                ],
            },
            *[_time_interval(s, roster.timezone) for s in roster.shifts],
        ],
    }


def bridge_recipients(roster: DutyRoster) -> dict[str, dict[str, object]]:
    """motcua-notify's ``recipients``: each receiver the bridge serves -> the person and their channels."""
    out: dict[str, dict[str, object]] = {}
    people = [(p, p.receiver, p.channels) for p in roster.people.values()]
    people.append((roster.lead, roster.lead.urgent_receiver, roster.lead.urgent_channels))
    for person, receiver, channels in people:
        if not channels:
            continue
        entry: dict[str, object] = {"name": person.name, "channels": list(channels)}
        if person.zalo:
            entry["zalo"] = person.zalo
        if person.phone:
            entry["phone"] = person.phone
        out[receiver] = entry
    return out


def board_data(registry: Registry, roster: DutyRoster) -> dict[str, object]:
    """The duty board's data file (motcua_exporters.board.data): the sites with their devices, and each span of
    each shift with its person and the sites it covers, in the roster's local time. The board on the monitoring
    host reads this, never the registry or the roster."""
    sites = []
    for site in sorted(registry.sites.values(), key=lambda s: s.code):
        sites.append({
            "code": site.code, "name": site.name, "kind": "centre" if site.kind != "ward" else "ward",
            "region": site.region, "team": site.team, "phase": site.phase, "address": site.street_address or "",
            "devices": [{"name": h.name, "role": h.role} for h in site.hosts],
        })  # fmt: skip
    lead = roster.lead
    people = {lead.id: {"name": lead.name, "zalo": lead.zalo or "", "phone": lead.phone or ""}}
    shifts = []
    for shift in roster.shifts:
        person = shift.person
        people[person.id] = {"name": person.name, "zalo": person.zalo or "", "phone": person.phone or ""}
        scope: object = "system" if shift.scope.system else sorted(shift.scope.sites & registry.sites.keys())
        if scope == []:
            continue
        for start, end in shift.spans():
            shifts.append({"person": person.id, "scope": scope, "start": start.isoformat(timespec="minutes"),
                           "end": end.isoformat(timespec="minutes")})  # fmt: skip
    used = {s["region"] for s in sites}
    return {"timezone": roster.timezone, "regions": [{"id": k, "name": v} for k, v in REGIONS.items() if k in used],
            "lead": lead.id, "sites": sites, "people": people, "shifts": shifts}  # fmt: skip
