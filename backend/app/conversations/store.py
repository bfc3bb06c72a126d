"""Conversations and their messages: one SQLite file beside the vector data, or a
PostgreSQL server that several backends share (RAG_CONVERSATIONS_URL).

Why SQLite by default: one file, survives restarts, backs up with milvus_data/, and needs
no server. Why PostgreSQL beside it: a second backend process cannot share a SQLite file
across machines, and a student's next question may reach either. The same SQL runs on
both (app/conversations/database.py). Calls are short and run in a worker thread so the
event loop never blocks.
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
import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from app.conversations.database import Connection, Database, open_database

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
    def __init__(self, path: Path | None, default_course: str = "main", url: str | None = None):
        """The SQLite file at `path`, or the PostgreSQL server at `url` (postgresql://...)."""
        self.path = path
        self.default_course = default_course
        self.database: Database = open_database(url, path)
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        if self.database.dialect == "sqlite":
            self._ensure_schema()

    def _ensure_schema(self) -> None:
        """Create or upgrade the schema, once: at open for the SQLite file, on first use for
        a server (which may be down when the backend starts)."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            with self.database.connect() as db:
                if db.dialect == "sqlite":
                    _upgrade_sqlite(db, self.default_course)
                else:
                    _upgrade_postgres(db)
            self._schema_ready = True

    def close(self) -> None:
        self.database.close()

    async def _run(self, fn, *args):
        return await asyncio.to_thread(self._connected, fn, *args)

    def _connected(self, fn, *args):
        with self.connect() as db:
            return fn(db, *args)

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection to the store's tables (created first if need be), for one unit of
        work; blocking (the async methods run it in a worker thread)."""
        self._ensure_schema()
        with self.database.connect() as db:
            yield db

    async def ping(self) -> None:
        """Raise StoreUnavailable when the database cannot be reached (for /api/ready)."""
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    async def read(self, query):
        """Run `query(connection)` (read-only SQL of another module: the insight report)
        on a connection of this store, in a worker thread."""
        return await self._run(query)

    # -- conversations --------------------------------------------------------
    async def get(self, conversation_id: str) -> Conversation | None:
        rows = await self._run(_select, "WHERE c.id = ?", (conversation_id,), 1, 0)
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
        return await self._run(_page, where, tuple(params), limit, offset)

    async def rename(self, conversation_id: str, title: str) -> bool:
        return await self._run(lambda db: db.execute(
            "UPDATE conversations SET title = ?, updated_at = ? WHERE id = ?",
            (title.strip()[:200], time.time(), conversation_id)).rowcount > 0)

    async def delete(self, conversation_id: str) -> bool:
        return await self._run(
            lambda db: db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,)).rowcount > 0)

    # -- messages ---------------------------------------------------------------
    async def messages(self, conversation_id: str) -> list[Message]:
        return await self._run(_messages, conversation_id)

    # -- feedback on answers ------------------------------------------------------
    async def answer_in(self, conversation_id: str, message_id: int) -> bool:
        """Whether `message_id` is an answer (not a question) of this conversation."""
        return await self._run(lambda db: db.execute(
            "SELECT 1 FROM messages WHERE id = ? AND conversation_id = ? AND role = 'assistant'",
            (message_id, conversation_id)).fetchone() is not None)

    async def vote(self, message_id: int, voter: str, vote: int, comment: str = "") -> None:
        """One vote per answer per voter: a second one replaces the first."""
        await self._run(lambda db: db.execute(
            "INSERT INTO feedback (message_id, voter, vote, comment, created_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (message_id, voter) DO UPDATE SET vote = excluded.vote, comment = excluded.comment, "
            "created_at = excluded.created_at", (message_id, voter, vote, comment, time.time())))

    async def unvote(self, message_id: int, voter: str) -> bool:
        return await self._run(lambda db: db.execute(
            "DELETE FROM feedback WHERE message_id = ? AND voter = ?", (message_id, voter)).rowcount > 0)

    async def votes(self, conversation_id: str, voter: str) -> dict[int, tuple[int, str]]:
        """`voter`'s votes on this conversation's answers: message id -> (vote, comment)."""
        rows = await self._run(lambda db: db.execute(
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
        clients that picked the same new id never share one conversation, even on two
        backends at once. Returns the answer's message id (what feedback names)."""
        return await self._run(_add_turn, conversation_id, user, assistant, replaces or [], owner, any_owner,
                               course or self.default_course)


def _page(db: Connection, where: str, params: tuple, limit: int, offset: int) -> tuple[list[Conversation], int]:
    total = db.execute(f"SELECT COUNT(*) FROM conversations c {where}", params).fetchone()[0]
    return _select(db, where, params, limit, offset), total


def _select(db: Connection, where: str, params: tuple, limit: int, offset: int) -> list[Conversation]:
    sql = (
        "SELECT c.*, (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS n "
        f"FROM conversations c {where} ORDER BY c.updated_at DESC LIMIT ? OFFSET ?"
    )
    return [
        Conversation(r["id"], r["title"], r["created_at"], r["updated_at"], r["n"], r["owner"], r["course"])
        for r in db.execute(sql, (*params, limit, offset))
    ]


def _messages(db: Connection, conversation_id: str) -> list[Message]:
    rows = db.execute("SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,))
    return [Message(r["role"], r["content"], r["token_count"], json.loads(r["meta"]), r["created_at"], r["id"])
            for r in rows]


def _add_turn(db: Connection, conversation_id: str, user: Message, assistant: Message, replaces: list[int],
              owner: str | None, any_owner: bool, course: str) -> int:
    now = time.time()
    with db.transaction():
        # Create first, then read who owns it: a client that raced another for the same new
        # id (on this backend or another) waits for that one's insert and then sees its owner.
        db.execute("INSERT INTO conversations (id, title, created_at, updated_at, owner, course) "
                   "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                   (conversation_id, " ".join(user.content.split())[:80], now, now, owner, course))
        row = db.execute("SELECT owner, course FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        if (row["owner"] is not None and row["owner"] != owner and not any_owner) or row["course"] != course:
            raise NotYours(conversation_id)
        for message_id in replaces:
            db.execute("DELETE FROM messages WHERE id = ? AND conversation_id = ?", (message_id, conversation_id))
        for m in (user, assistant):
            message_id = db.execute(
                "INSERT INTO messages (conversation_id, role, content, token_count, meta, created_at, "
                "finish_reason) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (conversation_id, m.role, m.content, m.token_count, json.dumps(m.meta), m.created_at,
                 m.meta.get("finish_reason")),
            ).fetchone()[0]
        cited = set(assistant.meta.get("cited") or [])
        db.executemany(
            "INSERT INTO answer_sources (message_id, course, created_at, file, page, cited) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(message_id, course, assistant.created_at, s.get("file") or "",
              s.get("page_start"), int(s.get("number") in cited))
             for s in assistant.meta.get("sources") or []])
        db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (time.time(), conversation_id))
        return message_id


def _upgrade_sqlite(db: Connection, default_course: str) -> None:
    """Create the tables, and bring a file written by an older version up to date: columns
    added since, and the answers' outcome and sources copied out of their metadata."""
    db.db.executescript(_SCHEMA)  # type: ignore[attr-defined]
    columns = {row["name"] for row in db.execute("PRAGMA table_info(conversations)")}
    for column in ("owner", "course"):
        if column not in columns:
            db.execute(f"ALTER TABLE conversations ADD COLUMN {column} TEXT")
    db.execute("UPDATE conversations SET course = ? WHERE course IS NULL", (default_course,))
    db.execute(_OWNER_INDEX)
    if "finish_reason" not in {row["name"] for row in db.execute("PRAGMA table_info(messages)")}:
        db.execute("ALTER TABLE messages ADD COLUMN finish_reason TEXT")
    db.execute(_OUTCOME_INDEX)
    if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
        with db.transaction():
            for statement in _BACKFILL.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _upgrade_postgres(db: Connection) -> None:
    """Create the tables on a new database (at the current version); the version row is
    where later upgrades will start from. Several backends may start at once: the lock
    lets one create while the others wait."""
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(7355608)")
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            for statement in _postgres_schema().split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))


def _postgres_schema() -> str:
    """The SQLite schema in PostgreSQL's words: 8-byte timestamps and ids, an identity
    column for message ids, the columns older SQLite files gain by upgrade included."""
    schema = (_SCHEMA.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
              .replace(" REAL", " DOUBLE PRECISION").replace("message_id INTEGER", "message_id BIGINT")
              .replace("    meta TEXT NOT NULL DEFAULT '{}',", "    meta TEXT NOT NULL DEFAULT '{}',\n    finish_reason TEXT,"))
    schema = "\n".join(line for line in schema.splitlines() if not line.lstrip().startswith("--"))
    return f"{schema};\n{_OWNER_INDEX};\n{_OUTCOME_INDEX}"
