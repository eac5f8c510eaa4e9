"""Shared fixtures: paths, a scratch copy of the corpus base registry, ansible runners."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_REGISTRY = ROOT / "inventory" / "hcmc" / "registry"
CORPUS = ROOT / "tests" / "corpus"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def production_registry():
    from motcua.registry import load_registry

    return load_registry(PRODUCTION_REGISTRY)


@pytest.fixture
def base_registry(tmp_path: Path) -> Path:
    """A writable copy of the small valid registry the corpus cases change."""
    target = tmp_path / "registry"
    shutil.copytree(CORPUS / "base", target)
    return target


def ansible_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_NOCOLOR"] = "1"
    env.update(extra)
    return env


def run(cmd: list[str], cwd: Path = ROOT, timeout: int = 300, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a command from the repository root with the venv's tools first on PATH."""
    return subprocess.run(
        cmd, cwd=cwd, env=ansible_env(**env), capture_output=True, text=True, timeout=timeout, check=False
    )
