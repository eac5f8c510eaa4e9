"""motcua-notify's config file (the monitoring_alertmanager role writes it from the duty roster).

::

    state_dir: /var/lib/motcua-notify     # queue, delivered keys, rotated Zalo token, dead letters
    public_url: https://mon.example/notify/   # links in messages point here (/m/<id>)
    dedupe_window: 15m                    # the same group and status within this time: delivered once
    timeout: 10s                          # each provider call
    workers: 4
    retry: {attempts: 5, initial: 5s, max: 5m}   # per channel, exponential backoff
    tls: {ca_file: /etc/ssl/certs/ca-certificates.crt}
    recipients:                           # Alertmanager receiver name -> a person
      duty-an.nv: {name: Nguyễn Văn An, channels: [zalo, zns, sms], zalo: "8471...", phone: "0901234567"}
    zalo: {api_url: https://openapi.zalo.me/, oauth_url: https://oauth.zaloapp.com/, app_id: "...",
           app_secret_file: ..., refresh_token_file: ..., transient_errors: [-32]}
    zns: {api_url: https://business.openapi.zalo.me/, template_id: "...",
          template_data: {trang_thai: status, canh_bao: alertname, don_vi: site, chi_tiet: link},
          lengths: {chi_tiet: 100}}
    sms: {url: ..., method: POST, encoding: json, to_field: Phone, text_field: Content, phone_format: "0",
          fields: {Brandname: DXHCM}, secret_fields: {ApiKey: /etc/motcua/notify/sms-api-key},
          success: {field: CodeResult, values: ["100"], permanent: ["99"]}}
    cluster:                              # the monitoring pair: the bridge on each host
      name: dx-mon01                      # this host (its place in the sorted names sets its delay)
      peers: {dx-mon02: https://mon02.example:9096/}
      wait: 5s                            # each place after the first waits this long, then asks the peers
    heartbeat:                            # the dead man's switch (POST /heartbeat takes the Watchdog)
      timeout: 3m                         # a peer's Watchdog not seen for this long: the peer is silent
      alertmanager: https://mon01.example:9093/   # where MonitoringPeerSilent is raised (this host's)
      runbook_url: https://.../monitoring-peer-silent.md
      external: {url: https://heartbeat.example/ping/..., method: POST}  # pinged on this host's Watchdog
    plane:                                # how the bridge reaches the monitoring plane's own services (its
      ca_file: /etc/motcua/web/ca.pem     # Alertmanager and the peer bridges): their CA and basic auth;
      username: monitoring                # the providers (Zalo, SMS, the external heartbeat) keep tls.ca_file
      password_file: /etc/motcua/web/monitoring.password
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..core.config import ConfigError, Section, load_yaml
from .channels import SmsSettings, ZaloSettings
from .message import ZNS_FIELDS

CHANNELS = ("zalo", "zns", "sms")
NEEDS = {"zalo": "zalo", "zns": "phone", "sms": "phone"}
PHONE = re.compile(r"^(?:0|\+84)[1-9]\d{8}$")
ZALO_ID = re.compile(r"^\d{6,24}$")
RECEIVER = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass
class NotifyConfig:
    file: Path
    state_dir: Path
    public_url: str
    dedupe_window: float
    timeout: float
    workers: int
    attempts: int
    initial_backoff: float
    max_backoff: float
    recipients: dict[str, dict[str, object]]
    ca_file: Path | None = None
    zalo: ZaloSettings | None = None
    zns: dict[str, object] = field(default_factory=dict)
    sms: SmsSettings | None = None
    cluster: ClusterSettings | None = None
    heartbeat: HeartbeatSettings | None = None
    plane: PlaneSettings | None = None


@dataclass(frozen=True)
class PlaneSettings:
    """The monitoring plane's services as a client sees them: their CA and one basic-auth user."""

    ca_file: Path | None
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class ClusterSettings:
    name: str
    peers: dict[str, str]  # name -> the peer bridge's base URL
    wait: float

    @property
    def position(self) -> int:
        """This bridge's place among the pair (sorted names): the first delivers at once."""
        return sorted([self.name, *self.peers]).index(self.name)


@dataclass(frozen=True)
class HeartbeatSettings:
    timeout: float
    alertmanager: str
    runbook_url: str = ""
    external_url: str = ""
    external_method: str = "POST"


def _url(section: Section, key: str, default: object = ...) -> str:
    value = section.str(key) if default is ... else section.str(key, default)
    if value and not re.match(r"^https?://[^/\s]+/", value + ("/" if value.count("/") == 2 else "")):
        raise section.error(key, f"must be an http(s) URL, not {value!r}")
    return value


def _base(value: str) -> str:
    return value if value.endswith("/") else value + "/"


def read_plane(root: Section) -> PlaneSettings | None:
    """The ``plane`` section (the plane's CA, a user and the file holding its password), or None without one."""
    section = root.section("plane", None)
    if section is None:
        return None
    ca = section.path("ca_file", None, must_exist=True)
    username = section.str("username")
    if not username or ":" in username:
        raise section.error("username", "must be a user name without ':'")
    password_file = section.path("password_file", must_exist=True)
    try:
        password = password_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise section.error("password_file", f"cannot be read: {exc.strerror}") from None
    if not password:
        raise section.error("password_file", f"{password_file} is empty")
    section.done()
    return PlaneSettings(ca, username, password)


def load(path: str | Path) -> NotifyConfig:
    root = load_yaml(path)
    state_dir = root.path("state_dir", Path("/var/lib/motcua-notify"))
    public_url = _base(_url(root, "public_url"))
    dedupe = root.duration("dedupe_window", 900.0, minimum=0.0)
    timeout = root.duration("timeout", 10.0, minimum=0.1)
    workers = root.int("workers", 4, minimum=1, maximum=64)
    retry = root.section("retry", None)
    attempts, initial, maximum = 5, 5.0, 300.0
    if retry is not None:
        attempts = retry.int("attempts", 5, minimum=1, maximum=100)
        initial = retry.duration("initial", 5.0, minimum=0.01)
        maximum = retry.duration("max", 300.0, minimum=initial)
        retry.done()
    ca_file = None
    tls = root.section("tls", None)
    if tls is not None:
        ca_file = tls.path("ca_file", None, must_exist=True)
        tls.done()
    zalo = None
    section = root.section("zalo", None)
    if section is not None:
        errors = section.list("transient_errors", [])
        if not all(isinstance(e, int) and not isinstance(e, bool) for e in errors):
            raise section.error("transient_errors", "must be a list of Zalo error codes (whole numbers)")
        zalo = ZaloSettings(
            _base(_url(section, "api_url", "https://openapi.zalo.me/")),
            _base(_url(section, "oauth_url", "https://oauth.zaloapp.com/")),
            str(section.str("app_id")),
            section.path("app_secret_file", must_exist=True),
            section.path("refresh_token_file", must_exist=True),
            tuple(errors),
        )
        section.done()
    zns: dict[str, object] = {}
    section = root.section("zns", None)
    if section is not None:
        if zalo is None:
            raise section.error(None, "ZNS uses the Official Account's token: configure zalo too")
        mapping = section.mapping("template_data")
        for param, source in mapping.items():
            if source not in ZNS_FIELDS:
                raise section.error(f"template_data.{param}", f"must be one of {', '.join(ZNS_FIELDS)}")
        lengths = section.mapping("lengths", {})
        for param, length in lengths.items():
            if param not in mapping or isinstance(length, bool) or not isinstance(length, int) or length < 1:
                raise section.error(f"lengths.{param}", "must be a positive whole number for a template_data key")
        zns = {
            "api_url": _base(_url(section, "api_url", "https://business.openapi.zalo.me/")),
            "template_id": str(section.raw("template_id") or ""),
            "template_data": {str(k): str(v) for k, v in mapping.items()},
            "lengths": {str(k): int(v) for k, v in lengths.items()},
        }
        if not zns["template_id"]:
            raise section.error("template_id", "is required")
        section.done()
    sms = None
    section = root.section("sms", None)
    if section is not None:
        success = section.section("success", None)
        success_field, success_values, permanent = None, (), ()
        if success is not None:
            success_field = success.str("field")
            success_values = tuple(str(v) for v in success.list("values"))
            permanent = tuple(str(v) for v in success.list("permanent", []))
            success.done()
        auth = section.section("auth", None)
        header = value_file = None
        if auth is not None:
            header = auth.str("header")
            value_file = auth.path("value_file", must_exist=True)
            auth.done()
        secret_fields = {}
        for key, value in section.mapping("secret_fields", {}).items():
            if not isinstance(value, str) or not Path(value).exists():
                raise section.error(f"secret_fields.{key}", f"no such file: {value}")
            secret_fields[str(key)] = Path(value)
        sms = SmsSettings(
            _url(section, "url"),
            section.str("method", "POST", choices=("POST", "GET")),
            section.str("encoding", "json", choices=("json", "form", "query")),
            section.str("to_field", "to"),
            section.str("text_field", "text"),
            str(section.raw("phone_format", "84")),
            {str(k): str(v) for k, v in section.mapping("fields", {}).items()},
            secret_fields,
            header,
            value_file,
            success_field,
            success_values,
            permanent,
            section.int("max_length", 160, minimum=40, maximum=1600),
        )
        if sms.phone_format not in ("84", "+84", "0"):
            raise section.error("phone_format", "must be 84, +84 or 0")
        if sms.method == "GET" and sms.encoding != "query":
            raise section.error("encoding", "a GET request carries its fields in the query: encoding: query")
        section.done()
    cluster = None
    section = root.section("cluster", None)
    if section is not None:
        name = section.str("name")
        if not RECEIVER.match(name):
            raise section.error("name", f"{name!r} is not a host name")
        peers: dict[str, str] = {}
        for peer, url in section.mapping("peers").items():
            if not isinstance(peer, str) or not RECEIVER.match(peer) or peer == name:
                raise section.error(f"peers.{peer}", "must be another host's name")
            if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+/", _base(url)):
                raise section.error(f"peers.{peer}", f"must be the peer bridge's http(s) URL, not {url!r}")
            peers[peer] = _base(url)
        cluster = ClusterSettings(name, peers, section.duration("wait", 5.0, minimum=0.0))
        section.done()
    heartbeat = None
    section = root.section("heartbeat", None)
    if section is not None:
        if cluster is None:
            raise section.error(None, "the heartbeat watches the peers named in cluster: configure cluster too")
        external = section.section("external", None)
        external_url, external_method = "", "POST"
        if external is not None:
            external_url = _url(external, "url")
            external_method = external.str("method", "POST", choices=("POST", "GET"))
            external.done()
        heartbeat = HeartbeatSettings(
            section.duration("timeout", 180.0, minimum=1.0),
            _base(_url(section, "alertmanager")),
            section.str("runbook_url", ""),
            external_url,
            external_method,
        )
        section.done()
    plane = read_plane(root)
    configured = {"zalo": zalo is not None, "zns": bool(zns), "sms": sms is not None}
    recipients: dict[str, dict[str, object]] = {}
    for name, raw in root.mapping("recipients").items():
        if not isinstance(name, str) or not RECEIVER.match(name):
            raise root.error(f"recipients.{name}", "is not an Alertmanager receiver name")
        person = Section(raw, root.file, f"recipients.{name}")
        entry: dict[str, object] = {"name": person.str("name")}
        channels = person.list("channels")
        if not channels:
            raise person.error("channels", "must name at least one channel")
        for key in ("zalo", "phone"):
            value = person.raw(key, None)
            if value is not None:
                entry[key] = str(value)
        if "phone" in entry and not PHONE.match(str(entry["phone"])):
            raise person.error("phone", f"{entry['phone']!r} is not a Vietnamese number (0xxxxxxxxx or +84xxxxxxxxx)")
        if "zalo" in entry and not ZALO_ID.match(str(entry["zalo"])):
            raise person.error("zalo", f"{entry['zalo']!r} is not a Zalo user id (digits)")
        for index, channel in enumerate(channels):
            if channel not in CHANNELS:
                raise person.error(f"channels[{index}]", f"unknown channel {channel!r} (known: {', '.join(CHANNELS)})")
            if NEEDS[channel] not in entry:
                raise person.error(f"channels[{index}]", f"{channel} needs the person's {NEEDS[channel]}")
            if not configured[channel]:
                raise person.error(f"channels[{index}]", f"{channel} is not configured in this file")
        entry["channels"] = list(channels)
        person.done()
        recipients[name] = entry
    root.done()
    return NotifyConfig(
        Path(path),
        state_dir,
        public_url,
        dedupe,
        timeout,
        workers,
        attempts,
        initial,
        maximum,
        recipients,
        ca_file,
        zalo,
        zns,
        sms,
        cluster,
        heartbeat,
        plane,
    )


__all__ = ["CHANNELS", "ClusterSettings", "ConfigError", "HeartbeatSettings", "NotifyConfig", "PlaneSettings", "load"]
