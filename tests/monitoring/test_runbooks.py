"""Every alert's runbook link resolves to a runbook in docs/runbooks, in Vietnamese and English,
and every `motcua` command a runbook tells people to run is one the CLI accepts."""

from __future__ import annotations

import re
import shlex

import pytest

from motcua.cli import build_parser
from motcua.monitoring.rules import ALERTS, BRIDGE_ALERTS, rule_groups
from tests.conftest import ROOT

RUNBOOKS = ROOT / "docs" / "runbooks"
SECTIONS = ("## Ý nghĩa / What it means", "## Kiểm tra đầu tiên / First checks", "## Lệnh xử lý / Command to run",
            "## Chuyển tiếp / Escalation")  # fmt: skip


def _rules(registry) -> list[dict]:
    groups = rule_groups(registry)["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_every_alert_links_to_its_runbook(production_registry):
    rules = _rules(production_registry)
    assert {r["alert"] for r in rules} == {a.name for a in ALERTS}
    for rule in rules:
        url = rule["annotations"]["runbook_url"]
        assert (ROOT / url).is_file(), f"{rule['alert']}: runbook {url} does not exist"
    every = (*ALERTS, *BRIDGE_ALERTS)
    assert {p.name for p in RUNBOOKS.glob("*.md")} == {f"{a.slug}.md" for a in every} | {"README.md"}


@pytest.mark.parametrize("alert", [*ALERTS, *BRIDGE_ALERTS], ids=lambda a: a.name)
def test_runbook_has_every_section_in_both_languages(alert):
    text = (RUNBOOKS / f"{alert.slug}.md").read_text(encoding="utf-8")
    assert text.startswith(f"# {alert.name}: ")
    for section in SECTIONS:
        assert section in text, f"{alert.slug}.md lacks {section!r}"
    assert re.search(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", text)  # Vietnamese, with diacritics
    assert alert.name in (RUNBOOKS / "README.md").read_text(encoding="utf-8")


def _commands(text: str) -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    return [line.split("   #")[0].strip() for block in blocks for line in block.splitlines() if line.strip()]


@pytest.mark.parametrize("page", [*(a.slug for a in (*ALERTS, *BRIDGE_ALERTS)), "README"])
def test_runbook_commands_are_real(page):
    commands = _commands((RUNBOOKS / f"{page}.md").read_text(encoding="utf-8"))
    assert commands, f"{page}.md gives no command to run"
    parser = build_parser()
    for command in commands:
        words = shlex.split(re.sub(r"<([^>]+)>", lambda m: m.group(1).replace(" ", "-"), command))
        if words[0] == "motcua":
            parser.parse_args(words[1:])  # SystemExit (a failed test) for a command the CLI refuses
        elif words[0] == "ansible-playbook":
            playbook = next(w for w in words if w.startswith("playbooks/"))
            assert (ROOT / playbook).is_file(), f"{page}.md: {playbook} does not exist"
