"""The lab's notification sink: where the lab's Alertmanager sends e-mail, Telegram and webhooks.

Nothing the lab's monitoring sends leaves this machine: the lab's Alertmanager
uses this process as its SMTP smarthost, as Telegram's API and as the
incident board's webhook. Each message is appended to a JSON-lines file and
can be read back:

    GET /notifications            every message so far (JSON list)
    GET /notifications?since=N    messages after the first N
    POST /webhook/<name>          Alertmanager's webhook payload
    POST /heartbeat/<check>       an external heartbeat service's ping (the bridges' dead man's switch)
    POST /bot<token>/sendMessage  Telegram's Bot API call (answers like Telegram)
    POST /v4/oa/access_token      Zalo OAuth v4: a refresh token for a new access token (single-use)
    POST /v3.0/oa/message/cs      Zalo Official Account: a customer-service text message
    POST /message/template        Zalo ZNS: a template message to a phone number
    POST /sms/send                an SMS gateway (JSON: {"to", "text", "brandname"}, key in X-Api-Key)
    POST /zalo/grant              a new authorisation: answers a new chain's first refresh token
    POST /faults                  {"channel": zalo|zns|sms|oauth, "fault": NAME, "count": N}: the
                                  channel's next N requests (0: until cleared) fail so; "fault": "clear"
    SMTP on port 25               any message (Alertmanager's e-mail, the daily dossier report: its
                                  attachments' file names are kept)

Faults (the providers' documented answers): ``token-expired`` (Zalo error -220: the
bridge must refresh), ``rate-limited`` (HTTP 429, Retry-After: 1), ``not-following``
(Zalo error -213: the person does not follow the OA), ``template-rejected`` (ZNS
error -1124), ``bad-number`` (the SMS gateway's code 99), ``timeout`` (no answer for
``--fault-delay`` seconds), ``http500``.

The Zalo stand-in checks credentials as Zalo does: the app secret in ``secret_key``,
a refresh token used once only (the current one is kept beside the log), and an
access token the stand-in issued.

    python -m motcua.lab.sink --address 127.79.0.25 --http-port 80 --smtp-port 25 --log FILE
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 4 * 1024 * 1024
LAB_ZALO_APP_ID = "1000000000000000001"
LAB_ZALO_SECRET = "lab-zalo-app-secret-not-a-secret"  # noqa: S105 - the stand-in's own, loopback only
LAB_SMS_KEY = "lab-sms-key-not-a-secret"
ZNS_TEMPLATE = "200001"


def first_refresh_token(host: str = "") -> str:
    """The refresh token a fresh Zalo stand-in accepts (one chain per monitoring host's bridge)."""
    return f"lab-refresh-0-{host}" if host else "lab-refresh-0"


FAULTS = {
    "zalo": ("token-expired", "rate-limited", "not-following", "timeout", "http500"),
    "zns": ("token-expired", "rate-limited", "template-rejected", "timeout", "http500"),
    "sms": ("rate-limited", "bad-number", "timeout", "http500"),
    "oauth": ("http500", "timeout"),
}


class Faults:
    """The next N requests of a channel fail in the named way."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active: dict[str, tuple[str, int]] = {}  # channel -> (fault, remaining; -1 forever)

    def set(self, channel: str, fault: str, count: int) -> None:
        with self.lock:
            if fault == "clear":
                self.active.pop(channel, None)
            else:
                self.active[channel] = (fault, count if count > 0 else -1)

    def take(self, channel: str) -> str | None:
        with self.lock:
            if channel not in self.active:
                return None
            fault, left = self.active[channel]
            if left > 0:
                left -= 1
                if left == 0:
                    self.active.pop(channel)
                else:
                    self.active[channel] = (fault, left)
            return fault


class ZaloAuth:
    """Tokens as Zalo's OAuth v4 hands them out: refresh tokens used once, access tokens checked.

    Each grant (an OA administrator authorising the app) starts a chain of refresh tokens;
    every chain's current token is valid, each one once.
    """

    def __init__(self, state: Path, first_refresh: str | list[str]):
        self.state = state
        self.lock = threading.Lock()
        lines = state.read_text().split() if state.exists() else []
        firsts = [first_refresh] if isinstance(first_refresh, str) else list(first_refresh)
        # Saved: the chains' current tokens, and ("-" before it) each token already used.
        self.used: set[str] = {t[1:] for t in lines if t.startswith("-")}
        self.refresh: set[str] = {t for t in lines if not t.startswith("-")} | (set(firsts) - self.used)
        self.access: set[str] = set()
        self.counter = 0

    def _save(self) -> None:
        self.state.write_text(
            "".join(f"{t}\n" for t in sorted(self.refresh)) + "".join(f"-{t}\n" for t in sorted(self.used))
        )

    def grant(self) -> str:
        """A new authorisation: a new chain's first refresh token."""
        with self.lock:
            token = f"lab-grant-{time.time_ns()}"
            self.refresh.add(token)
            self._save()
            return token

    def exchange(self, secret: str, app_id: str, refresh: str) -> tuple[int, dict[str, object]]:
        with self.lock:
            if secret != LAB_ZALO_SECRET or app_id != LAB_ZALO_APP_ID:
                return 200, {"error": -14002, "error_name": "Invalid app", "error_description": "app_id or secret_key"}
            if refresh not in self.refresh:
                return 200, {"error": -14014, "error_name": "Invalid refresh token",
                             "error_description": "Refresh token is invalid or has been used"}  # fmt: skip
            self.counter += 1
            access, new = f"lab-access-{self.counter}-{time.time_ns()}", f"lab-refresh-{time.time_ns()}"
            self.refresh.discard(refresh)
            self.used.add(refresh)
            self.refresh.add(new)
            self._save()
            self.access.add(access)
            return 200, {"access_token": access, "refresh_token": new, "expires_in": "90000"}

    def valid(self, token: str) -> bool:
        with self.lock:
            return token in self.access

    def expire(self, token: str) -> None:
        with self.lock:
            self.access.discard(token)


class Store:
    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.Lock()
        self.items: list[dict[str, object]] = []
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    self.items.append(json.loads(line))

    def add(self, kind: str, **fields: object) -> None:
        item = {"time": time.time(), "kind": kind, **fields}
        with self.lock:
            self.items.append(item)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(item, ensure_ascii=False) + "\n")

    def since(self, n: int) -> list[dict[str, object]]:
        with self.lock:
            return self.items[n:]


def make_handler(store: Store, faults: Faults | None = None, auth: ZaloAuth | None = None, delay: float = 15.0):
    faults = faults or Faults()

    class Handler(BaseHTTPRequestHandler):
        server_version = "motcua-lab-sink"
        protocol_version = "HTTP/1.1"

        def _fault(self, channel: str) -> bool:
            """Answer with the channel's active fault, if any (True: answered)."""
            fault = faults.take(channel)
            if fault is None:
                return False
            store.add("fault", channel=channel, fault=fault)
            if fault == "timeout":
                time.sleep(delay)
                self._send(504, {"error": "the stand-in waited on purpose"})
            elif fault == "http500":
                self._send(500, {"error": "internal error (lab fault)"})
            elif fault == "rate-limited":
                self._send(429, {"error": -32, "message": "Rate limit exceeded"}, {"Retry-After": "1"})
            elif fault == "token-expired":
                token = self.headers.get("access_token", "")
                if auth:
                    auth.expire(token)
                self._send(200, {"error": -220, "message": "Access token is expired or removed"})
            elif fault == "not-following":
                self._send(200, {"error": -213, "message": "User has not followed the OA"})
            elif fault == "template-rejected":
                self._send(200, {"error": -1124, "message": "Template is not approved"})
            elif fault == "bad-number":
                self._send(200, {"CodeResult": "99", "ErrorMessage": "Invalid phone number"})
            return True

        def _zalo_token_ok(self) -> bool:
            if auth is None or auth.valid(self.headers.get("access_token", "")):
                return True
            self._send(200, {"error": -216, "message": "Access token is invalid"})
            return False

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body, ensure_ascii=False).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timed-out poll); nothing to tell it

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/notifications":
                self._send(404, {"error": "not found"})
                return
            since = parse_qs(url.query).get("since", ["0"])[0]
            self._send(200, store.since(int(since) if since.isdigit() else 0))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(413, {"error": "too large"})
                return
            raw = self.rfile.read(length)
            ctype = self.headers.get("Content-Type", "")
            try:
                body = json.loads(raw) if "json" in ctype else {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            except (ValueError, UnicodeDecodeError):
                self._send(400, {"error": "unreadable body"})
                return
            path = urlsplit(self.path).path
            if path == "/faults":
                channel, fault = str(body.get("channel", "")), str(body.get("fault", ""))
                if channel not in FAULTS or (fault != "clear" and fault not in FAULTS[channel]):
                    self._send(400, {"error": f"channels and faults: {FAULTS}"})
                    return
                faults.set(channel, fault, int(body.get("count", 1)))
                self._send(200, {"ok": True})
            elif path == "/zalo/grant":  # the lab's OA administrator authorises the app again
                if auth is None:
                    self._send(404, {"error": "no Zalo stand-in"})
                    return
                self._send(200, {"refresh_token": auth.grant()})
            elif path == "/v4/oa/access_token":
                if self._fault("oauth"):
                    return
                if auth is None:
                    self._send(404, {"error": "no Zalo stand-in"})
                    return
                self._send(*auth.exchange(self.headers.get("secret_key", ""), str(body.get("app_id", "")),
                                          str(body.get("refresh_token", ""))))  # fmt: skip
            elif path == "/v3.0/oa/message/cs":
                if self._fault("zalo") or not self._zalo_token_ok():
                    return
                user = str((body.get("recipient") or {}).get("user_id", ""))
                text = str((body.get("message") or {}).get("text", ""))
                if not user.isdigit() or not text or len(text) > 2000:
                    self._send(200, {"error": -201, "message": "Parameters are invalid"})
                    return
                store.add("zalo", to=user, text=text)
                self._send(200, {"error": 0, "message": "Success",
                                 "data": {"message_id": f"lab{len(store.items)}", "user_id": user}})  # fmt: skip
            elif path == "/message/template":
                if self._fault("zns") or not self._zalo_token_ok():
                    return
                phone, template = str(body.get("phone", "")), str(body.get("template_id", ""))
                params = body.get("template_data") or {}
                if template != ZNS_TEMPLATE:
                    self._send(200, {"error": -1124, "message": "Template is not approved"})
                    return
                if not (phone.startswith("84") and phone.isdigit() and len(phone) == 11):
                    self._send(200, {"error": -108, "message": "Phone number is invalid"})
                    return
                store.add("zns", to=phone, template_id=template, params=params,
                          text=" | ".join(f"{k}={v}" for k, v in params.items()))  # fmt: skip
                sent = {"msg_id": f"lab{len(store.items)}", "sent_time": str(int(time.time() * 1000))}
                self._send(200, {"error": 0, "message": "Success", "data": sent})
            elif path == "/sms/send":
                if self._fault("sms"):
                    return
                if self.headers.get("X-Api-Key") != LAB_SMS_KEY:
                    self._send(401, {"CodeResult": "101", "ErrorMessage": "Authorize failed"})
                    return
                phone, text = str(body.get("to", "")), str(body.get("text", ""))
                if not (phone.startswith("0") and phone.isdigit() and len(phone) == 10):
                    self._send(200, {"CodeResult": "99", "ErrorMessage": "Invalid phone number"})
                    return
                store.add("sms", to=phone, text=text, brandname=body.get("brandname"))
                self._send(200, {"CodeResult": "100", "SMSID": f"lab{len(store.items)}"})
            elif path.startswith("/webhook/"):
                store.add("webhook", receiver=path.removeprefix("/webhook/"), payload=body)
                self._send(200, {"ok": True})
            elif path.startswith("/heartbeat/"):
                # An external heartbeat service (healthchecks-style): each ping says "still alive".
                store.add("heartbeat", check=path.removeprefix("/heartbeat/"), payload=body)
                self._send(200, {"ok": True})
            elif path.startswith("/bot") and path.endswith("/sendMessage"):
                chat = str(body.get("chat_id", ""))
                chat_id = int(chat) if chat.lstrip("-").isdigit() else chat
                store.add("telegram", chat_id=chat_id, text=body.get("text"))
                # A whole Message object, as Telegram answers: Alertmanager 0.25 reads
                # result.chat.id and crashes (nil pointer) when it is missing.
                message = {
                    "message_id": len(store.items),
                    "date": int(time.time()),
                    "chat": {"id": chat_id, "type": "private"},
                    "text": body.get("text"),
                }
                self._send(200, {"ok": True, "result": message})
            else:
                self._send(404, {"ok": False, "description": "Not Found"})

    return Handler


def _address(command: str) -> str:
    """'MAIL FROM:<a@b.c> BODY=8BITMIME' -> 'a@b.c'."""
    return command.split(":", 1)[1].strip().split()[0].strip("<>") if ":" in command else ""


class SMTPSession:
    """Just enough SMTP for Alertmanager (no TLS, no auth: loopback only)."""

    def __init__(self, store: Store):
        self.store = store

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def reply(line: str) -> None:
            writer.write((line + "\r\n").encode())

        sender, recipients = "", []
        reply("220 motcua-lab-sink ESMTP")
        try:
            while True:
                line = await asyncio.wait_for(reader.readline(), 30)
                if not line:
                    break
                command = line.decode(errors="replace").strip()
                verb = command[:4].upper()
                if verb in ("EHLO", "HELO"):
                    reply("250-motcua-lab-sink" if verb == "EHLO" else "250 motcua-lab-sink")
                    if verb == "EHLO":
                        reply("250 8BITMIME")
                elif verb == "MAIL":
                    sender, recipients = _address(command), []
                    reply("250 OK")
                elif verb == "RCPT":
                    recipients.append(_address(command))
                    reply("250 OK")
                elif verb == "DATA":
                    reply("354 end with <CRLF>.<CRLF>")
                    await writer.drain()
                    lines = []
                    while True:
                        data = await asyncio.wait_for(reader.readline(), 30)
                        if data in (b".\r\n", b".\n", b""):
                            break
                        lines.append(data[1:] if data.startswith(b"..") else data)
                    message = email.message_from_bytes(b"".join(lines), policy=email.policy.default)
                    body = message.get_body(("plain", "html"))
                    self.store.add(
                        "email",
                        sender=sender,
                        to=recipients,
                        subject=str(message.get("Subject", "")),
                        body=body.get_content() if body is not None else "",
                        attachments=[part.get_filename() for part in message.iter_attachments()],
                    )
                    reply("250 OK queued")
                elif verb == "QUIT":
                    reply("221 bye")
                    await writer.drain()
                    break
                elif verb in ("RSET", "NOOP"):
                    reply("250 OK")
                else:
                    reply("502 not implemented")
                await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--http-port", type=int, default=80)
    parser.add_argument("--smtp-port", type=int, default=25)
    parser.add_argument("--log", required=True, help="JSON-lines file of every message")
    parser.add_argument(
        "--zalo-refresh-token",
        action="append",
        help="a first refresh token it accepts, one chain each (repeat it; default: the lab's one)",
    )
    parser.add_argument("--fault-delay", type=float, default=15.0, help="seconds a 'timeout' fault waits")
    args = parser.parse_args(argv)
    store = Store(Path(args.log))
    firsts = args.zalo_refresh_token or [first_refresh_token()]
    auth = ZaloAuth(Path(args.log).with_name("zalo-refresh-token.current"), firsts)
    handler = make_handler(store, Faults(), auth, args.fault_delay)
    http = ThreadingHTTPServer((args.address, args.http_port), handler)
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()

    async def smtp() -> None:
        server = await asyncio.start_server(SMTPSession(store), args.address, args.smtp_port)
        async with server:
            await server.serve_forever()

    asyncio.run(smtp())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
