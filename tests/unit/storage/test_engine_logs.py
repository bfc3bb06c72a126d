"""The Milvus Lite engine logs under the appliance's logs folder, and old files go."""

from __future__ import annotations

import os
import time

from app.storage import engine_logs, lite_server


def test_the_shared_server_logs_under_the_logs_folder(tmp_path, monkeypatch):
    logs = tmp_path / "logs"
    monkeypatch.setenv("RAG_LOGS_DIR", str(logs))  # the server process reads its settings
    db = tmp_path / "db" / "engine.db"
    for n in range(engine_logs.KEEP_FILES + 3):  # older engine logs from earlier starts
        old = logs / f"milvus.host.root.log.INFO.2026010{n % 10}-000000.{n}"
        old.parent.mkdir(parents=True, exist_ok=True)
        old.write_text("old")
        os.utime(old, (time.time() - 3600 + n, time.time() - 3600 + n))
    lite_server.start_in_background(db)
    try:
        deadline = time.monotonic() + 20
        while not any(p.stat().st_mtime > time.time() - 600 for p in logs.glob("milvus.*") if not p.is_symlink()):
            assert time.monotonic() < deadline, sorted(p.name for p in logs.iterdir())
            time.sleep(0.2)
    finally:
        lite_server.stop(db)
    kept = [p for p in logs.glob("milvus.*") if not p.is_symlink()]
    assert len(kept) <= engine_logs.KEEP_FILES + 2  # pruned at start; this run's own files on top


def test_prune_keeps_the_newest_files(tmp_path):
    for n in range(5):
        path = tmp_path / f"milvus.x.log.INFO.{n}"
        path.write_text("x")
        os.utime(path, (1000 + n, 1000 + n))
    (tmp_path / "backend.log").write_text("not the engine's")
    removed = engine_logs.prune(tmp_path, keep=2)
    assert sorted(p.name for p in removed) == ["milvus.x.log.INFO.0", "milvus.x.log.INFO.1", "milvus.x.log.INFO.2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backend.log", "milvus.x.log.INFO.3", "milvus.x.log.INFO.4"]
