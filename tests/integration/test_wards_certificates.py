"""playbooks/certificates.yml and `motcua certs` on the lab's three wards, end to end.

The demo's steps made keys and requests on each ward's SoftHSM2 token (a real PKCS#11
interface), the registration export, the lab's national-CA stand-in issuing, the import and the
installation: this module checks what they left, then the import checks refusing another ward's,
an expired, a wrongly chained and a key-mismatched certificate, installation onto the tokens and
the counters, idempotence, check mode on a drifted token, the certificate exporter, renewal (and
a request step run again while a renewal waits for the CA).
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from motcua.lab import ca
from tests.conftest import LAB_HOME, ROOT, changed_tasks, plane_open, recap, run

pytestmark = pytest.mark.lab
INVENTORY = ROOT / "inventory" / "lab"
STORE = LAB_HOME / "certificates"
LEDGER = STORE / "certificates.yml"
WARDS = "site_25747,site_26732,site_26740"
HOSTS = ["w25747-pc01", "w25747-pc02", "w26732-pc01", "w26732-pc02", "w26740-pc01", "w26740-pc02"]
SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"


def playbook(*args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    result = run(["ansible-playbook", "-i", str(INVENTORY), "playbooks/certificates.yml", *args], timeout=timeout)
    return result


def certs(*args: str) -> subprocess.CompletedProcess[str]:
    return run(["motcua", "certs", *args, "-i", str(INVENTORY)], timeout=600)


def listed() -> dict[str, dict]:
    result = certs("list", "--json")
    assert result.returncode == 0, result.stderr
    return {f"{c['site']}/{c['id']}": c for c in json.loads(result.stdout)}


def ssh(lab, host: str, command: str) -> str:
    result = subprocess.run(["ssh", "-F", str(lab.ssh_dir / "config"), host, command], capture_output=True,
                            text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def private_keys(lab, host: str) -> str:
    pin = (LAB_HOME / "tokens" / "user-pin").read_text().strip()
    return ssh(lab, host, f"pkcs11-tool --module {SOFTHSM} --login --pin {pin} --list-objects --type privkey 2>&1")


def token_cert(lab, host: str, label: str) -> bytes:
    out = ssh(lab, host, f"p11tool --provider {SOFTHSM} --export 'pkcs11:object={label};type=cert' || true")
    return out.encode()


@pytest.fixture(scope="module")
def requested(demo):
    """The demo's request step (every counter; keys and requests on the wards' tokens) and its export."""
    for step in ("cert-requests", "cert-export", "cert-sign", "cert-import", "certificates"):
        assert demo[step].returncode == 0, demo[step].output[-4000:]
    return demo


def test_keys_and_requests_are_made_on_the_tokens(lab, requested):
    rows = recap(subprocess.CompletedProcess([], 0, requested["cert-requests"].output, ""))
    assert set(HOSTS) <= set(rows) and all(r["failed"] == 0 for r in rows.values()), rows
    ledger = listed()
    for key in ("25747/signing", "26732/signing", "26740/signing"):
        assert ledger[key]["token_serial"] and ledger[key].get("generation", 1) == 1, ledger[key]
        csr = x509.load_pem_x509_csr((STORE / key.split("/")[0] / "signing-1.csr.pem").read_bytes())
        assert csr.is_signature_valid
        site = key.split("/")[0]
        assert csr.subject.rfc4514_string().endswith(f",L=Thành phố Hồ Chí Minh,C=VN,2.5.4.5=MDV:{site}")
    # The signing key lives on the token only; the TLS key is a root-only file on its host.
    assert "label:      signing-1" in private_keys(lab, "w26740-pc01")
    assert "signing-1" not in ssh(
        lab, "w26740-pc01", "ls /var/lib/motcua/certificates/ /etc/motcua/ | grep key || true"
    )
    assert ssh(lab, "w26740-pc02", "stat -c '%a %U' /etc/motcua/tls/counter-tls-1.key").split() == ["600", "root"]
    # The registration batch the demo exported: every ward with its request.
    batch = Path(re.search(r"(\S+-dang-ky-chung-thu-so\.csv),", requested["cert-export"].output).group(1))
    rows = list(csv.reader(io.StringIO(batch.read_text(encoding="utf-8-sig"))))
    assert rows[0][1:3] == ["Mã đơn vị", "Tên đơn vị"]
    assert sorted((r[1], r[7]) for r in rows[1:]) == [
        ("25747", "w25747-pc01"),
        ("26732", "w26732-pc01"),
        ("26740", "w26740-pc01"),
        ("26740", "w26740-pc02"),
    ]


def _signed(name: str, csr: Path, **kwargs) -> Path:
    out = STORE / "incoming" / name
    out.parent.mkdir(exist_ok=True)
    out.write_bytes(ca.sign_request(STORE / "ca", csr.read_bytes(), **kwargs))
    return out


@pytest.fixture(scope="module")
def installed(lab, requested):
    """Bad certificates offered for ward 26740's signing request (installed by the demo): each refused,
    nothing stored."""
    before = LEDGER.read_bytes()
    stored = (STORE / "26740" / "signing-1.crt.pem").read_bytes()
    saigon = STORE / "26740" / "signing-1.csr.pem"
    bad = {
        "another ward's": (_signed("other-ward.pem", STORE / "26732" / "signing-1.csr.pem"), "for another unit"),
        "expired": (_signed("expired.pem", saigon, days=-1, start_days_ago=400), "expired on"),
        "broken chain": (_signed("rogue.pem", saigon, issuer="rogue"), "chain does not verify"),
        "key mismatch": (
            _signed("mismatch.pem", saigon, public_key=ec.generate_private_key(ec.SECP256R1()).public_key()),
            "key mismatch",
        ),
    }
    refusals = {}
    for what, (path, message) in bad.items():
        result = certs("import", "--cert", "26740/signing", str(path))
        refusals[what] = (result, message)
    assert LEDGER.read_bytes() == before  # nothing of the refused ones is on record
    assert (STORE / "26740" / "signing-1.crt.pem").read_bytes() == stored
    return {"refusals": refusals}


@pytest.mark.parametrize("what", ["another ward's", "expired", "broken chain", "key mismatch"])
def test_a_bad_certificate_is_refused_with_a_clear_message(installed, what):
    result, message = installed["refusals"][what]
    assert result.returncode == 1
    assert "26740/signing: REFUSED / TỪ CHỐI, nothing stored" in result.stderr
    assert message in result.stderr, result.stderr


def test_issued_certificates_are_on_the_tokens_and_counters(lab, installed):
    ledger = listed()
    assert {k: v["status"] for k, v in ledger.items()} == dict.fromkeys(ledger, "installed")
    for site in ("25747", "26732", "26740"):
        stored = x509.load_pem_x509_certificate((STORE / site / "signing-1.crt.pem").read_bytes())
        on_token = x509.load_pem_x509_certificate(token_cert(lab, f"w{site}-pc01", "signing-1"))
        assert on_token == stored
        for host in (f"w{site}-pc01", f"w{site}-pc02"):  # the site's public certificate on every counter
            assert "signing.crt" in ssh(lab, host, "ls /usr/local/share/motcua/certificates/")
    # The national CA chain in the system trust store (the browser's policies point at the same files).
    trusted = ssh(lab, "w26740-pc02", "openssl x509 -in /etc/ssl/certs/issuing.pem -noout -subject")
    assert "Lab Issuing CA" in trusted
    tls = ssh(lab, "w26740-pc02", "openssl x509 -in /etc/motcua/tls/counter-tls-1.crt -noout -ext subjectAltName")
    assert "DNS:w26740-pc02.motcua.lab" in tls


def test_installed_run_is_idempotent_and_check_mode_shows_exactly_a_drift(lab, installed):
    second = playbook("--limit", WARDS)
    assert {h: r["changed"] for h, r in recap(second).items()} == dict.fromkeys(HOSTS, 0)
    pin = (LAB_HOME / "tokens" / "user-pin").read_text().strip()
    ssh(lab, "w26740-pc01", f"GNUTLS_PIN={pin} p11tool --provider {SOFTHSM} --login --batch --delete "
                            "'pkcs11:object=signing-1;type=cert'")  # fmt: skip
    checked = playbook("--limit", "site_26740", "--check", "--diff")  # the drifted counter and its neighbour
    assert checked.returncode == 0, checked.stdout[-4000:]
    changed = {h: r["changed"] for h, r in recap(checked).items() if h.startswith("w26740-")}
    assert changed == {"w26740-pc01": 1, "w26740-pc02": 0}, checked.stdout[-4000:]
    assert "Install | certificate onto the token" in checked.stdout
    fixed = playbook("--limit", "w26740-pc01")
    assert recap(fixed)["w26740-pc01"]["changed"] >= 1
    assert token_cert(lab, "w26740-pc01", "signing-1").startswith(b"-----BEGIN CERTIFICATE-----")


def test_the_certificate_exporter_watches_the_wards_certificates(lab, installed):
    # The exporters' part of the monitoring run, on the host read below: the ledger's certificates are its targets.
    result = run(["ansible-playbook", "-i", str(INVENTORY), "playbooks/monitoring.yml", "--tags",
                  "monitoring_exporters", "--limit", "dx-mon01"], timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    deadline, text = time.monotonic() + 60, ""
    while time.monotonic() < deadline:
        with plane_open("https://127.79.0.10:9112/metrics", timeout=5) as response:
            text = response.read().decode()
        if 'source="26740-signing"' in text:
            break
        time.sleep(2)
    line = next(ln for ln in text.splitlines()
                if ln.startswith("motcua_certificate_not_after") and "26740-signing" in ln)  # fmt: skip
    assert 'site="26740"' in line and 'subject="Ủy ban nhân dân phường Sài Gòn"' in line


def test_renewal_re_requests_what_is_about_to_end(lab, installed):
    expiring = certs("expiring", "--days", "800", "--sites", "26740")
    assert expiring.returncode == 0 and "26740/signing" in expiring.stdout
    renewed = certs("renew", "--days", "800", "--sites", "26740", "--out", str(STORE / "renewal.csv"))
    assert renewed.returncode == 0, renewed.stdout[-4000:] + renewed.stderr[-2000:]
    ledger = listed()
    assert (ledger["26740/signing"]["status"], ledger["26740/signing"]["generation"]) == ("requested", 2)
    assert "25747/signing" not in renewed.stdout and ledger["25747/signing"]["status"] == "installed"
    assert (STORE / "26740" / "signing-2.csr.pem").is_file()
    objects = private_keys(lab, "w26740-pc01")
    assert "signing-2" in objects and "signing-1" in objects  # the old key signs until the new certificate is in
    rows = list(csv.reader(io.StringIO((STORE / "renewal.csv").read_text(encoding="utf-8-sig"))))
    assert sorted(r[8] for r in rows[1:]) == ["26740/counter-tls-2.csr.pem", "26740/signing-2.csr.pem"]
    # While the ward waits for the CA, the request step run again changes nothing: no third key, the same request.
    csr = (STORE / "26740" / "signing-2.csr.pem").read_bytes()
    again = playbook("--limit", "site_26740", "--tags", "certificates_request")
    assert again.returncode == 0, again.stdout[-4000:]
    changed = {h: changed_tasks(again, h) for h in ("w26740-pc01", "w26740-pc02")}
    assert changed == {"w26740-pc01": [], "w26740-pc02": []}, again.stdout[-3000:]
    assert {h: r["changed"] for h, r in recap(again).items()} == {"w26740-pc01": 0, "w26740-pc02": 0}
    assert (STORE / "26740" / "signing-2.csr.pem").read_bytes() == csr
    assert "signing-3" not in private_keys(lab, "w26740-pc01")


def test_a_bad_ledger_stops_the_run_before_any_counter(lab, requested):
    saved = LEDGER.read_text(encoding="utf-8")
    try:
        LEDGER.write_text(saved.replace("host: pc01", "host: pc09", 1), encoding="utf-8")
        result = playbook("--limit", WARDS)
        assert result.returncode != 0
        assert "field host: site 25747 has no host 'pc09'" in result.stdout + result.stderr
        # The plan fails on the controller (reported as "w25747-pc01 -> localhost"); no task ran on a counter.
        rows = recap(result)
        assert list(rows) == ["w25747-pc01"] and rows["w25747-pc01"]["ok"] == 0, result.stdout[-3000:]
        assert "fatal: [w25747-pc01 -> localhost]" in result.stdout
    finally:
        LEDGER.write_text(saved, encoding="utf-8")
