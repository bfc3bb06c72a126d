"""One ingest run per local database at a time, whether from the CLI or the API.

Why: two runs on the same collection would race on the manifest; this lock is
separate from Milvus Lite's own database lock, which the shared server holds.
"""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path

from app.errors import DatabaseBusyError


@contextmanager
def exclusive_ingest(db_path: Path | None):
    """One ingest run per local database at a time (two would race on the manifest)."""
    if db_path is None:
        yield
        return
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with open(db_path.parent / f".{db_path.name}.ingest.lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DatabaseBusyError(
                f"Another ingest is already running on {db_path}; wait for it to finish."
            ) from None
        yield
