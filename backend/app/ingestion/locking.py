"""One ingest run per collection at a time, whether from the CLI, the API or another backend.

Why: two runs on the same collection would race on the manifest, and one's check at start
would take the other's chunks, written but not yet recorded, for a crash's leftovers. On a
Milvus Lite file the lock is a file beside it (separate from Milvus Lite's own database
lock, which the shared server holds). On a Milvus server, several machines may ingest: the
lock is a PostgreSQL advisory lock on the server that holds the conversations
(RAG_CONVERSATIONS_URL), which every backend of a multi-backend set-up shares. A server
without it has no lock, which is right for one backend (its runs are queued) and the CLI
run at another time.
"""

from __future__ import annotations

import fcntl
import hashlib
from contextlib import contextmanager
from pathlib import Path

from app.errors import DatabaseBusyError, StorageUnavailableError


@contextmanager
def exclusive_ingest(db_path: Path | None, lock_url: str | None = None, collection: str = ""):
    """Hold the collection's ingest lock for the block; DatabaseBusyError if another run has it."""
    if db_path is not None:
        with _file_lock(db_path):
            yield
    elif lock_url:
        with _postgres_lock(lock_url, collection):
            yield
    else:
        yield


@contextmanager
def _file_lock(db_path: Path):
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with open(db_path.parent / f".{db_path.name}.ingest.lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DatabaseBusyError(
                f"Another ingest is already running on {db_path}; wait for it to finish."
            ) from None
        yield


@contextmanager
def _postgres_lock(url: str, collection: str):
    """A session-level advisory lock, released when the run ends or its connection drops
    (a killed run never leaves it held)."""
    import psycopg

    from app.conversations.database import first_line, redacted

    key = int.from_bytes(hashlib.sha256(f"ingest {collection}".encode()).digest()[:8], "big", signed=True)
    try:
        connection = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise StorageUnavailableError(
            f"The ingest lock's database at {redacted(url)} cannot be reached ({first_line(exc)}); "
            "ingesting without it could race another backend.") from exc
    with connection:
        if not connection.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
            raise DatabaseBusyError(
                f"Another ingest is already running on the collection {collection} (another backend or "
                "ingest.py); wait for it to finish.")
        try:
            yield
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (key,))


def ingest_lock(settings, db_path: Path | None):
    """The lock for this course's collection, from its settings."""
    url = settings.storage.conversations_url
    where = f"{settings.storage.milvus_uri} {settings.storage.collection_name}"
    return exclusive_ingest(db_path, url.get_secret_value() if url else None, where)
