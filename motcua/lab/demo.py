"""The lab demo: `make demo`'s steps, in order, with each step's output kept and its time printed.

``motcua lab demo`` runs them on the built-in lab; the tests run the very same steps
on their own lab home (tests/integration/test_demo.py), so what a newcomer's first
`make demo` does is what CI checks. Every step is a command an operator could type;
each is printed before it runs, its output goes to the terminal and to
``<lab home>/demo/<NN>-<step>.log``, and the run stops at the first step that fails,
naming it and its log.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..access import LabPaths, lab_home
from ..errors import ToolError
from .lab import make_plan

# Sites whose go-live readiness the demo reports: the lab's wards (the city centre has no
# certificate in the lab's ledger, so it is red by design).
READINESS_SITES = "site_26740,site_25747,site_26732"


class DemoError(ToolError):
    """A step of the demo failed; the message names it and its log."""


@dataclass(frozen=True)
class Step:
    name: str
    argv: tuple[str, ...]
    what: str  # one line for the operator


@dataclass
class StepResult:
    step: Step
    seconds: float
    returncode: int
    log: Path
    output: str = field(repr=False, default="")


def steps(inventory: str = "inventory/lab", home: Path | None = None, batch: str | None = None) -> list[Step]:
    """The demo, in order. Paths are the lab home's (MOTCUA_LAB_HOME).

    The national-CA stand-in issues into a folder of this run (``batch``, default now), which the
    import step then reads: what the CA returned this time, never an earlier run's certificates.
    """
    batch = batch or time.strftime("%Y%m%d-%H%M%S")
    home = home or lab_home()
    issued = LabPaths(home).certificates / "issued" / batch
    play = ("ansible-playbook", "-i", inventory)
    standin = make_plan(Path(inventory), home).dossier_address
    # The dossier indicators as the monitoring reads them: the stand-in's reporting API, its token and the lab CA.
    indicators = ("motcua", "dossiers", "report", "-i", inventory, "--api", f"https://{standin}/api/ho-so",
                  "--token-file", str(home / "dossier" / "api-token"), "--ca-file", str(home / "ca" / "ca.pem"),
                  "--store", str(home / "dossiers" / "records.sqlite"), "--window", "7d")  # fmt: skip
    return [
        Step("validate", ("motcua", "validate"), "the production registry validates"),
        Step("lab-up", ("motcua", "lab", "up", "--inventory", inventory), "the lab: counter PCs, gear, services"),
        Step("smoke", (*play, "playbooks/lab_smoke.yml"), "every counter, router and switch answers"),
        Step("counters", (*play, "playbooks/counters.yml"), "the counter PCs provisioned"),
        Step(
            "cert-requests",
            (*play, "playbooks/certificates.yml", "--tags", "certificates_request"),
            "the wards' keys and requests on their tokens",
        ),
        Step("cert-export", ("motcua", "certs", "export", "-i", inventory), "the registration export"),
        Step(
            "cert-sign",
            ("motcua", "lab", "sign-requests", "--inventory", inventory, "--out", str(issued)),
            "the national-CA stand-in issues",
        ),
        Step(
            "cert-import",
            ("motcua", "certs", "import", "-i", inventory, str(issued)),
            "the issued certificates checked and stored",
        ),
        Step("certificates", (*play, "playbooks/certificates.yml"), "the certificates installed"),
        Step("monitoring", (*play, "playbooks/monitoring.yml"), "the monitoring host"),
        Step("dossiers", indicators, "the dossier indicators of the last 7 days, per ward (Decision 766)"),
        Step("network", (*play, "playbooks/network.yml"), "the routers and switches"),
        Step(
            "readiness",
            (*play, "playbooks/golive_check.yml", "--limit", READINESS_SITES),
            "go-live readiness of the wards",
        ),
        # Pull mode (docs/pull.md): the configuration the counters got by push, signed and served; the
        # counters set to pull it themselves on their timers; site 26740's pull now, and what each pulled.
        Step("pull-publish", ("motcua", "pull", "publish", "-i", inventory), "the counters' configuration, signed"),
        Step("pull-setup", (*play, "playbooks/counter_pull.yml"), "the counter PCs set to pull it themselves"),
        Step(
            "pull-now",
            ("motcua", "fleet", "exec", "pull-now", "-i", inventory, "--sites", "26740", "--timeout", "300", "-q"),
            "site 26740's counters pull it now",
        ),
        Step(
            "pull-status",
            ("motcua", "pull", "status", "-i", inventory, "-q", "--exit-zero"),
            "what each counter pulled",
        ),
    ]


def run(
    plan: list[Step],
    log_dir: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    say: Callable[[str], None] | None = None,
    echo: bool = True,
) -> list[StepResult]:
    """Run the steps in order; raise DemoError at the first that fails (the results so far are on it)."""
    say = say or (lambda message: print(message, file=sys.stderr, flush=True))
    log_dir.mkdir(parents=True, exist_ok=True)
    results: list[StepResult] = []
    for number, step in enumerate(plan, 1):
        log = log_dir / f"{number:02d}-{step.name}.log"
        say(f"[{number}/{len(plan)}] {step.name}: {step.what}\n  $ {' '.join(step.argv)}")
        started = time.monotonic()
        output = _tee(step.argv, log, env, cwd, echo)
        result = StepResult(step, time.monotonic() - started, output[0], log, output[1])
        results.append(result)
        say(f"[{number}/{len(plan)}] {step.name}: {'ok' if result.returncode == 0 else 'FAILED'} "
            f"in {result.seconds:.0f} s")  # fmt: skip
        if result.returncode != 0:
            error = DemoError(f"step {step.name} failed (exit {result.returncode}): {' '.join(step.argv)}; log: {log}")
            error.results = results  # type: ignore[attr-defined]
            raise error
    return results


def _tee(argv: tuple[str, ...], log: Path, env: dict[str, str] | None, cwd: Path | None, echo: bool) -> tuple[int, str]:
    """Run one command, its output (stdout and stderr together) to the log and, with echo, the terminal."""
    chunks = []
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                text=True, errors="replace", bufsize=1)  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            chunks.append(line)
            if echo:
                sys.stdout.write(line)
                sys.stdout.flush()
        proc.wait()
    return proc.returncode, "".join(chunks)


def summary(results: list[StepResult]) -> str:
    """A table of the steps' times, for the end of the run."""
    width = max(len(r.step.name) for r in results)
    lines = [
        f"  {r.step.name:<{width}}  {r.seconds:7.1f} s  {'ok' if r.returncode == 0 else 'FAILED'}" for r in results
    ]
    total = sum(r.seconds for r in results)
    return "\n".join([*lines, f"  {'total':<{width}}  {total:7.1f} s"])


def demo_env() -> dict[str, str]:
    """The environment the steps run in: the venv's tools first, the repository's ansible.cfg."""
    env = dict(os.environ)
    root = Path(__file__).resolve().parents[2]
    env.setdefault("ANSIBLE_CONFIG", str(root / "ansible.cfg"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env
