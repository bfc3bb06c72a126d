"""A backend killed (SIGKILL) at random points of an upload, then started again, ends with
exactly the database a clean ingest of the same folder gives: the start-up check repairs
orphan chunks, drops half-received files and ingests what was stored but not ingested.
The backend runs as its own process under uvicorn, as the appliance runs it."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from backend_fixtures import as_instructor, free_port, sample_course_settings
from conftest import BACKEND, IngestHarness, topic_text
from test_ingest_cli import _snapshot


def backend_env(settings) -> dict:
    env = dict(os.environ)
    env.update({
        "RAG_MILVUS_URI": settings.storage.milvus_uri, "RAG_COLLECTION_NAME": settings.storage.collection_name,
        "RAG_MATERIALS_DIR": str(settings.storage.materials_path), "RAG_CONVERSATIONS_DB": str(settings.storage.conversations_path),
        "RAG_ACCESS_DIR": str(settings.access.access_path), "RAG_AUDIT_LOG": str(settings.access.audit_log_path),
        "RAG_LLM_BASE_URL": settings.llm.llm_base_url, "RAG_EMBEDDING_DEVICE": "cpu", "RAG_TORCH_THREADS": "2",
        "TOKENIZERS_PARALLELISM": "false",
    })
    return env


class BackendProcess:
    def __init__(self, settings):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=BACKEND, env=backend_env(settings), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while True:
            assert self.proc.poll() is None, "the backend exited during start-up"
            assert time.monotonic() < deadline, "the backend did not start in 120 s"
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def wait_for_check(backend: BackendProcess, settings, within_s: float = 240) -> dict:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        jobs = httpx.get(f"{backend.url}/api/documents/jobs", headers=as_instructor(settings), timeout=10).json()
        checks = [j for j in jobs if j["action"] == "check"]
        if checks and checks[0]["state"] in ("done", "failed"):
            return checks[0]
        time.sleep(0.5)
    raise AssertionError("the start-up check did not finish")


@pytest.fixture
def crash_settings(tmp_path, embedder):
    settings = sample_course_settings(tmp_path, f"http://127.0.0.1:{free_port()}/v1")
    harness = IngestHarness(settings, embedder)
    harness.run(settings.storage.materials_path)
    harness.close()
    return settings


def test_a_backend_killed_mid_upload_is_repaired_at_its_next_start(crash_settings, embedder, tmp_path):
    from app.storage import lite_server

    settings = crash_settings
    book = ("\n\n".join(topic_text(f"part {n} of the union find chapter", 10) for n in range(300))).encode()
    rng = random.Random(20261207)
    try:
        for attempt in range(3):
            backend = BackendProcess(settings)
            key = as_instructor(settings)
            wait_for_check(backend, settings)

            def upload():
                try:
                    httpx.post(f"{backend.url}/api/documents", headers=key, timeout=120,
                               files={"file": (f"union find {attempt}.md", book, "text/markdown")})
                except httpx.HTTPError:
                    pass  # the backend is killed under it

            sender = threading.Thread(target=upload)
            sender.start()
            time.sleep(rng.uniform(0.05, 10.0))  # anywhere from receiving the bytes to storing chunks
            backend.kill()
            sender.join()

        backend = BackendProcess(settings)
        check = wait_for_check(backend, settings)
        assert check["state"] == "done", check
        backend.stop()
    finally:
        lite_server.stop(settings.storage.milvus_db_path)

    uploads = settings.storage.materials_path / "uploads"
    assert not [p.name for p in uploads.iterdir() if p.name.startswith(".")]  # nothing half-received is left
    # The same folder ingested cleanly, with no interruption, into a fresh database:
    clean = settings.model_copy(update={"milvus_uri": str(tmp_path / "clean" / "clean.db")})
    harness = IngestHarness(clean, embedder)
    report = harness.run(settings.storage.materials_path)
    harness.close()
    assert report.exit_code == 0
    assert _snapshot(settings, embedder) == _snapshot(clean, embedder)
