"""The ingest lock on a Milvus server: a PostgreSQL advisory lock, so that two backends (or
a backend and ingest.py on another machine) never run an ingest on one collection at once."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import BACKEND
from postgres_server import postgres, postgres_url  # noqa: F401 (fixtures)


def test_one_ingest_per_collection_across_processes(postgres_url):  # noqa: F811
    from app.errors import DatabaseBusyError
    from app.ingestion.locking import exclusive_ingest

    holder = subprocess.Popen(  # another machine's run holds the lock
        [sys.executable, "-c", "import sys, time; from app.ingestion.locking import exclusive_ingest\n"
         f"with exclusive_ingest(None, {postgres_url!r}, 'course_chunks'):\n"
         "    print('held', flush=True); sys.stdin.readline()"],
        cwd=BACKEND, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DatabaseBusyError, match="another backend or ingest.py"):
            with exclusive_ingest(None, postgres_url, "course_chunks"):
                pass
        with exclusive_ingest(None, postgres_url, "another_course"):  # other collections run
            pass
    finally:
        holder.kill()  # killed mid-run: its connection drops, and the lock with it
        holder.wait()
    with exclusive_ingest(None, postgres_url, "course_chunks"):
        pass


def test_an_unreachable_lock_database_stops_the_run_with_its_address():
    from app.errors import StorageUnavailableError
    from app.ingestion.locking import exclusive_ingest
    from backend_fixtures import free_port

    url = f"postgresql://appliance:hunter2@127.0.0.1:{free_port()}/appliance"
    with pytest.raises(StorageUnavailableError) as raised:
        with exclusive_ingest(None, url, "course_chunks"):
            pass
    assert "postgresql://appliance@127.0.0.1" in str(raised.value) and "hunter2" not in str(raised.value)
