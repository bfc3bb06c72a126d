"""Copy the pod's conversations (SQLite file) into PostgreSQL: the step that lets several
backends share the history students already have.

    cd backend && python -m app.conversations.migrate --to postgresql://user:pw@host:5432/db

The source is the configured file (RAG_CONVERSATIONS_DB). Every conversation, message,
answer source and vote is copied in one transaction, message ids kept (feedback and the
insight report refer to them), into a database that holds no conversations yet; then the
row counts are compared. A copy that fails leaves the target as it was. Then set
RAG_CONVERSATIONS_URL to the same URL.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.conversations.database import POSTGRES_SCHEMES, redacted
from app.conversations.store import ConversationStore
from app.errors import ApplianceError

# In the order the foreign keys need; each table's columns as both engines name them.
TABLES = {
    "conversations": ["id", "title", "created_at", "updated_at", "owner", "course"],
    "messages": ["id", "conversation_id", "role", "content", "token_count", "meta", "created_at", "finish_reason"],
    "answer_sources": ["message_id", "course", "created_at", "file", "page", "cited"],
    "feedback": ["message_id", "voter", "vote", "comment", "created_at"],
}
BATCH = 1000


class MigrationError(ApplianceError):
    """A copy that cannot start or did not come out equal."""


def copy_conversations(path: Path, url: str, default_course: str = "main", say=print) -> dict[str, int]:
    """Copy every row from the SQLite file at `path` to the PostgreSQL database at `url`;
    returns the rows copied per table."""
    if not path.is_file():
        raise MigrationError(f"There is no conversation file at {path}: nothing to copy.")
    source = ConversationStore(path, default_course)  # brings an older file up to date first
    target = ConversationStore(None, default_course, url=url)
    try:
        with source.connect() as read, target.connect() as write:
            if write.execute("SELECT COUNT(*) FROM conversations").fetchone()[0]:
                raise MigrationError(f"{redacted(url)} already holds conversations; copy into an empty database "
                                     "(nothing was copied).")
            copied = {}
            with write.transaction():
                for table, columns in TABLES.items():
                    rows = read.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
                    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                    for start in range(0, len(rows), BATCH):
                        write.executemany(sql, [tuple(row) for row in rows[start:start + BATCH]])
                    copied[table] = len(rows)
                    say(f"  {table}: {len(rows):,}")
                # new messages continue after the copied ids
                write.execute("SELECT setval(pg_get_serial_sequence('messages', 'id'), "
                              "GREATEST((SELECT MAX(id) FROM messages), 1))")
            for table in TABLES:
                there = write.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                if there != copied[table]:
                    raise MigrationError(f"{table}: {copied[table]} rows read but {there} in the target.")
        return copied
    finally:
        source.close()
        target.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--to", required=True, metavar="URL", help="postgresql://user:password@host:5432/db")
    args = parser.parse_args(argv)
    from app.settings import get_settings

    settings = get_settings()
    path = settings.storage.conversations_path
    if not args.to.startswith(POSTGRES_SCHEMES):
        print("error: --to must be a postgresql:// URL", file=sys.stderr)
        return 2
    print(f"Copying the conversations of {path} into {redacted(args.to)}")
    try:
        copied = copy_conversations(path, args.to, settings.storage.default_course)
    except ApplianceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Done: {copied['conversations']:,} conversations, {copied['messages']:,} messages; the counts match. "
          f"Set RAG_CONVERSATIONS_URL to use them.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
