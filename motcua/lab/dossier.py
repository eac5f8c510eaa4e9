"""Stand-in for the city's dossier system (Hệ thống thông tin giải quyết TTHC).

Serves what the exporters probe, over HTTPS (lab CA) and HTTP:

  /              portal page
  /dang-nhap     login page
  /api/health    health JSON
  /api/thong-ke  statistics JSON: dossiers received / resolved on time / late / overdue per agency
  /api/ho-so     dossier records, paged and incremental, with a bearer token (docs/dossiers.md,
                 "The reporting API": the interface the project expects of a dossier system)

Fault switches, read from a JSON file that `motcua lab fault dossier ...` writes:

  down            listeners closed: connection refused
  slow N          every answer delayed N seconds
  http500         HTTP 500 on every path
  wrong-content   200 with a maintenance page / degraded health instead of the real content
  expired-cert    HTTPS presents an expired certificate (same CA)
  untrusted-cert  HTTPS presents a certificate from an unknown CA
  reset           the connection is reset (TCP RST) after the request is read
  hang            the request is read and never answered (closed after 300 s)
  stale N         /api/ho-so answers as the system stood N seconds ago (default 3 h): old data, HTTP 200
  paging-broken   /api/ho-so: every page after the first answers the first page again, with the same
                  next-page token (a loop a client must notice)
  backlog N       (with a site) N dossiers pile up at that site: due on a working day at least two days
                  before, received three days before that, still in progress (default 12); clearing the
                  fault has them withdrawn (rút hồ sơ) at that moment, so they leave the overdue figures
                  and never count as on time or late
  intake-stopped  (with a site) that site receives nobody from now on: the dossiers its flow would
                  receive are never served, during the fault or after it (cleared, the site receives
                  again from that moment; the gap stays, as a real stop leaves one)

A fault may be limited to one path with ``"path": "/api/health"``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from motcua_exporters.dossier.records import day_off

from ..times import TZ
from .switchfile import WatchedJSON, write_json

FAULTS = ("down", "slow", "http500", "wrong-content", "expired-cert", "untrusted-cert", "reset", "hang", "stale",
          "paging-broken", "backlog", "intake-stopped")  # fmt: skip
SITE_FAULTS = ("backlog", "intake-stopped")
STALE_DEFAULT = 3 * 3600.0
BACKLOG_DEFAULT = 12
BACKLOG_MAX = 500
BACKLOGS_KEPT = 20  # cleared backlogs the stand-in keeps serving (as withdrawn dossiers)
HANG_LIMIT = 300.0
PORTAL_TITLE = "Hệ thống thông tin giải quyết thủ tục hành chính Thành phố Hồ Chí Minh"


class FaultFile:
    """The current fault, re-read when the file changes."""

    def __init__(self, path: Path):
        self._file = WatchedJSON(path)

    def current(self) -> dict[str, object]:
        data = self._file.read()
        return data if data.get("fault") in FAULTS else {}

    def raw(self) -> dict[str, object]:
        """The whole switch file (the backlog fault and the cleared backlogs kept in it)."""
        return self._file.read()

    def applies(self, path: str) -> dict[str, object]:
        fault = self.current()
        scope = fault.get("path")
        if scope and not path.startswith(str(scope)):
            return {}
        return fault


def write_fault(
    path: Path, fault: str | None, seconds: float | None = None, scope: str | None = None, site: str | None = None
) -> dict:
    """Set (or with ``None`` clear) the stand-in's fault. Used by the lab CLI and tests.

    ``backlog`` takes ``site`` and a count in ``seconds`` (the CLI's --value). A backlog that is cleared
    or replaced is kept in the file as withdrawn, so the stand-in goes on serving its dossiers as such."""
    if fault is not None and fault not in FAULTS:
        raise ValueError(f"unknown dossier fault {fault!r}; known: {', '.join(FAULTS)}")
    if fault in SITE_FAULTS and (not site or not site.replace("-", "").isalnum()):
        raise ValueError(f"{fault}: --site CODE (the unit's code, e.g. 26740 or ttpv) is required")
    if fault == "backlog":
        count = int(seconds if seconds is not None else BACKLOG_DEFAULT)
        if not 1 <= count <= BACKLOG_MAX:
            raise ValueError(f"backlog: --value is how many dossiers pile up, 1 to {BACKLOG_MAX}")
    old = WatchedJSON(path).read()
    withdrawn = [b for b in old.get("withdrawn", []) if isinstance(b, dict)]
    gaps = [g for g in old.get("intake_gaps", []) if isinstance(g, dict)]
    now = time.time()
    if old.get("fault") == "backlog":
        withdrawn.append({k: old[k] for k in ("site", "count", "since") if k in old} | {"until": now})
    if old.get("fault") == "intake-stopped":
        gaps.append({k: old[k] for k in ("site", "since") if k in old} | {"until": now})
    data: dict[str, object] = {}
    if fault:
        data["fault"] = fault
        if fault == "slow":
            data["seconds"] = float(seconds if seconds is not None else 5)
        if fault == "stale":
            data["seconds"] = float(seconds if seconds is not None else STALE_DEFAULT)
        if fault == "backlog":
            data.update(site=site, count=count, since=now)
        if fault == "intake-stopped":
            data.update(site=site, since=now)
        if scope:
            data["path"] = scope
    if withdrawn:
        data["withdrawn"] = withdrawn[-BACKLOGS_KEPT:]
    if gaps:
        data["intake_gaps"] = gaps[-BACKLOGS_KEPT:]
    write_json(path, data)
    return data


def without_intake_gaps(records: list[dict[str, object]], faults: dict, now: float) -> list[dict[str, object]]:
    """The records but those a site received while its intake was stopped (the fault, and earlier ones)."""
    gaps = [g for g in faults.get("intake_gaps", []) if isinstance(g, dict)]
    if faults.get("fault") == "intake-stopped":
        gaps.append({"site": faults.get("site"), "since": faults.get("since"), "until": now})
    spans: dict[str, list[tuple[float, float]]] = {}
    for gap in gaps:
        try:
            spans.setdefault(str(gap["site"]), []).append((float(gap["since"]), float(gap["until"])))
        except (KeyError, TypeError, ValueError):
            continue  # a hand-edited switch file: that gap is ignored
    if not spans:
        return records

    def received_in_gap(record: dict[str, object]) -> bool:
        site_spans = spans.get(str(record["ma_don_vi"]))
        if not site_spans:
            return False
        at = dt.datetime.fromisoformat(str(record["ngay_tiep_nhan"])).timestamp()
        return any(a <= at < b for a, b in site_spans)

    return [r for r in records if not received_in_gap(r)]


def backlog_records(faults: dict, units: set[str], now: float) -> list[dict[str, object]]:
    """The dossiers of the backlog fault (in progress, overdue) and of cleared ones (withdrawn)."""
    piles = [dict(b) for b in faults.get("withdrawn", []) if isinstance(b, dict)]
    if faults.get("fault") == "backlog":
        piles.append({k: faults.get(k) for k in ("site", "count", "since")})
    records = []
    for pile in piles:
        try:
            site, count, since = str(pile["site"]), int(pile["count"]), float(pile["since"])
            until = float(pile["until"]) if pile.get("until") is not None else None
        except (KeyError, TypeError, ValueError):
            continue  # a hand-edited switch file: the stand-in keeps serving
        if site not in units or since > now:
            continue
        withdrawn = until is not None and until <= now
        # Due at 17:00 on the last working day at least two days before the fault: overdue whatever the
        # day (a limit on a day off would run to the next working day's end: records.legal_limit).
        day = dt.datetime.fromtimestamp(since, TZ).date() - dt.timedelta(days=2)
        while day_off(day):
            day -= dt.timedelta(days=1)
        due = dt.datetime.combine(day, dt.time(17), TZ).timestamp()
        for n in range(min(count, BACKLOG_MAX)):
            received = due - 3 * 86400 - n * 600
            code, name, field, _hours = PROCEDURES[n % len(PROCEDURES)]
            reason, step = REASONS[n % len(REASONS)]
            records.append({
                "ma_ho_so": f"T{site}-{int(since)}-{n:03d}", "ma_don_vi": site,
                "ma_co_quan": AGENCIES[n % len(AGENCIES)] if site == "ttpv" else None,
                "ma_thu_tuc": code, "ten_thu_tuc": name, "linh_vuc": field, "kenh": "truc_tiep",
                "ngay_tiep_nhan": _iso(received), "han_xu_ly": _iso(due),
                "ngay_co_ket_qua": None, "ngay_tra_ket_qua": None,
                "trang_thai": "rut_ho_so" if withdrawn else "dang_xu_ly",
                "thanh_toan_truc_tuyen": None, "so_hoa_tiep_nhan": True, "so_hoa_ket_qua": False,
                "ly_do_qua_han": reason, "buoc_qua_han": step, "danh_gia": None,
                "cap_nhat_luc": _iso(until if withdrawn else since),
            })  # fmt: skip
    return records


def statistics(agencies: list[dict[str, str]], now: float) -> dict[str, object]:
    """Counters that only grow, derived from the clock so every scrape sees progress."""
    minutes = int(now // 60)
    rows = []
    for index, agency in enumerate(agencies):
        received = 1000 + index * 37 + minutes % 100_000
        overdue = (index * 3 + minutes // 90) % 7
        on_time = received - overdue - (received // 50)
        rows.append(
            {
                "ma_don_vi": agency["code"],
                "ten_don_vi": agency["name"],
                "da_tiep_nhan": received,
                "da_giai_quyet_dung_han": on_time,
                "da_giai_quyet_tre_han": received // 50,
                "qua_han": overdue,
            }
        )
    return {"thoi_diem": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now)), "don_vi": rows}


RECORDS_DAYS = 10  # the stand-in's records: dossiers received over the last ten days
# Processing time, Monday to Friday (hours of the day, Vietnam's time); intake, Monday (0) to Sunday (6).
WORK_HOURS = ((7.5, 11.5), (13.0, 17.0))
INTAKE_HOURS = {**dict.fromkeys(range(5), WORK_HOURS), 5: ((7.5, 11.5),), 6: ()}
PAGE_MAX = 500
PROCEDURES = (  # (code, name, field, working hours allowed)
    ("1.001612", "Đăng ký khai sinh", "Hộ tịch", 8),
    ("1.004227", "Chứng thực bản sao từ bản chính", "Chứng thực", 4),
    ("1.001193", "Đăng ký kết hôn", "Hộ tịch", 24),
    ("2.000908", "Cấp giấy phép xây dựng", "Xây dựng", 120),
    ("1.005461", "Cấp Giấy chứng nhận quyền sử dụng đất", "Đất đai", 240),
)
REASONS = (("Chờ xác minh", "Thẩm định"), ("Thiếu cán bộ", "Xử lý"), ("Chờ ý kiến cơ quan liên quan", "Phê duyệt"))
CHANNELS = ("truc_tiep", "truc_tuyen", "truc_tuyen", "buu_chinh")
AGENCIES = ("STP", "SXD", "SNNMT")  # the city centre's counters decide for the departments (sở)


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+07:00", time.gmtime(when + 7 * 3600))


def _weekday(local_midnight: float) -> int:
    """Monday 0 ... Sunday 6 of a day given by its midnight in Vietnam's time, shifted to UTC+7 seconds."""
    return int((local_midnight // 86400 + 3) % 7)  # 1 January 1970 was a Thursday


def working_after(start: float, hours: float) -> float:
    """``hours`` of working time after ``start`` (epoch seconds): Monday to Friday, 7:30-11:30 and
    13:00-17:00 in Vietnam's time, as a one-stop shop counts a procedure's time limit."""
    remaining = hours * 3600
    local = start + 7 * 3600
    while True:
        midnight = local - local % 86400
        for begin, end in WORK_HOURS if _weekday(midnight) < 5 else ():
            segment_end = midnight + end * 3600
            if local < segment_end:
                at = max(local, midnight + begin * 3600)
                if remaining <= segment_end - at:
                    return at + remaining - 7 * 3600
                remaining -= segment_end - at
                local = segment_end
        local = midnight + 86400


def dossier_records(agencies: list[dict[str, str]], now: float) -> list[dict[str, object]]:
    """Every dossier of the last RECORDS_DAYS as the system holds it at ``now``: derived from the clock,
    so a dossier moves on (received, result, handed over) as time passes and its ``cap_nhat_luc``
    with it. One dossier per unit every ~40 minutes of the counters' opening hours (INTAKE_HOURS: 7:30
    to 17:00 with a lunch break, Monday to Friday, and Saturday morning); limits and results in
    working time (:func:`working_after`), so a limit never falls on a day off."""
    day = 86400
    today = (int(now) + 7 * 3600) // day * day - 7 * 3600  # midnight in Vietnam's time
    records = []
    for u, unit in enumerate(agencies):
        for d in range(RECORDS_DAYS, -1, -1):
            midnight = today - d * day
            hours_open = INTAKE_HOURS[_weekday(midnight + 7 * 3600)]
            for n in range(14):
                received = midnight + 7.5 * 3600 + n * 2400 + (u * 97) % 600
                if received > now:
                    break
                clock = (received - midnight) / 3600
                if not any(begin <= clock < end for begin, end in hours_open):
                    continue  # closed: lunch, Saturday afternoon, Sunday
                serial = (u * 1000 + (today // day - d) * 14 + n) % 100_000
                code, name, field, hours = PROCEDURES[serial % len(PROCEDURES)]
                due = working_after(received, hours)
                late = serial % 9 == 0
                done = working_after(received, hours * (1.4 if late else 0.6))
                finished = done if done <= now else None
                handed = working_after(finished, 1) if finished is not None else None
                returned = handed if handed is not None and handed <= now else None
                reason, step = (
                    REASONS[serial % len(REASONS)] if (late and finished) or (not finished and now > due) else ("", "")
                )
                status = "da_tra_ket_qua" if returned else "da_giai_quyet" if finished else "dang_xu_ly"
                updated = max(t for t in (received, finished, returned) if t is not None)
                records.append({
                    "ma_ho_so": f"H{unit['code']}-{serial:05d}",
                    "ma_don_vi": unit["code"],
                    "ma_co_quan": AGENCIES[serial % len(AGENCIES)] if unit["code"] == "ttpv" else None,
                    "ma_thu_tuc": code, "ten_thu_tuc": name, "linh_vuc": field,
                    "kenh": CHANNELS[serial % len(CHANNELS)],
                    "ngay_tiep_nhan": _iso(received), "han_xu_ly": _iso(due),
                    "ngay_co_ket_qua": _iso(finished) if finished else None,
                    "ngay_tra_ket_qua": _iso(returned) if returned else None,
                    "trang_thai": status,
                    "thanh_toan_truc_tuyen": serial % 3 == 0 if serial % 2 == 0 else None,
                    "so_hoa_tiep_nhan": serial % 5 != 0, "so_hoa_ket_qua": bool(finished) and serial % 4 != 0,
                    "ly_do_qua_han": reason or None, "buoc_qua_han": step or None,
                    "danh_gia": ("rat_hai_long", "hai_long", "khong_hai_long")[serial % 3] if returned else None,
                    "cap_nhat_luc": _iso(updated),
                })  # fmt: skip
    records.sort(key=lambda r: (str(r["cap_nhat_luc"]), str(r["ma_ho_so"])))
    return records


def records_page(records: list[dict[str, object]], query: dict[str, list[str]], now: float) -> tuple[int, dict]:
    """One page of ``/api/ho-so``: ``cap_nhat_tu`` (records updated at or after it), ``trang`` (the
    previous page's ``trang_tiep``), ``so_luong`` (1..500). Keyset paging on (cap_nhat_luc, ma_ho_so)."""
    since = (query.get("cap_nhat_tu") or [""])[0]
    after = (query.get("trang") or [""])[0]
    try:
        size = int((query.get("so_luong") or ["100"])[0])
        if not 1 <= size <= PAGE_MAX:
            raise ValueError
    except ValueError:
        return 400, {"loi": f"so_luong: 1..{PAGE_MAX}"}
    try:
        key = tuple(json.loads(base64.urlsafe_b64decode(after.encode()))) if after else None
    except (ValueError, TypeError):
        return 400, {"loi": "trang: không hợp lệ / invalid page token"}
    chosen = [r for r in records if str(r["cap_nhat_luc"]) >= since
              and (key is None or (str(r["cap_nhat_luc"]), str(r["ma_ho_so"])) > key)]  # fmt: skip
    page, rest = chosen[:size], chosen[size:]
    token = None
    if rest:
        last = page[-1]
        token = base64.urlsafe_b64encode(json.dumps([last["cap_nhat_luc"], last["ma_ho_so"]]).encode()).decode()
    return 200, {"ho_so": page, "trang_tiep": token, "thoi_diem": _iso(now)}


class Handler(BaseHTTPRequestHandler):
    server_version = "DossierStandIn/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: object) -> None:
        sys.stdout.write(f"{self.address_string()} {fmt % args}\n")

    def do_GET(self) -> None:
        app: App = self.server.app  # type: ignore[attr-defined]
        fault = app.faults.applies(self.path)
        kind = fault.get("fault")
        if kind == "slow":
            time.sleep(float(fault.get("seconds", 5)))  # type: ignore[arg-type]
        elif kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        elif kind == "hang":
            app.stopping.wait(HANG_LIMIT)
            self.close_connection = True
            return
        elif kind == "http500":
            self._send(500, "text/html; charset=utf-8", "<h1>500 Internal Server Error</h1>")
            return
        wrong = kind == "wrong-content"
        path = self.path.split("?", 1)[0]
        if path == "/":
            body = app.maintenance_page() if wrong else app.portal_page()
            self._send(200, "text/html; charset=utf-8", body)
        elif path == "/dang-nhap":
            body = app.maintenance_page() if wrong else app.login_page()
            self._send(200, "text/html; charset=utf-8", body)
        elif path == "/api/health":
            health = {
                "status": "DOWN" if wrong else "UP",
                "components": {"db": "UP", "queue": "DOWN" if wrong else "UP"},
            }
            self._send(200, "application/json", json.dumps(health))
        elif path == "/api/ho-so":
            if not app.token or self.headers.get("Authorization", "") != f"Bearer {app.token}":
                self._send(401, "application/json", json.dumps({"loi": "cần mã truy cập / token required"}))
                return
            now = time.time()
            if kind == "stale":  # the system as it stood then: nothing updated since
                now -= float(fault.get("seconds", STALE_DEFAULT))  # type: ignore[arg-type]
            query = urllib.parse.parse_qs(self.path.partition("?")[2])
            if kind == "paging-broken":  # every later page is the first again, with the first's token
                query.pop("trang", None)
            switches = app.faults.raw()
            records = without_intake_gaps(dossier_records(app.agencies, now), switches, now)
            piled = backlog_records(switches, {u["code"] for u in app.agencies}, now)
            if piled:
                records = sorted(records + piled, key=lambda r: (str(r["cap_nhat_luc"]), str(r["ma_ho_so"])))
            status, data = records_page(records, query, now)
            self._send(
                status, "application/json", json.dumps({"loi": "bảo trì"} if wrong else data, ensure_ascii=False)
            )
        elif path == "/api/thong-ke":
            data = {"loi": "bảo trì"} if wrong else statistics(app.agencies, time.time())
            self._send(200, "application/json", json.dumps(data, ensure_ascii=False))
        else:
            self._send(404, "text/html; charset=utf-8", "<h1>404 Không tìm thấy</h1>")

    def do_HEAD(self) -> None:
        self.do_GET()

    def _send(self, status: int, content_type: str, body: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class TLSServer(ThreadingHTTPServer):
    """HTTPS whose certificate is picked per connection (for the certificate faults)."""

    daemon_threads = True

    def get_request(self):
        sock, addr = self.socket.accept()
        fault = self.app.faults.current().get("fault")  # type: ignore[attr-defined]
        name = {"expired-cert": "expired", "untrusted-cert": "untrusted"}.get(str(fault), "server")
        context = self.app.contexts[name]  # type: ignore[attr-defined]
        return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address) -> None:
        # Clients that give up mid-handshake (probes with short timeouts) are normal here.
        pass


class PlainServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass


class App:
    def __init__(self, address: str, https_port: int, http_port: int, certs: Path, faults: Path, agencies: list,
                 token: str = ""):  # fmt: skip
        self.address = address
        self.token = token
        self.ports = {"https": https_port, "http": http_port}
        self.faults = FaultFile(faults)
        self.agencies = agencies
        self.stopping = threading.Event()
        self.contexts = {}
        for name in ("server", "expired", "untrusted"):
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certs / f"{name}.pem", certs / f"{name}.key")
            self.contexts[name] = context
        self.servers: dict[str, ThreadingHTTPServer] = {}

    def portal_page(self) -> str:
        return (
            f"<!doctype html><html lang=vi><head><meta charset=utf-8><title>{PORTAL_TITLE}</title></head>"
            f"<body><h1>{PORTAL_TITLE}</h1><p>Cổng dịch vụ công (lab stand-in)</p>"
            '<a href="/dang-nhap">Đăng nhập</a></body></html>'
        )

    def login_page(self) -> str:
        return (
            "<!doctype html><html lang=vi><head><meta charset=utf-8><title>Đăng nhập</title></head><body>"
            '<form method="post" action="/dang-nhap" id="form-dang-nhap">'
            '<input name="ten_dang_nhap"><input name="mat_khau" type="password">'
            "<button>Đăng nhập</button></form></body></html>"
        )

    def maintenance_page(self) -> str:
        return (
            "<!doctype html><html lang=vi><head><meta charset=utf-8><title>Bảo trì</title></head>"
            "<body>Hệ thống đang bảo trì</body></html>"
        )

    def _open(self, scheme: str) -> None:
        cls = TLSServer if scheme == "https" else PlainServer
        server = cls((self.address, self.ports[scheme]), Handler)
        server.app = self  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        self.servers[scheme] = server

    def _close(self, scheme: str) -> None:
        server = self.servers.pop(scheme)
        server.shutdown()
        server.server_close()

    def run(self) -> None:
        for scheme in self.ports:
            self._open(scheme)
        print(
            f"dossier stand-in on https://{self.address}:{self.ports['https']} and http://{self.address}:{self.ports['http']}",
            flush=True,
        )
        try:
            while not self.stopping.wait(0.2):
                down = self.faults.current().get("fault") == "down"
                for scheme in self.ports:
                    if down and scheme in self.servers:
                        self._close(scheme)
                    elif not down and scheme not in self.servers:
                        try:
                            self._open(scheme)
                        except OSError as exc:  # port still in TIME_WAIT; try again next tick
                            print(f"reopen {scheme}: {exc}", flush=True)
        finally:
            for scheme in list(self.servers):
                self._close(scheme)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", required=True)
    parser.add_argument("--https-port", type=int, default=443)
    parser.add_argument("--http-port", type=int, default=80)
    parser.add_argument("--certs", type=Path, required=True, help="directory with server/expired/untrusted .pem/.key")
    parser.add_argument("--faults", type=Path, required=True, help="fault switch file")
    parser.add_argument("--agencies", type=Path, help="JSON list of {code, name} for the statistics API")
    parser.add_argument("--token-file", type=Path, help="the reporting API's bearer token (without it: 401)")
    args = parser.parse_args(argv)
    agencies = json.loads(args.agencies.read_text()) if args.agencies else [{"code": "lab", "name": "Lab"}]
    token = args.token_file.read_text().strip() if args.token_file else ""
    app = App(args.address, args.https_port, args.http_port, args.certs, args.faults, agencies, token)
    signal.signal(signal.SIGTERM, lambda *_: app.stopping.set())
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
