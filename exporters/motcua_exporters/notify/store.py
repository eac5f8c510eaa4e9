"""The bridge's durable state: the queue of deliveries and the keys already delivered (SQLite).

A notification is written here before the webhook is answered, so a restart
loses nothing: pending deliveries resume where they were. What could not be
delivered on any channel goes to ``dead-letters.jsonl`` beside the database.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS delivery (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,            -- the notification's key (receiver, group, status, alerts)
    receiver TEXT NOT NULL,
    payload TEXT NOT NULL,        -- Alertmanager's JSON
    received REAL NOT NULL,
    state TEXT NOT NULL,          -- pending | sending | delivered | dead
    channel INTEGER NOT NULL DEFAULT 0,   -- index into the person's channels
    attempts INTEGER NOT NULL DEFAULT 0,  -- on the current channel
    next_at REAL NOT NULL,
    done_at REAL,
    via TEXT,                     -- the channel that delivered
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS delivery_key ON delivery (key, received);
CREATE INDEX IF NOT EXISTS delivery_due ON delivery (state, next_at);
"""


@dataclass
class Job:
    id: int
    key: str
    receiver: str
    payload: dict
    received: float
    channel: int
    attempts: int


class Store:
    def __init__(self, state_dir: Path):
        state_dir.mkdir(parents=True, exist_ok=True)
        self.dead_letters = state_dir / "dead-letters.jsonl"
        self.lock = threading.Lock()
        self.db = sqlite3.connect(state_dir / "queue.sqlite", check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        # A delivery taken by a worker when the process stopped is due again.
        self.db.execute("UPDATE delivery SET state = 'pending' WHERE state = 'sending'")

    def add(
        self, key: str, receiver: str, payload: dict, window: float, now: float | None = None, delay: float = 0.0
    ) -> bool:
        """Queue a notification unless the same key was queued within ``window`` seconds; due after ``delay``."""
        now = time.time() if now is None else now
        with self.lock:
            seen = self.db.execute(
                "SELECT 1 FROM delivery WHERE key = ? AND received >= ? LIMIT 1", (key, now - window)
            ).fetchone()
            if seen:
                return False
            self.db.execute(
                "INSERT INTO delivery (key, receiver, payload, received, state, next_at) "
                "VALUES (?, ?, ?, ?, 'pending', ?)",
                (key, receiver, json.dumps(payload, ensure_ascii=False), now, now + delay),
            )
            return True

    def take(self, now: float | None = None) -> Job | None:
        """The next due delivery, marked as being sent (one worker each)."""
        now = time.time() if now is None else now
        with self.lock:
            row = self.db.execute(
                "SELECT id, key, receiver, payload, received, channel, attempts FROM delivery "
                "WHERE state = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                return None
            self.db.execute("UPDATE delivery SET state = 'sending' WHERE id = ?", (row[0],))
        return Job(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5], row[6])

    def delivered(self, job: Job, via: str, detail: str) -> None:
        with self.lock:
            self.db.execute(
                "UPDATE delivery SET state = 'delivered', done_at = ?, via = ?, detail = ? WHERE id = ?",
                (time.time(), via, detail, job.id),
            )

    def again(self, job: Job, channel: int, attempts: int, at: float, detail: str) -> None:
        with self.lock:
            self.db.execute(
                "UPDATE delivery SET state = 'pending', channel = ?, attempts = ?, next_at = ?, detail = ? "
                "WHERE id = ?",
                (channel, attempts, at, detail, job.id),
            )

    def dead(self, job: Job, tried: list[str], detail: str) -> None:
        record = {
            "time": time.time(),
            "key": job.key,
            "receiver": job.receiver,
            "tried": tried,
            "detail": detail,
            "payload": job.payload,
        }
        with self.lock:
            with self.dead_letters.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.db.execute(
                "UPDATE delivery SET state = 'dead', done_at = ?, detail = ? WHERE id = ?",
                (time.time(), detail, job.id),
            )

    def state_of(self, key: str, now: float | None = None) -> str:
        """What this bridge does with a key, for a peer bridge that holds the same one (GET /seen).

        ``none`` (never had it), ``waiting`` (queued, not yet tried), ``delivering`` (tried, or being
        sent), ``delivered`` (a channel took it, or a peer had it), ``dead`` (no channel could).
        """
        now = time.time() if now is None else now
        with self.lock:
            row = self.db.execute(
                "SELECT state, attempts, channel, detail FROM delivery WHERE key = ? ORDER BY received DESC LIMIT 1",
                (key,),
            ).fetchone()
        if row is None:
            return "none"
        state, attempts, channel, _detail = row
        if state == "pending":
            return "waiting" if attempts == 0 and channel == 0 else "delivering"
        return {"sending": "delivering"}.get(state, state)

    def pending(self) -> tuple[int, float | None]:
        """How many deliveries wait, and when the oldest was received."""
        with self.lock:
            count, oldest = self.db.execute(
                "SELECT count(*), min(received) FROM delivery WHERE state IN ('pending', 'sending')"
            ).fetchone()
        return int(count), oldest

    def payload(self, key_prefix: str) -> dict | None:
        if len(key_prefix) < 12 or not all(c in "0123456789abcdef" for c in key_prefix):
            return None
        with self.lock:
            row = self.db.execute(
                "SELECT payload FROM delivery WHERE key LIKE ? ORDER BY received DESC LIMIT 1", (key_prefix + "%",)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def prune(self, older_than: float) -> None:
        with self.lock:
            self.db.execute("DELETE FROM delivery WHERE state IN ('delivered', 'dead') AND done_at < ?", (older_than,))

    def close(self) -> None:
        with self.lock:
            self.db.close()
