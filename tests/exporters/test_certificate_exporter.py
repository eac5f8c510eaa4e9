"""The certificate exporter on real files (made with openssl), a SoftHSM2 token and the stand-in's TLS."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from motcua.lab.dossier import write_fault

from ..conftest import STANDIN_ADDRESS, STANDIN_HTTPS
from .conftest import promtool_check

SCRIPT = "motcua-certificate-exporter"
SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"


def openssl(*args: str, cwd: Path) -> str:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def make_cert(directory: Path, name: str, subject: str, days: int) -> Path:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", subject,
            "-days", str(days), "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=directory)  # fmt: skip
    return directory / f"{name}.pem"


def serial(pem: Path) -> str:
    return openssl("x509", "-in", str(pem), "-noout", "-serial", cwd=pem.parent).strip().split("=", 1)[1].lstrip("0")


@pytest.fixture(scope="module")
def material(tmp_path_factory, dossier_standin):
    d = tmp_path_factory.mktemp("certs")
    ward = make_cert(d, "ward", "/CN=UBND phuong Sai Gon/O=TP Ho Chi Minh", 30)
    city = make_cert(d, "city", "/CN=So Tu phap", 400)
    (d / "bundle.pem").write_text(ward.read_text() + city.read_text())
    openssl("x509", "-in", "ward.pem", "-outform", "DER", "-out", "ward.der", cwd=d)
    (d / "p12.pass").write_text("mat-khau-thu\n")
    openssl("pkcs12", "-export", "-in", "city.pem", "-inkey", "city.key", "-passout", "file:p12.pass",
            "-out", "city.p12", cwd=d)  # fmt: skip
    (d / "junk.pem").write_text("not a certificate\n")
    # A SoftHSM2 token of its own, holding the ward's certificate, as on a counter.
    tokens = d / "tokens"
    tokens.mkdir()
    (d / "softhsm2.conf").write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(d / "softhsm2.conf")}
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "motcua-26740", "--pin", "1234",
                    "--so-pin", "123456"], env=env, check=True, capture_output=True)  # fmt: skip
    subprocess.run(["pkcs11-tool", "--module", SOFTHSM, "--token-label", "motcua-26740", "--login", "--pin", "1234",
                    "--write-object", str(d / "ward.der"), "--type", "cert", "--id", "01"],
                   env=env, check=True, capture_output=True)  # fmt: skip
    return {"dir": d, "ward": ward, "city": city, "env": env}


def config(material) -> str:
    d = material["dir"]
    return f"""
interval: 5s
timeout: 3s
sources:
  - {{name: ward-26740-pem, site: "26740", file: {d / "bundle.pem"}}}
  - {{name: ward-26740-der, site: "26740", file: {d / "ward.der"}}}
  - {{name: city-p12, site: city, file: {d / "city.p12"}, password_file: {d / "p12.pass"}}}
  - {{name: junk, site: "26740", file: {d / "junk.pem"}}}
  - name: token-26740
    site: "26740"
    pkcs11: {{module: {SOFTHSM}, token_label: motcua-26740}}
  - {{name: portal-tls, site: city, tls: "{STANDIN_ADDRESS}:{STANDIN_HTTPS}"}}
"""


@pytest.fixture(scope="module")
def exporter(start_exporter, material, monkeypatch_module):
    monkeypatch_module.setenv("SOFTHSM2_CONF", material["env"]["SOFTHSM2_CONF"])
    running = start_exporter(SCRIPT, config(material))
    for source in ("ward-26740-pem", "ward-26740-der", "city-p12", "junk", "token-26740", "portal-tls"):
        running.wait_for(f'motcua_certificate_source_up{{source="{source}"')
    return running


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def line_value(text: str, prefix: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, (prefix, lines)
    return float(lines[0].rsplit(" ", 1)[1])


def test_files_token_and_tls_endpoint(exporter, material, dossier_standin):
    text = exporter.metrics()
    ward, city = serial(material["ward"]), serial(material["city"])
    soon = time.time() + 30 * 86400
    for source in ("ward-26740-pem", "ward-26740-der", "token-26740"):
        assert f'motcua_certificate_source_up{{source="{source}",site="26740",' in text
        after = line_value(
            text,
            f'motcua_certificate_not_after_timestamp_seconds{{source="{source}",site="26740",'
            f'subject="UBND phuong Sai Gon",issuer="UBND phuong Sai Gon",serial="{ward}"}}',
        )
        assert abs(after - soon) < 3600
    assert 'motcua_certificate_source_certificates{source="ward-26740-pem",site="26740",kind="file"} 2' in text
    p12 = f'source="city-p12",site="city",subject="So Tu phap",issuer="So Tu phap",serial="{city}"'
    assert f"motcua_certificate_not_after_timestamp_seconds{{{p12}}}" in text
    assert 'motcua_certificate_source_up{source="token-26740",site="26740",kind="pkcs11"} 1' in text
    # The stand-in's server certificate, issued by the lab CA.
    server = serial(dossier_standin["root"] / "ca" / "server.pem")
    assert f'issuer="motcua-ops lab CA",serial="{server}"}}' in text
    assert 'motcua_certificate_source_up{source="portal-tls",site="city",kind="tls"} 1' in text
    # A file that holds no certificate is reported, and the others still are.
    assert 'motcua_certificate_source_up{source="junk",site="26740",kind="file"} 0' in text
    promtool_check(text)


def test_expired_certificate_on_the_endpoint_and_an_endpoint_that_is_down(exporter, dossier_standin):
    write_fault(dossier_standin["faults"], "expired-cert")
    try:
        text = exporter.wait_for(f'serial="{serial(dossier_standin["root"] / "ca" / "expired.pem")}"}}', timeout=20)
        prefix = 'motcua_certificate_not_after_timestamp_seconds{source="portal-tls"'
        assert line_value(text, prefix) < time.time()
        write_fault(dossier_standin["faults"], "down")
        text = exporter.wait_for(
            'motcua_certificate_source_up{source="portal-tls",site="city",kind="tls"} 0', timeout=20
        )
        assert prefix not in text  # nothing stale is left behind
        assert exporter.alive()
    finally:
        write_fault(dossier_standin["faults"], None)


def test_pem_bundles_read_with_debian_12s_cryptography(material, monkeypatch):
    """Counters and the monitoring host run Debian's python3-cryptography 38, which has no
    x509.load_pem_x509_certificates (39+): the exporter must read bundles without it."""
    from cryptography import x509

    from motcua_exporters.core import certs

    monkeypatch.delattr(x509, "load_pem_x509_certificates", raising=False)
    found = certs.load_file(material["dir"] / "bundle.pem")
    assert [certs.serial_hex(c).lstrip("0") for c in found] == [serial(material["ward"]), serial(material["city"])]
    with pytest.raises(ValueError):
        certs.load_file(material["dir"] / "junk.pem")


def test_an_unexpected_error_in_one_source_leaves_the_others(material, monkeypatch):
    from motcua_exporters.certificate.config import CertificateConfig
    from motcua_exporters.certificate.exporter import CertificateExporter
    from motcua_exporters.certificate.sources import FileSource

    good = FileSource("good", "26740", material["ward"])
    bad = FileSource("bad", "26740", material["city"])
    original = FileSource.read

    def read(self, timeout):
        if self.name == "bad":
            raise AttributeError("a bug")
        return original(self, timeout)

    monkeypatch.setattr(FileSource, "read", read)
    exporter = CertificateExporter(CertificateConfig([good, bad], interval=60, timeout=5))
    exporter.read_all()  # must not raise
    text = exporter.board.render()
    assert 'motcua_certificate_source_up{source="good",site="26740",kind="file"} 1' in text
    assert 'motcua_certificate_source_up{source="bad",site="26740",kind="file"} 0' in text
