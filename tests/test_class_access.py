"""Sharing the appliance with a class, end to end: the real backend under uvicorn, a real
llama.cpp server (SmolLM2), real Milvus Lite and the real embedder. Each student is an
httpx client with its own cookie jar, as a browser would be."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from backend_fixtures import BackendServer, instructor_key, sample_course_settings
from conftest import BACKEND, IngestHarness

HASH_PDF = "data-structures-101/lecture-04-hash-tables.pdf"


@pytest.fixture(scope="module")
def class_settings(tmp_path_factory, llm, embedder):
    settings = sample_course_settings(tmp_path_factory.mktemp("class"), llm.url, llm_max_tokens=24)
    harness = IngestHarness(settings, embedder)
    harness.run(settings.storage.materials_path)
    harness.close()
    return settings


@pytest.fixture(scope="module")
def backend(class_settings, embedder):
    server = BackendServer(class_settings, embedder)
    yield server
    server.stop()


def browser(backend) -> httpx.Client:
    """A client that keeps cookies, and has loaded the page once (which gives it its
    student cookie), like a student's browser."""
    client = httpx.Client(base_url=backend.url, timeout=120)
    assert client.get("/").status_code == 200
    assert "rag_student" in client.cookies
    return client


def instructor(backend, settings) -> httpx.Client:
    client = browser(backend)
    assert client.post("/api/access/instructor", json={"key": instructor_key(settings)}).status_code == 204
    return client


def folder_state(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))}


def test_anonymous_clients_cannot_change_the_materials_and_the_instructor_can(backend, class_settings):
    notes = {"file": ("tries.md", b"# Tries\nA trie stores strings by their prefixes.\n", "text/markdown")}
    before = folder_state(class_settings.storage.materials_path)
    anonymous = httpx.post(f"{backend.url}/api/documents", files=notes)
    assert anonymous.status_code == 401 and "instructor" in anonymous.json()["detail"]
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert httpx.delete(f"{backend.url}/api/documents/{HASH_PDF}").status_code == 401
    student = browser(backend)
    assert student.post("/api/documents", files=notes).status_code == 401
    assert student.delete(f"/api/documents/{HASH_PDF}").status_code == 401
    wrong = httpx.delete(f"{backend.url}/api/documents/{HASH_PDF}", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json() == {"detail": "That key or access code is not valid."}
    assert folder_state(class_settings.storage.materials_path) == before
    assert HASH_PDF in {d["file"] for d in student.get("/api/documents").json()}  # students may read the list
    assert student.get(f"/api/documents/file/{HASH_PDF}").status_code == 200  # and open cited files

    # The instructor: by header (curl) ...
    key = {"Authorization": f"Bearer {instructor_key(class_settings)}"}
    uploaded = httpx.post(f"{backend.url}/api/documents", files=notes, headers=key, timeout=120,
                          params={"wait": 110})
    assert uploaded.status_code == 201, uploaded.text
    assert httpx.delete(f"{backend.url}/api/documents/uploads/tries.md", headers=key).status_code == 204
    # ... or by the page's unlocked cookie, which is HttpOnly and SameSite
    teacher = browser(backend)
    unlocked = teacher.post("/api/access/instructor", json={"key": instructor_key(class_settings)})
    assert unlocked.status_code == 204
    cookie = unlocked.headers["set-cookie"]
    assert "rag_instructor=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http here; over Runpod's HTTPS proxy it is Secure
    assert teacher.get("/api/access").json()["role"] == "instructor"
    assert teacher.post("/api/documents", files=notes, params={"wait": 110}).status_code == 201
    assert teacher.delete("/api/documents/uploads/tries.md").status_code == 204
    teacher.delete("/api/access/instructor")
    assert teacher.post("/api/documents", files=notes).status_code == 401  # locked again

    actions = [(e["action"], e["target"]) for e in httpx.get(f"{backend.url}/api/access/audit", headers=key).json()]
    assert ("upload", "main:uploads/tries.md") in actions and ("delete document", "main:uploads/tries.md") in actions
    assert ("unlock instructor mode", "") in actions and ("key rejected", "") in actions
    assert httpx.get(f"{backend.url}/api/access/audit").status_code == 401
    https = httpx.post(f"{backend.url}/api/access/instructor", json={"key": instructor_key(class_settings)},
                       headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in https.headers["set-cookie"]


def test_students_see_and_manage_only_their_own_conversations(backend, class_settings):
    alice, bob = browser(backend), browser(backend)
    asked = alice.post("/api/chat", json={"message": "What is a hash table?"})
    assert asked.status_code == 200, asked.text
    cid = asked.json()["conversation_id"]
    listed = alice.get("/api/conversations")
    assert [c["id"] for c in listed.json()] == [cid] and listed.json()[0]["mine"] is True
    assert listed.headers["x-total-count"] == "1"

    assert bob.get("/api/conversations").json() == []
    assert bob.get(f"/api/conversations/{cid}").status_code == 404
    assert bob.patch(f"/api/conversations/{cid}", json={"title": "mine now"}).status_code == 404
    assert bob.delete(f"/api/conversations/{cid}").status_code == 404
    hijack = bob.post("/api/chat", json={"message": "And how big is it?", "conversation_id": cid})
    assert hijack.status_code == 404
    assert bob.post("/api/chat/stream", json={"message": "more?", "conversation_id": cid}).status_code == 404
    assert bob.get("/api/conversations?all=true").status_code == 403
    assert len(alice.get(f"/api/conversations/{cid}").json()["messages"]) == 2  # untouched

    teacher = instructor(backend, class_settings)
    everyone = teacher.get("/api/conversations?all=true").json()
    seen = next(c for c in everyone if c["id"] == cid)
    assert seen["student"] and seen["mine"] is False  # a pseudonym, never the cookie
    assert teacher.get(f"/api/conversations/{cid}").status_code == 200
    assert teacher.get("/api/conversations").json() == []  # the default view is one's own

    # A client without cookies (curl): its conversation is reachable by its id, and listed to nobody but
    # the instructor.
    api = httpx.post(f"{backend.url}/api/chat", json={"message": "What is a hash table?"}, timeout=120).json()
    assert httpx.get(f"{backend.url}/api/conversations/{api['conversation_id']}").status_code == 200
    assert httpx.get(f"{backend.url}/api/conversations").json() == []
    assert bob.get(f"/api/conversations/{api['conversation_id']}").status_code == 200
    assert alice.delete(f"/api/conversations/{cid}").status_code == 204
    actions = [e["action"] for e in teacher.get("/api/access/audit").json()]
    assert "list all conversations" in actions and "read conversation" in actions


def test_the_student_who_asked_rates_an_answer_and_changes_the_vote(backend, class_settings):
    alice, bob = browser(backend), browser(backend)
    asked = alice.post("/api/chat", json={"message": "What is a hash table?"}).json()
    cid, answer = asked["conversation_id"], asked["message_id"]
    rating = f"/api/conversations/{cid}/messages/{answer}/feedback"

    def stored_feedback(client):
        return [m.get("feedback", "absent") for m in client.get(f"/api/conversations/{cid}").json()["messages"]]

    assert stored_feedback(alice) == ["absent", None]  # only answers are rated; none yet
    assert alice.put(rating, json={"vote": "up"}).json() == {"message_id": answer, "vote": "up", "comment": ""}
    changed = alice.put(rating, json={"vote": "down", "comment": "  It never says how big the table is. "})
    assert changed.status_code == 200 and changed.json()["comment"] == "It never says how big the table is."
    assert stored_feedback(alice) == ["absent", {"vote": "down", "comment": "It never says how big the table is."}]
    with sqlite3.connect(class_settings.storage.conversations_path) as db:  # one vote per answer and student
        assert db.execute("SELECT vote FROM feedback WHERE message_id = ?", (answer,)).fetchall() == [(-1,)]

    assert alice.put(rating, json={"vote": "sideways"}).status_code == 422
    assert alice.put(rating, json={"vote": "up", "comment": "x" * 1001}).status_code == 422
    question = answer - 1  # the question before it is no answer to rate
    assert alice.put(f"/api/conversations/{cid}/messages/{question}/feedback", json={"vote": "up"}).status_code == 404
    assert bob.put(rating, json={"vote": "up"}).status_code == 404  # someone else's conversation
    teacher = instructor(backend, class_settings)
    assert teacher.put(rating, json={"vote": "up"}).status_code == 403  # reads it, does not rate it
    assert "feedback" not in teacher.get(f"/api/conversations/{cid}").json()["messages"][1]

    assert alice.delete(rating).status_code == 204
    assert stored_feedback(alice) == ["absent", None]
    assert alice.put(rating, json={"vote": "up"}).status_code == 200
    regenerated = alice.post("/api/chat", json={"message": "What is a hash table?", "conversation_id": cid,
                                                "regenerate": True}).json()
    assert regenerated["message_id"] != answer and alice.put(rating, json={"vote": "up"}).status_code == 404
    with sqlite3.connect(class_settings.storage.conversations_path) as db:  # the replaced answer's vote went with it
        assert db.execute("SELECT COUNT(*) FROM feedback WHERE message_id = ?", (answer,)).fetchone() == (0,)


def test_the_insight_report_shows_what_the_materials_do_not_answer(backend, class_settings):
    import csv
    import io

    teacher = instructor(backend, class_settings)
    before = teacher.get("/api/insight").json()
    alice, bob = browser(backend), browser(backend)
    declined = ["What were the main causes of the French Revolution?", "Why did the French Revolution happen?",
                "What is the capital city of Australia?"]
    for who, question in zip((alice, bob, alice), declined):
        assert who.post("/api/chat", json={"message": question}).json()["finish_reason"] == "no_relevant_sources"
    answered = alice.post("/api/chat", json={"message": "How do hash tables handle collisions?"}).json()
    assert answered["finish_reason"] != "no_relevant_sources" and answered["sources"]
    rating = f"/api/conversations/{answered['conversation_id']}/messages/{answered['message_id']}/feedback"
    assert alice.put(rating, json={"vote": "down", "comment": "No example of chaining."}).status_code == 200
    assert bob.post("/api/chat", json={"message": "Thanks!"}).json()["finish_reason"] == "small_talk"

    response = teacher.get("/api/insight")
    after = response.json()
    assert after["questions"] - before["questions"] == 4  # small talk is no question
    assert after["declined"] - before["declined"] == 3 and after["votes_down"] - before["votes_down"] == 1
    assert 0 < after["declined_share"] <= 1 and sum(d["questions"] for d in after["per_day"]) == after["questions"]
    french = [g for g in after["not_covered"] if "French Revolution" in g["label"]]
    assert len(french) == 1 and french[0]["count"] >= 2 and set(declined[:2]) <= set(french[0]["questions"])
    assert not any("Australia" in q for q in french[0]["questions"])  # another subject, another group
    assert any(g["label"] == declined[2] for g in after["not_covered"])
    unhelpful = [u for u in after["unhelpful"] if u["question"] == "How do hash tables handle collisions?"]
    assert unhelpful[0]["comments"] == ["No example of chaining."] and unhelpful[0]["answer"] == answered["answer"]
    assert any(s.startswith(HASH_PDF) for s in unhelpful[0]["sources"])
    assert any(p["file"] == HASH_PDF for p in after["pages"]) and any(d["file"] == HASH_PDF for d in after["documents"])
    for who in (alice, bob):  # questions, never who asked them
        assert who.cookies["rag_student"] not in response.text and who.cookies["rag_student"][:8] not in response.text

    exported = teacher.get("/api/insight/export.csv", params={"table": "not_covered"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == ["questions", "group", "every question"]
    assert any(row[1] == french[0]["label"] and int(row[0]) == french[0]["count"] for row in rows[1:])
    for table in ("unhelpful", "pages", "documents", "days"):
        rows = list(csv.reader(io.StringIO(teacher.get("/api/insight/export.csv", params={"table": table}).text)))
        assert len(rows) >= 2 and all(len(row) == len(rows[0]) for row in rows), table
    assert teacher.get("/api/insight/export.csv", params={"table": "owners"}).status_code == 422
    assert teacher.get("/api/insight", params={"since": "2026-02-01", "until": "2026-01-01"}).status_code == 422
    assert teacher.get("/api/insight", params={"since": "2001-01-01", "until": "2001-01-31"}).json()["questions"] == 0
    assert alice.get("/api/insight").status_code == 401 and httpx.get(f"{backend.url}/api/insight").status_code == 401

    backend.services.settings.appliance.insight = False  # RAG_INSIGHT=false: nothing collected, no report
    try:
        assert teacher.get("/api/insight").status_code == 404
        assert alice.put(rating, json={"vote": "up"}).status_code == 404
        assert alice.get("/api/access").json()["insight"] is False
        assert "feedback" not in alice.get(f"/api/conversations/{answered['conversation_id']}").json()["messages"][1]
    finally:
        backend.services.settings.appliance.insight = True


def test_an_uploads_progress_streams_while_chat_keeps_answering(backend, class_settings, tmp_path):
    """GET /api/documents/jobs/{id}/events: the ingest's own progress as it happens (pages,
    chunks, seconds left, a file that failed and why), ending with the job done; a question
    asked meanwhile is answered at once."""
    import json

    from backend_fixtures import as_instructor
    from conftest import make_pdf, topic_text

    book = make_pdf(tmp_path / "splay trees.pdf", [topic_text(f"splay tree rotation {n}", 14) for n in range(90)])
    (class_settings.storage.materials_path / "torn.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(4000))  # copied in by hand
    queued = httpx.post(f"{backend.url}/api/documents", headers=as_instructor(class_settings), timeout=60,
                        files={"file": ("splay trees.pdf", book.read_bytes(), "application/pdf")})
    assert queued.status_code == 202, queued.text
    events, asked = [], {}

    def ask_meanwhile():
        started = time.monotonic()
        reply = httpx.post(f"{backend.url}/api/chat", json={"message": "What caused the French Revolution?"},
                           timeout=60)
        asked.update(status=reply.status_code, seconds=time.monotonic() - started,
                     reason=reply.json().get("finish_reason"))

    url = f"{backend.url}/api/documents/jobs/{queued.json()['id']}/events"
    with httpx.stream("GET", url, headers=as_instructor(class_settings), timeout=180) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
                running = events[-1]["state"] == "running" and events[-1]["progress"].get("pages_done")
                if running and not asked and not any(t.name == "ask" for t in threading.enumerate()):
                    threading.Thread(target=ask_meanwhile, name="ask").start()
    for thread in threading.enumerate():
        if thread.name == "ask":
            thread.join(60)

    final = events[-1]
    assert final["state"] == "done" and final["document"]["pages"] == 90, final
    pages = [e["progress"].get("pages_done", 0) for e in events]
    assert pages == sorted(pages) and len({p for p in pages if 0 < p < final["progress"]["pages_total"]}) >= 1
    assert final["progress"]["chunks_done"] >= 200  # several encode batches: several steps
    assert any(e["progress"].get("eta_s") is not None for e in events)  # seconds left, once the pace is known
    assert [f["file"] for f in final["progress"]["failed"]] == ["torn.pdf"] and final["progress"]["failed"][0]["reason"]
    assert asked == {"status": 200, "seconds": asked["seconds"], "reason": "no_relevant_sources"}, asked
    assert asked["seconds"] < 10  # the ingest runs beside the chat, not in front of it
    assert httpx.get(url).status_code == 401  # the instructor's only
    again = httpx.get(url, headers=as_instructor(class_settings), timeout=30)  # over: one event, then the end
    assert again.text.count("event: job") == 1 and '"state": "done"' in again.text
    (class_settings.storage.materials_path / "torn.pdf").unlink()


def test_the_conversation_list_is_paginated(backend, class_settings):
    from app.conversations.store import Message

    student = browser(backend)
    owner = backend.services.conversations  # store turns directly: the limit is on the list, not on chat
    sid = student.cookies["rag_student"].rpartition(".")[0]
    import asyncio

    for n in range(7):
        asyncio.run(owner.add_turn(f"page-{n}-{sid[:6]}", Message("user", f"q{n}", 1),
                                   Message("assistant", "a", 1), owner=sid))
        time.sleep(0.01)
    first = student.get("/api/conversations?limit=3")
    assert first.headers["x-total-count"] == "7" and len(first.json()) == 3
    rest = student.get("/api/conversations?limit=3&offset=6").json()
    assert len(rest) == 1 and rest[0]["title"] == "q0"  # newest first
    assert student.get("/api/conversations?limit=0").status_code == 422
    assert student.get("/api/conversations?limit=100000").status_code == 422


def test_the_key_survives_a_restart_and_rotates(backend, class_settings, embedder):
    key = instructor_key(class_settings)
    teacher = instructor(backend, class_settings)
    backend_again = BackendServer(class_settings, embedder)
    try:
        assert instructor_key(class_settings) == key  # kept with the data, not made anew
        again = httpx.Client(base_url=backend_again.url, cookies=teacher.cookies)
        assert again.get("/api/access").json()["role"] == "instructor"  # cookies outlive a restart
    finally:
        backend_again.stop()
    env = dict(os.environ, RAG_ACCESS_DIR=str(class_settings.access.access_path))
    shown = subprocess.run([sys.executable, "-m", "app.appliance", "admin-key"], cwd=BACKEND, env=env,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and f"instructor key: {key}" in shown.stdout
    rotated = subprocess.run([sys.executable, "-m", "app.appliance", "admin-key", "--rotate"], cwd=BACKEND,
                             env=env, capture_output=True, text=True, timeout=60)
    assert rotated.returncode == 0 and "replaced" in rotated.stderr
    new_key = instructor_key(class_settings)
    assert new_key != key and f"instructor key: {new_key}" in rotated.stdout
    assert teacher.get("/api/access").json()["role"] == "student"  # the old unlock is void
    assert httpx.get(f"{backend.url}/api/access/audit", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert httpx.get(f"{backend.url}/api/access/audit",
                     headers={"Authorization": f"Bearer {new_key}"}).status_code == 200


def test_cross_site_writes_are_refused_and_no_cors_is_granted(backend, class_settings):
    teacher = instructor(backend, class_settings)
    evil = {"Origin": "https://evil.example"}
    # a form on another site, posting with the instructor's cookies
    forged = teacher.post("/api/documents", headers=evil,
                          files={"file": ("x.md", b"# X\nforged\n", "text/markdown")})
    assert forged.status_code == 403 and "evil.example" in forged.json()["detail"]
    assert teacher.delete(f"/api/documents/{HASH_PDF}", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert teacher.post("/api/chat", headers=evil, json={"message": "hi"}).status_code == 403
    assert HASH_PDF in {d["file"] for d in teacher.get("/api/documents").json()}
    read = teacher.get("/api/documents", headers=evil)
    assert "access-control-allow-origin" not in read.headers
    preflight = httpx.options(f"{backend.url}/api/chat", headers={**evil, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers
    same = teacher.post("/api/chat", headers={"Origin": backend.url}, json={"message": "Hi!"})
    assert same.status_code == 200


def test_an_allow_listed_site_gets_cors(class_settings, embedder):
    server = BackendServer(class_settings.model_copy(update={"cors_origins": ["https://lms.example.edu"]}), embedder)
    try:
        lms = {"Origin": "https://lms.example.edu"}
        response = httpx.get(f"{server.url}/api/documents", headers=lms)
        assert response.headers["access-control-allow-origin"] == "https://lms.example.edu"
        assert "access-control-allow-origin" not in httpx.get(
            f"{server.url}/api/documents", headers={"Origin": "https://evil.example"}).headers
        assert httpx.post(f"{server.url}/api/chat", headers=lms, json={"message": "Hi!"}, timeout=120).status_code == 200
    finally:
        server.stop()


def test_an_oversized_upload_is_refused_before_anything_is_stored(class_settings, embedder):
    server = BackendServer(class_settings.model_copy(update={"max_upload_mb": 1}), embedder)
    key = {"Authorization": f"Bearer {instructor_key(class_settings)}"}
    materials = class_settings.storage.materials_path
    before = folder_state(materials)
    big = b"# Big\n" + b"lorem ipsum dolor " * 120_000  # about 2 MB
    try:
        declared = httpx.post(f"{server.url}/api/documents", headers=key, timeout=60,
                              files={"file": ("big.md", big, "text/markdown")})
        assert declared.status_code == 413 and "1 MB" in declared.json()["detail"]

        def chunked():  # no Content-Length: counted while it streams
            boundary = b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big2.md\"\r\n" \
                       b"Content-Type: text/markdown\r\n\r\n"
            yield boundary
            for start in range(0, len(big), 64 * 1024):
                yield big[start:start + 64 * 1024]
            yield b"\r\n--xyz--\r\n"

        streamed = httpx.post(f"{server.url}/api/documents", timeout=60, content=chunked(),
                              headers={**key, "Content-Type": "multipart/form-data; boundary=xyz"})
        assert streamed.status_code == 413, streamed.text
        anonymous = httpx.post(f"{server.url}/api/documents", timeout=60,
                               files={"file": ("big3.md", big[:500_000], "text/markdown")})
        assert anonymous.status_code == 401
        assert folder_state(materials) == before
    finally:
        server.stop()


def test_a_burst_of_questions_gets_429_with_a_time_to_retry(class_settings, embedder):
    settings = class_settings.model_copy(update={"questions_per_minute": 2, "max_concurrent_answers": 1,
                                                 "max_waiting_answers": 0, "new_conversations_per_minute": 5,
                                                 "llm_max_tokens": 400})  # an answer long enough to overlap
    server = BackendServer(settings, embedder)
    try:
        student = browser(server)
        for _ in range(2):
            assert student.post("/api/chat", json={"message": "Hi!"}).status_code == 200
        refused = student.post("/api/chat", json={"message": "Hi again!"})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert "questions in the last minute" in refused.json()["detail"]
        teacher = instructor(server, settings)
        assert teacher.post("/api/chat", json={"message": "Hi!"}).status_code == 200  # not limited

        # One answer slot, no waiting place: while one answer streams, another question is refused at once.
        other = browser(server)
        essay = ("Write a long, detailed essay about hash tables: chaining, open addressing, load factor "
                 "and resizing, in many paragraphs.")
        with httpx.stream("POST", f"{server.url}/api/chat/stream", timeout=120,
                          json={"message": essay}) as streaming:
            lines = streaming.iter_lines()  # kept: a dropped iterator closes the stream
            assert next(lines) == "event: sources"  # the answer has started
            busy = other.post("/api/chat", json={"message": "What is a hash table?"})
            assert busy.status_code == 429 and "try again" in busy.json()["detail"]
            assert int(busy.headers["retry-after"]) >= 1
        deadline = time.monotonic() + 30
        while other.post("/api/chat", json={"message": "Hi!"}).status_code == 429:  # the slot comes back
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        server.stop()


def test_wrong_keys_from_one_address_are_rate_limited(class_settings, embedder):
    settings = class_settings.model_copy(update={"key_attempts_limit": 3})
    server = BackendServer(settings, embedder)
    try:
        for _ in range(3):
            assert httpx.post(f"{server.url}/api/access/instructor", json={"key": "guess"}).status_code == 401
        locked = httpx.post(f"{server.url}/api/access/instructor", json={"key": instructor_key(settings)})
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 1
        assert httpx.get(f"{server.url}/api/documents",
                         headers={"Authorization": f"Bearer {instructor_key(settings)}"}).status_code == 429
    finally:
        server.stop()


def test_code_mode_asks_students_for_the_code(class_settings, embedder):
    settings = class_settings.model_copy(update={"student_access": "code"})
    server = BackendServer(settings, embedder)
    code = (settings.access.access_path / "access.code").read_text().strip()
    try:
        student = browser(server)
        assert student.get("/api/access").json() == {"role": "locked", "student_access": "code", "identified": True,
                                                      "insight": True}
        refused = student.post("/api/chat", json={"message": "What is a hash table?"})
        assert refused.status_code == 401 and "access code" in refused.json()["detail"]
        assert student.get("/api/conversations").status_code == 401
        assert student.get("/api/documents").status_code == 401
        assert student.post("/api/access/code", json={"code": "wrong"}).status_code == 401
        assert student.post("/api/access/code", json={"code": code.upper()}).status_code == 204
        assert student.get("/api/access").json()["role"] == "student"
        assert student.post("/api/chat", json={"message": "What is a hash table?"}).status_code == 200
        by_header = httpx.post(f"{server.url}/api/chat", json={"message": "Hi!"}, timeout=120,
                               headers={"Authorization": f"Bearer {code}"})
        assert by_header.status_code == 200
        assert httpx.post(f"{server.url}/api/chat", json={"message": "Hi!"}).status_code == 401
        # the code gives no instructor rights
        assert httpx.delete(f"{server.url}/api/documents/{HASH_PDF}",
                            headers={"Authorization": f"Bearer {code}"}).status_code == 403
        assert httpx.get(f"{server.url}/api/health").status_code == 200  # health stays open
    finally:
        server.stop()


def test_file_tricks_never_touch_anything_outside_and_unknown_files_stay(backend, class_settings, tmp_path):
    key = {"Authorization": f"Bearer {instructor_key(class_settings)}"}
    outside = tmp_path / "outside.md"
    outside.write_text("# Outside\nsecret\n")
    never = class_settings.storage.materials_path / "never-ingested.md"
    never.write_text("# Never ingested\n")
    link = class_settings.storage.materials_path / "link-out.md"
    link.symlink_to(outside)
    tricks = ["../../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd", "..%2f..%2fetc%2fpasswd",
              f"{outside}", "a%00b.md", "x" * 1100 + ".md", "link-out.md", "never-ingested.md"]
    try:
        for path in tricks:
            deleted = httpx.delete(f"{backend.url}/api/documents/{path}", headers=key)
            # 405: the client itself resolved '..' out of the URL, which then names no API route
            assert deleted.status_code in (400, 404, 405), (path, deleted.status_code)
            opened = httpx.get(f"{backend.url}/api/documents/file/{path}")
            assert opened.status_code in (400, 404) and b"secret" not in opened.content, path
        assert outside.read_text() == "# Outside\nsecret\n" and never.exists() and link.is_symlink()
    finally:
        never.unlink()
        link.unlink()


def test_a_document_over_the_page_limit_is_refused_by_name(settings, embedder, tmp_path):
    from conftest import make_pdf

    folder = tmp_path / "course"
    make_pdf(folder / "long.pdf", ["page one about heaps", "page two about heaps", "page three"])
    (folder / "short.md").write_text("# Short\nA short note about stacks.\n")
    harness = IngestHarness(settings.model_copy(update={"max_document_pages": 2}), embedder)
    try:
        report = harness.run(folder)
    finally:
        harness.close()
    assert "3 pages; the limit is 2" in report.failed["long.pdf"]
    assert report.ingested == ["short.md"]


def test_every_api_route_says_who_may_call_it(backend):
    from fastapi.routing import APIRoute

    from app.api.deps import identify, require_instructor, require_student

    guards = {identify, require_student, require_instructor}
    open_on_purpose = {"/api/health", "/api/ready", "/api/access/instructor", "/api/access/code"}

    def calls(dependant) -> set:
        found = {dependant.call}
        for sub in dependant.dependencies:
            found |= calls(sub)
        return found

    for route in backend.app.routes:
        if isinstance(route, APIRoute) and route.path.startswith(("/api", "/v1", "/metrics")):
            summary = route.summary or ""
            assert any(who in summary for who in ("anyone", "students", "instructor", "owner")), route.path
            if route.path not in open_on_purpose:
                assert calls(route.dependant) & guards, f"{route.methods} {route.path} has no access check"


def test_a_conversation_file_from_before_owners_opens(tmp_path):
    import asyncio

    from app.conversations.store import ConversationStore

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE conversations (id TEXT PRIMARY KEY, title TEXT NOT NULL DEFAULT '',
                                    created_at REAL NOT NULL, updated_at REAL NOT NULL);
        CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT NULL
            REFERENCES conversations(id) ON DELETE CASCADE, role TEXT NOT NULL, content TEXT NOT NULL,
            token_count INTEGER, meta TEXT NOT NULL DEFAULT '{}', created_at REAL NOT NULL);
        INSERT INTO conversations VALUES ('old-1', 'Hash tables', 1, 2);
        INSERT INTO messages (conversation_id, role, content, created_at) VALUES ('old-1', 'user', 'q', 1);
        INSERT INTO messages (conversation_id, role, content, meta, created_at) VALUES ('old-1', 'assistant', 'a',
            '{"finish_reason": "stop", "cited": [2], "sources": [{"number": 1, "file": "a.pdf", "page_start": 3},
                                                                 {"number": 2, "file": "b.md", "page_start": null}]}', 1);
    """)
    db.commit()
    db.close()
    from app.insight.queries import Period, cited, outcomes_per_day

    for _ in range(2):  # opened again: filled in once, not twice
        store = ConversationStore(path)
        try:
            old = asyncio.run(store.get("old-1"))
            assert old.title == "Hash tables" and old.owner is None and old.message_count == 2
            assert asyncio.run(store.list(owner="someone")) == ([], 0)
            page, total = asyncio.run(store.list(everyone=True))
            assert total == 1 and page[0].id == "old-1"
            everything = Period("main", 0, 10)  # its answer, as the insight report reads it
            assert asyncio.run(store.read(lambda db: cited(db, everything))) == [("b.md", None, 1, 1),
                                                                                 ("a.pdf", 3, 1, 0)]
            assert asyncio.run(store.read(lambda db: outcomes_per_day(db, everything))) == [("1970-01-01", 1, 0)]
        finally:
            store.close()


def test_only_the_backend_listens_beyond_this_machine(tmp_path):
    env = dict(os.environ)
    env.pop("RAG_LLM_EXPOSE", None)
    config = subprocess.run([sys.executable, "-m", "app.appliance", "config"], cwd=BACKEND, env=env,
                            capture_output=True, text=True, timeout=60)
    assert "LLM_HOST=127.0.0.1" in config.stdout
    exposed = subprocess.run([sys.executable, "-m", "app.appliance", "config"], cwd=BACKEND, timeout=60,
                             env={**env, "RAG_LLM_EXPOSE": "true"}, capture_output=True, text=True)
    assert "LLM_HOST=0.0.0.0" in exposed.stdout
    script = (BACKEND.parent / "runpod_simple_startup.sh").read_text()
    llm_lines = [line for line in script.splitlines() if "llama_cpp.server --model" in line or "-np $LLM_PARALLEL" in line]
    assert llm_lines and all("--host $LLM_HOST" in line for line in llm_lines)
    assert all("$key_native" in line or "$key_python" in line for line in llm_lines)  # a key when exposed


def test_concurrent_first_turns_with_one_new_id_never_share_a_conversation(backend):
    """Two students who send the same new conversation id at once: one owns it, the
    other is refused, never let into the first one's conversation."""
    alice, bob = browser(backend), browser(backend)
    results = {}

    def ask(name, client):
        results[name] = client.post("/api/chat", json={"message": "Hi!", "conversation_id": "same-new-id"}).status_code

    threads = [threading.Thread(target=ask, args=(n, c)) for n, c in (("a", alice), ("b", bob))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == [200, 404], results
    owners = [c.get("/api/conversations/same-new-id").status_code for c in (alice, bob)]
    assert sorted(owners) == [200, 404]
