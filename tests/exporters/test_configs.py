"""Every exporter refuses a bad config at start, naming the file and the key."""

from __future__ import annotations

import subprocess

import pytest

from ..conftest import BIN, CORPUS

SCRIPTS = {
    "dossier": "motcua-dossier-exporter",
    "counter": "motcua-counter-exporter",
    "certificate": "motcua-certificate-exporter",
}
CASES = sorted(p for kind in SCRIPTS for p in (CORPUS / "exporters" / kind).glob("*.yml"))


@pytest.mark.parametrize("case", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_bad_config_is_refused_at_start(case):
    """Each corpus file names, in its first line, what the error message must say."""
    expected = case.read_text().splitlines()[0].removeprefix("# expect:").strip()
    script = BIN / SCRIPTS[case.parent.name]
    result = subprocess.run(
        [str(script), "--config.file", str(case), "--check-config"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{case}: {expected}" in result.stderr, result.stderr


@pytest.mark.parametrize("kind", sorted(SCRIPTS))
def test_every_exporter_refuses_to_listen_on_every_address(kind, tmp_path):
    config = tmp_path / "c.yml"
    config.write_text(
        "checks: {scanners: {}}\n" if kind == "counter" else "targets: [{name: a, url: 'http://127.0.0.1/'}]\n"
    )
    result = subprocess.run(
        [str(BIN / SCRIPTS[kind]), "--config.file", str(config), "--web.listen-address", ":9999", "--check-config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "explicit host" in result.stderr, result.stderr
