"""Conversations and their messages in one SQLite file beside the vector data.

Why SQLite: one file, survives restarts, backs up with milvus_data/, and needs no
server. Calls are short and run in a worker thread so the event loop never blocks.
Each message stores its token count once, so trimming history to the context
window does not re-tokenize old turns on every request.

Each conversation has an owner: the student id of the browser that started it, or
none for one started by a client that keeps no cookie (reachable by its id alone).
Files from before owners existed gain the column on open; their conversations have
no owner. A conversation belongs to one course; those from before courses belong to
the default course.
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
    updated_at REAL NOT NULL,
    owner TEXT,
    course TEXT
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
-- What the instructor's insight reads of each answer, kept apart from its JSON metadata
-- (kilobytes of passages) so that a report over a term's turns parses none of it.
CREATE TABLE IF NOT EXISTS answer_sources (
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    course TEXT NOT NULL,
    created_at REAL NOT NULL,
    file TEXT NOT NULL,
    page INTEGER,
    cited INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS answer_sources_by_message ON answer_sources(message_id);
CREATE INDEX IF NOT EXISTS answer_sources_by_time ON answer_sources(course, created_at, file, page, cited);
CREATE TABLE IF NOT EXISTS feedback (
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    voter TEXT NOT NULL,
    vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
    comment TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    PRIMARY KEY (message_id, voter)
);
"""
# Run after _SCHEMA, once the columns exist (they are added to older files first).
_OWNER_INDEX = "CREATE INDEX IF NOT EXISTS conversations_by_owner ON conversations(owner, course, updated_at)"
# Covering what the insight reads of every answer: a row's later columns lie past its
# metadata (kilobytes), which SQLite would otherwise read through for each.
_OUTCOME_INDEX = ("CREATE INDEX IF NOT EXISTS answers_by_time "
                  "ON messages(role, created_at, finish_reason, conversation_id)")
# Files written before answers kept their outcome and sources apart: filled in once.
_BACKFILL = """
UPDATE messages SET finish_reason = json_extract(meta, '$.finish_reason') WHERE role = 'assistant';
INSERT INTO answer_sources (message_id, course, created_at, file, page, cited)
SELECT m.id, (SELECT c.course FROM conversations c WHERE c.id = m.conversation_id), m.created_at, json_extract(s.value, '$.file'), json_extract(s.value, '$.page_start'),
       EXISTS (SELECT 1 FROM json_each(m.meta, '$.cited') c WHERE c.value = json_extract(s.value, '$.number'))
FROM messages m, json_each(m.meta, '$.sources') s WHERE m.role = 'assistant';
"""
SCHEMA_VERSION = 2


class NotYours(Exception):
    """The conversation belongs to someone else (shown to the caller as 'not found')."""


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
    owner: str | None = None
    course: str | None = None


class ConversationStore:
    def __init__(self, path: Path, default_course: str = "main"):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.default_course = default_course
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        columns = {row["name"] for row in self._db.execute("PRAGMA table_info(conversations)")}
        for column in ("owner", "course"):
            if column not in columns:
                self._db.execute(f"ALTER TABLE conversations ADD COLUMN {column} TEXT")
        self._db.execute("UPDATE conversations SET course = ? WHERE course IS NULL", (default_course,))
        self._db.execute(_OWNER_INDEX)
        if "finish_reason" not in {row["name"] for row in self._db.execute("PRAGMA table_info(messages)")}:
            self._db.execute("ALTER TABLE messages ADD COLUMN finish_reason TEXT")
        self._db.execute(_OUTCOME_INDEX)
        if self._db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            with self._db:
                self._db.execute("BEGIN")
                for statement in _BACKFILL.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    async def _run(self, fn, *args):
        return await asyncio.to_thread(self._locked, fn, *args)

    def _locked(self, fn, *args):
        with self._lock:
            return fn(*args)

    async def read(self, query):
        """Run `query(connection)` (read-only SQL of another module: the insight report)
        under this store's lock, in a worker thread."""
        return await self._run(query, self._db)

    # -- conversations --------------------------------------------------------
    async def get(self, conversation_id: str) -> Conversation | None:
        rows = await self._run(self._select, "WHERE c.id = ?", (conversation_id,), 1, 0)
        return rows[0] if rows else None

    async def list(self, owner: str | None = None, everyone: bool = False, course: str | None = None,
                   limit: int = 50, offset: int = 0) -> tuple[list[Conversation], int]:
        """One page of conversations, newest first, and how many there are in all: the
        owner's, or with `everyone` all of them; in one course, or in all when `course`
        is None. No owner and not everyone: none."""
        conditions, params = [], []
        if not everyone:
            if owner is None:
                return [], 0
            conditions.append("c.owner = ?")
            params.append(owner)
        if course is not None:
            conditions.append("c.course = ?")
            params.append(course)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        return await self._run(self._page, where, tuple(params), limit, offset)

    def _page(self, where: str, params: tuple, limit: int, offset: int) -> tuple[list[Conversation], int]:
        total = self._db.execute(f"SELECT COUNT(*) FROM conversations c {where}", params).fetchone()[0]
        return self._select(where, params, limit, offset), total

    def _select(self, where: str, params: tuple, limit: int, offset: int) -> list[Conversation]:
        sql = (
            "SELECT c.*, (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS n "
            f"FROM conversations c {where} ORDER BY c.updated_at DESC LIMIT ? OFFSET ?"
        )
        return [
            Conversation(r["id"], r["title"], r["created_at"], r["updated_at"], r["n"], r["owner"], r["course"])
            for r in self._db.execute(sql, (*params, limit, offset))
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

    # -- feedback on answers ------------------------------------------------------
    async def answer_in(self, conversation_id: str, message_id: int) -> bool:
        """Whether `message_id` is an answer (not a question) of this conversation."""
        return await self._run(lambda: self._db.execute(
            "SELECT 1 FROM messages WHERE id = ? AND conversation_id = ? AND role = 'assistant'",
            (message_id, conversation_id)).fetchone() is not None)

    async def vote(self, message_id: int, voter: str, vote: int, comment: str = "") -> None:
        """One vote per answer per voter: a second one replaces the first."""
        await self._run(lambda: self._db.execute(
            "INSERT INTO feedback (message_id, voter, vote, comment, created_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (message_id, voter) DO UPDATE SET vote = excluded.vote, comment = excluded.comment, "
            "created_at = excluded.created_at", (message_id, voter, vote, comment, time.time())))

    async def unvote(self, message_id: int, voter: str) -> bool:
        return await self._run(lambda: self._db.execute(
            "DELETE FROM feedback WHERE message_id = ? AND voter = ?", (message_id, voter)).rowcount > 0)

    async def votes(self, conversation_id: str, voter: str) -> dict[int, tuple[int, str]]:
        """`voter`'s votes on this conversation's answers: message id -> (vote, comment)."""
        rows = await self._run(lambda: self._db.execute(
            "SELECT f.message_id, f.vote, f.comment FROM feedback f JOIN messages m ON m.id = f.message_id "
            "WHERE m.conversation_id = ? AND f.voter = ?", (conversation_id, voter)).fetchall())
        return {r["message_id"]: (r["vote"], r["comment"]) for r in rows}

    async def add_turn(self, conversation_id: str, user: Message, assistant: Message,
                       replaces: list[int] | None = None, owner: str | None = None,
                       any_owner: bool = False, course: str | None = None) -> int:
        """Store a question and its answer together (creating the conversation on its
        first turn, owned by `owner`): a failed turn stores nothing and changes nothing.
        `replaces` names messages (a regenerated turn) deleted in the same transaction.
        Raises NotYours if the conversation has another owner (unless `any_owner`): two
        clients that picked the same new id never share one conversation. Returns the
        answer's message id (what feedback names)."""
        return await self._run(self._add_turn, conversation_id, user, assistant, replaces or [], owner, any_owner,
                        course or self.default_course)

    def _add_turn(self, conversation_id: str, user: Message, assistant: Message, replaces: list[int],
                  owner: str | None, any_owner: bool, course: str) -> int:
        now = time.time()
        with self._db:  # one transaction
            self._db.execute("BEGIN")
            row = self._db.execute("SELECT owner, course FROM conversations WHERE id = ?",
                                   (conversation_id,)).fetchone()
            if row is not None and ((row["owner"] is not None and row["owner"] != owner and not any_owner)
                                    or row["course"] != course):
                raise NotYours(conversation_id)
            for message_id in replaces:
                self._db.execute("DELETE FROM messages WHERE id = ? AND conversation_id = ?",
                                 (message_id, conversation_id))
            self._db.execute(
                "INSERT OR IGNORE INTO conversations (id, title, created_at, updated_at, owner, course) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (conversation_id, " ".join(user.content.split())[:80], now, now, owner, course),
            )
            for m in (user, assistant):
                inserted = self._db.execute(
                    "INSERT INTO messages (conversation_id, role, content, token_count, meta, created_at, "
                    "finish_reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (conversation_id, m.role, m.content, m.token_count, json.dumps(m.meta), m.created_at,
                     m.meta.get("finish_reason")),
                )
            cited = set(assistant.meta.get("cited") or [])
            self._db.executemany(
                "INSERT INTO answer_sources (message_id, course, created_at, file, page, cited) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(inserted.lastrowid, course, assistant.created_at, s.get("file") or "",
                  s.get("page_start"), int(s.get("number") in cited))
                 for s in assistant.meta.get("sources") or []])
            self._db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (time.time(), conversation_id))
            return inserted.lastrowid
