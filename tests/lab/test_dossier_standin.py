"""The dossier system stand-in under each fault switch, probed by real HTTP/TLS clients.

Runs its own instance on a loopback address with unprivileged ports, so it
needs neither root nor the lab.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from motcua.lab.dossier import FAULTS, write_fault
from motcua.lab.procs import wait_for_port

from ..conftest import STANDIN_ADDRESS as ADDRESS
from ..conftest import STANDIN_HTTP as HTTP
from ..conftest import STANDIN_HTTPS as HTTPS

pytestmark = pytest.mark.usefixtures("clear_dossier_fault")


@pytest.fixture
def standin(dossier_standin):
    return dossier_standin


def fetch(standin, path: str = "/", scheme: str = "https", timeout: float = 5.0) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=str(standin["ca"]))
    port = HTTPS if scheme == "https" else HTTP
    try:
        url = f"{scheme}://{ADDRESS}:{port}{path}"  # always http(s) to the stand-in on loopback
        with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:  # noqa: S310
            return resp.status, resp.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


def test_endpoints(standin):
    status, body = fetch(standin, "/")
    assert status == 200 and "Hệ thống thông tin giải quyết thủ tục hành chính" in body
    assert 'id="form-dang-nhap"' in fetch(standin, "/dang-nhap")[1]
    assert json.loads(fetch(standin, "/api/health")[1])["status"] == "UP"
    stats = json.loads(fetch(standin, "/api/thong-ke", scheme="http")[1])
    row = stats["don_vi"][0]
    assert row["ma_don_vi"] == "26740" and row["ten_don_vi"] == "Phường Sài Gòn"
    assert row["da_tiep_nhan"] >= row["da_giai_quyet_dung_han"] + row["qua_han"]


def test_certificates_verify_with_real_openssl(standin):
    ca_dir = standin["root"] / "ca"
    ok = subprocess.run(["openssl", "verify", "-CAfile", str(standin["ca"]), str(ca_dir / "server.pem")],
                        capture_output=True, text=True, check=False)  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    expired = subprocess.run(["openssl", "verify", "-CAfile", str(standin["ca"]), str(ca_dir / "expired.pem")],
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert expired.returncode != 0 and "expired" in expired.stdout + expired.stderr
    rogue = subprocess.run(["openssl", "verify", "-CAfile", str(standin["ca"]), str(ca_dir / "untrusted.pem")],
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert rogue.returncode != 0


def test_fault_down_refuses_connections_and_recovers(standin):
    write_fault(standin["faults"], "down")
    deadline = time.monotonic() + 5
    refused = False
    try:
        while time.monotonic() < deadline and not refused:
            try:
                socket.create_connection((ADDRESS, HTTPS), timeout=1).close()
                time.sleep(0.1)
            except ConnectionResetError:
                time.sleep(0.1)  # caught in the backlog while the listener closed: try again
            except ConnectionRefusedError:
                refused = True
        assert refused
    finally:
        write_fault(standin["faults"], None)  # a failure here must not leave the other tests a dead stand-in
    assert wait_for_port(ADDRESS, HTTPS, 5)
    assert fetch(standin, "/api/health")[0] == 200


def test_fault_slow(standin):
    write_fault(standin["faults"], "slow", seconds=1.5)
    started = time.monotonic()
    assert fetch(standin, "/api/health")[0] == 200
    assert time.monotonic() - started >= 1.5
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        fetch(standin, "/api/health", timeout=0.5)


def test_fault_http500_and_wrong_content(standin):
    write_fault(standin["faults"], "http500")
    assert fetch(standin, "/")[0] == 500
    write_fault(standin["faults"], "wrong-content")
    status, body = fetch(standin, "/")
    assert status == 200 and "bảo trì" in body and "giải quyết thủ tục" not in body
    assert json.loads(fetch(standin, "/api/health")[1])["status"] == "DOWN"


@pytest.mark.parametrize(
    ("fault", "reason"), [("expired-cert", "expired"), ("untrusted-cert", "unable to get local issuer")]
)
def test_certificate_faults(standin, fault, reason):
    write_fault(standin["faults"], fault)
    with pytest.raises(urllib.error.URLError) as info:
        fetch(standin, "/")
    assert reason in str(info.value.reason)
    assert fetch(standin, "/", scheme="http")[0] == 200  # plain HTTP is unaffected


def test_fault_reset(standin):
    write_fault(standin["faults"], "reset")
    with pytest.raises((ConnectionResetError, urllib.error.URLError)) as info:
        fetch(standin, "/", scheme="http")
    assert "reset" in str(info.value).lower()


def test_fault_hang_and_path_scope(standin):
    write_fault(standin["faults"], "hang", scope="/api/health")
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        fetch(standin, "/api/health", timeout=1.0)
    assert fetch(standin, "/")[0] == 200  # other paths still answer


def test_unknown_fault_is_refused(standin):
    with pytest.raises(ValueError, match="unknown dossier fault"):
        write_fault(standin["faults"], "on-fire")
    assert set(FAULTS) >= {
        "down",
        "slow",
        "http500",
        "wrong-content",
        "expired-cert",
        "untrusted-cert",
        "reset",
        "hang",
    }
