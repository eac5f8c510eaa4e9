"""The certificate ledger: every site's digital certificates (chứng thư số).

One YAML file per inventory (``certificates:`` in its ``motcua.yml``) lists the
certificates, one line each, validated against the site registry like the
roster is::

    trust: {root: ca/root.pem, intermediates: [ca/issuing.pem]}
    renew_days: 30
    certificates:
      - {site: "26740", id: signing, type: signing, holder: Ủy ban nhân dân Phường Sài Gòn,
         unit: Bộ phận Một cửa, host: pc01, status: requested}

Beside the file sits the store: ``<site>/<label>.csr.pem`` (requests fetched
from the hosts) and ``<site>/<label>.crt.pem`` (certificates that passed the
import checks). Requests and certificates are public; private keys never
leave their token or host.

``motcua certs`` and ``playbooks/certificates.yml`` move a certificate through
``requested -> issued -> installed`` (and ``revoked``, set by people) and
rewrite the ledger in one canonical form (:func:`write_ledger`): one line per
certificate, the file's leading comments kept.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from ..durable import locked, write_atomic
from ..errors import ToolError
from ..validation import Checker, Field, InputError, LineDict, Problem, load_yaml
from .model import Registry

STATUSES = ("requested", "issued", "installed", "revoked")
TYPES = ("signing", "tls")
LOCALITY = "Thành phố Hồ Chí Minh"
COUNTRY = "VN"
DEFAULT_RENEW_DAYS = 30
MAX_VALIDITY_DAYS = 5 * 366  # longer than the national CA issues: refused as not sane

TOP_SPEC = {
    "trust": Field("mapping"),
    "renew_days": Field("int", minimum=1, maximum=365),
    "max_validity_days": Field("int", minimum=1, maximum=10 * 366),
    "certificates": Field("list", required=True),
}
TRUST_SPEC = {"root": Field("text", required=True), "intermediates": Field("list")}
ENTRY_SPEC = {
    "site": Field("code", required=True),
    "id": Field("ident", required=True),
    "type": Field("text", required=True, choices=TYPES),
    "holder": Field("text", required=True),
    "unit": Field("text", required=True),
    "host": Field("ident", required=True),
    "token_serial": Field("text"),
    "dns": Field("list"),
    "status": Field("text", required=True, choices=STATUSES),
    "generation": Field("int", minimum=1, maximum=999),
    "not_after": Field("any"),
    "serial": Field("text"),
    "issuer": Field("text"),
}
ENTRY_ORDER = tuple(ENTRY_SPEC)
_TOKEN_SERIAL = re.compile(r"^[A-Za-z0-9-]{4,32}$")
_CERT_SERIAL = re.compile(r"^[0-9a-f]{2,64}$")
_DNS = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
# Characters that RFC 4514 would need escaped in a DN, and that CA request forms refuse.
_DN_SPECIAL = set(',+"\\<>;=#')


class UnknownCertificateError(ToolError, KeyError):
    """A certificate key that the ledger does not hold (a KeyError too: a lookup that failed)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Certificate:
    """One certificate of one site, as the ledger records it."""

    site: str
    id: str
    type: str
    holder: str
    unit: str
    host: str  # host name suffix at the site (pc01): where the key lives
    status: str
    generation: int = 1
    token_serial: str | None = None
    dns: tuple[str, ...] = ()
    not_after: dt.datetime | None = None
    serial: str | None = None
    issuer: str | None = None
    line: int = field(default=0, compare=False)

    @property
    def key(self) -> str:
        """``<site>/<id>``: how messages and the command line name it."""
        return f"{self.site}/{self.id}"

    @property
    def label(self) -> str:
        """The key's and certificate's label on the token (a renewal is a new generation)."""
        return f"{self.id}-{self.generation}"

    def subject(self) -> list[tuple[str, str]]:
        """The subject the request carries and the issued certificate must carry (RFC 4514 names)."""
        return [
            ("serialNumber", f"MDV:{self.site}"),  # mã đơn vị: the site code
            ("C", COUNTRY),
            ("L", LOCALITY),
            ("O", self.holder),
            ("OU", self.unit),
            ("CN", self.dns[0] if self.type == "tls" else self.holder),
        ]

    def days_left(self, now: dt.datetime) -> float | None:
        return None if self.not_after is None else (self.not_after - now).total_seconds() / 86400

    def as_entry(self) -> dict[str, object]:
        """The ledger line (only fields that are set)."""
        out: dict[str, object] = {
            "site": self.site,
            "id": self.id,
            "type": self.type,
            "holder": self.holder,
            "unit": self.unit,
            "host": self.host,
            "token_serial": self.token_serial,
            "dns": list(self.dns) or None,
            "status": self.status,
            "generation": self.generation if self.generation != 1 else None,
            "not_after": self.not_after.strftime("%Y-%m-%dT%H:%M:%SZ") if self.not_after else None,
            "serial": self.serial,
            "issuer": self.issuer,
        }
        return {k: out[k] for k in ENTRY_ORDER if out.get(k) is not None}


@dataclass(frozen=True)
class Ledger:
    path: Path
    certificates: tuple[Certificate, ...]
    trust_root: Path | None = None
    trust_intermediates: tuple[Path, ...] = ()
    renew_days: int = DEFAULT_RENEW_DAYS
    max_validity_days: int = MAX_VALIDITY_DAYS
    header: str = ""

    @property
    def store(self) -> Path:
        return self.path.parent

    def csr_path(self, cert: Certificate) -> Path:
        return self.store / cert.site / f"{cert.label}.csr.pem"

    def cert_path(self, cert: Certificate) -> Path:
        return self.store / cert.site / f"{cert.label}.crt.pem"

    def get(self, key: str) -> Certificate:
        for cert in self.certificates:
            if cert.key == key:
                return cert
        known = ", ".join(c.key for c in self.certificates)
        raise UnknownCertificateError(f"{self.path}: no certificate {key!r} (known: {known})")

    def for_sites(self, sites: list[str] | None) -> list[Certificate]:
        return [c for c in self.certificates if not sites or c.site in sites]

    def with_updates(self, updated: list[Certificate]) -> Ledger:
        by_key = {c.key: c for c in updated}
        return replace(self, certificates=tuple(by_key.get(c.key, c) for c in self.certificates))

    def expiring(self, now: dt.datetime, days: int | None = None, sites: list[str] | None = None) -> list[Certificate]:
        """Issued or installed certificates (of ``sites``) ending within ``days`` (default renew_days), or ended."""
        limit = self.renew_days if days is None else days
        return [
            c
            for c in self.for_sites(sites)
            if c.status in ("issued", "installed") and c.not_after is not None and c.days_left(now) < limit
        ]


def _parse_time(raw: object) -> dt.datetime | None:
    if isinstance(raw, dt.datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=dt.UTC)
    if isinstance(raw, dt.date):
        return dt.datetime(raw.year, raw.month, raw.day, tzinfo=dt.UTC)
    if isinstance(raw, str):
        try:
            value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return None
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return None


def check_ledger(path: str | Path, registry: Registry, label: str | None = None) -> tuple[Ledger | None, list[Problem]]:
    """Validate a ledger file against the registry; the ledger (when valid) and every problem."""
    path = Path(path)
    label = label or str(path)
    problems: list[Problem] = []
    text = path.read_text(encoding="utf-8") if path.is_file() else None
    if text is None:
        return None, [Problem(label, 0, "", "", "certificate ledger not found", "certificate")]
    doc = load_yaml(path, label, problems)
    if doc is None:
        return None, problems or [Problem(label, 0, "", "", "the ledger is empty", "certificate")]
    check = Checker(label, problems, kind="certificate")
    top = check.mapping(doc, 1, "", "")
    if top is None:
        return None, sorted(problems)
    values = check.fields(top, "", "", TOP_SPEC)
    root, intermediates = _check_trust(check, top, path.parent)
    rows = top.get("certificates")
    certs: list[Certificate] = []
    seen: dict[str, int] = {}
    tokens: dict[str, tuple[tuple[str, str], int]] = {}
    if isinstance(rows, list):
        for index, raw in enumerate(rows):
            line = rows.line_of(index)  # type: ignore[attr-defined]
            cert = _check_entry(check, raw, line, registry)
            if cert is None:
                continue
            if cert.key in seen:
                check.report(line, cert.key, "id", f"duplicate certificate (first at line {seen[cert.key]})")
                continue
            seen[cert.key] = line
            if cert.token_serial and cert.status != "revoked":
                place = (cert.site, cert.host)
                first = tokens.get(cert.token_serial)
                if first and first[0] != place:
                    check.report(
                        line,
                        cert.key,
                        "token_serial",
                        f"token {cert.token_serial} is already in {first[0][0]}/{first[0][1]} (line {first[1]}): "
                        "one token sits in one PC",
                    )
                tokens.setdefault(cert.token_serial, (place, line))
            certs.append(cert)
    if problems:
        return None, sorted(problems)
    header = "".join(ln for ln in _leading_comments(text))
    return (
        Ledger(
            path=path,
            certificates=tuple(certs),
            trust_root=root,
            trust_intermediates=intermediates,
            renew_days=int(values.get("renew_days", DEFAULT_RENEW_DAYS)),  # type: ignore[arg-type]
            max_validity_days=int(values.get("max_validity_days", MAX_VALIDITY_DAYS)),  # type: ignore[arg-type]
            header=header,
        ),
        [],
    )


def _check_trust(check: Checker, top: LineDict, base: Path) -> tuple[Path | None, tuple[Path, ...]]:
    raw = top.get("trust")
    if not isinstance(raw, dict):
        return None, ()
    values = check.fields(raw, "", "trust.", TRUST_SPEC)  # type: ignore[arg-type]
    root = base / str(values["root"]) if "root" in values else None
    intermediates: list[Path] = []
    items = values.get("intermediates") or []
    for index, item in enumerate(items):  # type: ignore[arg-type]
        if not isinstance(item, str) or not item:
            check.report(raw.line_of("intermediates"), "", f"trust.intermediates[{index}]", "must be a file name")
            continue
        intermediates.append(base / item)
    return root, tuple(intermediates)


def _check_entry(check: Checker, raw: object, line: int, registry: Registry) -> Certificate | None:
    entry = check.mapping(raw, line, f"line {line}", "")
    if entry is None:
        return None
    who = f"{entry.get('site', '?')}/{entry.get('id', '?')}"
    before = len(check.problems)
    values = check.fields(entry, who, "", ENTRY_SPEC)
    if len(check.problems) != before:
        return None
    site_code = str(values["site"])
    kind = str(values["type"])
    status = str(values["status"])
    host = str(values["host"])
    site = registry.sites.get(site_code)
    if site is None:
        check.report(line, who, "site", f"unknown site {site_code!r}: not in the site registry")
    else:
        names = {h.name: h for h in site.hosts}
        found = names.get(f"{site.host_prefix}-{host}")
        if found is None:
            check.report(line, who, "host", f"site {site_code} has no host {host!r} ({site.host_prefix}-{host})")
        elif found.role != "counter":
            what = "signing token sits in" if kind == "signing" else "TLS key lives on"
            check.report(line, who, "host", f"a {what} a counter PC (playbooks/certificates.yml), not a {found.role}")
    for name in ("holder", "unit"):
        text = str(values[name])
        bad = sorted(set(text) & _DN_SPECIAL)
        if bad:
            check.report(line, who, name, f"must not contain {' '.join(bad)} (the CA's request form refuses them)")
        elif len(text) > 64:
            check.report(line, who, name, f"is {len(text)} characters; a certificate name takes at most 64")
    token_serial = values.get("token_serial")
    if token_serial is not None and not _TOKEN_SERIAL.fullmatch(str(token_serial)):
        check.report(line, who, "token_serial", f"{token_serial!r} is not a token serial (4-32 letters, digits, '-')")
    if kind == "tls" and token_serial is not None:
        check.report(line, who, "token_serial", "a TLS certificate's key is a file on its host, not on a token")
    dns = [str(d) for d in values.get("dns") or []]  # type: ignore[union-attr]
    if kind == "tls" and not dns:
        check.report(line, who, "dns", "a TLS certificate needs its DNS names")
    if kind == "signing" and dns:
        check.report(line, who, "dns", "a signing certificate carries no DNS names")
    for name in dns:
        if not _DNS.fullmatch(name):
            check.report(line, who, "dns", f"{name!r} is not a DNS name (lower-case)")
    not_after = None
    if "not_after" in values:
        not_after = _parse_time(values["not_after"])
        if not_after is None:
            check.report(line, who, "not_after", f"{values['not_after']!r} is not a date/time (2027-12-31T23:59:59Z)")
    if status in ("issued", "installed"):
        if "not_after" not in values:
            check.report(line, who, "not_after", f"a certificate with status {status} needs its not_after")
        if kind == "signing" and token_serial is None:
            check.report(line, who, "token_serial", f"a signing certificate with status {status} names its token")
    serial = values.get("serial")
    if serial is not None and not _CERT_SERIAL.fullmatch(str(serial)):
        check.report(line, who, "serial", f"{serial!r} is not a certificate serial (lower-case hex)")
    if len(check.problems) != before:
        return None
    return Certificate(
        site=site_code,
        id=str(values["id"]),
        type=kind,
        holder=str(values["holder"]),
        unit=str(values["unit"]),
        host=host,
        status=status,
        generation=int(values.get("generation", 1)),  # type: ignore[arg-type]
        token_serial=str(token_serial) if token_serial is not None else None,
        dns=tuple(dns),
        not_after=not_after,
        serial=str(serial) if serial is not None else None,
        issuer=str(values["issuer"]) if "issuer" in values else None,
        line=line,
    )


def _leading_comments(text: str) -> list[str]:
    out = []
    for line in text.splitlines(keepends=True):
        if line.startswith("#") or (out and not line.strip()):
            out.append(line if line.endswith("\n") else line + "\n")
        else:
            break
    while out and not out[-1].strip():
        out.pop()
    return out


def load_ledger(path: str | Path, registry: Registry, label: str | None = None) -> Ledger:
    ledger, problems = check_ledger(path, registry, label)
    if problems or ledger is None:
        raise InputError(problems, what="certificate ledger")
    return ledger


def _flow(value: object) -> str:
    return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=100000, sort_keys=False).strip()


def render_ledger(ledger: Ledger) -> str:
    lines = [ledger.header.rstrip("\n")] if ledger.header.strip() else []
    lines.append("---")
    if ledger.trust_root is not None:
        trust: dict[str, object] = {"root": _relative(ledger.trust_root, ledger.store)}
        if ledger.trust_intermediates:
            trust["intermediates"] = [_relative(p, ledger.store) for p in ledger.trust_intermediates]
        lines.append(f"trust: {_flow(trust)}")
    if ledger.renew_days != DEFAULT_RENEW_DAYS:
        lines.append(f"renew_days: {ledger.renew_days}")
    if ledger.max_validity_days != MAX_VALIDITY_DAYS:
        lines.append(f"max_validity_days: {ledger.max_validity_days}")
    lines.append("certificates:")
    for cert in ledger.certificates:
        lines.append(f"  - {_flow(cert.as_entry())}")  # site is a str: ward codes stay quoted, as in sites.yml
    return "\n".join(lines) + "\n"


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def write_ledger(ledger: Ledger) -> None:
    """Rewrite the ledger file in its canonical form, atomically and durably.

    Whoever reads the ledger to change it holds :func:`ledger_lock` from the read to this write.
    """
    write_atomic(ledger.path, render_ledger(ledger))


def ledger_lock(path: Path):
    """The ledger's lock (a context manager): one read-modify-write of the ledger at a time."""
    return locked(path)
