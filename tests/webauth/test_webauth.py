"""The locked plane's credentials (motcua.webauth, the motcua.ops.web_config filter) and the lab's certificates,
checked with real bcrypt, real openssl and a real TLS handshake."""

from __future__ import annotations

import base64
import http.server
import ssl
import subprocess
import threading
import urllib.error

import bcrypt
import pytest
import yaml

from motcua.lab import ca
from motcua.webauth import (
    LOCAL,
    Credentials,
    WebAuthError,
    bcrypt_hash,
    check_users,
    local_password,
    open_url,
    web_config,
)

USERS = {"monitoring": "m" * 20, "operator": "o" * 20}


def test_the_web_config_holds_a_bcrypt_hash_per_user_and_the_hosts_local_user():
    config = web_config(USERS, "dx-mon01", {"cert_file": "/etc/motcua/web/tls.crt", "key_file": "/k"})
    users = config["basic_auth_users"]
    assert set(users) == {"monitoring", "operator", LOCAL}
    for user, password in {**USERS, LOCAL: local_password(USERS, "dx-mon01")}.items():
        assert users[user].startswith("$2b$10$") and bcrypt.checkpw(password.encode(), users[user].encode()), user
    assert config["tls_server_config"]["cert_file"] == "/etc/motcua/web/tls.crt"
    # Written twice, the same file (a second run changes nothing); another host, other salts.
    assert web_config(USERS, "dx-mon01", None)["basic_auth_users"] == users
    assert web_config(USERS, "dx-mon02", None)["basic_auth_users"]["operator"] != users["operator"]
    assert "tls_server_config" not in web_config(USERS, "dx-mon01", None)


def test_each_hosts_local_password_is_its_own_and_reveals_nothing_of_the_others():
    one, two = local_password(USERS, "w26740-pc01"), local_password(USERS, "w26740-pc02")
    assert one != two and USERS["monitoring"] not in one and len(one) >= 40
    assert not bcrypt.checkpw(one.encode(), bcrypt_hash(two, "w26740-pc02", LOCAL).encode())


@pytest.mark.parametrize(
    ("users", "message"),
    [
        ({"operator": "o" * 20}, "no password for monitoring"),
        ({"monitoring": "m" * 20, "operator": "short"}, "operator: the password must be 16 characters"),
        ({**USERS, "local": "l" * 20}, "'local' is reserved"),
        ({**USERS, "a:b": "x" * 20}, "not a usable user name"),
        (["monitoring"], "must be a mapping"),
    ],
)
def test_unusable_credentials_are_refused_with_the_reason(users, message):
    with pytest.raises(WebAuthError, match=message):
        check_users(users)


def test_the_tools_find_their_credentials_in_the_environment_or_the_lab_home(tmp_path):
    assert Credentials.for_tools(None, env={}) is None
    (tmp_path / "web").mkdir()
    (tmp_path / "ca").mkdir()
    (tmp_path / "web" / "operator-password").write_text("lab-operator-secret\n")
    (tmp_path / "ca" / "ca.pem").write_text("x")
    lab = Credentials.for_tools(tmp_path, env={})
    assert lab.username == "operator" and "secret" not in repr(lab)
    assert lab.password == "lab-operator-secret"  # noqa: S105
    (tmp_path / "pw").write_text("from-the-vault\n")
    env = {"MOTCUA_WEB_USER": "dxadmin", "MOTCUA_WEB_PASSWORD_FILE": str(tmp_path / "pw")}
    assert Credentials.for_tools(tmp_path, env=env) == Credentials("dxadmin", "from-the-vault", None)
    with pytest.raises(WebAuthError, match="cannot read"):
        Credentials.for_tools(None, env={"MOTCUA_WEB_PASSWORD_FILE": str(tmp_path / "nope")})
    with pytest.raises(WebAuthError, match="no such CA file"):
        Credentials.for_tools(None, env={**env, "MOTCUA_WEB_CA_FILE": str(tmp_path / "nope.pem")})


def test_lab_certificates_name_the_host_and_its_address_and_chain_to_the_lab_ca(tmp_path):
    ca.ensure_lab_ca(tmp_path / "ca", "127.0.0.1")
    hosts = {"dx-mon01": "127.79.0.10", "w26740-pc01": "127.79.1.11"}
    assert ca.issue_web_certificates(tmp_path / "ca", tmp_path / "web", hosts) == sorted(hosts)
    assert ca.issue_web_certificates(tmp_path / "ca", tmp_path / "web", hosts) == []  # kept while valid
    for name, address in hosts.items():
        cert = tmp_path / "web" / f"{name}.crt"
        verify = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "ca" / "ca.pem"), str(cert)],
                                capture_output=True, text=True, check=False)  # fmt: skip
        assert verify.returncode == 0, verify.stderr
        text = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-text"], capture_output=True,
                              text=True, check=True).stdout  # fmt: skip
        assert f"IP Address:{address}" in text and f"DNS:{name}" in text
        assert (tmp_path / "web" / f"{name}.key").stat().st_mode & 0o077 == 0
    # A new lab CA (another dossier address): every certificate is issued again.
    (tmp_path / "ca" / "address").write_text("127.0.0.2\n")
    ca.ensure_lab_ca(tmp_path / "ca", "127.0.0.3")
    assert ca.issue_web_certificates(tmp_path / "ca", tmp_path / "web", hosts) == sorted(hosts)


def test_open_url_sends_the_credentials_over_verified_tls(tmp_path):
    """A real TLS server with the lab CA's certificate: the right CA and password get in, a wrong CA does not."""
    ca.ensure_lab_ca(tmp_path / "ca", "127.0.0.1")
    ca.issue_web_certificates(tmp_path / "ca", tmp_path / "web", {"plane": "127.0.0.1"})
    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "web" / "plane.crt", tmp_path / "web" / "plane.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/metrics"
        good = Credentials("operator", "o" * 20, tmp_path / "ca" / "ca.pem")
        with open_url(url, good, 5) as response:
            assert response.read() == b"ok"
        assert seen[-1] == "Basic " + base64.b64encode(b"operator:" + b"o" * 20).decode()
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            open_url(url, Credentials("operator", "o" * 20, tmp_path / "ca" / "untrusted.pem"), 5)
    finally:
        server.shutdown()
        server.server_close()


def test_the_filter_gives_ansible_the_same_file(tmp_path):
    from ansible_collections.motcua.ops.plugins.filter.web_config import web_config as web_filter
    from ansible_collections.motcua.ops.plugins.filter.web_local_password import web_local_password

    rendered = web_filter(USERS, "dx-mon01", {"cert_file": "/c", "key_file": "/k"})
    assert rendered == web_config(USERS, "dx-mon01", {"cert_file": "/c", "key_file": "/k"})
    assert yaml.safe_load(yaml.safe_dump(rendered)) == rendered
    assert web_local_password(USERS, "dx-mon01") == local_password(USERS, "dx-mon01")
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match="dx-mon01: motcua_web_users: no password for operator"):
        web_filter({"monitoring": "m" * 20}, "dx-mon01")
