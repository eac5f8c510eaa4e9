"""`motcua pull status` and `promote`'s gate on counters' reports as the pull writes them."""

from __future__ import annotations

import pytest

from motcua.errors import ToolError
from motcua.pull import status
from motcua_exporters.pull import apply

OLD, NEW = "a" * 40, "b" * 40


def report(reason: str = "", fetched: str = NEW, applied: str = NEW, changed: int = 0) -> str:
    outcome = apply.Outcome(started=100.0, ended=130.0, reason=reason, fetched=fetched, applied=applied,
                            tasks={"ok": 108, "changed": changed, "failed": 1 if reason == "apply" else 0})  # fmt: skip
    return apply.textfile_text(outcome, previous_success=50.0)


def counter(name: str, text: str | None, ring: str = "canary") -> status.CounterPull:
    if text is None:
        return status.CounterPull(name, "26740", ring)
    return status.CounterPull(name, "26740", ring, pulled=True, **status.parse_textfile(text))


def test_a_report_is_read_from_its_samples_not_its_help_text():
    # The HELP line reads "motcua_pull_last_run_success 1 if the last pull ...": a failed pull is not ok.
    failed = status.parse_textfile(report("apply", applied=OLD))
    assert failed == {"ok": False, "reason": "apply", "applied": OLD, "fetched": NEW, "changed": 0,
                      "last_run": 130.0, "last_success": 50.0}  # fmt: skip
    fine = status.parse_textfile(report(changed=3))
    assert fine["ok"] is True and fine["changed"] == 3 and fine["last_success"] == 130.0 and "reason" not in fine


def test_states_against_the_rings_commit():
    assert status.state(counter("a", report()), NEW) == "current"
    assert status.state(counter("b", report(fetched=OLD, applied=OLD)), NEW) == "behind"
    assert status.state(counter("c", report("apply", applied=OLD)), NEW) == "failed"
    assert status.state(counter("d", None), NEW) == "never"
    assert status.state(status.CounterPull("e", "26740", "canary", reachable=False, error="timed out"), NEW) == (
        "unreachable"
    )


def test_the_gate_names_who_failed_on_this_commit_and_waits_for_the_rest():
    pulls = [counter("pc01", report("apply", applied=OLD)), counter("pc02", report("locked", fetched=OLD, applied=OLD)),
             counter("pc03", report()), counter("pc04", None), counter("ttpv-pc01", None, ring="all")]  # fmt: skip
    with pytest.raises(ToolError, match=r"FAILED on pc01: the roll-out stops here"):
        status.gate(pulls, "canary", NEW)
    waiting = [p for p in pulls if p.name != "pc01"]
    waits = r"not every counter has applied bbbbbbbbbbbb yet: pc02 \(failed\), pc04 \(never\)"
    with pytest.raises(ToolError, match=waits):
        status.gate(waiting, "canary", NEW)
    status.gate([counter("pc03", report())], "canary", NEW)  # every counter current: the ring may be promoted
    with pytest.raises(ToolError, match="has no counters"):
        status.gate(pulls, "other", NEW)


def test_the_table_groups_by_ring_with_each_counters_state():
    pulls = [counter("w26740-pc01", report("apply", applied=OLD)), counter("w26740-pc02", report()),
             counter("ttpv-pc01", None, ring="all")]  # fmt: skip
    text = status.table(pulls, {"canary": NEW, "all": OLD}, ("canary", "all"), now=190.0)
    lines = text.splitlines()
    assert lines[0] == "ring/canary: bbbbbbbbbbbb  (2 counters: 1 current, 1 failed)"
    assert "w26740-pc01" in lines[2] and "LỖI / FAILED (apply)" in lines[2] and "aaaaaaaaaaaa" in lines[2]
    assert "w26740-pc02" in lines[3] and "đúng bản / current" in lines[3] and "1 min" in lines[3]
    assert lines[4] == "ring/all: aaaaaaaaaaaa  (1 counters: 1 never)"
