"""What each counter pulled, and the roll-out gate (``motcua pull status``, ``motcua pull promote``).

Each counter's last pull is in its node_exporter textfile (``motcua_pull_*``, written by the pull
itself). These tools read it over SSH, ``workers`` counters at a time (the fleet tools' access), so
they work where no Prometheus scrapes the counters; the alerts read the same series from Prometheus.

A ring is promoted (the next ring's branch moved to its commit) only when every counter of the
ring reports a successful pull of that very commit. A counter whose last pull of it failed stops the
roll-out and is named; counters that have not pulled it yet make the tool say so and wait.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from ..access import PcAccess, Target
from ..errors import ToolError
from ..parallel import run_each
from ..registry import Registry

TEXTFILE = "/var/lib/prometheus/node-exporter/motcua_pull.prom"


@dataclass(frozen=True)
class CounterPull:
    """One counter's last pull as its textfile says (``reachable`` False: it could not be read)."""

    name: str
    site: str
    ring: str
    reachable: bool = True
    pulled: bool = False  # False: the counter has never pulled (no textfile)
    ok: bool = False
    reason: str = ""
    applied: str = ""
    fetched: str = ""
    last_run: float = 0.0
    last_success: float = 0.0
    changed: int = 0
    error: str = ""


def parse_textfile(text: str) -> dict[str, object]:
    """The motcua_pull_* values of one textfile."""
    out: dict[str, object] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            if name == "motcua_pull_last_run_failure_info":
                out["reason"] = labels.get("reason", "")
            elif name == "motcua_pull_applied_commit_info":
                out["applied"] = labels.get("commit", "")
            elif name == "motcua_pull_fetched_commit_info":
                out["fetched"] = labels.get("commit", "")
            elif name == "motcua_pull_last_run_tasks" and labels.get("state") == "changed":
                out["changed"] = int(value)
            elif name == "motcua_pull_last_run_success":
                out["ok"] = value == 1
            elif name == "motcua_pull_last_run_timestamp_seconds":
                out["last_run"] = value
            elif name == "motcua_pull_last_success_timestamp_seconds":
                out["last_success"] = value
    return out


def read_counter(target: Target, ring: str, access: PcAccess) -> CounterPull:
    with access.connect(target) as conn:
        result = conn.run(f"cat {TEXTFILE} 2>/dev/null || true", timeout=access.timeout, in_stream=False)
    text = result.stdout
    if not text.strip():
        return CounterPull(target.name, target.site, ring)
    try:
        values = parse_textfile(text)
    except ValueError as exc:
        return CounterPull(target.name, target.site, ring, error=f"{TEXTFILE}: {exc}")
    return CounterPull(target.name, target.site, ring, pulled=True, **values)  # type: ignore[arg-type]


def read_all(registry: Registry, targets: list[Target], access: PcAccess, workers: int,
             progress: bool) -> list[CounterPull]:  # fmt: skip
    rings = {code: site.ring for code, site in registry.sites.items()}
    outcomes = run_each(targets, lambda t: read_counter(t, rings.get(t.site, ""), access), workers,
                        label="pull status", progress=progress)  # fmt: skip
    return [o.value if o.ok else CounterPull(o.device.name, o.device.site, rings.get(o.device.site, ""),
                                             reachable=False, error=o.error or "")
            for o in outcomes]  # fmt: skip


def state(pull: CounterPull, commit: str) -> str:
    """One word for a counter against its ring's commit: current, behind, failed (its last pull failed),
    never, unreachable."""
    if not pull.reachable or pull.error:
        return "unreachable"
    if not pull.pulled:
        return "never"
    if not pull.ok:
        return "failed"
    return "current" if pull.applied == commit else "behind"


WORDS = {
    "current": "đúng bản / current",
    "behind": "chưa cập nhật / behind",
    "failed": "LỖI / FAILED",
    "never": "chưa kéo / never pulled",
    "unreachable": "không kết nối / unreachable",
}


def table(pulls: list[CounterPull], ring_commits: dict[str, str], rings: tuple[str, ...],
          now: float | None = None) -> str:  # fmt: skip
    now = time.time() if now is None else now
    lines = []
    width = max([len(p.name) for p in pulls] + [7])
    for ring in rings:
        commit = ring_commits.get(ring, "")
        mine = [p for p in pulls if p.ring == ring]
        counts: dict[str, int] = {}
        for p in mine:
            counts[state(p, commit)] = counts.get(state(p, commit), 0) + 1
        summary = ", ".join(f"{n} {word}" for word, n in sorted(counts.items()))
        lines.append(f"ring/{ring}: {commit[:12] or '(not published)'}  ({len(mine)} counters: {summary or 'none'})")
        lines.append(f"  {'counter':<{width}}  site   applied       last success  state")
        for p in sorted(mine, key=lambda p: (p.site, p.name)):
            age = f"{(now - p.last_success) / 60:8.0f} min" if p.last_success else "          -"
            detail = f" ({p.reason})" if p.reason and state(p, commit) == "failed" else ""
            detail += f" {p.error}" if p.error else ""
            lines.append(f"  {p.name:<{width}}  {p.site:<5}  {p.applied[:12] or '-':<12}  {age}  "
                         f"{WORDS[state(p, commit)]}{detail}")  # fmt: skip
    return "\n".join(lines)


def gate(pulls: list[CounterPull], ring: str, commit: str) -> None:
    """Nothing when every counter of ``ring`` applied ``commit`` successfully; else ToolError saying why."""
    mine = [p for p in pulls if p.ring == ring]
    if not mine:
        raise ToolError(f"ring/{ring} has no counters in this inventory: nothing shows the commit works")
    # Failed on this very commit: the commit's fault, likely. A counter whose last pull failed on an
    # older one (or found the lock held) has not tried this one yet: it is waited for.
    failed = [p.name for p in mine if state(p, commit) == "failed" and p.fetched == commit]
    if failed:
        raise ToolError(f"ring/{ring}: {commit[:12]} FAILED on {', '.join(failed)}: the roll-out stops here "
                        "(fix, publish again; docs/pull.md, 'When a ring fails')")  # fmt: skip
    waiting = [f"{p.name} ({state(p, commit)})" for p in mine if state(p, commit) != "current"]
    if waiting:
        raise ToolError(f"ring/{ring}: not every counter has applied {commit[:12]} yet: {', '.join(waiting)}; "
                        "try again after their next pull")  # fmt: skip


def ring_commits(repo: Path, rings: tuple[str, ...]) -> dict[str, str]:
    from .publish import head

    return {ring: head(repo, f"refs/heads/ring/{ring}") for ring in rings if (repo / "HEAD").exists()}
