"""Uploads and deletes through the real backend: never clobbered, never stuck behind an
ingest, a bad file never blocking the others (real Milvus Lite, the real embedder; no LLM
is needed, so none runs)."""

from __future__ import annotations

import json
import os
import threading
import time

import httpx
import pytest

from app.errors import DatabaseBusyError
from backend_fixtures import BackendServer, as_instructor, free_port, sample_course_settings
from conftest import topic_text
from test_hostile_files import docx_bomb


@pytest.fixture(scope="module")
def upload_settings(tmp_path_factory):
    return sample_course_settings(tmp_path_factory.mktemp("uploads"), f"http://127.0.0.1:{free_port()}/v1")


@pytest.fixture(scope="module")
def backend(upload_settings, embedder):
    server = BackendServer(upload_settings, embedder)
    yield server
    server.stop()


def post(backend, settings, name: str, content: bytes, **params) -> httpx.Response:
    return httpx.post(f"{backend.url}/api/documents", files={"file": (name, content, "text/markdown")},
                      headers=as_instructor(settings), params=params, timeout=180)


def follow(backend, settings, job: dict, within_s: float = 170) -> dict:
    deadline = time.monotonic() + within_s
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
        job = httpx.get(f"{backend.url}/api/documents/jobs/{job['id']}", headers=as_instructor(settings)).json()
    return job


def notes(topic: str) -> bytes:
    return f"# {topic.title()}\n{topic_text(topic, 3)}\n".encode()


def test_two_uploads_of_one_name_at_once_give_one_file_and_one_409(backend, upload_settings):
    for round_ in range(3):
        name = f"race {round_}.md"
        contents = [notes(f"red black trees {round_}"), notes(f"skip lists {round_}")]
        answers: list[httpx.Response | None] = [None, None]
        start = threading.Barrier(2)

        def send(i: int) -> None:
            start.wait()
            answers[i] = post(backend, upload_settings, name, contents[i], wait=120)

        threads = [threading.Thread(target=send, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(a.status_code for a in answers)
        assert codes == [201, 409], [a.text for a in answers]
        winner = next(i for i, a in enumerate(answers) if a.status_code == 201)
        stored = upload_settings.storage.materials_path / "uploads" / name
        assert stored.read_bytes() == contents[winner]  # the file is the one the 201 answered for
        loser = answers[1 - winner].json()["detail"]
        assert f"uploads/{name}" in loser


@pytest.mark.parametrize("first, second", [("a?b.md", "a_b.md"), ("Notes.md", "notes.MD")])
def test_names_that_clean_to_one_name_do_not_replace_each_other(backend, upload_settings, first, second):
    assert post(backend, upload_settings, first, notes(f"treaps {first}"), wait=120).status_code == 201
    clash = post(backend, upload_settings, second, notes(f"splay trees {second}"), wait=120)
    assert clash.status_code == 409 and "already exists" in clash.json()["detail"]
    stored = next(p for p in (upload_settings.storage.materials_path / "uploads").iterdir()
                  if p.name.lower() == clash.json()["detail"].split("'")[1].split("/")[1].lower())
    assert b"treaps" in stored.read_bytes()
    replaced = post(backend, upload_settings, second, notes(f"splay trees {second}"), wait=120, replace="true")
    assert replaced.status_code == 201, replaced.text
    assert replaced.json()["file"] == f"uploads/{stored.name}"  # one document, its stored name kept
    assert b"splay trees" in stored.read_bytes()
    listed = [d["file"] for d in httpx.get(f"{backend.url}/api/documents").json()]
    assert sum(f.lower() == f"uploads/{stored.name}".lower() for f in listed) == 1
    assert not [p for p in stored.parent.iterdir() if p.name.startswith(".")]  # no temporary left


def test_the_same_content_twice_is_a_duplicate(backend, upload_settings):
    content = notes("bloom filters")
    assert post(backend, upload_settings, "bloom.md", content, wait=120).status_code == 201
    again = post(backend, upload_settings, "bloom copy.md", content, wait=120)
    assert again.status_code == 409
    assert again.json()["detail"] == ("The same content is already ingested as 'uploads/bloom.md'; it was not "
                                      "stored again.")
    assert not (upload_settings.storage.materials_path / "uploads" / "bloom copy.md").exists()


def test_uploads_and_deletes_are_queued_at_once_behind_a_long_ingest(backend, upload_settings):
    book = ("\n\n".join(topic_text(f"chapter {n} on amortized analysis", 12) for n in range(600))).encode()
    started = time.monotonic()
    long_job = post(backend, upload_settings, "long book.md", book)
    assert long_job.status_code == 202, long_job.text
    assert long_job.headers["location"] == f"/api/documents/jobs/{long_job.json()['id']}"
    bomb_path = upload_settings.storage.materials_path.parent / "bomb.docx"
    docx_bomb(bomb_path, unzipped_mb=600)
    bomb = httpx.post(f"{backend.url}/api/documents", headers=as_instructor(upload_settings), timeout=60,
                      files={"file": ("bomb.docx", bomb_path.read_bytes(), "application/octet-stream")})
    small = post(backend, upload_settings, "cuckoo.md", notes("cuckoo hashing"))
    deleted = httpx.delete(f"{backend.url}/api/documents/data-structures-101/00-syllabus.md",
                           headers=as_instructor(upload_settings), params={"wait": 0.2})
    assert time.monotonic() - started < 15  # each answered without waiting for the book's ingest
    assert bomb.status_code == small.status_code == deleted.status_code == 202
    assert small.json()["position"] >= 1 and deleted.json()["position"] >= 2
    jobs = httpx.get(f"{backend.url}/api/documents/jobs", headers=as_instructor(upload_settings)).json()
    assert {j["file"] for j in jobs[:4]} == {"uploads/long book.md", "uploads/bomb.docx", "uploads/cuckoo.md",
                                             "data-structures-101/00-syllabus.md"}

    done = follow(backend, upload_settings, small.json())
    assert done["state"] == "done" and done["document"]["chunks"] >= 1
    failed = follow(backend, upload_settings, bomb.json())
    assert failed["state"] == "failed" and "over the 500 MB limit for Office files" in failed["message"]
    assert not (upload_settings.storage.materials_path / "uploads" / "bomb.docx").exists()  # not re-read by later runs
    assert follow(backend, upload_settings, long_job.json())["state"] == "done"
    assert follow(backend, upload_settings, deleted.json())["state"] == "done"
    listed = {d["file"] for d in httpx.get(f"{backend.url}/api/documents").json()}
    assert {"uploads/long book.md", "uploads/cuckoo.md"} <= listed
    assert "data-structures-101/00-syllabus.md" not in listed and "uploads/bomb.docx" not in listed


def test_a_fifo_in_the_materials_folder_does_not_hang_an_upload(backend, upload_settings):
    fifo = upload_settings.storage.materials_path / "pipe.md"
    os.mkfifo(fifo)
    try:
        answer = post(backend, upload_settings, "fenwick.md", notes("fenwick trees"), wait=120)
        assert answer.status_code == 201, answer.text
    finally:
        fifo.unlink()


def test_jobs_are_the_instructors_only(backend, upload_settings):
    assert httpx.get(f"{backend.url}/api/documents/jobs").status_code == 401
    assert httpx.get(f"{backend.url}/api/documents/jobs/abc").status_code == 401
    assert httpx.get(f"{backend.url}/api/documents/jobs/abc", headers=as_instructor(upload_settings)).status_code == 404


def test_one_passage_in_two_files_is_one_source(backend, upload_settings):
    """A copy that reached the folder by hand (not an upload, which is refused as a
    duplicate) must not fill the sources with one passage."""
    import shutil

    materials = upload_settings.storage.materials_path
    original = materials / "data-structures-101" / "02-stacks-and-queues.md"
    shutil.copy(original, materials / "copy of stacks.md")
    for _ in range(120):  # after the start-up check, which may still hold the ingest lock
        try:
            backend.services.documents.ingest_materials()
            break
        except DatabaseBusyError:
            time.sleep(0.5)
    found = backend.services.retriever.search("What is a stack and what is it used for?")
    texts = [" ".join(s.text.split()) for s in found.sources]
    assert found.sources and len(texts) == len(set(texts))


def test_a_file_that_failed_is_listed_with_its_reason(backend, upload_settings):
    (upload_settings.storage.materials_path / "empty notes.md").write_bytes(b"")  # copied in by hand
    check = post(backend, upload_settings, "kd trees.md", notes("kd trees"), wait=120)  # runs the folder's ingest
    assert check.status_code == 201, check.text
    failed = httpx.get(f"{backend.url}/api/documents/failed", headers=as_instructor(upload_settings)).json()
    assert {"file": "empty notes.md", "reason": "empty file (0 bytes)"} in [
        {k: f[k] for k in ("file", "reason")} for f in failed]
    assert httpx.get(f"{backend.url}/api/documents/failed").status_code == 401  # the instructor's only



def test_an_uploaded_scan_is_read_with_ocr_and_the_job_says_so(backend, upload_settings, tmp_path):
    from conftest import make_scanned_pdf

    scan = make_scanned_pdf(tmp_path / "handout.pdf", [
        "The ossuary of Saint Brevard keeps the bones of nine hundred monks from the valley. " * 3])
    answer = httpx.post(f"{backend.url}/api/documents", files={"file": ("handout.pdf", scan.read_bytes(),
                                                                        "application/pdf")},
                        headers=as_instructor(upload_settings), timeout=60)
    assert answer.status_code == 202
    job = answer.json()
    # The stream may open after a one-page job is over, so the job's OCR count is what is checked
    # here (the running message is tested with the job's progress alone, tests/unit/documents).
    last = None
    with httpx.stream("GET", f"{backend.url}/api/documents/jobs/{job['id']}/events",
                      headers=as_instructor(upload_settings), timeout=170) as events:
        for line in events.iter_lines():
            if line.startswith("data: "):
                last = json.loads(line[len("data: "):])
    assert last is not None and last["state"] == "done" and last["progress"]["ocr_pages"] == 1, last
    job = follow(backend, upload_settings, job)
    assert job["state"] == "done" and job["progress"]["ocr_pages"] == 1, job
    listed = httpx.get(f"{backend.url}/api/documents", headers=as_instructor(upload_settings)).json()
    document = next(d for d in listed if d["file"] == "uploads/handout.pdf")
    assert document["warnings"] == ["1 scanned page read with OCR (p. 1)"]
