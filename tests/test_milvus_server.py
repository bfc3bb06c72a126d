"""The appliance on a real Milvus server, by URI alone: the `milvus` package runs Milvus
standalone 2.3.5 in a child process (its own data folder and port), and the ingest CLI and
the backend are pointed at it with RAG_MILVUS_URI=http://127.0.0.1:PORT, as a department
that outgrows the pod's Milvus Lite file would."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from backend_fixtures import BackendServer, as_instructor, copy_sample_course, free_port
from conftest import BACKEND, cli_env, run_cli, topic_text
from postgres_server import postgres, postgres_url  # noqa: F401 (fixtures)

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


def _wait_for_job(backend, settings, job_id: str, seconds: float = 180, headers: dict | None = None) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = httpx.get(f"{backend.url}/api/documents/jobs/{job_id}", headers=headers or as_instructor(settings),
                        timeout=10).json()
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



class BackendProcess:
    """`uvicorn app.main:app` in a process of its own, configured by RAG_* variables alone, as
    a second machine behind the same address would run it."""

    def __init__(self, env: dict, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=BACKEND, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)

    def wait_ready(self, seconds: float = 240) -> dict:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                ready = httpx.get(f"{self.url}/api/ready", timeout=5)
                if ready.status_code == 200:
                    return ready.json()
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"backend not ready: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _asked(url: str, client: httpx.Client, message: str, **extra) -> dict:
    response = client.post(f"{url}/api/chat", json={"message": message, **extra}, timeout=180)
    assert response.status_code == 200, response.text
    return response.json()


def _first_file(url: str, client: httpx.Client, message: str) -> str | None:
    sources = _asked(url, client, message)["sources"]
    return sources[0]["file"] if sources else None


class _TcpProxy:
    """Forwards a port to another: a server that "comes up" at an address a backend already
    tries, or a connection to the server that is lost (`close` drops every open one) and
    comes back (a new proxy on the same port)."""

    def __init__(self, listen_port: int, target_port: int):
        import socket
        import threading

        self._socket = socket.create_server(("127.0.0.1", listen_port))
        self._target = target_port
        self._open = True
        self._sockets: list = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while self._open:
            try:
                client, _ = self._socket.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._target))
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source, sink) -> None:
        try:
            while block := source.recv(65536):
                sink.sendall(block)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.close()
                except OSError:
                    pass

    def close(self) -> None:
        import socket

        self._open = False
        try:  # wakes the thread blocked in accept(), which a close alone would not
            self._socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._socket.close()
        for end in self._sockets:
            try:
                end.shutdown(socket.SHUT_RDWR)
                end.close()
            except OSError:
                pass


def test_two_backends_serve_one_course(on_server, tmp_path, llm, postgres_url):  # noqa: F811
    """Two backend processes, one Milvus server and one PostgreSQL: a conversation started on
    one continues on the other, an upload through one is answered from through the other, a
    delete through one is gone from both. They share the materials folder and the keys
    (RUNPOD_GUIDE: "Outgrowing one pod"); each keeps its own keyword index, as on two machines."""
    materials = copy_sample_course(tmp_path / "materials")
    shared = cli_env(on_server, RAG_CONVERSATIONS_URL=postgres_url, RAG_MATERIALS_DIR=materials,
                     RAG_ACCESS_DIR=tmp_path / "access", RAG_LLM_BASE_URL=llm.url, RAG_LLM_MAX_TOKENS=48,
                     RAG_CONDENSE_MODE="concat", RAG_TORCH_THREADS=1)
    ingested = run_cli(["--directory", str(materials), "--quiet"],
                       {**shared, "RAG_KEYWORD_INDEX_DIR": str(tmp_path / "cli-keyword-index")})
    assert ingested.returncode == 0, ingested.stderr
    backends = [BackendProcess({**shared, "RAG_KEYWORD_INDEX_DIR": str(tmp_path / f"keyword-index-{name}"),
                                "RAG_AUDIT_LOG": str(tmp_path / f"audit-{name}.log")}, tmp_path / f"backend-{name}.log")
                for name in ("a", "b")]
    try:
        for backend in backends:
            backend.wait_ready()
        a, b = (backend.url for backend in backends)
        instructor = as_instructor(on_server.model_copy(update={"access_dir": tmp_path / "access"}))
        student, stranger = httpx.Client(), httpx.Client()  # cookies: one student id on both backends
        for client in (student, stranger):  # the page's first load gives each browser its student id
            assert "rag_student" in client.get(f"{a}/api/health", timeout=10).cookies

        first = _asked(a, student, "What is a hash table?")
        assert first["sources"][0]["file"] == HASH_PDF
        follow_up = _asked(b, student, "How are collisions handled in it?", conversation_id=first["conversation_id"])
        assert "hash table" in follow_up["retrieval_query"].lower()  # the first question, read from PostgreSQL
        assert follow_up["sources"][0]["file"] == HASH_PDF
        history = student.get(f"{a}/api/conversations/{first['conversation_id']}", timeout=30).json()
        assert [m["role"] for m in history["messages"]] == ["user", "assistant"] * 2
        assert stranger.get(f"{b}/api/conversations/{first['conversation_id']}", timeout=30).status_code == 404

        upload = httpx.post(f"{a}/api/documents", headers=instructor, timeout=60, files={
            "file": ("ossuary.md", "# Ossuaries\n\n" + topic_text("the ossuary of saint brevard", 10), "text/markdown")})
        assert upload.status_code == 202, upload.text
        _wait_for_job(backends[0], on_server, upload.json()["id"], headers=instructor)
        deadline = time.monotonic() + 60  # the other backend's keyword index re-checks every 5 s
        while _first_file(b, stranger, "What is the ossuary of Saint Brevard?") != "uploads/ossuary.md":
            assert time.monotonic() < deadline, "the second backend never answered from the upload"
            time.sleep(1)

        gone = httpx.delete(f"{b}/api/documents/uploads/ossuary.md", headers=instructor, params={"wait": 120},
                            timeout=150)
        assert gone.status_code == 204, gone.text
        assert "uploads/ossuary.md" not in _rows(on_server)
        deadline = time.monotonic() + 60
        for url in (b, a):
            while any(s["file"] == "uploads/ossuary.md"
                      for s in _asked(url, stranger, "What is the ossuary of Saint Brevard?")["sources"]):
                assert time.monotonic() < deadline, f"{url} still answers from the deleted upload"
                time.sleep(1)
        for url in (a, b):
            listed = httpx.get(f"{url}/api/documents", headers=instructor, timeout=30).json()
            assert HASH_PDF in {d["file"] for d in listed} and "uploads/ossuary.md" not in {d["file"] for d in listed}
    finally:
        for backend in backends:
            backend.stop()


def test_a_backend_waits_for_its_milvus_server_and_says_so(on_server, tmp_path, llm, milvus_server):
    """Started while its Milvus server does not answer: the backend serves 503s that name the
    server, /api/ready says why, and it is whole once the server answers, with no restart."""
    port = free_port()
    env = cli_env(on_server, RAG_MILVUS_URI=f"http://127.0.0.1:{port}", RAG_MILVUS_RETRY_S=1,
                  RAG_MILVUS_CONNECT_TIMEOUT_S=2, RAG_LLM_BASE_URL=llm.url, RAG_ACCESS_DIR=tmp_path / "access",
                  RAG_CONVERSATIONS_DB=tmp_path / "conversations.sqlite3",
                  RAG_KEYWORD_INDEX_DIR=tmp_path / "keyword-index", RAG_AUDIT_LOG=tmp_path / "audit.log")
    backend = BackendProcess(env, tmp_path / "backend.log")
    proxy = None
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                ready = httpx.get(f"{backend.url}/api/ready", timeout=5)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and backend.process.poll() is None, backend.log.read_text()[-3000:]
                time.sleep(0.5)
        assert ready.status_code == 503 and ready.json()["problems"] == ["database: not reachable"]
        instructor = as_instructor(on_server.model_copy(update={"access_dir": tmp_path / "access"}))
        told = httpx.get(f"{backend.url}/api/ready", headers=instructor, timeout=5).json()
        assert f"Cannot reach Milvus at http://127.0.0.1:{port}" in told["problems"][0]
        chat = httpx.post(f"{backend.url}/api/chat", json={"message": "What is a hash table?"}, timeout=30)
        assert chat.status_code == 503 and f"http://127.0.0.1:{port}" in chat.json()["detail"]
        assert "Traceback" not in chat.text

        proxy = _TcpProxy(port, int(milvus_server.rsplit(":", 1)[1]))  # the server comes up at that address
        assert backend.wait_ready(120)["database_open"]
        assert httpx.post(f"{backend.url}/api/chat", json={"message": "What is a hash table?"},
                          timeout=180).status_code == 200
    finally:
        backend.stop()
        if proxy:
            proxy.close()


def _stored(client, collection: str) -> int:
    """Chunks in the collection so far (0 before the run has created and loaded it)."""
    from pymilvus.exceptions import MilvusException

    try:
        if not client.has_collection(collection):
            return 0
        return client.query(collection, filter="", output_fields=["count(*)"],
                            consistency_level="Eventually")[0]["count(*)"]
    except MilvusException:  # created, not loaded yet
        return 0


def test_a_server_lost_mid_ingest_stops_the_run_with_one_line_and_the_next_run_completes(milvus_server, tmp_path):
    """The connection to the Milvus server is lost while the CLI is storing chunks (every
    connection through the address it uses is cut, and nothing answers there): exit 2 with a
    line that says what happened and what to do, no traceback; once the server answers
    there again, the same command completes the ingest, and the collection is the one an
    uninterrupted run makes. (The module's server keeps running: two Milvus standalone
    servers of this package cannot run at once, their embedded etcd ports are fixed.)"""
    from pymilvus import MilvusClient

    from app.settings import Settings

    port = free_port()
    server_port = int(milvus_server.rsplit(":", 1)[1])
    proxy = _TcpProxy(port, server_port)
    uri = f"http://127.0.0.1:{port}"
    settings = Settings(_env_file=None, milvus_uri=uri, collection_name="interrupted",
                        keyword_index_dir=tmp_path / "keyword_index", embedding_device="cpu", torch_threads=2)
    materials = copy_sample_course(tmp_path / "materials")
    for n in range(40):  # enough files that the run is still storing when the connection goes
        (materials / f"notes-{n:02d}.md").write_text(f"# Notes {n}\n\n" + topic_text(f"subject number {n}", 60))
    env = cli_env(settings, RAG_KEYWORD_INDEX_DIR=settings.storage.keyword_index_dir, RAG_MILVUS_CONNECT_TIMEOUT_S=5,
                  RAG_INSERT_BATCH_SIZE=5)
    run = subprocess.Popen([sys.executable, "ingest.py", "--directory", str(materials), "--quiet"], cwd=BACKEND,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        watcher = MilvusClient(uri=milvus_server)
        deadline = time.monotonic() + 180
        while _stored(watcher, "interrupted") == 0:
            assert run.poll() is None and time.monotonic() < deadline, "the run ended before it stored a chunk"
            time.sleep(0.05)
        watcher.close()
        proxy.close()  # mid-run: some chunks stored, the run not finished
        _, err = run.communicate(timeout=300)
        assert run.returncode == 2, err
        assert f"error: Lost the connection to Milvus at {uri}" in err and "run the same ingest again" in err
        assert "Traceback" not in err

        proxy = _TcpProxy(port, server_port)  # the server answers there again
        again = run_cli(["--directory", str(materials), "--json", "--quiet"], env)
        assert again.returncode == 0, again.stderr
        finished = json.loads(again.stdout)
        assert finished["failed"] == {} and len(finished["ingested"]) + len(finished["updated"]) + finished["unchanged"] == 45
        clean = run_cli(["--directory", str(materials), "--json", "--quiet"],
                        {**env, "RAG_COLLECTION_NAME": "uninterrupted",
                         "RAG_KEYWORD_INDEX_DIR": str(tmp_path / "keyword_index_clean")})
        assert clean.returncode == 0, clean.stderr
        on_server = settings.model_copy(update={"milvus_uri": milvus_server})
        interrupted = _rows(on_server)
        assert interrupted == _rows(on_server.model_copy(update={"collection_name": "uninterrupted"}))
        assert sum(interrupted.values()) == json.loads(clean.stdout)["chunks_written"]
    finally:
        if run.poll() is None:
            run.kill()
        proxy.close()
