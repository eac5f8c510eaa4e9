"""The lab's line-cut fault (motcua.lab.linecut) with the real nft: a cut block stops answering (time-outs,
not refusals), the other blocks still answer, mending restores it, and nothing outside loopback is cut."""

from __future__ import annotations

import socket
import subprocess
from ipaddress import IPv4Network

import pytest

from motcua.lab import linecut

BLOCK, OTHER = IPv4Network("127.79.251.0/24"), IPv4Network("127.79.252.0/24")  # apart from any lab's


def connect(address: str, port: int) -> str:
    try:
        with socket.create_connection((address, port), timeout=1.0):
            return "answered"
    except TimeoutError:
        return "timed out"
    except ConnectionRefusedError:
        return "refused"


@pytest.fixture
def listeners():
    socks = []
    for block in (BLOCK, OTHER):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((str(block[1]), 0))
        sock.listen(8)
        socks.append(sock)
    yield {str(BLOCK[1]): socks[0].getsockname()[1], str(OTHER[1]): socks[1].getsockname()[1]}
    for sock in socks:
        sock.close()


def test_a_cut_site_times_out_the_others_answer_and_mending_restores_it(tmp_path, listeners):
    (cut_address, cut_port), (other_address, other_port) = listeners.items()
    try:
        assert linecut.set_cut(tmp_path, "99999", BLOCK) == {"99999": str(BLOCK)}
        table = subprocess.run(["nft", "list", "table", "inet", linecut.TABLE], capture_output=True, text=True)
        assert str(BLOCK) in table.stdout
        assert connect(cut_address, cut_port) == "timed out"  # dropped, as a cut line: no answer at all
        assert connect(other_address, other_port) == "answered"
        assert linecut.cut_sites(tmp_path) == {"99999": str(BLOCK)}
        assert linecut.set_cut(tmp_path, "99999", None) == {}
        assert connect(cut_address, cut_port) == "answered"
        # The table goes when no site is cut.
        gone = subprocess.run(["nft", "list", "table", "inet", linecut.TABLE], capture_output=True, text=True)
        assert gone.returncode != 0
    finally:
        linecut.mend_all(tmp_path)


def test_mend_all_removes_every_cut(tmp_path, listeners):
    (cut_address, cut_port), (other_address, other_port) = listeners.items()
    linecut.set_cut(tmp_path, "a", BLOCK)
    linecut.set_cut(tmp_path, "b", OTHER)
    assert connect(other_address, other_port) == "timed out"
    assert linecut.mend_all(tmp_path) == ["a", "b"]
    assert connect(cut_address, cut_port) == connect(other_address, other_port) == "answered"
    assert linecut.mend_all(tmp_path) == []  # nothing cut: harmless


def test_nothing_outside_loopback_is_ever_cut(tmp_path):
    with pytest.raises(linecut.LineCutError, match="not a lab"):
        linecut.set_cut(tmp_path, "x", IPv4Network("10.79.77.0/24"))
    assert linecut.cut_sites(tmp_path) == {}
