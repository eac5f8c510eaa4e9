"""The lab CA and the dossier stand-in's certificates.

Made once per lab home: a CA (stands in for the one that signs the real
dossier system's certificate), a valid server certificate, an expired one
from the same CA and one from a CA nobody trusts — the last two back the
stand-in's `expired-cert` and `untrusted-cert` faults.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DOSSIER_DNS_NAME = "dichvucong.lab"
CERTS = ("server", "expired", "untrusted")


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "motcua-ops lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def _ca(common_name: str, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    address: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
    dns_name: str = DOSSIER_DNS_NAME,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(dns_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(dns_name), x509.IPAddress(ipaddress.IPv4Address(address))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def ensure_lab_ca(directory: Path, address: str) -> Path:
    """Create the CA and certificates unless present for this address; return the CA file."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    marker = directory / "address"
    if marker.exists() and marker.read_text().strip() == address and (directory / "ca.pem").exists():
        return directory / "ca.pem"
    now = dt.datetime.now(dt.UTC)
    ca_key, ca_cert = _ca("motcua-ops lab CA", now)
    rogue_key, rogue_cert = _ca("Untrusted CA", now)
    leaves = {
        "server": _leaf(ca_key, ca_cert, address, now - dt.timedelta(days=1), now + dt.timedelta(days=825)),
        "expired": _leaf(ca_key, ca_cert, address, now - dt.timedelta(days=400), now - dt.timedelta(days=30)),
        "untrusted": _leaf(rogue_key, rogue_cert, address, now - dt.timedelta(days=1), now + dt.timedelta(days=825)),
    }
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
    _write_key(directory / "ca.key", ca_key)
    for name, (key, cert) in leaves.items():
        (directory / f"{name}.pem").write_bytes(cert.public_bytes(pem))
        _write_key(directory / f"{name}.key", key)
    marker.write_text(address + "\n")
    return directory / "ca.pem"


# ---- the monitoring plane's certificates (docs/monitoring.md, "The locked plane")


def _holds(cert_file: Path, ca_cert: x509.Certificate, address: str) -> bool:
    """The certificate is there, from this CA, for this address and good for 30 days more."""
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return ipaddress.IPv4Address(address) in names.get_values_for_type(
        x509.IPAddress
    ) and cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=30)


def issue_web_certificates(ca_dir: Path, out_dir: Path, hosts: dict[str, str]) -> list[str]:
    """A TLS certificate and key per host ({name: address}) from the lab CA, as the city's CA issues them in
    production: <out_dir>/<name>.crt and .key, naming the host and its address. Kept while valid; returns
    the hosts (re)issued."""
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{ca_dir / 'ca.key'}: not the lab CA's EC key")
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    issued = []
    for name, address in sorted(hosts.items()):
        cert_file = out_dir / f"{name}.crt"
        if _holds(cert_file, ca_cert, address) and (out_dir / f"{name}.key").exists():
            continue
        key, cert = _leaf(ca_key, ca_cert, address, now - dt.timedelta(days=1), now + dt.timedelta(days=397), name)
        _write_key(out_dir / f"{name}.key", key)
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        issued.append(name)
    return issued


# ---- the national CA stand-in: root -> issuing CA, which signs the wards' requests

NATIONAL_ROOT = "Lab Root CA (national root CA stand-in)"
NATIONAL_ISSUING = "Lab Issuing CA (national CA stand-in)"


def _sub_ca(
    root_key: ec.EllipticCurvePrivateKey, root: x509.Certificate, common_name: str, now: dt.datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3000))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    return key, cert


def ensure_national_ca(directory: Path) -> tuple[Path, Path]:
    """The lab's national-CA stand-in (root.pem, issuing.pem and keys), made once; returns (root, issuing).

    Also a ``rogue`` CA that chains to nothing the wards trust, for tests of a broken chain.
    """
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    root_file, issuing_file = directory / "root.pem", directory / "issuing.pem"
    if root_file.exists() and issuing_file.exists() and (directory / "issuing.key").exists():
        return root_file, issuing_file
    now = dt.datetime.now(dt.UTC)
    root_key, root = _ca(NATIONAL_ROOT, now)
    root = (  # a root may sign CAs below it
        x509.CertificateBuilder()
        .subject_name(root.subject)
        .issuer_name(root.subject)
        .public_key(root_key.public_key())
        .serial_number(root.serial_number)
        .not_valid_before(root.not_valid_before_utc)
        .not_valid_after(root.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    issuing_key, issuing = _sub_ca(root_key, root, NATIONAL_ISSUING, now)
    rogue_key, rogue = _ca("Rogue CA (trusted by nobody)", now)
    pem = serialization.Encoding.PEM
    for name, key, cert in (("root", root_key, root), ("issuing", issuing_key, issuing), ("rogue", rogue_key, rogue)):
        (directory / f"{name}.pem").write_bytes(cert.public_bytes(pem))
        _write_key(directory / f"{name}.key", key)
    return root_file, issuing_file


def sign_request(
    directory: Path,
    csr_pem: bytes,
    days: float = 730,
    start_days_ago: float = 1,
    issuer: str = "issuing",
    subject: x509.Name | None = None,
    public_key: object | None = None,
    usage: str = "signing",
) -> bytes:
    """Issue a certificate for a request as the national CA would (PEM: the certificate, then its CA).

    Tests make bad ones with the same call: ``days`` negative (expired),
    ``issuer="rogue"`` (a chain that verifies to nothing), another ``subject``
    or ``public_key`` (another ward's, a key that is not the request's).
    """
    csr = x509.load_pem_x509_csr(csr_pem)
    if not csr.is_signature_valid:
        raise ValueError("the request's signature does not verify")
    ca_key = serialization.load_pem_private_key((directory / f"{issuer}.key").read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate((directory / f"{issuer}.pem").read_bytes())
    now = dt.datetime.now(dt.UTC)
    start = now - dt.timedelta(days=start_days_ago)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject or csr.subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key or csr.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(max(now + dt.timedelta(days=days), start + dt.timedelta(seconds=1)))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)  # type: ignore[arg-type]
    )
    if usage == "signing":
        builder = builder.add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
    else:
        try:
            sans = list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
        except x509.ExtensionNotFound:
            sans = [x509.DNSName(str(n.value)) for n in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    pem = serialization.Encoding.PEM
    return cert.public_bytes(pem) + ca_cert.public_bytes(pem)
