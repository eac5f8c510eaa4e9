"""What the counters pull, served (motcua_exporters.pull.source): real git clones over HTTPS with basic
auth from a real bare repository, the wheelhouse, nothing else of the directory, and the rings' commits
on /metrics (promtool)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.error
import urllib.request

import bcrypt
import pytest

from motcua.lab import ca
from motcua.lab.procs import spawn, stop, wait_for_port

from .conftest import free_port, promtool_check, tls_client

USER, PASSWORD = "counter", "a-long-lab-password-for-counters"


def git(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pull-source")
    root = tmp / "served"
    repo = root / "repo.git"
    assert git("init", "--quiet", "--bare", "--initial-branch=main", str(repo)).returncode == 0
    work = tmp / "work"
    assert git("init", "--quiet", "--initial-branch=main", str(work)).returncode == 0
    (work / "site.yml").write_text("- hosts: all\n")
    assert git("add", ".", cwd=work).returncode == 0
    assert git("commit", "--quiet", "-m", "first", cwd=work).returncode == 0
    commit = git("rev-parse", "HEAD", cwd=work).stdout.strip()
    assert git("push", "--quiet", str(repo), "HEAD:refs/heads/ring/canary", cwd=work).returncode == 0
    assert git("--git-dir", str(repo), "update-server-info").returncode == 0
    (root / "wheels").mkdir()
    (root / "wheels" / "motcua-pull-wheels.tar").write_bytes(b"wheels" * 1000)
    (root / "signing-key").write_text("the DX Centre's private key: never served\n")
    (tmp / "outside").write_text("not served either\n")
    ca.ensure_lab_ca(tmp / "ca", "127.0.0.1")
    ca.issue_web_certificates(tmp / "ca", tmp / "web", {"source": "127.0.0.1"})
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    web = tmp / "web.yml"
    web.write_text(json.dumps({"tls_server_config": {"cert_file": str(tmp / "web" / "source.crt"),
                                                     "key_file": str(tmp / "web" / "source.key")},
                               "basic_auth_users": {USER: hashed}}))  # fmt: skip
    config = tmp / "source.yml"
    config.write_text(f"root: {root}\n")
    port = free_port()
    log = tmp / "source.log"
    argv = [sys.executable, "-m", "motcua_exporters", "pull-source", "--config.file", str(config),
            "--web.config.file", str(web), "--web.listen-address", f"127.0.0.1:{port}"]  # fmt: skip
    proc = spawn("pull-source", "test", argv, log)
    try:
        assert wait_for_port("127.0.0.1", port, 15), log.read_text()
        yield {"url": f"https://127.0.0.1:{port}", "ca": tmp / "ca" / "ca.pem", "tmp": tmp, "commit": commit,
               "repo": repo, "work": work}  # fmt: skip
    finally:
        stop([proc])


def get(source: dict, path: str, auth: bool = True) -> tuple[int, bytes]:
    headers = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()} if auth else {}
    request = urllib.request.Request(source["url"] + path, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=10, context=tls_client(source["ca"])) as resp:  # noqa: S310
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def clone_env(source: dict, password: str = PASSWORD) -> dict:
    token = base64.b64encode(f"{USER}:{password}".encode()).decode()
    return {"PATH": "/usr/bin:/bin", "HOME": str(source["tmp"]), "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "http.sslCAInfo", "GIT_CONFIG_VALUE_0": str(source["ca"]),
            "GIT_CONFIG_KEY_1": "http.extraHeader", "GIT_CONFIG_VALUE_1": f"Authorization: Basic {token}"}  # fmt: skip


def test_a_counter_clones_the_ring_over_https_with_its_credentials(source, tmp_path):
    done = git("clone", "--quiet", "--branch", "ring/canary", f"{source['url']}/repo.git", str(tmp_path / "c"),
               env=clone_env(source))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "c" / "site.yml").read_text() == "- hosts: all\n"
    assert git("rev-parse", "HEAD", cwd=tmp_path / "c").stdout.strip() == source["commit"]


def test_without_the_password_nothing_is_served(source, tmp_path):
    done = git("clone", "--quiet", f"{source['url']}/repo.git", str(tmp_path / "c"),
               env=clone_env(source, "wrong-password"))  # fmt: skip
    assert done.returncode != 0 and not (tmp_path / "c" / "site.yml").exists()
    assert get(source, "/repo.git/info/refs", auth=False)[0] == 401
    assert get(source, "/wheels/motcua-pull-wheels.tar", auth=False)[0] == 401


def test_the_wheelhouse_is_served_and_nothing_else_of_the_directory(source):
    status, body = get(source, "/wheels/motcua-pull-wheels.tar")
    assert status == 200 and body == b"wheels" * 1000
    for path in (
        "/signing-key",
        "/repo.git/../signing-key",
        "/wheels/../signing-key",
        "/repo.git/%2e%2e/signing-key",
        "/repo.git/",
        "/repo.git/objects",
        "/wheels/.hidden",
        "/outside",
        "/repo.git/../../outside",
    ):
        status, body = get(source, path)
        assert status == 404, (path, status)
        assert b"private key" not in body


def test_metrics_name_each_rings_commit_and_follow_a_move(source):
    status, body = get(source, "/metrics")
    assert status == 200
    text = body.decode()
    promtool_check(text)
    assert f'motcua_pull_source_ring_commit_info{{ring="canary",commit="{source["commit"]}"}} 1' in text
    assert 'motcua_pull_source_ring_commit_info{ring="all"' not in text
    assert git("push", "--quiet", str(source["repo"]), "HEAD:refs/heads/ring/all", cwd=source["work"]).returncode == 0
    text = get(source, "/metrics")[1].decode()
    assert f'motcua_pull_source_ring_commit_info{{ring="all",commit="{source["commit"]}"}} 1' in text
    assert 'motcua_pull_source_ring_changed_timestamp_seconds{ring="all"}' in text
    assert 'motcua_pull_source_requests_total{code="404"}' in text
