"""The conversation store's two engines behind one small interface: a SQLite file (one
backend, the default) and PostgreSQL (several backends sharing one history).

Why not an ORM: the store's SQL is a dozen statements that both engines run alike once
`?` is written `%s` for psycopg (so no SQL here may hold a literal `?` or `%`) and rows are
read by name and by position; the few real
differences (a date from unix seconds, an array aggregate, the id column, the schema's
upgrades) are named here, so each module of SQL stays readable as SQL.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

from app.errors import ConfigurationError, StorageUnavailableError

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class StoreUnavailable(StorageUnavailableError):
    """The conversation database cannot be reached (shown to callers as a 503)."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"The conversation database at {where} cannot be reached ({reason}); "
                         "conversations are unavailable until it is back.")


def redacted(url: str) -> str:
    """A database URL without its password: what errors and /api/ready may show."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


class Row(tuple):
    """A result row read by position (unpacking) or by column name, like sqlite3.Row."""

    names: dict[str, int]

    def __new__(cls, names: dict[str, int], values) -> Row:
        row = super().__new__(cls, values)
        row.names = names
        return row

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self.names[key])
        return tuple.__getitem__(self, key)


class Connection:
    """One connection, whatever the engine: `execute`, `executemany`, `transaction`."""

    dialect: str

    def execute(self, sql: str, params: tuple = ()) -> Any:
        raise NotImplementedError

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        raise NotImplementedError

    def transaction(self) -> contextlib.AbstractContextManager:
        raise NotImplementedError


class _SqliteConnection(Connection):
    dialect = "sqlite"

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def execute(self, sql: str, params: tuple = ()):
        return self.db.execute(sql, params)

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        self.db.executemany(sql, rows)

    @contextlib.contextmanager
    def transaction(self):
        with self.db:
            self.db.execute("BEGIN")
            yield


_PLACEHOLDER = re.compile(r"\?")


class _PostgresConnection(Connection):
    dialect = "postgresql"

    def __init__(self, db):
        self.db = db

    def execute(self, sql: str, params: tuple = ()):
        return self.db.execute(_PLACEHOLDER.sub("%s", sql), params)

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        if rows:
            with self.db.cursor() as cursor:
                cursor.executemany(_PLACEHOLDER.sub("%s", sql), rows)

    def transaction(self):
        return self.db.transaction()


class Database:
    """Hands out a connection for one unit of work (`with database.connect() as db`)."""

    dialect: str

    def connect(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SqliteDatabase(Database):
    """One file, one connection shared under a lock (SQLite serialises writers anyway)."""

    dialect = "sqlite"

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        self._connection = _SqliteConnection(db)

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        with self._lock:
            yield self._connection

    def close(self) -> None:
        with self._lock:
            self._connection.db.close()


class PostgresDatabase(Database):
    """Connections to a PostgreSQL server, made when a call needs one and kept idle for the
    next (up to `pool_size`). Each is checked before it is handed out, so one the server
    dropped (a restart, a failover) is replaced at once. Why not psycopg_pool: after a
    server outage its background reconnects back off exponentially (1, 2, 4 ... s), so a
    backend could go on failing for a minute after the server was back; here the first
    call after the server returns connects."""

    dialect = "postgresql"

    def __init__(self, url: str, pool_size: int = 8, connect_timeout_s: float = 5.0):
        import psycopg

        self.where = redacted(url)  # what errors may name: never the password
        self._url = url
        self._psycopg = psycopg
        self._timeout = max(1, int(connect_timeout_s))
        self._pool_size = pool_size
        self._idle: list = []
        self._lock = threading.Lock()
        self._closed = False

    def _checked_out(self):
        """An idle connection that still answers, or a new one."""
        while True:
            with self._lock:
                db = self._idle.pop() if self._idle else None
            if db is None:
                return self._psycopg.connect(self._url, autocommit=True, row_factory=_rows_by_name,
                                             connect_timeout=self._timeout)
            try:
                db.execute("SELECT 1")
                return db
            except self._psycopg.Error:
                db.close()  # dropped by the server: try the next, or make one

    def _checked_in(self, db) -> None:
        idle = (not db.closed and not db.broken
                and db.info.transaction_status == self._psycopg.pq.TransactionStatus.IDLE)
        with self._lock:
            if idle and not self._closed and len(self._idle) < self._pool_size:
                self._idle.append(db)
                return
        db.close()

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        try:
            db = self._checked_out()
        except self._psycopg.OperationalError as exc:
            raise StoreUnavailable(self.where, first_line(exc)) from exc
        try:
            yield _PostgresConnection(db)
        except self._psycopg.OperationalError as exc:
            raise StoreUnavailable(self.where, first_line(exc)) from exc
        finally:
            self._checked_in(db)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for db in idle:
            db.close()


def first_line(exc: Exception) -> str:
    """The first line of a driver error: what a one-line message may quote."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else "connection lost"


def _rows_by_name(cursor):
    names = {column.name: i for i, column in enumerate(cursor.description or [])}
    return lambda values: Row(names, values)


def open_database(url: str | None, path: Path | None, pool_size: int = 8) -> Database:
    """PostgreSQL when `url` is a postgresql:// URL, else the SQLite file at `path`."""
    if url and url.startswith(POSTGRES_SCHEMES):
        return PostgresDatabase(url, pool_size)
    if url:
        raise ConfigurationError("RAG_CONVERSATIONS_URL must be a postgresql:// URL (or unset for the SQLite file).")
    if path is None:
        raise ConfigurationError("The conversation store needs a SQLite file or a PostgreSQL URL.")
    return SqliteDatabase(path)
