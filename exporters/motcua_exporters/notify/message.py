"""What the bridge says: one message per Alertmanager notification (an alert group and its status).

Vietnamese first, English beside it. Each channel has its own limits:

- Zalo OA text: at most 2,000 characters (the customer-service message API's limit).
- ZNS: a template approved by Zalo in advance; the bridge fills its parameters (each at most
  30 characters for a label, per Zalo's parameter types) and the template carries the link.
- SMS: one segment. Brand-name SMS in Vietnam is sent without diacritics (GSM-7, 160
  characters; with diacritics a segment holds only 70), so the SMS text is the Vietnamese
  without marks, the alert's name (English), the site and the link to the full text.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

ZALO_MAX = 2000
SMS_SEGMENT = 160
# GSM 03.38 basic character set (what one 160-character segment can carry).
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
STATUS_VI = {"firing": "CẢNH BÁO", "resolved": "ĐÃ KHẮC PHỤC"}
STATUS_EN = {"firing": "FIRING", "resolved": "RESOLVED"}


def strip_marks(text: str) -> str:
    """Vietnamese without diacritics: 'Phường Sài Gòn' -> 'Phuong Sai Gon' (đ -> d)."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    plain = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return "".join(c if c in GSM7 else "?" for c in unicodedata.normalize("NFC", plain))


def _clip(text: str, limit: int, more: str = "…") -> str:
    return text if len(text) <= limit else text[: max(0, limit - len(more))].rstrip() + more


@dataclass(frozen=True)
class Notification:
    """An Alertmanager webhook payload (version 4), the parts the bridge uses."""

    receiver: str
    status: str  # firing | resolved
    group_key: str
    alerts: tuple[dict[str, Any], ...]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str

    @classmethod
    def from_payload(cls, payload: object) -> Notification:
        if not isinstance(payload, dict):
            raise ValueError("the body is not a JSON object")
        if str(payload.get("version", "")) != "4":
            raise ValueError(f"webhook version {payload.get('version')!r}: only Alertmanager's version 4 is understood")
        for key in ("receiver", "status", "groupKey"):
            if not isinstance(payload.get(key), str) or not payload[key]:
                raise ValueError(f"{key} is missing")
        if payload["status"] not in STATUS_EN:
            raise ValueError(f"status {payload['status']!r} is neither firing nor resolved")
        alerts = payload.get("alerts")
        if not isinstance(alerts, list) or not alerts or not all(isinstance(a, dict) for a in alerts):
            raise ValueError("alerts must be a non-empty list of objects")
        return cls(
            # Alertmanager's template data quotes the receiver's name as a regular expression
            # (regexp.QuoteMeta): "duty-an\\.nv" is the receiver duty-an.nv.
            re.sub(r"\\(.)", r"\1", payload["receiver"]),
            payload["status"],
            payload["groupKey"],
            tuple(alerts),
            {str(k): str(v) for k, v in (payload.get("commonLabels") or {}).items()},
            {str(k): str(v) for k, v in (payload.get("commonAnnotations") or {}).items()},
            str(payload.get("externalURL") or ""),
        )

    @property
    def key(self) -> str:
        """The same group, status and alerts: the same key (Alertmanager's retries, a peer's copy)."""
        alerts = sorted(
            f"{a.get('fingerprint', '')}@{a.get('startsAt', '')}" for a in self.alerts if a.get("status") == self.status
        )
        data = "\0".join([self.receiver, self.group_key, self.status, *alerts])
        return hashlib.sha256(data.encode()).hexdigest()

    def firing(self) -> list[dict[str, Any]]:
        return [a for a in self.alerts if a.get("status") == self.status] or list(self.alerts)

    @property
    def alertname(self) -> str:
        names = sorted({str((a.get("labels") or {}).get("alertname", "?")) for a in self.alerts})
        return ", ".join(names)

    @property
    def site(self) -> str:
        return self.common_labels.get("site", "")

    @property
    def ward(self) -> str:
        return self.common_labels.get("ward", "")

    def annotation(self, name: str) -> str:
        if self.common_annotations.get(name):
            return self.common_annotations[name]
        for alert in self.alerts:
            value = (alert.get("annotations") or {}).get(name)
            if value:
                return str(value)
        return ""


def _alert_line(alert: dict[str, Any]) -> str:
    labels, notes = alert.get("labels") or {}, alert.get("annotations") or {}
    where = labels.get("instance") or labels.get("target") or labels.get("device") or ""
    text = notes.get("summary") or " / ".join(x for x in (notes.get("summary_vi"), notes.get("summary_en")) if x)
    return f"• {where}: {text}" if where else f"• {text or labels.get('alertname', '?')}"


def headline(n: Notification) -> str:
    count = len(n.firing())
    return f"{STATUS_VI[n.status]} / {STATUS_EN[n.status]}: {n.alertname}" + (f" ({count})" if count > 1 else "")


def full_text(n: Notification, link: str) -> str:
    """The whole message: Zalo's text and the page behind the link."""
    lines = [("🔴 " if n.status == "firing" else "✅ ") + headline(n)]
    if n.site:
        lines.append(f"Điểm / Site: {n.site}" + (f" {n.ward}" if n.ward else ""))
    summary_vi, summary_en = n.annotation("summary_vi"), n.annotation("summary_en")
    if summary_vi or summary_en:
        lines.append(" / ".join(x for x in (summary_vi, summary_en) if x))
    lines += [_alert_line(a) for a in n.firing()]
    runbook = n.annotation("runbook_url")
    if runbook:
        lines.append(f"Hướng dẫn xử lý / Runbook: {runbook}")
    if link:
        lines.append(f"Chi tiết / Details: {link}")
    return "\n".join(lines)


def zalo_text(n: Notification, link: str) -> str:
    text = full_text(n, link)
    if len(text) <= ZALO_MAX:
        return text
    # Too many alerts for one message: as many lines as fit, then the link to the rest.
    tail = f"\n… (xem đủ / see all: {link})" if link else "\n…"
    return _clip(text, ZALO_MAX - len(tail)) + tail


def sms_text(n: Notification, link: str, limit: int = SMS_SEGMENT) -> str:
    """One GSM-7 segment: status, alert, site, the Vietnamese summary without marks, the link."""
    status = "CANH BAO" if n.status == "firing" else "DA KHAC PHUC"
    count = len(n.firing())
    head = f"MOTCUA {status}: {n.alertname}" + (f" ({count})" if count > 1 else "")
    if n.site:
        head += f" {n.site}"
    tail = f" {link}" if link else ""
    room = limit - len(strip_marks(head)) - len(tail)
    summary = strip_marks(n.annotation("summary_vi"))
    body = strip_marks(head)
    if summary and room > 8:
        body += " - " + _clip(summary, room - 3, "...")
    return _clip(body, limit - len(tail), "...") + tail


def zns_params(n: Notification, link: str, mapping: dict[str, str], limits: dict[str, int]) -> dict[str, str]:
    """The template's parameters from the notification's fields (the config maps name -> field)."""
    fields = {
        "status": STATUS_VI[n.status],
        "status_en": STATUS_EN[n.status],
        "alertname": n.alertname,
        "site": n.site,
        "ward": n.ward,
        "summary": n.annotation("summary_vi"),
        "summary_en": n.annotation("summary_en"),
        "count": str(len(n.firing())),
        "link": link,
        "key": n.key[:12],
    }
    return {param: _clip(fields[field], limits.get(param, 30)) for param, field in mapping.items()}


ZNS_FIELDS = ("status", "status_en", "alertname", "site", "ward", "summary", "summary_en", "count", "link", "key")


def page(n: Notification, link: str) -> str:
    """The full text behind the link, as a small HTML page readable on a phone."""
    body = html.escape(full_text(n, "")).replace("\n", "<br>\n")
    return (
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(headline(n))}</title></head>"
        f'<body style="font-family: sans-serif; max-width: 40em; margin: 1em">{body}'
        f'<p><a href="{html.escape(n.external_url)}">Alertmanager</a></p></body></html>'
    )
