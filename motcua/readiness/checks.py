"""Go-live readiness: live checks of every counter PC and switch of a site, and the site's verdict.

One SSH session per counter (fabric, host keys checked, as ``motcua fleet``) reads:

- which of the provisioned services run (``systemctl is-active``) and the exporter's config;
- which of the site's officials (from the roster) have an account;
- the counter exporter's own metrics, read on the counter: its printer, scanner, token,
  clock and dossier-portal checks, so readiness judges what the dashboards see;
- its last pull (docs/pull.md), from its node_exporter textfile: the commit it runs against its
  ring's at the controller's signed repository (a counter that never pulled is push-provisioned: ok).

Each site's routers and switches are compared with the registry's intent
(``motcua netgear diff``). Every check ends ``ok``, ``warn`` (amber: works, but
needs attention before go-live) or ``fail`` (red: the site cannot serve).
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from ..access import PcAccess, Target
from ..fleet.tools import COUNTER_EXPORTER_PORT, FETCH
from ..pull.status import TEXTFILE as PULL_TEXTFILE
from ..pull.status import CounterPull, parse_textfile
from ..pull.status import state as pull_state
from ..registry import Registry

OK, WARN, FAIL = "ok", "warn", "fail"
# The site's verdict: the worst of its checks.
VERDICT = {OK: "green", WARN: "amber", FAIL: "red"}
_RANK = {OK: 0, WARN: 1, FAIL: 2}

# Check id -> label (Vietnamese / English), in the report's order.
CHECKS: dict[str, str] = {
    "reachable": "Kết nối máy quầy / counter reachable",
    "provisioned": "Cài đặt máy quầy / counter provisioned",
    "config": "Cấu hình tự cập nhật / configuration pulled",
    "accounts": "Tài khoản cán bộ / officials' accounts",
    "printer": "Máy in / printer",
    "scanner": "Máy quét / scanner",
    "token": "Chứng thư số trên token / token certificate",
    "dossier": "Kết nối Hệ thống giải quyết TTHC / dossier system reachable",
    "clock": "Đồng hồ đồng bộ / clock in sync",
    "switch": "Cấu hình thiết bị mạng / network gear compliant",
}
# Services a provisioned counter runs (the counter_* roles).
SERVICES = ("cups", "chrony", "pcscd.socket", "nftables", "prometheus-node-exporter", "motcua-counter-exporter")
# Not run in a container (counter_base: a container may not load a ruleset).
CONTAINER_SKIPS = ("nftables",)
EXPORTER_CONFIG = "/etc/motcua/counter-exporter.yml"
CERT_MIN_DAYS = 30
CLOCK_MAX_OFFSET = 1.0  # seconds


@dataclass
class Result:
    check: str
    status: str
    detail: str = ""
    host: str | None = None  # None: the site's (gear), else the counter's
    # The token check only: whether the counter's token was read and holds a certificate
    # (None: not read, e.g. the counter or its exporter did not answer).
    holds_certificate: bool | None = None

    def as_dict(self) -> dict[str, object]:
        return {"check": self.check, "status": self.status, "detail": self.detail, "host": self.host}


@dataclass
class SiteReadiness:
    code: str
    name: str
    results: list[Result] = field(default_factory=list)

    @property
    def status(self) -> str:
        return max((r.status for r in self.results), key=_RANK.__getitem__, default=FAIL)

    @property
    def verdict(self) -> str:
        return VERDICT[self.status]  # nothing checked is FAIL: red

    def check_status(self, check: str) -> str | None:
        """The worst result of one check over the site's hosts (None: not checked here)."""
        found = [r.status for r in self.results if r.check == check]
        return max(found, key=_RANK.__getitem__) if found else None

    def problems(self) -> list[Result]:
        return [r for r in self.results if r.status != OK]

    def as_dict(self) -> dict[str, object]:
        return {
            "site": self.code,
            "name": self.name,
            "verdict": self.verdict,
            "checks": {c: self.check_status(c) for c in CHECKS if self.check_status(c)},
            "problems": [r.as_dict() for r in self.problems()],
        }


@dataclass(frozen=True)
class Expected:
    """What the registry and roster say a counter of the site must have."""

    printers: tuple[str, ...]
    scanners: int
    officials: tuple[str, ...]
    ring: str = ""  # the pull ring of the site's counters ("" without pull mode)
    ring_commit: str = ""  # the commit that ring names now ("" unknown: no signed repository here)


def expected_for(registry: Registry, site: str, officials: dict[str, list[str]],
                 ring_commits: dict[str, str] | None = None) -> Expected:  # fmt: skip
    s = registry.sites[site]
    return Expected(
        printers=tuple(sorted(h.name for h in s.hosts_by_role("printer"))),
        scanners=len(s.hosts_by_role("scanner")),
        officials=tuple(sorted(officials.get(site, []))),
        ring=s.ring,
        ring_commit=(ring_commits or {}).get(s.ring, ""),
    )


def probe_script(target: Target, expected: Expected) -> str:
    """One shell script per counter; sections the judge below reads."""
    users = " ".join(shlex.quote(u) for u in expected.officials)
    return "; ".join([
        "echo '## services'",
        f"for u in {' '.join(SERVICES)}; do echo \"$u $(systemctl is-active $u 2>/dev/null)\"; done",
        "echo '## virt'",
        "systemd-detect-virt --container || true",
        "echo '## config'",
        f"test -s {EXPORTER_CONFIG} && echo present || echo missing",
        "echo '## accounts'",
        f"for u in {users}; do getent passwd \"$u\" >/dev/null && echo \"$u\"; done" if users else "true",
        "echo '## pull'",
        f"cat {PULL_TEXTFILE} 2>/dev/null || true",
        "echo '## metrics'",
        FETCH.format(url=f"https://{target.address}:{COUNTER_EXPORTER_PORT}/metrics", what="body", auth="local") + "\n",
    ])  # fmt: skip


def sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return out


def _samples(metrics_text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def _value(samples: dict, name: str, default: float | None = None, **labels: str) -> float | None:
    for have, value in samples.get(name, []):
        if all(have.get(k) == v for k, v in labels.items()):
            return value
    return default


def judge_counter(name: str, output: str, expected: Expected, now: float) -> list[Result]:
    """The counter's results from its probe's output."""
    parts = sections(output)
    results: list[Result] = [Result("reachable", OK, "", name)]

    services = dict(line.split(" ", 1) for line in parts.get("services", []) if " " in line)
    # A container (the lab's counters) shares its host's network namespace and loads no firewall,
    # as counter_base leaves it there.
    container = (parts.get("virt") or ["none"])[0].strip() not in ("", "none")
    wanted = [u for u in SERVICES if not (container and u in CONTAINER_SKIPS)]
    down = [u for u in wanted if services.get(u, "").strip() != "active"]
    config = (parts.get("config") or ["missing"])[0].strip()
    if down or config != "present":
        detail = ", ".join([f"{u} không chạy / not running" for u in down]
                           + ([f"{EXPORTER_CONFIG} thiếu / missing"] if config != "present" else []))  # fmt: skip
        results.append(Result("provisioned", FAIL, detail, name))
    else:
        results.append(Result("provisioned", OK, "", name))

    results.append(_config(parts.get("pull", []), expected, name))

    have = {line.strip() for line in parts.get("accounts", []) if line.strip()}
    missing = [u for u in expected.officials if u not in have]
    if not expected.officials:
        results.append(Result("accounts", FAIL, "danh sách cán bộ trống / no official in the roster", name))
    elif missing:
        results.append(Result("accounts", FAIL, "chưa có tài khoản / no account: " + ", ".join(missing), name))
    else:
        results.append(Result("accounts", OK, f"{len(have)}", name))

    metrics = "\n".join(parts.get("metrics", []))
    try:
        samples = _samples(metrics) if metrics.startswith("#") else {}
    except ValueError:
        samples = {}
    if not samples:
        reason = metrics.strip().splitlines()[-1] if metrics.strip() else "no answer"
        detail = f"bộ giám sát máy quầy không trả lời / counter exporter not answering: {reason[:200]}"
        for check in ("printer", "scanner", "token", "dossier", "clock"):
            results.append(Result(check, FAIL, detail, name))
        return results
    results += [
        _printer(samples, expected, name),
        _scanner(samples, expected, name),
        _token(samples, now, name),
        _dossier(samples, name),
        _clock(samples, name),
    ]
    return results


def _config(lines: list[str], expected: Expected, host: str) -> Result:
    """The counter's last pull against its ring's commit (motcua pull status's words)."""
    text = "\n".join(lines).strip()
    if not text:
        return Result("config", OK, "cấu hình bằng push / push-provisioned (never pulled)", host)
    try:
        pull = CounterPull(host, "", expected.ring, pulled=True, **parse_textfile(text + "\n"))  # type: ignore[arg-type]
    except ValueError as exc:
        return Result("config", WARN, f"{PULL_TEXTFILE}: {exc}", host)
    runs = pull.applied[:12] or "-"
    word = pull_state(pull, expected.ring_commit)
    if word == "failed" and pull.reason != "locked":  # locked: a push held the lock; the next pull tries again
        return Result("config", WARN, f"lần kéo gần nhất lỗi / the last pull failed ({pull.reason}); "
                                      f"đang chạy / runs {runs}", host)  # fmt: skip
    if expected.ring_commit and word == "behind":
        return Result("config", WARN, f"chưa cập nhật / behind: runs {runs}, ring/{expected.ring} names "
                                      f"{expected.ring_commit[:12]}", host)  # fmt: skip
    return Result("config", OK, f"{runs} (ring/{expected.ring})", host)


def _printer(samples: dict, expected: Expected, host: str) -> Result:
    problems, warnings = [], []
    for queue in expected.printers:
        state = next((lab["state"] for lab, v in samples.get("motcua_counter_printer_state", [])
                      if lab.get("printer") == queue and v == 1), None)  # fmt: skip
        if state is None:
            problems.append(f"{queue}: không có hàng đợi / no queue")
        elif state == "stopped":
            problems.append(f"{queue}: đã dừng / stopped")
        elif _value(samples, "motcua_counter_printer_accepting_jobs", 0, printer=queue) != 1:
            problems.append(f"{queue}: không nhận lệnh in / not accepting jobs")
        elif (_value(samples, "motcua_counter_printer_stuck_jobs", 0, printer=queue) or 0) > 0:
            warnings.append(f"{queue}: có lệnh in bị kẹt / stuck jobs")
    if not expected.printers:
        return Result("printer", OK, "không có máy in / no printer at this site", host)
    if problems:
        return Result("printer", FAIL, "; ".join(problems + warnings), host)
    return Result("printer", WARN if warnings else OK, "; ".join(warnings), host)


def _scanner(samples: dict, expected: Expected, host: str) -> Result:
    found = int(_value(samples, "motcua_counter_scanners", 0) or 0)
    if expected.scanners and found == 0:
        return Result("scanner", FAIL, "không thấy máy quét / no scanner found (SANE)", host)
    return Result("scanner", OK, f"{found}", host)


def _token(samples: dict, now: float, host: str) -> Result:
    if (_value(samples, "motcua_counter_tokens", 0) or 0) < 1:
        return Result("token", FAIL, "không thấy USB token / no token present", host, holds_certificate=False)
    certs = samples.get("motcua_counter_token_certificate_not_after_timestamp_seconds", [])
    dates = [(lab.get("subject", ""), v) for lab, v in certs]
    if not dates:
        return Result("token", FAIL, "token chưa có chứng thư số / no certificate on the token", host,
                      holds_certificate=False)  # fmt: skip
    subject, soonest = min(dates, key=lambda d: d[1])
    days = (soonest - now) / 86400
    if days <= 0:
        return Result("token", FAIL, f"chứng thư số đã hết hạn / certificate expired: {subject}", host,
                      holds_certificate=True)  # fmt: skip
    if days <= CERT_MIN_DAYS:
        return Result("token", WARN, f"chứng thư số hết hạn sau {days:.0f} ngày / certificate expires in "
                                     f"{days:.0f} days: {subject}", host, holds_certificate=True)  # fmt: skip
    return Result("token", OK, f"{days:.0f}", host, holds_certificate=True)


def _dossier(samples: dict, host: str) -> Result:
    if _value(samples, "motcua_counter_portal_success", 0) == 1:
        return Result("dossier", OK, "", host)
    reasons = [lab.get("reason", "") for lab, v in samples.get("motcua_counter_portal_failure", []) if v == 1]
    detail = ", ".join(r for r in reasons if r) or "unknown"
    return Result("dossier", FAIL, f"không truy cập được / unreachable from the counter: {detail}", host)


def _clock(samples: dict, host: str) -> Result:
    if _value(samples, "motcua_counter_clock_synchronized", 0) != 1:
        return Result("clock", FAIL, "đồng hồ chưa đồng bộ / not synchronised (chrony)", host)
    offset = abs(_value(samples, "motcua_counter_clock_offset_seconds", 0.0) or 0.0)
    if offset > CLOCK_MAX_OFFSET:
        return Result("clock", WARN, f"lệch {offset:.2f} s / offset {offset:.2f} s", host)
    return Result("clock", OK, f"{offset:.3f}", host)


def settle_tokens(site: SiteReadiness) -> None:
    """A ward signs with one certificate, on the token of one counter: a counter whose token holds
    none is fine when another counter of the site holds one (an expiring or expired one still counts)."""
    tokens = [r for r in site.results if r.check == "token"]
    holders = [r.host for r in tokens if r.holds_certificate]
    if not holders:
        return  # no counter of the site was seen with a certificate: every counter's failure stands
    for r in tokens:
        if r.holds_certificate is False:
            r.status = OK
            r.detail = f"chứng thư số của đơn vị ở {holders[0]} / the site's certificate is on {holders[0]}"


# What paramiko says when sshd closes a connection before it authenticated (sshd's MaxStartups drops,
# a restart of sshd at that moment): worth one more try, unlike a refused or timed-out connection.
DROPPED_BEFORE_AUTH = ("transport shut down or saw EOF", "Error reading SSH protocol banner")


def probe_counter(target: Target, access: PcAccess, expected: Expected, now: float | None = None,
                  retry_pause: float = 2.0) -> list[Result]:  # fmt: skip
    """Every counter check of one counter; an unreachable counter fails them all. A connection dropped
    before authentication is tried once more before the counter counts as unreachable."""
    for attempt in (1, 2):
        try:
            with access.connect(target) as conn:
                done = conn.run(probe_script(target, expected), timeout=access.timeout, in_stream=False)
            break
        except Exception as exc:
            if attempt == 1 and any(text in str(exc) for text in DROPPED_BEFORE_AUTH):
                time.sleep(retry_pause)
                continue
            detail = f"không kết nối được / unreachable: {' '.join(str(exc).split())[:200] or type(exc).__name__}"
            return [Result(check, FAIL, detail if check == "reachable" else "", target.name)
                    for check in CHECKS if check != "switch"]  # fmt: skip
    return judge_counter(target.name, done.stdout, expected, time.time() if now is None else now)


def gear_results(outcomes) -> list[Result]:
    """Results of ``netgear.ops.diff`` outcomes: a device with drift or no answer fails its site."""
    out = []
    for o in outcomes:
        if not o.ok:
            out.append(Result("switch", FAIL, f"{o.device.name}: không kết nối được / unreachable: {o.error}",
                              o.device.name))  # fmt: skip
        elif o.value:
            out.append(Result("switch", FAIL, f"{o.device.name}: {len(o.value)} dòng lệch cấu hình / lines of drift "
                              f"(motcua netgear diff --hosts {o.device.name})", o.device.name))  # fmt: skip
        else:
            out.append(Result("switch", OK, "", o.device.name))
    return out
