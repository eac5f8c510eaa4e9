"""The lab's notification sink: where the lab's Alertmanager sends e-mail, Telegram and webhooks.

Nothing the lab's monitoring sends leaves this machine: the lab's Alertmanager
uses this process as its SMTP smarthost, as Telegram's API and as the
incident board's webhook. Each message is appended to a JSON-lines file and
can be read back:

    GET /notifications            every message so far (JSON list)
    GET /notifications?since=N    messages after the first N
    POST /webhook/<name>          Alertmanager's webhook payload
    POST /bot<token>/sendMessage  Telegram's Bot API call (answers like Telegram)
    SMTP on port 25               any message (Alertmanager's e-mail)

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


def make_handler(store: Store):
    class Handler(BaseHTTPRequestHandler):
        server_version = "motcua-lab-sink"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: object) -> None:
            data = json.dumps(body, ensure_ascii=False).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
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
            if path.startswith("/webhook/"):
                store.add("webhook", receiver=path.removeprefix("/webhook/"), payload=body)
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
    args = parser.parse_args(argv)
    store = Store(Path(args.log))
    http = ThreadingHTTPServer((args.address, args.http_port), make_handler(store))
    threading.Thread(target=http.serve_forever, daemon=True).start()

    async def smtp() -> None:
        server = await asyncio.start_server(SMTPSession(store), args.address, args.smtp_port)
        async with server:
            await server.serve_forever()

    asyncio.run(smtp())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
