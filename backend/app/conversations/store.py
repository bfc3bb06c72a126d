"""Conversations and their messages in one SQLite file beside the vector data.

Why SQLite: one file, survives restarts, backs up with milvus_data/, and needs no
server. Calls are short and run in a worker thread so the event loop never blocks.
Each message stores its token count once, so trimming history to the context
window does not re-tokenize old turns on every request.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content TEXT NOT NULL,
    token_count INTEGER,
    meta TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages(conversation_id, id);
"""


@dataclass
class Message:
    role: str
    content: str
    token_count: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    id: int | None = None


@dataclass
class Conversation:
    id: str
    title: str
    created_at: float
    updated_at: float
    message_count: int = 0


class ConversationStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    async def _run(self, fn, *args):
        return await asyncio.to_thread(self._locked, fn, *args)

    def _locked(self, fn, *args):
        with self._lock:
            return fn(*args)

    # -- conversations --------------------------------------------------------
    async def get(self, conversation_id: str) -> Conversation | None:
        rows = await self._run(self._list, conversation_id)
        return rows[0] if rows else None

    async def list(self) -> list[Conversation]:
        return await self._run(self._list, None)

    def _list(self, only: str | None) -> list[Conversation]:
        sql = (
            "SELECT c.*, (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS n "
            "FROM conversations c"
        )
        params: tuple = ()
        if only is not None:
            sql += " WHERE c.id = ?"
            params = (only,)
        sql += " ORDER BY c.updated_at DESC"
        return [
            Conversation(r["id"], r["title"], r["created_at"], r["updated_at"], r["n"])
            for r in self._db.execute(sql, params)
        ]

    async def rename(self, conversation_id: str, title: str) -> bool:
        return await self._run(
            lambda: self._db.execute(
                "UPDATE conversations SET title = ?, updated_at = ? WHERE id = ?",
                (title.strip()[:200], time.time(), conversation_id),
            ).rowcount
            > 0
        )

    async def delete(self, conversation_id: str) -> bool:
        return await self._run(
            lambda: self._db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,)).rowcount > 0
        )

    # -- messages ---------------------------------------------------------------
    async def messages(self, conversation_id: str) -> list[Message]:
        return await self._run(self._messages, conversation_id)

    def _messages(self, conversation_id: str) -> list[Message]:
        rows = self._db.execute(
            "SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,)
        )
        return [
            Message(r["role"], r["content"], r["token_count"], json.loads(r["meta"]), r["created_at"], r["id"])
            for r in rows
        ]

    async def add_turn(self, conversation_id: str, user: Message, assistant: Message,
                       replaces: list[int] | None = None) -> None:
        """Store a question and its answer together (creating the conversation on its
        first turn): a failed turn stores nothing and changes nothing. `replaces` names
        messages (a regenerated turn) deleted in the same transaction."""
        await self._run(self._add_turn, conversation_id, user, assistant, replaces or [])

    def _add_turn(self, conversation_id: str, user: Message, assistant: Message, replaces: list[int]) -> None:
        now = time.time()
        with self._db:  # one transaction
            self._db.execute("BEGIN")
            for message_id in replaces:
                self._db.execute("DELETE FROM messages WHERE id = ? AND conversation_id = ?",
                                 (message_id, conversation_id))
            self._db.execute(
                "INSERT OR IGNORE INTO conversations (id, title, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (conversation_id, " ".join(user.content.split())[:80], now, now),
            )
            for m in (user, assistant):
                self._db.execute(
                    "INSERT INTO messages (conversation_id, role, content, token_count, meta, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (conversation_id, m.role, m.content, m.token_count, json.dumps(m.meta), m.created_at),
                )
            self._db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (time.time(), conversation_id))
