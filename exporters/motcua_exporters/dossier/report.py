"""motcua-dossier-report: the daily dossier report from the dossier exporter's record store.

Run once a day by a systemd timer on the monitoring hosts (the monitoring_exporters role), after the
day's cut-off: reads the records the dossier exporter keeps, writes the day's report as HTML, XLSX and
CSV into the report directory (kept for ``keep`` days), and sends it by e-mail where ``mail`` is set.

    python3 motcua-exporters.pyz dossier-report --config.file /etc/motcua/dossier/report.yml [--day D]

Exit status: 0 written (and sent); 1 the store cannot be read or the mail not sent (the files are
written first, so a mail failure loses nothing); 2 a config that cannot be used.

    python3 motcua-exporters.pyz dossier-report --record-run --textfile DIR/motcua_dossier_report.prom

records how the run that just ended went, for node_exporter's textfile collector (the unit's
``ExecStopPost=``, as root: systemd gives it ``$SERVICE_RESULT`` and ``$EXIT_STATUS``), so that an alert
tells the DX Centre a report that was not written or not sent, and one whose timer stopped running.
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.policy
import logging
import os
import re
import smtplib
import ssl
import sys
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from ..core import logs
from ..core.config import ConfigError, Section, load_yaml
from ..core.files import write_atomic
from . import daily
from .api_format import parse_time
from .config import SITE  # the site codes the exporter's records: section takes
from .records import TZ
from .source import DossierSourceError, RecordStore

NAME = "motcua-dossier-report"
log = logging.getLogger("report")
AGENCY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")  # as the dossier system spells it (STP, so-tp)
ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
CUTOFF = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Mail:
    smarthost: str
    port: int
    sender: str
    to: tuple[str, ...]
    require_tls: bool
    username: str | None
    password_file: Path | None
    timeout: float


@dataclass(frozen=True)
class ReportConfig:
    path: Path
    store: Path
    sites: dict[str, str]
    agencies: dict[str, str]
    cutoff: dt.time
    output_dir: Path
    keep_days: int
    mail: Mail | None


def _names(section: Section, key: str, required: bool, pattern: re.Pattern) -> dict[str, str]:
    data = section.mapping(key, {})
    if required and not data:
        raise section.error(key, "must map the codes reported to their names")
    names = {}
    for code, name in data.items():
        if not pattern.match(str(code)):
            raise section.error(f"{key}.{code}", f"must be a code like 26740 or so-tp, not {code!r}")
        if not isinstance(name, str | int):
            raise section.error(f"{key}.{code}", "must be the name (text)")
        names[str(code)] = str(name)
    return names


def _mail(section: Section | None) -> Mail | None:
    if section is None:
        return None
    host, _, port = section.str("smarthost").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise section.error("smarthost", "must be HOST:PORT, like mail.example.vn:587")
    sender = section.str("from")
    if not ADDRESS.match(sender):
        raise section.error("from", f"must be an e-mail address, not {sender!r}")
    to = section.list("to")
    if not to:
        raise section.error("to", "must list at least one address")
    for index, address in enumerate(to):
        if not isinstance(address, str) or not ADDRESS.match(address):
            raise section.error(f"to[{index}]", f"must be an e-mail address, not {address!r}")
    username = section.str("auth_username", None)
    password_file = section.path("auth_password_file", None, must_exist=True)
    if bool(username) != bool(password_file):
        raise section.error("auth_password_file", "auth_username and auth_password_file go together")
    mail = Mail(host, int(port), sender, tuple(to), section.bool("require_tls", True), username, password_file,
                section.duration("timeout", 30.0, minimum=1.0))  # fmt: skip
    section.done()
    return mail


def load(path: str | Path) -> ReportConfig:
    root = load_yaml(path)
    cutoff = str(root.str("cutoff", "17:00"))
    match = CUTOFF.match(cutoff)
    if not match:
        raise root.error("cutoff", f"must be HH:MM (Vietnam's time), not {cutoff!r}")
    config = ReportConfig(
        Path(path),
        root.path("store"),
        _names(root, "sites", True, SITE),
        _names(root, "agencies", False, AGENCY),
        dt.time(int(match.group(1)), int(match.group(2))),
        root.path("output_dir"),
        root.int("keep_days", 90, minimum=1, maximum=3660),
        _mail(root.section("mail", None)),
    )
    root.done()
    return config


def report_day(config: ReportConfig, now: dt.datetime) -> dt.date:
    """The day whose cut-off has passed last: today after the cut-off, yesterday before it."""
    local = now.astimezone(TZ)
    return local.date() if local.time() >= config.cutoff else local.date() - dt.timedelta(days=1)


def make(config: ReportConfig, day: dt.date) -> daily.DailyReport:
    try:
        store = RecordStore(config.store)
    except DossierSourceError as exc:
        raise OSError(str(exc)) from None
    dossiers, problems = store.checked(config.sites)
    newest = parse_time(store.high_water).astimezone(TZ) if store.high_water else None
    # Current as of the source's last answer (a store written before read_at was kept: its newest update).
    read = parse_time(store.read_at).astimezone(TZ) if store.read_at else newest
    source = (f"{len(dossiers)} hồ sơ / dossiers"
              + (f", {len({p.code for p in problems})} bị loại / refused" if problems else "")
              + (f"; cập nhật mới nhất / newest update {newest:%d/%m/%Y %H:%M}" if newest else
                 "; chưa có bản ghi / no records yet")
              + (f"; đọc lúc / read at {read:%d/%m/%Y %H:%M}" if read and store.read_at else ""))  # fmt: skip
    cutoff = dt.datetime.combine(day, config.cutoff, TZ)
    if read is None or read < cutoff - dt.timedelta(hours=1):
        source += " — SỐ LIỆU CŨ, nguồn không cập nhật / STALE: the source stopped updating"
    return daily.build(dossiers, cutoff, config.sites, config.agencies, source)


def write(config: ReportConfig, report: daily.DailyReport, now: float | None = None) -> list[Path]:
    """The three files of the day (replaced if run again) and the prune of those past ``keep_days``."""
    out = config.output_dir
    files = [out / f"{report.stem}.html", out / f"{report.stem}.xlsx", out / f"{report.stem}.csv"]
    for path, data in zip(files, (daily.as_html(report), daily.as_xlsx(report), daily.as_csv(report)), strict=True):
        write_atomic(path, data, mode=0o640)
    limit = (now or time.time()) - config.keep_days * 86400
    for old in out.glob("ho-so-*.*"):
        if old not in files and old.stat().st_mtime < limit:
            old.unlink()
    return files


def send(mail: Mail, report: daily.DailyReport, files: list[Path]) -> None:
    # Lines up to SMTP's own limit: folding a Vietnamese subject into several encoded words at 78
    # characters loses the space at each fold in Python 3.11 ("tiếp nhận" arrives as "tiếpnhận").
    message = EmailMessage(policy=email.policy.SMTP.clone(max_line_length=998))
    message["Subject"] = daily.subject(report)
    message["From"] = mail.sender
    message["To"] = ", ".join(mail.to)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=mail.sender.rpartition("@")[2])
    message.set_content(daily.text_summary(report))
    message.add_alternative(files[0].read_text(encoding="utf-8"), subtype="html")
    types = {".html": ("text", "html"), ".xlsx": ("application", "vnd.openxmlformats-officedocument.spreadsheetml"
             ".sheet"), ".csv": ("text", "csv")}  # fmt: skip
    for path in files:
        main, sub = types[path.suffix]
        message.add_attachment(path.read_bytes(), maintype=main, subtype=sub, filename=path.name)
    context = ssl.create_default_context()
    with smtplib.SMTP(mail.smarthost, mail.port, timeout=mail.timeout) as smtp:
        smtp.ehlo()
        if smtp.has_extn("starttls"):
            smtp.starttls(context=context)
            smtp.ehlo()
        elif mail.require_tls:
            raise smtplib.SMTPException(f"{mail.smarthost}:{mail.port} offers no STARTTLS and require_tls is set")
        if mail.username and mail.password_file:
            smtp.login(mail.username, mail.password_file.read_text(encoding="utf-8").strip())
        smtp.send_message(message)


RUN_METRICS = (
    ("motcua_dossier_report_last_run_timestamp_seconds", "When the daily dossier report last ran."),
    ("motcua_dossier_report_last_run_success", "1 if its last run wrote the report (and sent it, where it sends)."),
    ("motcua_dossier_report_last_run_exit_status", "The last run's exit status (1: store or mail, 2: config)."),
    ("motcua_dossier_report_last_success_timestamp_seconds", "When a run of the report last succeeded (0: never)."),
)
_LAST_SUCCESS = re.compile(r"^motcua_dossier_report_last_success_timestamp_seconds (\S+)$", re.M)


def run_record(previous: str, result: str, exit_status: str, now: float) -> str:
    """The textfile of a run that ended with systemd's ``result`` (``success``, ``exit-code``, ``timeout``...)
    and ``exit_status``; the last success carried over from ``previous`` (the file as it was)."""
    ok = result == "success"
    found = _LAST_SUCCESS.search(previous)
    try:
        last_success = now if ok else float(found.group(1)) if found else 0.0
    except ValueError:
        last_success = 0.0
    try:
        status = int(exit_status)
    except ValueError:
        status = 0 if ok else -1  # killed by a signal, or not given: no number
    values = (round(now, 3), 1 if ok else 0, status, round(last_success, 3))
    lines = []
    for (name, text), value in zip(RUN_METRICS, values, strict=True):
        lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge", f"{name} {value}"]
    return "\n".join(lines) + "\n"


def record_run(textfile: Path) -> int:
    """``--record-run``: the run that just ended (systemd's environment) into ``textfile``."""
    result = os.environ.get("SERVICE_RESULT", "")
    if not result:
        print(f"{NAME}: --record-run: no $SERVICE_RESULT (run it from the unit's ExecStopPost=)", file=sys.stderr)
        return 2
    try:
        previous = textfile.read_text(encoding="utf-8") if textfile.exists() else ""
        write_atomic(textfile, run_record(previous, result, os.environ.get("EXIT_STATUS", ""), time.time()))
    except OSError as exc:
        print(f"{NAME}: --record-run: {textfile}: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=NAME, description=__doc__.split("\n\n")[0] if __doc__ else NAME)
    parser.add_argument("--config.file", dest="config_file", type=Path, default=Path("/etc/motcua/dossier/report.yml"))
    parser.add_argument("--day", help="the day to report (YYYY-MM-DD; default: the last whose cut-off has passed)")
    parser.add_argument("--no-mail", action="store_true", help="write the files only")
    parser.add_argument("--check-config", action="store_true", help="validate the config file and exit")
    parser.add_argument("--log.level", dest="log_level", default="info", choices=logs.LEVELS)
    parser.add_argument("--record-run", action="store_true",
                        help="record how the run that just ended went (ExecStopPost=) into --textfile")  # fmt: skip
    parser.add_argument("--textfile", type=Path, help="--record-run: the node_exporter textfile to write")
    args = parser.parse_args(argv)
    if args.record_run:
        if args.textfile is None:
            parser.error("--record-run needs --textfile")
        return record_run(args.textfile)
    logs.setup(args.log_level, "logfmt")
    try:
        config = load(args.config_file)
        day = dt.date.fromisoformat(args.day) if args.day else report_day(config, dt.datetime.now(TZ))
    except ConfigError as exc:
        print(f"{NAME}: config refused: {exc}", file=sys.stderr)
        return 2
    except ValueError:
        print(f"{NAME}: --day: not a date like 2026-12-05: {args.day!r}", file=sys.stderr)
        return 2
    if args.check_config:
        print(f"{NAME}: {args.config_file}: OK")
        return 0
    try:
        report = make(config, day)
        files = write(config, report)
    except OSError as exc:
        log.error("report of %s not written: %s", day, exc)
        return 1
    log.info("report of %s written: %s", day, ", ".join(str(f) for f in files))
    if config.mail is not None and not args.no_mail:
        try:
            send(config.mail, report, files)
        except (OSError, smtplib.SMTPException) as exc:
            log.error("report of %s not sent to %s: %s", day, ", ".join(config.mail.to), exc)
            return 1
        log.info("report of %s sent to %s", day, ", ".join(config.mail.to))
    return 0


if __name__ == "__main__":
    sys.exit(main())
