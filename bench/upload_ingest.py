"""The upload path against the CLI: the same textbooks ingested both ways, in one run.

    python bench/upload_ingest.py [--corpus ../shared/corpus] [--threads 2]

1. `python ingest.py --directory CORPUS` into a fresh database (what a teacher runs in a shell);
2. the real backend (uvicorn, as the startup script runs it) over an empty course: every
   file uploaded through `POST /api/documents` with the instructor key, one after another,
   then each job followed until it is over (what the page does).
Both with the same embedder, threads and settings. Prints wall times, chunks and chunks/s;
the target is upload / CLI <= 1.10. The backend's own start (models loaded once, before any
upload) is shown apart: a running appliance has paid it already.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKEND = ROOT / "backend"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(work: Path, threads: int) -> dict:
    env = dict(os.environ)
    env.update({
        "RAG_MILVUS_URI": str(work / "db" / "course.db"),
        "RAG_EMBEDDING_DEVICE": "cpu",
        "RAG_TORCH_THREADS": str(threads),
        "TOKENIZERS_PARALLELISM": "false",
    })
    return env


def cli_run(corpus: Path, work: Path, threads: int) -> tuple[float, dict]:
    """The CLI over a folder of the same PDFs the upload path sends (copies: the ingest
    does not follow links out of its folder)."""
    folder = work / "pdfs"
    folder.mkdir(parents=True)
    for pdf in sorted(corpus.glob("*.pdf")):
        shutil.copyfile(pdf, folder / pdf.name)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "ingest.py", "--directory", str(folder), "--json", "--quiet"],
                          cwd=BACKEND, env=base_env(work, threads), capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        sys.exit(f"the CLI failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall, json.loads(done.stdout)


def chunks_per_file(db: Path) -> dict[str, int]:
    """Chunks per file name in a Milvus Lite file the CLI wrote."""
    from collections import Counter

    sys.path.insert(0, str(BACKEND))
    from pymilvus import MilvusClient

    from app.settings import Settings

    client = MilvusClient(str(db))
    it = client.query_iterator(Settings(_env_file=None).storage.collection_name, batch_size=2000, filter="",
                               output_fields=["doc_id"])
    counts: Counter = Counter()
    while rows := it.next():
        counts.update(Path(r["doc_id"]).name for r in rows)
    it.close()
    client.close()
    return dict(counts)


def upload_run(corpus: Path, work: Path, threads: int) -> tuple[float, float, dict[str, int], list[str]]:
    """(start-up s, upload-to-last-job-done s, chunks per file, failures)."""
    import httpx

    materials = work / "materials"
    materials.mkdir(parents=True)
    port = free_port()
    env = base_env(work, threads)
    env.update({
        "RAG_MATERIALS_DIR": str(materials), "RAG_CONVERSATIONS_DB": str(work / "db" / "conversations.sqlite3"),
        "RAG_ACCESS_DIR": str(work / "db" / "access"), "RAG_AUDIT_LOG": str(work / "db" / "audit.log"),
        "RAG_LOGS_DIR": str(work / "logs"), "RAG_LLM_BASE_URL": "http://127.0.0.1:9/v1",  # no LLM needed
        "RAG_MAX_UPLOAD_MB": "500",
    })
    log = open(work / "backend.log", "w")
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
                               "--port", str(port), "--log-level", "warning"], cwd=BACKEND, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=600) as client:
            while True:
                try:
                    if client.get("/api/health").status_code == 200 and (work / "db" / "access" / "instructor.key").exists():
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.perf_counter() - started > 300:
                    sys.exit(f"the backend did not start; see {work / 'backend.log'}")
                time.sleep(0.2)
            startup = time.perf_counter() - started
            key = (work / "db" / "access" / "instructor.key").read_text().strip()
            headers = {"Authorization": f"Bearer {key}"}
            began = time.perf_counter()
            jobs = []
            for pdf in sorted(corpus.glob("*.pdf")):
                with pdf.open("rb") as body:
                    answer = client.post("/api/documents", headers=headers,
                                         files={"file": (pdf.name, body, "application/pdf")})
                if answer.status_code not in (201, 202):
                    sys.exit(f"upload of {pdf.name} refused: {answer.status_code} {answer.text[:300]}")
                body = answer.json()
                jobs.append(body["id"] if answer.status_code == 202 else body["job"]["id"])
            failures = []
            for job_id in jobs:
                while True:
                    job = client.get(f"/api/documents/jobs/{job_id}", headers=headers).json()
                    if job["state"] in ("done", "failed"):
                        if job["state"] == "failed":
                            failures.append(f"{job.get('file')}: {job.get('message')}")
                        break
                    time.sleep(0.25)
            wall = time.perf_counter() - began
            documents = client.get("/api/documents", headers=headers).json()
            chunks = {Path(d["file"]).name: d["chunks"] for d in documents}
            return startup, wall, chunks, failures
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    corpus = args.corpus.resolve()
    pdfs = sorted(corpus.glob("*.pdf"))
    if not pdfs:
        sys.exit(f"no PDFs in {corpus}")
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        cli_wall, summary = cli_run(corpus, Path(tmp) / "cli", args.threads)
        cli_files = chunks_per_file(Path(tmp) / "cli" / "db" / "course.db")
        print(f"CLI: {cli_wall:.1f} s, {summary['chunks_in_database']} chunks", flush=True)
        startup, upload_wall, upload_files, failures = upload_run(corpus, Path(tmp) / "upload", args.threads)
    cli_chunks, upload_chunks = summary["chunks_in_database"], sum(upload_files.values())
    print(f"\n{len(pdfs)} PDFs, {summary['pages']} pages, torch threads {args.threads}\n")
    print("| path | wall s | chunks | chunks/s |")
    print("|---|---:|---:|---:|")
    print(f"| CLI: ingest.py --directory (model load included) | {cli_wall:.1f} | {cli_chunks} | {cli_chunks / cli_wall:.1f} |")
    print(f"| upload: POST /api/documents x{len(pdfs)}, jobs followed to the end | {upload_wall:.1f} | {upload_chunks} | "
          f"{upload_chunks / upload_wall:.1f} |")
    print(f"| (backend start-up before the first upload, not counted) | {startup:.1f} | | |")
    ratio = upload_wall / cli_wall
    print(f"\nupload / CLI wall time: {ratio:.3f} (target <= 1.10: {'met' if ratio <= 1.10 else 'NOT met'})")
    for name in sorted(set(cli_files) | set(upload_files)):
        if cli_files.get(name) != upload_files.get(name):
            print(f"note: {name}: {cli_files.get(name)} chunks by the CLI, {upload_files.get(name)} by upload")
    for failure in failures:
        print(f"failed: {failure}")


if __name__ == "__main__":
    main()
