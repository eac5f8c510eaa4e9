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
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(DOSSIER_DNS_NAME))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(DOSSIER_DNS_NAME), x509.IPAddress(ipaddress.IPv4Address(address))]
            ),
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
