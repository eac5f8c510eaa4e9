"""What `motcua certs` and playbooks/certificates.yml do with the ledger.

- :func:`plan`: per host, the keys, requests and certificates the playbook
  handles (from the ledger and its store);
- :func:`export_batch`: the registration batch (Vietnamese headers; CSV and XLSX)
  for the CA's request form, every requested certificate with its CSR;
- :func:`check_issued` / :func:`import_files`: an issued certificate is
  accepted only when its chain verifies against the configured root (real
  ``openssl verify``), its key is the request's, its subject is the ward's and
  its validity window is sane; nothing is stored for a refused one;
- :func:`record`: what the playbook did (requests fetched, certificates
  installed) written back to the ledger;
- :func:`mark_renewal`: certificates near their end become new requests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..access import InventorySource
from ..durable import write_atomic
from ..errors import ToolError
from ..registry import Registry
from ..registry.certificates import Certificate, Ledger, ledger_lock, load_ledger, write_ledger
from ..spreadsheet import csv_document, xlsx_document

CLOCK_SKEW = dt.timedelta(minutes=5)
# Where the monitoring host keeps copies of the sites' certificates for the certificate exporter.
MONITORING_DIR = "/etc/motcua/certificates"
OID = {
    "serialNumber": NameOID.SERIAL_NUMBER,
    "C": NameOID.COUNTRY_NAME,
    "L": NameOID.LOCALITY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "CN": NameOID.COMMON_NAME,
}
TYPE_LABELS = {"signing": "Chứng thư số ký số (tổ chức)", "tls": "Chứng thư số SSL/TLS (máy chủ)"}
EXPORT_HEADERS = (
    "STT",
    "Mã đơn vị",
    "Tên đơn vị",
    "Tên chủ thể (CN)",
    "Bộ phận (OU)",
    "Loại chứng thư số",
    "Số serial token",
    "Máy giữ khóa",
    "Tệp yêu cầu (CSR)",
    "SHA-256 của CSR",
    "Yêu cầu (CSR, PEM)",
)


class CertError(ToolError):
    """A problem with the command's input: printed as is, exit 2."""


def load(source: InventorySource) -> tuple[Registry, Ledger]:
    registry = source.load()
    if source.certificates is None:
        raise CertError(f"{source.config_file}: this inventory names no certificate ledger (key `certificates`)")
    return registry, load_ledger(source.certificates, registry)


@contextmanager
def changing(source: InventorySource) -> Iterator[tuple[Registry, Ledger]]:
    """The registry and the ledger read under the ledger's lock, for one read-modify-write of it."""
    if source.certificates is None:
        raise CertError(f"{source.config_file}: this inventory names no certificate ledger (key `certificates`)")
    with ledger_lock(source.certificates):
        yield load(source)


def escape_dn(value: str) -> str:
    """RFC 4514 escaping of one attribute value (the ledger refuses the specials, but be exact)."""
    out = "".join("\\" + ch if ch in ',+"\\<>;=' else ch for ch in value)
    if out.startswith(("#", " ")):
        out = "\\" + out
    return out[:-1] + "\\ " if out.endswith(" ") else out


def dn_string(cert: Certificate) -> str:
    """The subject as certtool's template takes it: most specific first (RFC 4514 order)."""
    return ",".join(f"{'2.5.4.5' if k == 'serialNumber' else k}={escape_dn(v)}" for k, v in reversed(cert.subject()))


def _hostname(registry: Registry, cert: Certificate) -> str:
    return f"{registry.sites[cert.site].host_prefix}-{cert.host}"


def plan(registry: Registry, ledger: Ledger, sites: list[str] | None = None) -> dict[str, object]:
    """What the playbook does, per host: JSON for ``motcua certs plan``."""
    hosts: dict[str, list[dict[str, object]]] = {}
    site_files: dict[str, list[dict[str, object]]] = {}
    site_revoked: dict[str, list[str]] = {}
    exporter_sources: list[dict[str, object]] = []
    exporter_files: list[dict[str, object]] = []
    exporter_controller: list[dict[str, object]] = []  # the same sources, read where they are now (preflight)
    for cert in ledger.for_sites(sites):
        if cert.site not in registry.sites:
            continue
        csr, crt = ledger.csr_path(cert), ledger.cert_path(cert)
        item = {
            "key": cert.key,
            "id": cert.id,
            "site": cert.site,
            "type": cert.type,
            "label": cert.label,
            "status": cert.status,
            "dn": dn_string(cert),
            "subject_ordered": [{k: v} for k, v in cert.subject()],
            "dns": list(cert.dns),
            "token_serial": cert.token_serial,
            "csr_file": str(csr),
            "csr_present": csr.is_file(),
            "cert_file": str(crt),
            "cert_present": crt.is_file(),
        }
        hosts.setdefault(_hostname(registry, cert), []).append(item)
        if cert.status == "revoked":
            site_revoked.setdefault(cert.site, []).append(f"{cert.id}.crt")
        if cert.status in ("issued", "installed") and crt.is_file():
            site_files.setdefault(cert.site, []).append({"key": cert.key, "src": str(crt), "name": f"{cert.id}.crt"})
            on_host = f"{MONITORING_DIR}/{cert.site}/{cert.id}.crt"
            exporter_sources.append({"name": f"{cert.site}-{cert.id}", "site": cert.site, "file": on_host})
            exporter_files.append({"name": f"{cert.site}-{cert.id}", "src": str(crt), "dest": on_host})
            exporter_controller.append({"name": f"{cert.site}-{cert.id}", "site": cert.site, "file": str(crt)})
    trust = [str(p) for p in (ledger.trust_root, *ledger.trust_intermediates) if p is not None]
    return {
        "ledger": str(ledger.path),
        "hosts": hosts,
        "site_files": site_files,
        "site_revoked": site_revoked,
        "exporter_sources": exporter_sources,
        "exporter_files": exporter_files,
        "exporter_sources_on_controller": exporter_controller,
        "trust_files": trust,
    }


# ---- registration export


@dataclass(frozen=True)
class Batch:
    """The registration batch: one row per requested certificate (EXPORT_HEADERS' columns)."""

    rows: list[list[str]]

    def csv(self) -> str:
        """For programs: CSV, every cell a spreadsheet could read as a formula (the CSR's
        ``-----BEGIN``) behind an apostrophe (motcua.spreadsheet)."""
        return csv_document(EXPORT_HEADERS, self.rows)

    def xlsx(self) -> bytes:
        """For people: a workbook whose every cell is text, exactly as in the rows."""
        return xlsx_document(EXPORT_HEADERS, self.rows, sheet="Đăng ký chứng thư số")


def export_batch(registry: Registry, ledger: Ledger, sites: list[str] | None = None) -> tuple[Batch, list[str]]:
    """CSV text (UTF-8 with BOM, so spreadsheet programs read the Vietnamese) and problems.

    Every requested certificate (of the chosen sites) with its CSR; a request
    whose CSR has not been fetched yet is a problem and nothing is exported.
    """
    rows, problems = [], []
    for cert in ledger.for_sites(sites):
        if cert.status != "requested":
            continue
        csr_file = ledger.csr_path(cert)
        if not csr_file.is_file():
            problems.append(
                f"{ledger.path}:{cert.line}: certificate {cert.key}: no CSR yet ({csr_file}); "
                f"run playbooks/certificates.yml --limit site_{cert.site} --tags certificates_request"
            )
            continue
        pem = csr_file.read_bytes()
        problem = _csr_problem(cert, pem)
        if problem:
            problems.append(f"{csr_file}: certificate {cert.key}: {problem}")
            continue
        site = registry.sites[cert.site]
        rows.append(
            [
                str(len(rows) + 1),
                cert.site,
                site.name,
                dict(cert.subject())["CN"],
                cert.unit,
                TYPE_LABELS[cert.type],
                cert.token_serial or "",
                _hostname(registry, cert),
                str(csr_file.relative_to(ledger.store)),
                hashlib.sha256(pem).hexdigest(),
                pem.decode().strip(),
            ]
        )
    return Batch(rows), problems


def _name_values(name: x509.Name) -> dict[str, str]:
    out = {}
    for short, oid in OID.items():
        values = name.get_attributes_for_oid(oid)
        if values:
            out[short] = str(values[0].value)
    return out


def _subject_problem(cert: Certificate, name: x509.Name, what: str) -> str | None:
    got, want = _name_values(name), dict(cert.subject())
    if got.get("serialNumber") != want["serialNumber"]:
        other = got.get("serialNumber", "").removeprefix("MDV:") or "?"
        return (
            f"the {what} is for another unit: subject serialNumber {got.get('serialNumber')!r} "
            f"(site {other}), not {want['serialNumber']!r} (site {cert.site})"
        )
    for short in ("C", "L", "O", "OU", "CN"):
        if got.get(short) != want[short]:
            return f"the {what}'s subject {short} is {got.get(short)!r}; the ledger says {want[short]!r}"
    return None


def _csr_problem(cert: Certificate, pem: bytes) -> str | None:
    try:
        csr = x509.load_pem_x509_csr(pem)
    except ValueError as exc:
        return f"not a PEM certificate request ({exc})"
    if not csr.is_signature_valid:
        return "the request's signature does not verify"
    return _subject_problem(cert, csr.subject, "request")


# ---- import


@dataclass
class Checked:
    """One file offered for import."""

    file: str
    cert: Certificate | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    leaf: x509.Certificate | None = None

    @property
    def ok(self) -> bool:
        return self.cert is not None and not self.problems


def _public_der(key: object) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]


# The weakest keys and signatures the ledger accepts: RSA 2048 bits, EC on a 256-bit curve, and
# SHA-256 or stronger (NIST SP 800-131A Rev. 2 disallows SHA-1 signatures and keys below 112 bits of
# security). Thông tư 28/2025/TT-BKHCN (from 1 January 2026) sets the national CAs' X.509 v3 profile;
# its exact minimums were not at hand here: check them and raise these where they are higher.
MIN_RSA_BITS = 2048
MIN_EC_BITS = 256
WEAK_HASHES = frozenset({"md5", "sha1", "sha224"})

# openssl's purpose for each kind of certificate: a TLS server's, and a signing one (S/MIME signing:
# digitalSignature or nonRepudiation, and emailProtection where an extended key usage is given).
PURPOSE = {"tls": "sslserver", "signing": "smimesign"}


def _verify_chain(
    ledger: Ledger, leaf: x509.Certificate, bundled: list[x509.Certificate], now: dt.datetime, kind: str
) -> str | None:
    """``openssl verify`` of the leaf against the configured root, every certificate of the chain valid now,
    strict X.509 and the certificate's purpose; None when it verifies."""
    if ledger.trust_root is None or not ledger.trust_root.is_file():
        return f"no root CA configured or found ({ledger.path}: field trust.root)"
    pem = serialization.Encoding.PEM
    with tempfile.TemporaryDirectory(prefix="motcua-verify-") as tmp:
        leaf_file, chain_file = Path(tmp) / "leaf.pem", Path(tmp) / "chain.pem"
        leaf_file.write_bytes(leaf.public_bytes(pem))
        chain = b"".join(c.public_bytes(pem) for c in bundled)
        chain += b"".join(p.read_bytes() for p in ledger.trust_intermediates if p.is_file())
        argv = ["openssl", "verify", "-attime", str(int(now.timestamp())), "-x509_strict",
                "-purpose", PURPOSE.get(kind, "any"), "-CAfile", str(ledger.trust_root)]  # fmt: skip
        if chain:
            chain_file.write_bytes(chain)
            argv += ["-untrusted", str(chain_file)]
        done = subprocess.run([*argv, str(leaf_file)], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode == 0:
        return None
    detail = " ".join(line.strip() for line in (done.stdout + done.stderr).splitlines() if "error" in line.lower())
    return f"the chain does not verify against the configured root {ledger.trust_root.name}: {detail or 'unknown'}"


def _load_certs(data: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(data) if b"-----BEGIN" in data else [x509.load_der_x509_certificate(data)]


def check_issued(
    ledger: Ledger, cert: Certificate, data: bytes, now: dt.datetime, label: str = "certificate"
) -> Checked:
    """Every reason to refuse an issued certificate for ``cert`` (none: it may be stored)."""
    out = Checked(label, cert)
    try:
        certs = _load_certs(data)
    except ValueError as exc:
        out.problems.append(f"not a PEM or DER certificate ({exc})")
        return out
    structure = _structure_problem(certs)
    if structure:
        out.problems.append(structure)
        return out
    leaf, bundled = certs[0], certs[1:]
    out.leaf = leaf
    if cert.type == "signing" and not cert.token_serial:
        out.problems.append(
            f"the ledger does not know {cert.key}'s token yet: run playbooks/certificates.yml "
            f"--limit site_{cert.site} --tags certificates_request (it records the token serial)"
        )
    problem = _subject_problem(cert, leaf.subject, "certificate")
    if problem:
        out.problems.append(problem)
    csr_file = ledger.csr_path(cert)
    if not csr_file.is_file():
        out.problems.append(f"no request on record for {cert.key} ({csr_file}): nothing to match the key against")
    else:
        csr = x509.load_pem_x509_csr(csr_file.read_bytes())
        if _public_der(csr.public_key()) != _public_der(leaf.public_key()):
            out.problems.append(
                f"key mismatch: the certificate's public key is not the one in {cert.key}'s request "
                f"(generation {cert.generation}, token label {cert.label})"
            )
    start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if end <= start:
        out.problems.append(f"validity window is empty: not after {end:%Y-%m-%d} is before not before {start:%Y-%m-%d}")
    elif end <= now:
        out.problems.append(f"expired on {end:%Y-%m-%d %H:%M} UTC")
    elif start > now + CLOCK_SKEW:
        out.problems.append(f"not valid before {start:%Y-%m-%d %H:%M} UTC (in the future: check the CA's or our clock)")
    elif (end - start).days > ledger.max_validity_days:
        out.problems.append(f"valid for {(end - start).days} days; more than the {ledger.max_validity_days} allowed")
    elif (end - now).days < ledger.renew_days:
        out.warnings.append(f"ends in {(end - now).days} days, within the renewal window ({ledger.renew_days})")
    out.problems.extend(_usage_problems(cert, leaf))
    chain = _verify_chain(ledger, leaf, bundled, now, cert.type)
    if chain:
        out.problems.append(chain)
    return out


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _structure_problem(certs: list[x509.Certificate]) -> str | None:
    """One ward's certificate first, then only its CAs: anything else is refused with what is wrong."""
    if _is_ca(certs[0]):
        if any(not _is_ca(c) for c in certs[1:]):
            return "the first certificate in the file is a CA's: put the ward's certificate first, then its CA"
        return "the file holds CA certificates only, not a ward's certificate"
    extra = sum(1 for c in certs[1:] if not _is_ca(c))
    if extra:
        return f"the file holds {extra + 1} certificates that are not CAs: one ward's certificate per file"
    return None


def _strength_problems(leaf: x509.Certificate) -> list[str]:
    """Keys and signatures below the minimums above."""
    problems = []
    key = leaf.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        problems.append(f"an RSA key of {key.key_size} bits: below the {MIN_RSA_BITS} required")
    elif isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < MIN_EC_BITS:
        problems.append(f"an EC key on {key.curve.name}: below the {MIN_EC_BITS}-bit curves required")
    digest = leaf.signature_hash_algorithm
    if digest is not None and digest.name in WEAK_HASHES:
        problems.append(f"signed with {digest.name.upper()}: SHA-256 or stronger is required")
    return problems


def _usage_problems(cert: Certificate, leaf: x509.Certificate) -> list[str]:
    problems = _strength_problems(leaf)
    serials = leaf.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if len(serials) > 1:
        names = ", ".join(str(a.value) for a in serials)
        problems.append(f"the subject names {len(serials)} units ({names}): a certificate is for one unit")
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        problems.append("no key usage: the CA must state what the key may do")
    else:
        if not usage.digital_signature:
            problems.append("key usage lacks digitalSignature")
        if cert.type == "signing" and not usage.content_commitment:
            problems.append("key usage lacks nonRepudiation: a signature on a document must bind its signer")
    if cert.type == "tls":
        try:
            sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            missing = sorted(set(cert.dns) - set(sans.get_values_for_type(x509.DNSName)))
            if missing:
                problems.append(f"subjectAltName lacks {', '.join(missing)}")
        except x509.ExtensionNotFound:
            problems.append("no subjectAltName: TLS clients will refuse it")
        try:
            purposes = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            if ExtendedKeyUsageOID.SERVER_AUTH not in purposes:
                problems.append("extended key usage lacks serverAuth")
        except x509.ExtensionNotFound:
            pass
    return problems


def _requests_by_key(ledger: Ledger) -> dict[bytes, Certificate]:
    """Every live request on record, by its public key (DER): what an issued certificate answers."""
    out = {}
    for cert in ledger.certificates:
        csr_file = ledger.csr_path(cert)
        if cert.status != "revoked" and csr_file.is_file():
            out[_public_der(x509.load_pem_x509_csr(csr_file.read_bytes()).public_key())] = cert
    return out


def match_target(ledger: Ledger, data: bytes, requests: dict[bytes, Certificate] | None = None) -> Certificate | None:
    """The ledger entry an issued certificate answers: its public key is that entry's request's."""
    try:
        leaf = _load_certs(data)[0]
    except ValueError:
        return None
    found = (requests if requests is not None else _requests_by_key(ledger)).get(_public_der(leaf.public_key()))
    if found is not None:
        return found
    want = _name_values(leaf.subject)
    for cert in ledger.certificates:  # no request has its key: name the entry its subject claims
        if dict(cert.subject()) == {k: want.get(k) for k in dict(cert.subject())}:
            return cert
    return None


def import_files(
    ledger: Ledger, files: list[Path], now: dt.datetime, target: str | None = None
) -> tuple[Ledger, list[Checked]]:
    """Check each file; store the good ones and mark them issued. Returns the new ledger and every verdict.

    A file that is not a certificate, or starts with a CA's, says so; two files of one import for one
    ledger entry are both refused (which one is right is the operator's call).
    """
    results: list[Checked] = []
    updated = []
    requests = None if target else _requests_by_key(ledger)
    claims: dict[str, list[int]] = {}
    offered: list[tuple[Path, bytes, Certificate | None]] = []
    for path in files:
        data = path.read_bytes()
        try:
            certs = _load_certs(data)
        except ValueError as exc:
            results.append(Checked(str(path), None, [f"not a certificate (PEM or DER): {str(exc)[:200]}"]))
            continue
        structure = _structure_problem(certs)
        if structure:
            results.append(Checked(str(path), None, [structure]))
            continue
        cert = ledger.get(target) if target else match_target(ledger, data, requests)
        if cert is None:
            results.append(Checked(str(path), None, ["matches no certificate of the ledger (by key or subject)"]))
            continue
        claims.setdefault(cert.key, []).append(len(offered))
        offered.append((path, data, cert))
    for index, (path, data, cert) in enumerate(offered):
        assert cert is not None
        others = [str(offered[i][0]) for i in claims[cert.key] if i != index]
        if others:
            results.append(Checked(str(path), cert, [f"{', '.join(others)} of this import is for {cert.key} too: "
                                                     "give one file per certificate"]))  # fmt: skip
            continue
        if cert.status == "revoked":
            results.append(Checked(str(path), cert, [f"{cert.key} is revoked in the ledger"]))
            continue
        checked = check_issued(ledger, cert, data, now, str(path))
        results.append(checked)
        if not checked.ok or checked.leaf is None:
            continue
        leaf = checked.leaf
        pem = leaf.public_bytes(serialization.Encoding.PEM)
        stored = ledger.cert_path(cert)
        if stored.is_file() and stored.read_bytes() == pem and cert.status in ("issued", "installed"):
            continue  # the same certificate again: nothing to do
        write_atomic(stored, pem)
        issuer = leaf.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
        updated.append(
            replace(
                cert,
                status="issued",
                not_after=leaf.not_valid_after_utc,
                serial=format(leaf.serial_number, "x"),
                issuer=str(issuer[0].value) if issuer else leaf.issuer.rfc4514_string(),
            )
        )
    if updated:
        ledger = ledger.with_updates(updated)
        write_ledger(ledger)
    return ledger, results


# ---- the playbook's results, renewal


def record(ledger: Ledger, results: list[dict[str, object]]) -> tuple[Ledger, list[str]]:
    """Write back what the playbook did: ``{"key", "token_serial"?, "installed"?: bool}`` per certificate."""
    current: dict[str, Certificate] = {}
    changes = []
    for item in results:
        key = str(item["key"])
        cert = current.get(key) or ledger.get(key)
        new = cert
        serial = item.get("token_serial")
        if serial and cert.type == "signing" and cert.token_serial != serial:
            if cert.token_serial:
                raise ValueError(f"{cert.key}: the token holds serial {serial}; the ledger says {cert.token_serial}")
            new = replace(new, token_serial=str(serial))
            changes.append(f"{cert.key}: token_serial {serial}")
        if item.get("installed") and cert.status == "issued":
            new = replace(new, status="installed")
            changes.append(f"{cert.key}: installed")
        current[key] = new
    updated = [c for key, c in current.items() if c != ledger.get(key)]
    if updated:
        ledger = ledger.with_updates(updated)
        write_ledger(ledger)
    return ledger, changes


def mark_renewal(ledger: Ledger, certs: list[Certificate]) -> Ledger:
    """Each certificate becomes a new request: the next generation (a new key and label), status requested."""
    updated = [replace(c, generation=c.generation + 1, status="requested") for c in certs]
    ledger = ledger.with_updates(updated)
    write_ledger(ledger)
    return ledger
