"""The monitoring hosts' nftables ruleset (roles/monitoring_firewall), loaded with the real nft into network
namespaces this test makes (a server and a client joined by a veth pair, on addresses of their own): the
admitted sources get in, the others are dropped, the gossip port opens to the peer only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import jinja2
import pytest

from tests.conftest import ROOT

SERVER, PEER, DESK, STRANGER = "10.77.0.10", "10.77.0.13", "10.77.0.50", "10.77.0.200"
PORTS = {"ssh": 22, "alertmanager": 9093, "gossip": 9094, "bridge": 9096}


def render(peers: list[str]) -> str:
    template = (ROOT / "roles" / "monitoring_firewall" / "templates" / "nftables.conf.j2").read_text()
    env = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701 - nft
    return env.from_string(template).render(
        ansible_managed="test",
        monitoring_firewall_management_ranges=["10.77.0.32/27"],
        monitoring_firewall_plane_ranges=["10.77.0.32/27"],
        monitoring_firewall_plane_ports=[9090, 9093, 9096, 9100, 9111, 9112, 9115],
        monitoring_firewall_cluster_port=9094,
        monitoring_firewall_peers=peers,
    )


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def namespaces(tmp_path):
    if os.geteuid() != 0 or not shutil.which("nft"):
        pytest.fail("the firewall test needs root and nft (network namespaces of its own)")
    tag = f"{os.getpid() % 100000}"
    server, client = f"mcfw-s{tag}", f"mcfw-c{tag}"
    ip("netns", "add", server)
    ip("netns", "add", client)
    try:
        ip("link", "add", f"vs{tag}", "netns", server, "type", "veth", "peer", "name", f"vc{tag}", "netns", client)
        ip("-n", server, "addr", "add", f"{SERVER}/24", "dev", f"vs{tag}")
        for address in (PEER, DESK, STRANGER):
            ip("-n", client, "addr", "add", f"{address}/24", "dev", f"vc{tag}")
        for ns, dev in ((server, f"vs{tag}"), (client, f"vc{tag}")):
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield server, client
    finally:
        for ns in (server, client):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, check=False)


LISTEN = textwrap.dedent(
    """
    import socket, sys, threading, time
    def serve(port, kind):
        s = socket.socket(socket.AF_INET, kind)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        if kind == socket.SOCK_STREAM:
            s.listen(16)
            while True:
                c, _ = s.accept(); c.close()
        while True:
            data, peer = s.recvfrom(64); s.sendto(b"pong", peer)
    for port in map(int, sys.argv[1:]):
        threading.Thread(target=serve, args=(port, socket.SOCK_STREAM), daemon=True).start()
        threading.Thread(target=serve, args=(port, socket.SOCK_DGRAM), daemon=True).start()
    print("ready", flush=True)
    time.sleep(60)
    """
)

PROBE = textwrap.dedent(
    """
    import socket, sys
    source, target, port, kind = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
    s.settimeout(1.0)
    s.bind((source, 0))
    try:
        if kind == "tcp":
            s.connect((target, port)); print("answered")
        else:
            s.sendto(b"ping", (target, port)); s.recvfrom(64); print("answered")
    except TimeoutError:
        print("dropped")
    except ConnectionRefusedError:
        print("refused")
    """
)


def probe(client: str, source: str, port: int, kind: str = "tcp") -> str:
    argv = ["ip", "netns", "exec", client, sys.executable, "-c", PROBE, source, SERVER, str(port), kind]
    return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True).stdout.strip()


def test_the_ruleset_admits_the_dx_centre_and_the_peer_and_drops_the_rest(namespaces, tmp_path):
    server, client = namespaces
    ruleset = tmp_path / "nftables.conf"
    ruleset.write_text(render([PEER]))
    subprocess.run(["ip", "netns", "exec", server, "nft", "-f", str(ruleset)], check=True, capture_output=True)
    listener = subprocess.Popen(["ip", "netns", "exec", server, sys.executable, "-c", LISTEN,
                                 *map(str, PORTS.values())], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert listener.stdout.readline().strip() == "ready"
        # A desk in the DX Centre's range: SSH and the plane's ports, never the gossip.
        assert probe(client, DESK, PORTS["ssh"]) == "answered"
        assert probe(client, DESK, PORTS["alertmanager"]) == "answered"
        assert probe(client, DESK, PORTS["gossip"]) == "dropped"
        assert probe(client, DESK, PORTS["gossip"], "udp") == "dropped"
        # The other monitoring host: the plane's ports and the gossip (TCP and UDP).
        assert probe(client, PEER, PORTS["bridge"]) == "answered"
        assert probe(client, PEER, PORTS["gossip"]) == "answered"
        assert probe(client, PEER, PORTS["gossip"], "udp") == "answered"
        # Anyone else on the management network: nothing at all (dropped, not refused).
        for port in PORTS.values():
            assert probe(client, STRANGER, port) == "dropped", port
    finally:
        listener.kill()
        listener.wait()


def test_without_peers_the_ruleset_is_valid_and_has_no_gossip_rule(tmp_path):
    ruleset = tmp_path / "nftables.conf"
    ruleset.write_text(render([]))
    result = subprocess.run(["unshare", "--net", "nft", "-c", "-f", str(ruleset)], capture_output=True, text=True,
                            check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "9094" not in ruleset.read_text()
