"""The chat backend end to end: a real llama.cpp server (SmolLM2), real Milvus Lite,
the real embedder, the real FastAPI app under uvicorn."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import httpx
import pytest

from backend_fixtures import BackendServer, as_instructor, copy_sample_course, free_port
from conftest import IngestHarness, cli_env, run_cli

HASH_PDF = "data-structures-101/lecture-04-hash-tables.pdf"


@pytest.fixture
def backend_settings(tmp_path, llm, embedder):
    from app.settings import Settings

    materials = copy_sample_course(tmp_path / "materials")
    settings = Settings(
        _env_file=None, milvus_uri=str(tmp_path / "db" / "test.db"), collection_name="chunks",
        materials_dir=materials, conversations_db=tmp_path / "db" / "conversations.sqlite3",
        access_dir=tmp_path / "db" / "access", audit_log=tmp_path / "db" / "audit.log",
        llm_base_url=llm.url, llm_max_tokens=64, llm_context_window=4096, condense_mode="concat",
        embedding_device="cpu", torch_threads=2,
    )
    harness = IngestHarness(settings, embedder)
    harness.run(materials)
    harness.close()
    return settings


@pytest.fixture
def backend(backend_settings, embedder):
    server = BackendServer(backend_settings, embedder)
    yield server
    server.stop()


def sse_events(response: httpx.Response):
    """Parse a text/event-stream response into (event, data) pairs as they arrive."""
    event, data = None, []
    for line in response.iter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and event:
            yield event, json.loads("\n".join(data)) if data else None
            event, data = None, []


def ask(backend, message, conversation_id=None, **extra):
    body = {"message": message, **extra}
    if conversation_id:
        body["conversation_id"] = conversation_id
    return httpx.post(f"{backend.url}/api/chat", json=body, timeout=120)


def test_chat_answers_with_sources_that_carry_pages(backend):
    response = ask(backend, "What is a hash table?", "alice-1")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["conversation_id"] == "alice-1" and body["answer"].strip()
    top = body["sources"][0]
    # the definition is on physical page 2, printed "1"; a chunk may start on the page before
    assert top["file"] == HASH_PDF and top["page_start"] <= 2 <= top["page_end"]
    assert "stores key-value pairs" in top["text"] and top["chunk_id"] and 0 < top["score"] <= 1
    labels = {1: "i", 2: "1", 3: "2"}
    expected_label = labels[top["page_start"]] + ("" if top["page_start"] == top["page_end"] else f"–{labels[top['page_end']]}")
    assert top["page_label"] == expected_label
    pages = str(top["page_start"]) if top["page_start"] == top["page_end"] else f"{top['page_start']}–{top['page_end']}"
    # the PDF's outline names the section the chunk starts in
    sections = {1: None, 2: "1. What is a hash table?", 3: "2. Handling collisions"}
    assert top["heading"] == sections[top["page_start"]]
    section = f", {top['heading']}" if top["heading"] else ""
    assert top["location"] == f"{HASH_PDF}, p. {pages} (printed {expected_label}){section}"
    # the turn's stages, the search's own steps among them (token match reranks by default)
    for key in ("retrieval_ms", "question_ms", "embed_ms", "dense_ms", "keyword_ms", "fusion_ms", "gate_ms",
                "fetch_ms", "rerank_ms", "prompt_ms", "first_token_ms", "generation_ms", "total_ms"):
        assert body["timings"][key] is not None and body["timings"][key] >= 0, key
    assert body["usage"]["completion_tokens"] > 0


def test_stream_sends_sources_then_tokens_then_done(backend):
    with httpx.stream("POST", f"{backend.url}/api/chat/stream", json={"message": "What is open addressing?"},
                      timeout=120) as response:
        assert response.status_code == 200
        events = list(sse_events(response))
    kinds = [k for k, _ in events]
    assert kinds[0] == "sources" and kinds[-1] == "done" and kinds.count("sources") == 1
    assert set(kinds[1:-1]) == {"token"} and len(kinds) > 3
    streamed = "".join(d["delta"] for k, d in events if k == "token")
    done = events[-1][1]
    assert done["answer"] == streamed and done["sources"] == events[0][1]["sources"]
    assert any(s["page_start"] <= 3 <= s["page_end"] for s in done["sources"])  # the collisions page
    # the search's steps, as soon as the passages are known: a client can time the real path
    steps = events[0][1]["timings"]
    assert {"embed_ms", "dense_ms", "keyword_ms", "fusion_ms", "gate_ms", "fetch_ms", "rerank_ms",
            "prompt_ms"} <= set(steps) and all(v >= 0 for v in steps.values())
    assert {k: v for k, v in done["timings"].items() if k in steps} == steps


def test_follow_up_is_retrieved_with_the_earlier_turn(backend):
    first = ask(backend, "What is a hash table?", "bob-1").json()
    follow = ask(backend, "and how does it handle collisions?", "bob-1").json()
    assert "hash table" in follow["retrieval_query"].lower()
    assert {s["file"] for s in follow["sources"][:2]} == {HASH_PDF}
    assert any(s["page_start"] <= 3 <= s["page_end"] and "Separate chaining" in s["text"] for s in follow["sources"])
    conversation = httpx.get(f"{backend.url}/api/conversations/bob-1").json()
    assert [m["role"] for m in conversation["messages"]] == ["user", "assistant"] * 2
    assert conversation["messages"][1]["content"] == first["answer"]


def test_follow_up_rewritten_by_the_llm(backend_settings, embedder):
    """The LLM turns a follow-up into a standalone query, and it finds the right page.

    The earlier turn is stored beforehand rather than asked: an answer is sampled, and the
    rewrite prompt quotes it, so asking it here would make the rewrite a lottery. With a
    fixed earlier turn the rewrite (temperature 0) is repeatable."""
    from app.conversations.store import ConversationStore, Message

    store = ConversationStore(backend_settings.storage.conversations_db)
    asyncio.run(store.add_turn("carol-1", Message("user", "What is a hash table?"), Message(
        "assistant", "A hash table stores key-value pairs in an array of buckets. A hash function turns "
                     "each key into the index of its bucket, so a lookup takes constant time on average [1].")))
    store.close()
    # A generous timeout: this checks the rewrite itself, and a loaded machine must not
    # turn it into the (separately tested) fallback.
    settings = backend_settings.model_copy(update={"condense_mode": "llm", "condense_timeout_s": 60.0})
    server = BackendServer(settings, embedder)
    try:
        follow = ask(server, "and how does it handle collisions?", "carol-1").json()
        # SmolLM2 at temperature 0 with the worked examples writes a short query the guard accepts
        assert follow["condensed_by"] == "llm", follow["retrieval_query"]
        assert "hash" in follow["retrieval_query"].lower()
        assert follow["retrieval_query"].endswith("and how does it handle collisions?")
        assert any(s["file"] == HASH_PDF and s["page_start"] <= 3 <= s["page_end"] for s in follow["sources"])
    finally:
        server.stop()


def test_query_expansion_searches_with_the_llms_passage_and_falls_back_when_it_is_slow(backend_settings, embedder):
    """RAG_QUERY_EXPANSION: the LLM writes a passage for the search (HyDE); a declined
    question costs no LLM call; a slow LLM means searching with the question alone."""
    settings = backend_settings.model_copy(update={"query_expansion": True, "query_expansion_timeout_s": 60.0})
    server = BackendServer(settings, embedder)
    try:
        body = ask(server, "How does a hash table handle collisions?").json()
        assert body["expanded"] is True and body["timings"]["expansion_ms"] > 0
        assert any(s["file"] == HASH_PDF and s["page_start"] <= 3 <= s["page_end"] for s in body["sources"])
        outside = ask(server, "Who won the 2018 FIFA World Cup?").json()
        assert outside["expanded"] is False and "expansion_ms" not in outside["timings"]
    finally:
        server.stop()
    slow = settings.model_copy(update={"query_expansion_timeout_s": 0.001})
    server = BackendServer(slow, embedder)
    try:
        response = ask(server, "How does a hash table handle collisions?")
        assert response.status_code == 200 and response.json()["answer"].strip()
        assert response.json()["expanded"] is False and response.json()["sources"]
    finally:
        server.stop()


def test_conversations_survive_a_restart(backend_settings, embedder):
    server = BackendServer(backend_settings, embedder)
    answer = ask(server, "What is a stack?", "dave-1").json()["answer"]
    server.stop()
    server = BackendServer(backend_settings, embedder)
    try:
        # started by curl (no cookie): listed to the instructor, reachable by its id
        listed = httpx.get(f"{server.url}/api/conversations?all=true", headers=as_instructor(backend_settings)).json()
        assert [c["id"] for c in listed] == ["dave-1"] and listed[0]["title"] == "What is a stack?"
        messages = httpx.get(f"{server.url}/api/conversations/dave-1").json()["messages"]
        assert messages[1]["content"] == answer
        follow = ask(server, "and what about queues?", "dave-1").json()
        assert "stack" in follow["retrieval_query"].lower()
        assert httpx.patch(f"{server.url}/api/conversations/dave-1", json={"title": "Stacks"}).json()["title"] == "Stacks"
        assert httpx.delete(f"{server.url}/api/conversations/dave-1").status_code == 204
        assert httpx.get(f"{server.url}/api/conversations/dave-1").status_code == 404
    finally:
        server.stop()


@pytest.mark.parametrize("body, status, detail", [
    ({"message": ""}, 422, "message must not be empty"),
    ({"message": "   "}, 422, "message must not be empty"),
    ({}, 422, "message is required"),
    ({"message": "x" * 5000}, 413, "message is 5000 characters; the limit is 4000."),
])
def test_bad_requests_get_readable_errors(backend, body, status, detail):
    response = httpx.post(f"{backend.url}/api/chat", json=body)
    assert (response.status_code, response.json()["detail"]) == (status, detail)


def test_malformed_json_is_422(backend):
    response = httpx.post(f"{backend.url}/api/chat", content=b'{"message": "hi"', headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and response.json()["detail"] == "The request body is not valid JSON."


def test_small_talk_gets_an_invitation_not_a_decline(backend):
    body = ask(backend, "Thanks a lot!").json()
    assert body["sources"] == [] and body["finish_reason"] == "small_talk"
    assert body["answer"].startswith("Happy to help! Ask me a question about the course materials")
    body = ask(backend, "What were the main causes of the French Revolution?").json()
    assert body["finish_reason"] == "no_relevant_sources"  # a question, not chatter: declined
    # after an answer too; and the small talk is not what the next follow-up is joined to
    asked = ask(backend, "What is a hash table?", "thankful-1").json()
    assert asked["finish_reason"] != "small_talk" and asked["sources"]
    thanks = ask(backend, "Thanks a lot!", "thankful-1").json()
    assert thanks["finish_reason"] == "small_talk" and thanks["sources"] == []
    follow_up = ask(backend, "and what is its load factor?", "thankful-1").json()
    assert follow_up["retrieval_query"] == "What is a hash table? and what is its load factor?"
    assert any(s["page_start"] == 4 for s in follow_up["sources"])
    # a question wrapped in chatter: the API says what was searched, the question alone
    chatty = ask(backend, "Hi! I'm revising for the exam tomorrow. How does a hash table handle collisions? "
                          "Thanks a lot!").json()
    assert chatty["retrieval_query"] == "How does a hash table handle collisions?"
    assert any(s["page_start"] <= 3 <= s["page_end"] for s in chatty["sources"][:3])  # the collisions page


def test_out_of_scope_question_is_declined_without_inventing(backend):
    body = ask(backend, "Who won the football world cup in 1998?").json()
    assert body["sources"] == [] and "couldn't find this in the course materials" in body["answer"]
    assert body["finish_reason"] == "no_relevant_sources"


def test_a_question_naming_what_the_materials_never_mention_is_declined_saying_so(backend_settings, embedder):
    # the sample course is shorter than 30 pages, where the rule is off by default
    settings = backend_settings.model_copy(update={"unknown_word_min_chunks": 1})
    server = BackendServer(settings, embedder)
    try:
        body = ask(server, "How does memcached hash keys?").json()
        assert body["sources"] == [] and body["finish_reason"] == "no_relevant_sources"
        assert "never mention \u201cmemcached\u201d" in body["answer"] and "another name" in body["answer"]
    finally:
        server.stop()


def test_llm_down_gives_503_and_keeps_the_conversation(backend_settings, embedder, backend):
    ask(backend, "What is a stack?", "erin-1")
    backend.stop()
    dead = backend_settings.model_copy(update={"llm_base_url": f"http://127.0.0.1:{free_port()}/v1"})
    server = BackendServer(dead, embedder)
    try:
        response = ask(server, "and queues?", "erin-1")
        assert response.status_code == 503
        assert "not reachable" in response.json()["detail"] and "RAG_LLM_BASE_URL" in response.json()["detail"]
        with httpx.stream("POST", f"{server.url}/api/chat/stream", json={"message": "What is a queue?"}) as r:
            events = list(sse_events(r))
        assert events[-1][0] == "error" and "not reachable" in events[-1][1]["message"]
        assert len(httpx.get(f"{server.url}/api/conversations/erin-1").json()["messages"]) == 2
        ready = httpx.get(f"{server.url}/api/ready")
        assert ready.status_code == 503 and ready.json()["llm_reachable"] is False
    finally:
        server.stop()


def test_llm_timeout_gives_503(backend_settings, embedder):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    silent = backend_settings.model_copy(update={
        "llm_base_url": f"http://127.0.0.1:{listener.getsockname()[1]}/v1", "llm_timeout_s": 2,
        "llm_model": "any"})
    server = BackendServer(silent, embedder)
    try:
        response = ask(server, "What is a hash table?")
        assert response.status_code == 503 and "did not answer in time" in response.json()["detail"]
    finally:
        server.stop()
        listener.close()


def test_health_and_ready(backend):
    assert httpx.get(f"{backend.url}/api/health").json() == {"status": "ok"}
    ready = httpx.get(f"{backend.url}/api/ready")
    body = ready.json()
    assert ready.status_code == 200 and body["ready"] and body["chunks"] > 0
    assert body["llm_model"] and body["embedding_model"] == "all-MiniLM-L6-v2"
    assert body["query_embedding_runtime"] == "onnxruntime"  # questions take the fast path on CPU
    assert httpx.get(f"{backend.url}/docs").status_code == 200


def test_document_ingested_by_the_cli_while_running_is_found(backend, backend_settings, tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "skip-lists.md").write_text(
        "# Skip lists\nA skip list is a probabilistic data structure made of layered linked lists. "
        "Each element is promoted to the next layer with probability one half, so search, insertion "
        "and deletion take O(log n) expected time.\n")
    result = run_cli(["--directory", str(extra)], cli_env(backend_settings))
    assert result.returncode == 0, result.stderr
    assert "through the running shared server" in result.stdout
    body = ask(backend, "What is a skip list?").json()
    assert body["sources"][0]["file"] == "skip-lists.md"


def test_upload_list_and_delete_documents(backend, backend_settings):
    files = {"file": ("../../Tries notes?.md", b"# Tries\nA trie stores strings by their prefixes; "
                      b"each edge is labelled with one character.\n", "text/markdown")}
    key = as_instructor(backend_settings)
    response = httpx.post(f"{backend.url}/api/documents", files=files, timeout=120, headers=key,
                          params={"wait": 110})
    assert response.status_code == 201, response.text
    assert response.json()["file"] == "uploads/Tries notes.md"
    listed = {d["file"]: d for d in httpx.get(f"{backend.url}/api/documents").json()}
    assert listed["uploads/Tries notes.md"]["chunks"] == 1
    assert listed[HASH_PDF]["pages"] == 5
    assert ask(backend, "How does a trie store strings?").json()["sources"][0]["file"] == "uploads/Tries notes.md"
    rejected = httpx.post(f"{backend.url}/api/documents", files={"file": ("x.exe", b"MZ", "application/octet-stream")},
                          headers=key)
    assert rejected.status_code == 415
    assert httpx.delete(f"{backend.url}/api/documents/uploads/Tries notes.md", headers=key).status_code == 204
    assert "uploads/Tries notes.md" not in {d["file"] for d in httpx.get(f"{backend.url}/api/documents").json()}
    assert httpx.delete(f"{backend.url}/api/documents/nope.md", headers=key).status_code == 404


def test_client_disconnect_stops_generation_on_the_llm_server(backend_settings, embedder, llm):
    settings = backend_settings.model_copy(update={"llm_max_tokens": 400})
    server = BackendServer(settings, embedder)
    question = ("Write a long, detailed essay about hash tables: chaining, open addressing, load factor "
                "and resizing, in many paragraphs.")
    try:
        full = ask(server, question).json()
        full_s = full["timings"]["generation_ms"] / 1000
        assert full["usage"]["completion_tokens"] >= 150, "the answer must be long enough to tell"
        with httpx.stream("POST", f"{server.url}/api/chat/stream",
                          json={"message": question, "conversation_id": "gone-1"}, timeout=60) as response:
            tokens = 0
            for kind, _ in sse_events(response):
                tokens += kind == "token"
                if tokens >= 5:
                    break  # leaving the block closes the connection mid-answer
        # llama_cpp.server serves one request at a time: a 1-token probe answers at once
        # only if the gone client's generation was stopped.
        started = time.perf_counter()
        probe = httpx.post(f"{llm.url}/chat/completions", timeout=60,
                           json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
        probe_s = time.perf_counter() - started
        assert probe.status_code == 200
        assert probe_s < min(1.5, full_s / 3), f"probe waited {probe_s:.2f}s; a full answer takes {full_s:.2f}s"
        deadline = time.monotonic() + 10
        while httpx.get(f"{server.url}/api/conversations/gone-1").status_code == 404:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        kept = httpx.get(f"{server.url}/api/conversations/gone-1").json()["messages"][1]
        assert kept["meta"]["stopped"] is True and 0 < len(kept["content"]) < len(full["answer"])
    finally:
        server.stop()


def test_regenerate_replaces_the_last_turn(backend):
    first = ask(backend, "What is a hash table?", "regen-1").json()
    again = ask(backend, "What is a hash table?", "regen-1", regenerate=True)
    assert again.status_code == 200, again.text
    messages = httpx.get(f"{backend.url}/api/conversations/regen-1").json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]  # replaced, not appended
    assert messages[1]["content"] == again.json()["answer"] and first["answer"].strip()


def test_original_files_are_served_for_citations_and_nothing_else(backend):
    pdf = httpx.get(f"{backend.url}/api/documents/file/{HASH_PDF}")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith("inline") and pdf.content.startswith(b"%PDF")
    md = httpx.get(f"{backend.url}/api/documents/file/data-structures-101/00-syllabus.md")
    assert md.status_code == 200 and md.headers["content-security-policy"] == "sandbox"
    missing = httpx.get(f"{backend.url}/api/documents/file/data-structures-101/missing.pdf")
    assert missing.status_code == 404 and "not in the course materials" in missing.json()["detail"]
    for bad in ("../../../etc/passwd", "%2e%2e/%2e%2e/%2e%2e/etc/passwd", "..%2f..%2f..%2fetc%2fpasswd"):
        response = httpx.get(f"{backend.url}/api/documents/file/{bad}")
        assert response.status_code in (400, 404) and b"root:" not in response.content, bad


def test_browser_ui_is_served_at_the_root_with_a_strict_policy(backend):
    page = httpx.get(f"{backend.url}/")
    assert page.status_code == 200 and "<title>Course Assistant</title>" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for asset in ("js/app.js", "css/app.css", "vendor/purify.min.js", "vendor/marked.umd.js"):
        assert httpx.get(f"{backend.url}/{asset}").status_code == 200, asset
    assert httpx.get(f"{backend.url}/docs").status_code == 200  # the API docs still win
    ready = httpx.get(f"{backend.url}/api/ready").json()
    assert "llm_device" in ready
    assert ready["retrieval"] == "hybrid"  # what the status card shows
    assert ready["reranker"] == "token-match (all-MiniLM-L6-v2)"  # the default, no download


def test_the_tokenizer_is_loaded_at_start_and_needs_no_server():
    """Token counts (history and excerpts fitted to the context window) come from the
    served GGUF's own vocabulary, loaded when the backend starts, not on the first
    question, and not through llama_cpp.server, which would queue them behind answers."""
    from app.llm.client import LLMClient
    from app.settings import Settings
    from backend_fixtures import smollm2_path

    nowhere = f"http://127.0.0.1:{free_port()}/v1"  # no server: a count must not need one
    client = LLMClient(Settings(_env_file=None, llm_base_url=nowhere, llm_model_path=smollm2_path()))
    assert client.prepare() is True
    assert asyncio.run(client.count_tokens("What is a hash table?")) == 6
    without_file = LLMClient(Settings(_env_file=None, llm_base_url=nowhere, llm_model_path=None))
    assert without_file.prepare() is False
