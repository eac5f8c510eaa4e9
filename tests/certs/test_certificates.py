"""The certificate ledger and `motcua certs`: validation, the registration export, the import
checks (real `openssl verify`, the lab's national-CA stand-in), renewal, and the token tool
against a real SoftHSM2 token through GnuTLS's PKCS#11 tools (as on a counter)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from motcua.certs import ops
from motcua.lab import ca
from motcua.registry.certificates import check_ledger, load_ledger, render_ledger
from tests.conftest import CORPUS, ROOT
from tests.spreadsheet.calc import CSV_EVALUATING, calc_cells

BAD = CORPUS / "certificates"
CASES = {
    "unknown-site.yml": [(5, "26999/signing", "site", "unknown site '26999'")],
    "duplicate.yml": [(5, "26740/signing", "id", "duplicate certificate (first at line 4)")],
    "bad-status.yml": [(4, "26740/signing", "status", "did you mean 'issued'?")],
    "issued-without-not-after.yml": [(4, "26740/signing", "not_after", "status issued needs its not_after")],
    "host-not-counter.yml": [(4, "26740/signing", "host", "not a switch")],
    "unknown-host.yml": [(4, "26740/signing", "host", "site 26740 has no host 'pc99'")],
    "tls-without-dns.yml": [(4, "26740/web", "dns", "a TLS certificate needs its DNS names")],
    "dn-special.yml": [(4, "26740/signing", "holder", "must not contain ,")],
    "bad-date.yml": [(4, "26740/signing", "not_after", "'next year' is not a date/time")],
    "token-twice.yml": [(5, "26740/leader", "token_serial", "token ab12cd34 is already in 26740/pc01 (line 4)")],
    "unknown-key.yml": [(4, "26740/signing", "holdr", "did you mean 'holder'?")],
    "mojibake-holder.yml": [(4, "26740/signing", "holder", "probably 'Phạm Thị Hoa'")],
    "not-a-list.yml": [(2, "", "certificates", "must be a list")],
    "empty.yml": [(0, "", "", "the file is empty (or holds only comments)")],
    "alias-bomb.yml": [(2, "", "", "YAML aliases expand to")],
    "newline-in-holder.yml": [(4, "26740/signing", "holder", "control character (U+000A line feed)")],
}
NOW = dt.datetime.now(dt.UTC)
TOKEN_TOOL = ROOT / "roles" / "ward_certificates" / "files" / "motcua-cert-token"
SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_ledger_is_refused_with_file_line_and_field(case, production_registry):
    ledger, problems = check_ledger(BAD / case, production_registry)
    assert ledger is None
    rendered = [str(p) for p in problems]
    for line, who, field, message in CASES[case]:
        where = f"{BAD / case}" + (f":{line}" if line else "") + ": " + (f"certificate {who}: " if who else "")
        where += f"field {field}: " if field else ""
        assert any(r.startswith(where) and message in r for r in rendered), (where, message, rendered)


def test_corpus_covers_every_case():
    assert sorted(p.name for p in BAD.iterdir()) == sorted(CASES)


def test_production_and_lab_ledgers(production_registry):
    hcmc = load_ledger(ROOT / "inventory" / "hcmc" / "certificates" / "certificates.yml", production_registry)
    assert len(hcmc.certificates) == 168
    assert {c.site for c in hcmc.certificates} == {s.code for s in production_registry.ward_sites}
    saigon = hcmc.get("26740/signing")
    assert (saigon.holder, saigon.host, saigon.label) == ("Ủy ban nhân dân phường Sài Gòn", "pc01", "signing-1")
    assert dict(saigon.subject())["serialNumber"] == "MDV:26740"
    lab = load_ledger(ROOT / "inventory" / "lab" / "certificates.yml", production_registry)
    assert {c.site for c in lab.certificates} == {"26740", "25747", "26732"}  # the lab's three wards
    assert [c.type for c in lab.certificates].count("tls") == 1


def test_canonical_rewrite_keeps_comments_and_values(tmp_path, production_registry):
    source = ROOT / "inventory" / "lab" / "certificates.yml"
    ledger = load_ledger(source, production_registry)
    assert render_ledger(ledger) == source.read_text()  # the seed is in canonical form
    path = tmp_path / "certificates.yml"
    path.write_text(source.read_text())
    ledger = load_ledger(path, production_registry)
    ledger = ops.record(ledger, [{"key": "26740/signing", "token_serial": "50ed824a3fc4ff54"}])[0]
    again = load_ledger(path, production_registry)
    assert again.certificates == ledger.certificates
    assert again.get("26740/signing").token_serial == "50ed824a3fc4ff54"  # noqa: S105 - a token's serial number
    assert path.read_text().startswith("# The lab's certificate ledger (seed).")


# ---- a ledger with requests made from software keys (the import checks do not care where a key lives)


def _request(cert, key=None) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(ops.OID[k], v) for k, v in reversed(cert.subject())])
    builder = x509.CertificateSigningRequestBuilder().subject_name(name)
    if cert.type == "tls":
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in cert.dns]), False)
    from cryptography.hazmat.primitives import serialization

    return key, builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def store(tmp_path, production_registry):
    """A copy of the lab ledger with its CA, and a request on record for every certificate."""
    path = tmp_path / "certificates.yml"
    path.write_text((ROOT / "inventory" / "lab" / "certificates.yml").read_text())
    ca.ensure_national_ca(tmp_path / "ca")
    ledger = load_ledger(path, production_registry)
    requests = {}
    for cert in ledger.certificates:
        key, pem = _request(cert)
        ledger.csr_path(cert).parent.mkdir(parents=True, exist_ok=True)
        ledger.csr_path(cert).write_bytes(pem)
        requests[cert.key] = (key, pem)
    serials = [
        {"key": c.key, "token_serial": f"00{i:06x}"} for i, c in enumerate(ledger.certificates) if c.type == "signing"
    ]
    ledger, _ = ops.record(ledger, serials)  # as the request step records them
    return {"ledger": ledger, "requests": requests, "dir": tmp_path, "registry": production_registry}


def _issue(store, key: str, **kwargs) -> Path:
    cert = store["ledger"].get(key)
    pem = ca.sign_request(store["dir"] / "ca", store["requests"][key][1], usage=cert.type, **kwargs)
    out = store["dir"] / f"issued-{key.replace('/', '-')}-{len(list(store['dir'].glob('issued-*')))}.pem"
    out.write_bytes(pem)
    return out


def test_good_certificates_are_stored_and_marked_issued(store):
    ledger = store["ledger"]
    files = [_issue(store, c.key) for c in ledger.certificates]
    ledger, results = ops.import_files(ledger, files, NOW)
    assert [r.problems for r in results] == [[]] * 4
    reread = load_ledger(ledger.path, store["registry"])
    for cert in reread.certificates:
        assert cert.status == "issued" and cert.serial and cert.issuer == ca.NATIONAL_ISSUING
        assert 729 < cert.days_left(NOW) < 731
        assert ledger.cert_path(cert).read_bytes().count(b"BEGIN CERTIFICATE") == 1  # the leaf alone
    before = ledger.path.read_bytes()
    ops.import_files(reread, files[:1], NOW)  # the same certificate again changes nothing
    assert ledger.path.read_bytes() == before


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("another-ward", "is for another unit: subject serialNumber 'MDV:26732' (site 26732), not 'MDV:26740'"),
        ("expired", "expired on"),
        ("broken-chain", "the chain does not verify against the configured root root.pem"),
        ("key-mismatch", "key mismatch: the certificate's public key is not the one in 26740/signing's request"),
        ("not-yet-valid", "not valid before"),
        ("too-long", "more than the 1830 allowed"),
    ],
)
def test_bad_certificates_are_refused_and_nothing_changes(store, case, message):
    ledger = store["ledger"]
    if case == "another-ward":
        issued = _issue(store, "26732/signing")
    elif case == "expired":
        issued = _issue(store, "26740/signing", days=-1, start_days_ago=400)
    elif case == "broken-chain":
        issued = _issue(store, "26740/signing", issuer="rogue")
    elif case == "key-mismatch":
        other = ec.generate_private_key(ec.SECP256R1())
        issued = _issue(store, "26740/signing", public_key=other.public_key())
    elif case == "not-yet-valid":
        issued = _issue(store, "26740/signing", start_days_ago=-2, days=300)
    else:
        issued = _issue(store, "26740/signing", days=2000)
    before = ledger.path.read_bytes()
    _ledger, results = ops.import_files(ledger, [issued], NOW, target="26740/signing")
    assert not results[0].ok
    assert any(message in p for p in results[0].problems), results[0].problems
    assert ledger.path.read_bytes() == before
    assert not ledger.cert_path(ledger.get("26740/signing")).exists()


def _ca_pair(directory: Path, name: str):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key((directory / f"{name}.key").read_bytes(), None)
    return key, x509.load_pem_x509_certificate((directory / f"{name}.pem").read_bytes())


def _craft(store, key: str, *, public_key=None, subject=None, usage="normal", issuer=None,
           extra: bytes = b"") -> Path:  # fmt: skip
    """A certificate for ``key`` made by hand: the lab's issuing CA, or ``issuer`` (key, certificate, chain PEM)."""
    from cryptography.hazmat.primitives import serialization

    cert = store["ledger"].get(key)
    csr = x509.load_pem_x509_csr(store["requests"][key][1])
    ca_key, ca_cert = _ca_pair(store["dir"] / "ca", "issuing")
    chain = ca_cert.public_bytes(serialization.Encoding.PEM)
    if issuer is not None:
        ca_key, ca_cert, chain = issuer
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject or csr.subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key or csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=700))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
    )
    if usage == "normal":
        builder = builder.add_extension(x509.KeyUsage(True, cert.type == "signing", False, False, False, False, False,
                                                      False, False), critical=True)  # fmt: skip
    elif usage == "no-non-repudiation":
        builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                                        critical=True)  # fmt: skip
    leaf = builder.sign(ca_key, hashes.SHA256())
    out = store["dir"] / f"crafted-{len(list(store['dir'].glob('crafted-*')))}.pem"
    out.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + extra + chain)
    return out


def _expired_intermediate(store):
    """An issuing CA, signed by the root, that expired yesterday (its leaves are still 'valid' themselves)."""
    from cryptography.hazmat.primitives import serialization

    root_key, root = _ca_pair(store["dir"] / "ca", "root")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "Expired Issuing CA")]))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=800))
        .not_valid_after(NOW - dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    return key, cert, cert.public_bytes(serialization.Encoding.PEM)


def _two_units(store):
    cert = store["ledger"].get("26740/signing")
    attrs = [x509.NameAttribute(ops.OID[k], v) for k, v in reversed(cert.subject())]
    return x509.Name([*attrs, x509.NameAttribute(x509.oid.NameOID.SERIAL_NUMBER, "MDV:26732")])


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("expired-intermediate", "the chain does not verify"),
        ("two-units", "the subject names 2 units (MDV:26740, MDV:26732): a certificate is for one unit"),
        ("rsa-1024", "an RSA key of 1024 bits: below the 2048 required"),
        ("sha1", "signed with SHA1: SHA-256 or stronger is required"),
        ("no-key-usage", "no key usage: the CA must state what the key may do"),
        ("no-non-repudiation", "key usage lacks nonRepudiation"),
        ("two-leaves", "the file holds 2 certificates that are not CAs: one ward's certificate per file"),
        ("ca-first", "the first certificate in the file is a CA's: put the ward's certificate first"),
        ("ca-as-leaf", "the file holds CA certificates only, not a ward's certificate"),
        ("garbage", "not a certificate (PEM or DER)"),
    ],
)
def test_more_bad_certificates_are_refused_with_what_is_wrong(store, case, message):
    from cryptography.hazmat.primitives.asymmetric import rsa

    ledger = store["ledger"]
    if case == "expired-intermediate":
        issued = _craft(store, "26740/signing", issuer=_expired_intermediate(store))
    elif case == "two-units":
        issued = _craft(store, "26740/signing", subject=_two_units(store))
    elif case == "rsa-1024":
        weak = rsa.generate_private_key(65537, 1024)  # noqa: S505 - the weak key the import refuses
        issued = _craft(store, "26740/signing", public_key=weak.public_key())
    elif case == "sha1":  # cryptography signs with SHA-1 no more: openssl does, as an old CA would
        csr = store["dir"] / "sha1.csr"
        csr.write_bytes(store["requests"]["26740/signing"][1])
        ext = store["dir"] / "sha1.ext"
        ext.write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n"
                       "extendedKeyUsage=emailProtection\n")  # fmt: skip
        ca_dir, issued = store["dir"] / "ca", store["dir"] / "sha1.pem"
        subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_dir / "issuing.pem"), "-CAkey",
                        str(ca_dir / "issuing.key"), "-sha1", "-days", "300", "-extfile", str(ext), "-out",
                        str(issued)], check=True, capture_output=True)  # fmt: skip
    elif case in ("no-key-usage", "no-non-repudiation"):
        issued = _craft(store, "26740/signing", usage="none" if case == "no-key-usage" else case)
    elif case == "two-leaves":
        other = _issue(store, "26732/signing").read_bytes().split(b"-----END CERTIFICATE-----")[0]
        issued = _craft(store, "26740/signing", extra=other + b"-----END CERTIFICATE-----\n")
    elif case in ("ca-first", "ca-as-leaf"):
        good = _issue(store, "26740/signing").read_bytes()
        leaf, chain = good.split(b"-----END CERTIFICATE-----\n", 1)
        issued = store["dir"] / f"{case}.pem"
        issued.write_bytes(chain + leaf + b"-----END CERTIFICATE-----\n" if case == "ca-first" else chain)
    else:
        issued = store["dir"] / "garbage.pem"
        issued.write_bytes(b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
    before = ledger.path.read_bytes()
    _ledger, results = ops.import_files(ledger, [issued], NOW)
    assert not results[0].ok
    assert any(message in p for p in results[0].problems), results[0].problems
    assert ledger.path.read_bytes() == before
    assert not ledger.cert_path(ledger.get("26740/signing")).exists()


def test_two_files_for_one_certificate_are_both_refused(store):
    ledger = store["ledger"]
    first, second = _issue(store, "26740/signing"), _issue(store, "26740/signing")
    _ledger, results = ops.import_files(ledger, [first, second], NOW)
    assert [r.ok for r in results] == [False, False]
    assert all("of this import is for 26740/signing too: give one file per certificate" in r.problems[0]
               for r in results)  # fmt: skip
    assert not ledger.cert_path(ledger.get("26740/signing")).exists()


def test_tls_certificate_needs_its_names(store):
    ledger = store["ledger"]
    cert = ledger.get("26740/counter-tls")
    bare = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(ops.OID[k], v) for k, v in reversed(cert.subject())])
    )
    from cryptography.hazmat.primitives import serialization

    key = store["requests"][cert.key][0]
    ledger.csr_path(cert).write_bytes(bare.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    pem = ca.sign_request(store["dir"] / "ca", ledger.csr_path(cert).read_bytes(), usage="tls")
    checked = ops.check_issued(ledger, cert, pem, NOW)
    assert checked.problems == []  # the CA put the CN in subjectAltName
    ledger.csr_path(cert).write_bytes(store["requests"][cert.key][1])


def test_export_lists_every_request_with_its_csr(store):
    batch, problems = ops.export_batch(store["registry"], store["ledger"])
    assert problems == []
    text = batch.csv()
    assert text.startswith("\ufeff")  # spreadsheets read the Vietnamese as UTF-8
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0][:3] == ["STT", "Mã đơn vị", "Tên đơn vị"]
    assert [r[1] for r in rows[1:]] == ["25747", "26732", "26740", "26740"]
    saigon = rows[3]
    assert saigon[2] == "Phường Sài Gòn" and saigon[7] == "w26740-pc01"
    # In the CSV behind an apostrophe (a spreadsheet reads a leading '-' as a formula), exact in the rows.
    assert saigon[10].startswith("'-----BEGIN CERTIFICATE REQUEST-----")
    assert batch.rows[2][10] == saigon[10][1:] and batch.rows[2][10].startswith("-----BEGIN")
    ledger = store["ledger"]
    ledger.csr_path(ledger.get("26732/signing")).unlink()
    _batch, problems = ops.export_batch(store["registry"], ledger)
    assert len(problems) == 1 and "certificate 26732/signing: no CSR yet" in problems[0]
    assert "--limit site_26732 --tags certificates_request" in problems[0]


def test_the_export_opens_in_libreoffice_with_every_cell_text(store, tmp_path):
    """The workbook people open: every cell text, each request's PEM exactly (a CSV cell
    starting with -----BEGIN is a formula to a spreadsheet); the CSV's cells are no formula."""
    batch, _problems = ops.export_batch(store["registry"], store["ledger"])
    book, table = tmp_path / "batch.xlsx", tmp_path / "batch.csv"
    book.write_bytes(batch.xlsx())
    table.write_text(batch.csv(), encoding="utf-8", newline="")
    profile = tmp_path / "libreoffice-profile"
    header, *rows = calc_cells(book, profile)
    assert [c.text for c in header] == list(ops.EXPORT_HEADERS)
    assert [[c.text for c in row] for row in rows] == batch.rows
    assert {(c.type, c.formula) for row in [header, *rows] for c in row if c.text} == {("string", None)}
    _header, *rows = calc_cells(table, profile, CSV_EVALUATING)
    assert all(c.formula is None for row in rows for c in row)
    assert [row[10].text for row in rows] == ["'" + r[10] for r in batch.rows]


def test_expiring_and_renewal(store):
    ledger = store["ledger"]
    short = _issue(store, "26740/signing", days=10)
    ledger, _results = ops.import_files(ledger, [short, _issue(store, "25747/signing")], NOW)
    assert [c.key for c in ledger.expiring(NOW)] == ["26740/signing"]  # 10 days < renew_days 30
    assert [c.key for c in ledger.expiring(NOW, 5)] == []
    ledger = ops.mark_renewal(ledger, ledger.expiring(NOW))
    renewed = load_ledger(ledger.path, store["registry"]).get("26740/signing")
    assert (renewed.status, renewed.generation, renewed.label) == ("requested", 2, "signing-2")
    assert ledger.csr_path(renewed).name == "signing-2.csr.pem"  # a new key and request


def test_record_sets_token_serial_and_installed(store):
    ledger = store["ledger"]
    ledger, _ = ops.import_files(ledger, [_issue(store, "26740/signing")], NOW)
    ledger, changes = ops.record(
        ledger, [{"key": "26740/counter-tls", "token_serial": "ignored"}, {"key": "26740/signing", "installed": True}]
    )
    assert changes == ["26740/signing: installed"]  # a TLS key has no token
    cert = load_ledger(ledger.path, store["registry"]).get("26740/signing")
    assert (cert.status, cert.token_serial) == ("installed", "00000002")
    assert ops.record(ledger, [{"key": "26740/signing", "installed": True}])[1] == []
    with pytest.raises(ValueError, match="the token holds serial 0000aaaa; the ledger says 00000002"):
        ops.record(ledger, [{"key": "26740/signing", "token_serial": "0000aaaa"}])


def test_plan_for_the_playbook(store):
    ledger = store["ledger"]
    ledger, _ = ops.import_files(ledger, [_issue(store, "26740/signing")], NOW)
    plan = ops.plan(store["registry"], ledger)
    mine = {i["key"]: i for i in plan["hosts"]["w26740-pc01"]}
    assert mine["26740/signing"]["status"] == "issued" and mine["26740/signing"]["cert_present"]
    assert mine["26740/signing"]["dn"].startswith("CN=Ủy ban nhân dân phường Sài Gòn,OU=Bộ phận Một cửa,")
    assert plan["site_files"]["26740"] == [
        {"key": "26740/signing", "src": str(ledger.cert_path(ledger.get("26740/signing"))), "name": "signing.crt"}
    ]
    assert plan["exporter_sources"] == [
        {"name": "26740-signing", "site": "26740", "file": "/etc/motcua/certificates/26740/signing.crt"}
    ]


def test_cli(capsys, store, monkeypatch, tmp_path):
    from motcua.cli import main

    assert main(["certs", "check", "-i", str(ROOT / "inventory" / "hcmc")]) == 0
    assert "OK: 168 certificates (168 requested)" in capsys.readouterr().out
    assert main(["certs", "export", "-i", str(ROOT / "inventory" / "hcmc"), "--sites", "26740"]) == 1
    assert "nothing written" in capsys.readouterr().err
    # An inventory of its own whose ledger is the test store's.
    inventory = tmp_path / "inv"
    inventory.mkdir()
    (inventory / "motcua.yml").write_text(
        f"plugin: motcua.ops.registry\nregistry: {ROOT / 'inventory' / 'hcmc' / 'registry'}\n"
        f"address_space: lab\nsites: ['26740', '25747', '26732']\ncertificates: {store['ledger'].path}\n"
    )
    bad = _issue(store, "26740/signing", issuer="rogue")
    assert main(["certs", "import", "-i", str(inventory), str(bad)]) == 1
    assert "REFUSED / TỪ CHỐI, nothing stored" in capsys.readouterr().err
    assert main(["certs", "import", "-i", str(inventory), str(_issue(store, "26740/signing", days=20))]) == 0
    assert main(["certs", "expiring", "-i", str(inventory)]) == 0
    out = capsys.readouterr().out
    assert "26740/signing" in out and "motcua certs renew" in out
    assert main(["certs", "renew", "-i", str(inventory), "--dry-run"]) == 0
    assert "generation 1 -> 2" in capsys.readouterr().out
    assert main(["certs", "list", "-i", str(inventory), "--json"]) == 0
    listed = {c["id"] + "@" + c["site"]: c for c in json.loads(capsys.readouterr().out)}
    assert listed["signing@26740"]["status"] == "issued" and 19 < listed["signing@26740"]["days_left"] < 21


def test_cli_imports_a_folder_of_issued_certificates(capsys, store, tmp_path):
    """A folder stands for the certificates in it, as the CA returns a batch; an empty batch is nothing to do."""
    from motcua.cli import main

    inventory = tmp_path / "inv"
    inventory.mkdir()
    (inventory / "motcua.yml").write_text(
        f"plugin: motcua.ops.registry\nregistry: {ROOT / 'inventory' / 'hcmc' / 'registry'}\n"
        f"address_space: lab\nsites: ['26740', '25747', '26732']\ncertificates: {store['ledger'].path}\n"
    )
    batch = tmp_path / "batch"
    batch.mkdir()
    assert main(["certs", "import", "-i", str(inventory), str(batch)]) == 0
    assert "nothing to import" in capsys.readouterr().out
    shutil.copy(_issue(store, "26740/signing"), batch / "26740-signing-1.pem")
    (batch / "README.txt").write_text("not a certificate: left alone\n")
    assert main(["certs", "import", "-i", str(inventory), str(batch)]) == 0
    out = capsys.readouterr().out
    assert "26740-signing-1.pem: 26740/signing: accepted" in out and "1 accepted, 0 refused" in out
    assert main(["certs", "import", "-i", str(inventory), str(tmp_path / "missing.pem")]) == 2


# ---- the token tool on a real SoftHSM2 token


@pytest.fixture
def token(tmp_path):
    if not (shutil.which("p11tool") and Path(SOFTHSM).exists()):
        pytest.fail("gnutls-bin and softhsm2 are needed (requirements-apt.txt; make host installs them)")
    (tmp_path / "tokens").mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    env.pop("MOTCUA_TOKEN_PIN", None)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "motcua-26740", "--pin", "246810",
                    "--so-pin", "13579111"], env=env, check=True, capture_output=True)  # fmt: skip
    return env


def tool(env, *args: str, pin: str | None = "246810") -> dict:
    """The token tool as the role runs it: the PIN on stdin (pin=None: no --pin-stdin)."""
    flags = ["--pin-stdin"] if pin is not None else []
    done = subprocess.run(["python3", str(TOKEN_TOOL), *args, *flags, "--module", SOFTHSM], env=env,
                          input=f"{pin}\n" if pin is not None else "", capture_output=True, text=True, check=False,
                          timeout=60)  # fmt: skip
    return {**json.loads(done.stdout), "rc": done.returncode}


def test_token_tool_request_install_and_refusals(token, store, tmp_path):
    cert = store["ledger"].get("26740/signing")
    csr = tmp_path / "host" / "signing-1.csr.pem"
    dn = ops.dn_string(cert)
    first = tool(token, "request", "--label", "motcua-26740", "--object", "signing-1", "--dn", dn, "--csr", str(csr))
    assert first["changed"] and first["rc"] == 0
    assert first["token_label"] == "motcua-26740"  # noqa: S105 - a token's label
    serial = first["token_serial"]
    again = tool(token, "request", "--serial", serial, "--object", "signing-1", "--dn", dn, "--csr", str(csr))
    assert not again["changed"]
    assert not tool(token, "request", "--check", "--object", "signing-1", "--dn", dn, "--csr", str(csr))["changed"]
    request = x509.load_pem_x509_csr(csr.read_bytes())
    assert request.is_signature_valid and ops._subject_problem(cert, request.subject, "request") is None
    # The key never left the token: only the token holds it, marked sensitive and never extractable.
    objects = subprocess.run(["p11tool", "--provider", SOFTHSM, "--login", "--list-all", "pkcs11:token=motcua-26740"],
                             env={**token, "GNUTLS_PIN": "246810"}, capture_output=True, text=True).stdout  # fmt: skip
    assert "CKA_SENSITIVE" in objects and "CKA_NEVER_EXTRACTABLE" in objects
    issued = tmp_path / "issued.pem"
    issued.write_bytes(ca.sign_request(store["dir"] / "ca", csr.read_bytes()))
    assert tool(token, "install", "--object", "signing-1", "--cert", str(issued))["changed"]
    assert not tool(token, "install", "--object", "signing-1", "--cert", str(issued))["changed"]
    status = tool(token, "status", "--object", "signing-1")
    assert x509.load_pem_x509_certificate(status["cert"].encode()).serial_number == (
        x509.load_pem_x509_certificates(issued.read_bytes())[0].serial_number
    )
    # Refusals: a certificate for another key, a token that is not the ledger's, a wrong PIN.
    other = tmp_path / "other.pem"
    other.write_bytes(ca.sign_request(store["dir"] / "ca", store["requests"]["26740/signing"][1]))
    refused = tool(token, "install", "--object", "signing-1", "--cert", str(other))
    assert refused["rc"] == 1 and "key mismatch" in refused["error"]
    wrong = tool(token, "request", "--serial", "0000feed", "--object", "signing-1", "--dn", dn, "--csr", str(csr))
    assert wrong["rc"] == 1 and "no token with serial 0000feed is plugged in (present: motcua-26740" in wrong["error"]
    second = ("request", "--object", "signing-2", "--dn", dn, "--csr", str(tmp_path / "x.csr"))
    bad_pin = tool(token, *second, pin="000000")
    assert bad_pin["rc"] == 1 and not (tmp_path / "x.csr").exists()
    no_pin = tool(token, *second, pin=None)
    assert no_pin["rc"] == 1 and "no user PIN" in no_pin["error"] and not (tmp_path / "x.csr").exists()
    # By hand the PIN may come from the environment instead.
    assert tool({**token, "MOTCUA_TOKEN_PIN": "246810"}, "remove", "--object", "signing-1", pin=None)["changed"]
    assert tool(token, "status", "--object", "signing-1")["cert"] is None
