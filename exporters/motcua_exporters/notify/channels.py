"""The bridge's channels: Zalo Official Account, Zalo ZNS, and an HTTP SMS gateway.

Each ``send`` returns an :class:`Outcome`: delivered, transient (retry later), or
permanent (this channel cannot reach this person: try the next one). What the
bridge knows of each provider's API (docs/monitoring.md, "Notification bridge"):

Zalo Official Account, customer-service message ("tin tư vấn")
    POST {api_url}v3.0/oa/message/cs, header ``access_token``, JSON
    ``{"recipient": {"user_id": ...}, "message": {"text": ...}}`` (text at most 2,000
    characters); the answer is HTTP 200 with ``{"error": 0, "data": {"message_id": ...}}``
    or a negative ``error`` code. -216 (invalid token) and -220 (expired or removed
    token) mean: refresh the access token and try again. Codes saying the person cannot
    be messaged (not following the OA, no interaction within the window) are permanent
    for this channel: ZNS, by phone number, is the next one.
Zalo OAuth v4 (token refresh)
    POST {oauth_url}v4/oa/access_token, header ``secret_key`` (the app's secret), form
    ``refresh_token``, ``app_id``, ``grant_type=refresh_token``; answers a new
    ``access_token``, a new ``refresh_token`` and ``expires_in`` (seconds, 25 hours).
    A refresh token is single-use: the new one is saved at once (state directory).
ZNS (Zalo Notification Service)
    POST {api_url}message/template, header ``access_token``, JSON ``{"phone":
    "84xxxxxxxxx", "template_id", "template_data": {...}, "tracking_id"}``; the same
    ``error`` convention. A template must be approved by Zalo; a rejected template or
    parameter is permanent.
SMS gateway
    Configurable request (URL, method, JSON / form / query, field names, static fields,
    an authentication header) and success / permanent-failure fields, so a Vietnamese
    brand-name SMS provider fits without code changes.

HTTP 429 and 5xx, timeouts and refused connections are transient everywhere; a
``Retry-After`` header sets the next attempt's time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.files import write_atomic

log = logging.getLogger("notify")

DELIVERED, TRANSIENT, PERMANENT = "delivered", "transient", "permanent"
TOKEN_ERRORS = (-216, -220)


@dataclass(frozen=True)
class Rendered:
    """One notification as each channel says it."""

    key: str
    zalo: str
    sms: str
    zns: dict[str, str]


@dataclass(frozen=True)
class Outcome:
    result: str  # delivered | transient | permanent
    detail: str
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.result == DELIVERED


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any  # parsed JSON, or the text
    retry_after: float | None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class Http:
    """One HTTP call with a timeout and the configured CA; never raises for HTTP or network errors."""

    def __init__(self, timeout: float, ca_file: Path | None = None, basic_auth: tuple[str, str] | None = None):
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self.authorization = ""
        if basic_auth:
            token = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode()
            self.authorization = f"Basic {token}"

    def call(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> Reply | Outcome:
        if self.authorization:
            headers = {**headers, "Authorization": self.authorization}
        request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310 - http(s) only
        try:
            opener = urllib.request.urlopen(request, timeout=self.timeout, context=self.context)  # noqa: S310 - configured http(s) URL
            with opener as response:
                raw, status, after = response.read(1 << 20), response.status, response.headers.get("Retry-After")
        except urllib.error.HTTPError as exc:
            raw, status, after = exc.read(1 << 20), exc.code, exc.headers.get("Retry-After")
        except (TimeoutError, ConnectionError, urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return Outcome(TRANSIENT, f"{urllib.parse.urlsplit(url).netloc}: {reason}")
        text = raw.decode("utf-8", "replace")
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        return Reply(status, parsed, _retry_after(after))


def http_failure(reply: Reply, what: str) -> Outcome | None:
    """Transient for 429 and 5xx, permanent for another non-2xx status; None for 2xx."""
    if reply.status == 429 or reply.status >= 500:
        return Outcome(TRANSIENT, f"{what}: HTTP {reply.status}", reply.retry_after)
    if not 200 <= reply.status < 300:
        return Outcome(PERMANENT, f"{what}: HTTP {reply.status} {str(reply.body)[:200]}")
    return None


def read_secret(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip()


# ---------------------------------------------------------------- Zalo
@dataclass
class ZaloSettings:
    api_url: str  # https://openapi.zalo.me/
    oauth_url: str  # https://oauth.zaloapp.com/
    app_id: str
    app_secret_file: Path
    refresh_token_file: Path  # the first refresh token (vaulted); later ones live in the state directory
    transient_errors: tuple[int, ...] = ()  # Zalo codes to retry (rate limits, "system busy")


class ZaloTokens:
    """The OA access token: refreshed on -216/-220 or when it is about to expire; rotated refresh tokens saved."""

    def __init__(self, settings: ZaloSettings, http: Http, state_dir: Path):
        self.settings = settings
        self.http = http
        self.file = state_dir / "zalo-token.json"
        self.lock = threading.Lock()
        self.access: str | None = None
        self.expires = 0.0
        self.refreshes = {"ok": 0, "failed": 0}
        if self.file.exists():
            try:
                saved = json.loads(self.file.read_text(encoding="utf-8"))
                self.access, self.expires = saved.get("access_token"), float(saved.get("expires", 0))
            except (ValueError, OSError):
                log.warning("%s is unreadable: starting from the configured refresh token", self.file)

    def _refresh_token(self) -> tuple[str, str]:
        """The token to refresh with, and the seed (the configured token's hash) its chain began from.

        The configured token starts a chain; the rotated ones are saved here. A configured token
        that is not this chain's seed is a new grant (the operator authorised the app again, e.g.
        for a rebuilt host): its chain replaces the saved one.
        """
        configured = read_secret(self.settings.refresh_token_file)
        seed = hashlib.sha256(configured.encode()).hexdigest()
        if self.file.exists():
            try:
                saved = json.loads(self.file.read_text(encoding="utf-8"))
                if saved.get("refresh_token") and saved.get("seed") == seed:
                    return str(saved["refresh_token"]), seed
            except (ValueError, OSError):
                pass
        return configured, seed

    def _save(self, access: str, refresh: str, expires: float, seed: str) -> None:
        state = {"access_token": access, "refresh_token": refresh, "expires": expires, "seed": seed}
        write_atomic(self.file, json.dumps(state), mode=0o600)

    def token(self) -> str | Outcome:
        with self.lock:
            if self.access and time.time() < self.expires - 300:
                return self.access
            return self._refresh()

    def expired(self, used: str) -> str | Outcome:
        """The API refused ``used``: refresh unless another thread already did."""
        with self.lock:
            if self.access and self.access != used and time.time() < self.expires - 300:
                return self.access
            return self._refresh()

    def _refresh(self) -> str | Outcome:
        s = self.settings
        try:
            secret, (refresh, seed) = read_secret(s.app_secret_file), self._refresh_token()
        except OSError as exc:
            self.refreshes["failed"] += 1
            return Outcome(PERMANENT, f"Zalo credentials unreadable: {exc}")
        body = urllib.parse.urlencode({"refresh_token": refresh, "app_id": s.app_id, "grant_type": "refresh_token"})
        reply = self.http.call(
            "POST",
            urllib.parse.urljoin(s.oauth_url, "v4/oa/access_token"),
            {"secret_key": secret, "Content-Type": "application/x-www-form-urlencoded"},
            body.encode(),
        )
        if isinstance(reply, Outcome):
            self.refreshes["failed"] += 1
            return reply
        failure = http_failure(reply, "Zalo token refresh")
        data = reply.body if isinstance(reply.body, dict) else {}
        if failure or not data.get("access_token") or not data.get("refresh_token"):
            self.refreshes["failed"] += 1
            if failure and failure.result == TRANSIENT:
                return failure
            detail = data.get("error_description") or data.get("message") or data.get("error") or reply.body
            # A used or expired refresh token needs a person (a new OAuth grant): not worth retrying.
            return Outcome(PERMANENT, f"Zalo token refresh refused: {str(detail)[:200]}")
        try:
            expires_in = float(data.get("expires_in") or 3600)
        except ValueError:
            expires_in = 3600.0
        self.access, self.expires = str(data["access_token"]), time.time() + expires_in
        self._save(self.access, str(data["refresh_token"]), self.expires, seed)
        self.refreshes["ok"] += 1
        log.info("Zalo access token refreshed (valid %.0f s)", expires_in)
        return self.access


def zalo_result(reply: Reply, what: str, transient_errors: tuple[int, ...]) -> Outcome | int:
    """Outcome of a Zalo API reply, or the token error code (-216/-220) to refresh for."""
    failure = http_failure(reply, what)
    if failure:
        return failure
    if not isinstance(reply.body, dict) or "error" not in reply.body:
        return Outcome(TRANSIENT, f"{what}: unexpected answer {str(reply.body)[:200]}")
    code = reply.body.get("error")
    if code == 0:
        data = reply.body.get("data") or {}
        return Outcome(DELIVERED, f"{what}: {data.get('message_id') or data.get('msg_id') or 'sent'}")
    message = reply.body.get("message", "")
    if code in TOKEN_ERRORS:
        return int(code)
    if code in transient_errors:
        return Outcome(TRANSIENT, f"{what}: error {code} {message}", reply.retry_after)
    return Outcome(PERMANENT, f"{what}: error {code} {message}")


class ZaloApi:
    """Calls with the OA token; a token error refreshes once and repeats the call."""

    def __init__(self, settings: ZaloSettings, tokens: ZaloTokens, http: Http):
        self.settings, self.tokens, self.http = settings, tokens, http

    def post(self, url: str, payload: dict[str, Any], what: str) -> Outcome:
        token = self.tokens.token()
        for _ in range(2):
            if isinstance(token, Outcome):
                return token
            reply = self.http.call(
                "POST",
                url,
                {"access_token": token, "Content-Type": "application/json"},
                json.dumps(payload, ensure_ascii=False).encode(),
            )
            if isinstance(reply, Outcome):
                return reply
            result = zalo_result(reply, what, self.settings.transient_errors)
            if isinstance(result, Outcome):
                return result
            token = self.tokens.expired(token)
        return Outcome(TRANSIENT, f"{what}: the access token was refused again after a refresh")


@dataclass
class OaChannel:
    api: ZaloApi
    name: str = "zalo"

    def send(self, recipient: dict[str, str], message: Rendered) -> Outcome:
        url = urllib.parse.urljoin(self.api.settings.api_url, "v3.0/oa/message/cs")
        payload = {"recipient": {"user_id": recipient["zalo"]}, "message": {"text": message.zalo}}
        return self.api.post(url, payload, "Zalo OA")


@dataclass
class ZnsChannel:
    api: ZaloApi
    api_url: str
    template_id: str
    name: str = "zns"

    def send(self, recipient: dict[str, str], message: Rendered) -> Outcome:
        url = urllib.parse.urljoin(self.api_url, "message/template")
        payload = {
            "phone": international(recipient["phone"]),
            "template_id": self.template_id,
            "template_data": message.zns,
            "tracking_id": message.key[:48],
        }
        return self.api.post(url, payload, "Zalo ZNS")


# ---------------------------------------------------------------- SMS
def international(phone: str) -> str:
    """'0901234567' or '+84901234567' -> '84901234567'."""
    digits = phone.lstrip("+")
    return "84" + digits[1:] if digits.startswith("0") else digits


def phone_as(phone: str, style: str) -> str:
    number = international(phone)
    return {"84": number, "+84": "+" + number, "0": "0" + number[2:]}[style]


@dataclass
class SmsSettings:
    url: str
    method: str = "POST"  # POST | GET
    encoding: str = "json"  # json | form | query
    to_field: str = "to"
    text_field: str = "text"
    phone_format: str = "84"  # 84 | +84 | 0
    fields: dict[str, str] = field(default_factory=dict)  # static fields (brand name, SMS type)
    secret_fields: dict[str, Path] = field(default_factory=dict)  # field -> file holding its value (API key)
    auth_header: str | None = None  # e.g. Authorization
    auth_value_file: Path | None = None  # its value ("Bearer ..." or "Basic ...")
    success_field: str | None = None  # a field of the JSON answer (dotted path) ...
    success_values: tuple[str, ...] = ()  # ... whose value means "accepted"
    permanent_values: tuple[str, ...] = ()  # ... whose value means "will never be accepted" (bad number)
    max_length: int = 160


def _dig(body: Any, path: str) -> str | None:
    for part in path.split("."):
        if not isinstance(body, dict) or part not in body:
            return None
        body = body[part]
    return None if body is None else str(body)


@dataclass
class SmsChannel:
    settings: SmsSettings
    http: Http
    name: str = "sms"

    def send(self, recipient: dict[str, str], message: Rendered) -> Outcome:
        s = self.settings
        try:
            values = {**s.fields, **{k: read_secret(p) for k, p in s.secret_fields.items()}}
            headers = {s.auth_header: read_secret(s.auth_value_file)} if s.auth_header and s.auth_value_file else {}
        except OSError as exc:
            return Outcome(PERMANENT, f"SMS gateway credentials unreadable: {exc}")
        values[s.to_field] = phone_as(recipient["phone"], s.phone_format)
        values[s.text_field] = message.sms
        url, body = s.url, None
        if s.encoding == "query":
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(values)
        elif s.encoding == "form":
            body = urllib.parse.urlencode(values).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            body = json.dumps(values, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        reply = self.http.call(s.method, url, headers, body)
        if isinstance(reply, Outcome):
            return reply
        failure = http_failure(reply, "SMS gateway")
        if failure:
            return failure
        if not s.success_field:
            return Outcome(DELIVERED, f"SMS gateway: HTTP {reply.status}")
        value = _dig(reply.body, s.success_field)
        if value in s.success_values:
            return Outcome(DELIVERED, f"SMS gateway: {s.success_field}={value}")
        if value in s.permanent_values:
            return Outcome(PERMANENT, f"SMS gateway: {s.success_field}={value}")
        return Outcome(TRANSIENT, f"SMS gateway: {s.success_field}={value}", reply.retry_after)
