"""The appliance on a real Milvus server, by URI alone: the `milvus` package runs Milvus
standalone 2.3.5 in a child process (its own data folder and port), and the ingest CLI and
the backend are pointed at it with RAG_MILVUS_URI=http://127.0.0.1:PORT, as a department
that outgrows the pod's Milvus Lite file would."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from backend_fixtures import BackendServer, as_instructor, copy_sample_course, free_port
from conftest import BACKEND, cli_env, run_cli, topic_text

HASH_PDF = "data-structures-101/lecture-04-hash-tables.pdf"


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory):
    """Milvus standalone on a free port, with its data under the test's temporary folder."""
    from milvus import MilvusServer

    server = MilvusServer(wait_for_started=True)
    server.set_base_dir(str(tmp_path_factory.mktemp("milvus-server")))
    server.listen_port = free_port()
    started = time.monotonic()
    server.start()
    print(f"Milvus standalone 2.3.5 started in {time.monotonic() - started:.1f} s")
    yield f"http://127.0.0.1:{server.listen_port}"
    server.stop()


@pytest.fixture
def on_server(milvus_server, tmp_path, request):
    """Settings for a course on the server: a collection of this test's own, the keyword
    index and everything else under the test's folder."""
    from app.settings import Settings

    collection = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:40]
    return Settings(_env_file=None, milvus_uri=milvus_server, collection_name=collection,
                    keyword_index_dir=tmp_path / "keyword_index", embedding_device="cpu", torch_threads=2)


def _rows(settings) -> dict[str, int]:
    """Chunks per file, read from the server directly."""
    from pymilvus import MilvusClient

    client = MilvusClient(uri=settings.storage.milvus_uri)
    try:
        rows = client.query(settings.storage.collection_name, filter='doc_id != ""', output_fields=["doc_id"],
                            limit=16384)
    finally:
        client.close()
    counted: dict[str, int] = {}
    for row in rows:
        counted[row["doc_id"]] = counted.get(row["doc_id"], 0) + 1
    return counted


def test_the_cli_ingests_updates_and_prunes_on_the_server(on_server, tmp_path):
    materials = copy_sample_course(tmp_path / "materials")
    env = cli_env(on_server, RAG_KEYWORD_INDEX_DIR=on_server.storage.keyword_index_dir)
    first = run_cli(["--directory", str(materials), "--json", "--quiet"], env)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert len(summary["ingested"]) == 5 and summary["failed"] == {}
    stored = _rows(on_server)
    assert sum(stored.values()) == summary["chunks_written"] and HASH_PDF in stored

    again = json.loads(run_cli(["--directory", str(materials), "--json", "--quiet"], env).stdout)
    assert again["unchanged"] == 5 and again["chunks_written"] == 0

    syllabus = next(materials.rglob("00-syllabus.md"))
    syllabus.write_text("# Syllabus\n\n" + topic_text("graph traversal and shortest paths", 12))
    next(materials.rglob("03-binary-search-trees.md")).unlink()
    third = run_cli(["--directory", str(materials), "--json", "--quiet", "--prune"], env)
    assert third.returncode == 0, third.stderr
    summary = json.loads(third.stdout)
    assert len(summary["updated"]) == 1 and len(summary["removed"]) == 1
    after = _rows(on_server)
    removed, updated = summary["removed"][0], summary["updated"][0]
    assert removed.endswith("03-binary-search-trees.md") and removed not in after
    assert after[updated] == summary["chunks_written"]  # the new version only
    assert {p: n for p, n in after.items() if p != updated} == {
        p: n for p, n in stored.items() if p not in (removed, updated)}


def test_the_backend_answers_uploads_and_deletes_on_the_server(on_server, tmp_path, llm, embedder):
    settings = on_server.model_copy(update={
        "materials_dir": copy_sample_course(tmp_path / "materials"), "llm_base_url": llm.url,
        "llm_max_tokens": 48, "condense_mode": "concat", "conversations_db": tmp_path / "conversations.sqlite3",
        "access_dir": tmp_path / "access", "audit_log": tmp_path / "audit.log"})
    ingested = run_cli(["--directory", str(settings.storage.materials_path), "--quiet"],
                       cli_env(settings, RAG_KEYWORD_INDEX_DIR=settings.storage.keyword_index_dir))
    assert ingested.returncode == 0, ingested.stderr
    backend = BackendServer(settings, embedder)
    try:
        ready = httpx.get(f"{backend.url}/api/ready", headers=as_instructor(settings), timeout=30).json()
        assert settings.storage.milvus_uri in ready["database"] and ready["database_open"] and ready["chunks"] > 0

        answer = httpx.post(f"{backend.url}/api/chat", json={"message": "What is a hash table?"}, timeout=120).json()
        assert answer["sources"][0]["file"] == HASH_PDF and answer["answer"].strip()
        declined = httpx.post(f"{backend.url}/api/chat", json={"message": "Who won the 2018 FIFA World Cup?"},
                              timeout=120).json()
        assert declined["sources"] == [] and declined["finish_reason"] == "no_relevant_sources"

        # Another machine ingests into the same server with its own keyword index: this backend's
        # index sees the manifest change within its re-check interval and rebuilds from the server.
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        (elsewhere / "quarry-notes.md").write_text("# Quarries\n\n" + topic_text("the zeolite quarry at vardenfell", 10))
        other = run_cli(["--directory", str(elsewhere), "--quiet"],
                        cli_env(settings, RAG_KEYWORD_INDEX_DIR=tmp_path / "elsewhere-keyword-index"))
        assert other.returncode == 0, other.stderr
        added = set(_ids_of(settings, "quarry-notes.md"))
        index = backend.services.retriever.keyword_index
        deadline = time.monotonic() + index.recheck_s + 60
        while not added & {hit.chunk_id for hit in index.search("zeolite quarry vardenfell", 5).hits}:
            assert time.monotonic() < deadline, "the keyword index never saw the other machine's ingest"
            time.sleep(0.5)

        upload = httpx.post(f"{backend.url}/api/documents", headers=as_instructor(settings), timeout=60, files={
            "file": ("ossuary.md", "# Ossuaries\n\n" + topic_text("the ossuary of saint brevard", 10), "text/markdown")})
        assert upload.status_code == 202, upload.text
        _wait_for_job(backend, settings, upload.json()["id"])
        found = httpx.post(f"{backend.url}/api/chat", json={"message": "What is the ossuary of Saint Brevard?"},
                           timeout=120).json()
        assert found["sources"][0]["file"] == "uploads/ossuary.md"

        gone = httpx.delete(f"{backend.url}/api/documents/uploads/ossuary.md", headers=as_instructor(settings),
                            params={"wait": 120}, timeout=150)
        assert gone.status_code == 204, gone.text
        assert "uploads/ossuary.md" not in _rows(settings)
        after = httpx.post(f"{backend.url}/api/chat", json={"message": "What is the ossuary of Saint Brevard?"},
                           timeout=120).json()
        assert all(source["file"] != "uploads/ossuary.md" for source in after["sources"])
    finally:
        backend.stop()


def _ids_of(settings, path: str) -> list[str]:
    from pymilvus import MilvusClient

    client = MilvusClient(uri=settings.storage.milvus_uri)
    try:
        return [row["id"] for row in client.query(settings.storage.collection_name, filter=f'doc_id == "{path}"',
                                                  output_fields=["id"])]
    finally:
        client.close()


def _wait_for_job(backend, settings, job_id: str, seconds: float = 180) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = httpx.get(f"{backend.url}/api/documents/jobs/{job_id}", headers=as_instructor(settings), timeout=10).json()
        if job["state"] in ("done", "failed"):
            assert job["state"] == "done", job
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish")



def test_a_lite_database_moves_to_the_server_and_ingest_carries_on_there(on_server, settings, tmp_path):
    materials = copy_sample_course(tmp_path / "materials")
    lite_env = cli_env(settings, RAG_KEYWORD_INDEX_DIR=tmp_path / "lite-keyword-index")
    first = run_cli(["--directory", str(materials), "--json", "--quiet"], lite_env)
    assert first.returncode == 0, first.stderr
    ingested = json.loads(first.stdout)

    server_env = lite_env  # the copy keeps the collection's name ("chunks")
    on_server = on_server.model_copy(update={"collection_name": settings.storage.collection_name})
    moved = subprocess.run([sys.executable, "-m", "app.storage.migrate", "--to", on_server.storage.milvus_uri],
                           cwd=BACKEND, env=server_env, capture_output=True, text=True, timeout=300)
    assert moved.returncode == 0, moved.stderr
    assert "the counts match and a search returns the same passages on both" in moved.stdout
    copied = _rows(on_server)
    assert set(copied) == set(ingested["ingested"]) and sum(copied.values()) == ingested["chunks_written"]
    from pymilvus import MilvusClient

    client = MilvusClient(uri=on_server.storage.milvus_uri)
    try:  # the metadata (dynamic fields) came along with the columns
        row = client.query("chunks", filter=f'doc_id == "{HASH_PDF}"', output_fields=["*"], limit=1)[0]
    finally:
        client.close()
    assert row["file_name"] == "lecture-04-hash-tables.pdf" and row["page_start"] >= 1 and row["token_count"] > 0

    again = subprocess.run([sys.executable, "-m", "app.storage.migrate", "--to", on_server.storage.milvus_uri],
                           cwd=BACKEND, env=server_env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "already has a collection" in again.stderr and "Traceback" not in again.stderr

    # The manifest came along: ingesting the same folder into the server finds nothing to do.
    carried_on = run_cli(["--directory", str(materials), "--json", "--quiet"],
                         cli_env(on_server, RAG_KEYWORD_INDEX_DIR=tmp_path / "server-keyword-index"))
    assert carried_on.returncode == 0, carried_on.stderr
    summary = json.loads(carried_on.stdout)
    assert summary["unchanged"] == 5 and summary["chunks_written"] == 0

