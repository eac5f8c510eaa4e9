"""Reading X.509 certificates from files (PEM, DER, PKCS#12), tokens and TLS endpoints."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12


def dates(cert: x509.Certificate) -> tuple[float, float]:
    """(not before, not after) as Unix time; works with Debian 12's cryptography 38 and newer ones."""
    before = getattr(cert, "not_valid_before_utc", None) or cert.not_valid_before.replace(tzinfo=dt.UTC)
    after = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after.replace(tzinfo=dt.UTC)
    return before.timestamp(), after.timestamp()


def not_after_of(der: bytes | None) -> float | None:
    return dates(x509.load_der_x509_certificate(der))[1] if der else None


def common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()[:120]


def serial_hex(cert: x509.Certificate) -> str:
    return format(cert.serial_number, "X")


def load_pem_bundle(data: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, in order.

    Block by block: Debian 12's python3-cryptography (38) has no
    ``load_pem_x509_certificates``, which came in 39.
    """
    end = b"-----END CERTIFICATE-----"
    out = []
    for chunk in data.split(end)[:-1]:
        start = chunk.find(b"-----BEGIN CERTIFICATE-----")
        if start >= 0:
            out.append(x509.load_pem_x509_certificate(chunk[start:] + end + b"\n"))
    if not out:
        raise ValueError("no PEM certificate in the file")
    return out


def load_file(path: Path, password: bytes | None = None) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, a DER file or a PKCS#12 archive. ValueError if none can be read."""
    data = path.read_bytes()
    if b"-----BEGIN CERTIFICATE-----" in data:
        return load_pem_bundle(data)
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        pass
    try:
        _key, cert, extra = pkcs12.load_key_and_certificates(data, password)
    except ValueError as exc:
        raise ValueError(f"neither PEM, DER nor PKCS#12 (or a wrong PKCS#12 password): {exc}") from None
    return [c for c in [cert, *extra] if c is not None]


def from_tls(host: str, port: int, server_name: str | None, timeout: float) -> x509.Certificate:
    """The certificate a TLS endpoint presents, read without judging it (expired ones are what we look for)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, port), timeout=timeout) as sock,
        context.wrap_socket(sock, server_hostname=server_name or host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ValueError("the endpoint presented no certificate")
    return x509.load_der_x509_certificate(der)
