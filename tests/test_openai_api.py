"""The OpenAI-compatible endpoint, driven by the real `openai` Python SDK against the
real backend (uvicorn), a real llama.cpp server with SmolLM2, Milvus Lite and the
packaged embedder."""

from __future__ import annotations

import httpx
import openai
import pytest

from backend_fixtures import BackendServer, as_instructor, instructor_key, sample_course_settings
from conftest import IngestHarness

HASH_PDF = "data-structures-101/lecture-04-hash-tables.pdf"


@pytest.fixture(scope="module")
def openai_settings(tmp_path_factory, llm, embedder):
    settings = sample_course_settings(tmp_path_factory.mktemp("openai"), llm.url, llm_max_tokens=64)
    harness = IngestHarness(settings, embedder)
    harness.run(settings.storage.materials_path)
    harness.close()
    return settings


@pytest.fixture(scope="module")
def backend(openai_settings, embedder):
    server = BackendServer(openai_settings, embedder)
    yield server
    server.stop()


def sdk(backend, key: str = "anything") -> openai.OpenAI:
    """The SDK as a user sets it up: base URL and key (in open mode any key will do)."""
    return openai.OpenAI(base_url=f"{backend.url}/v1", api_key=key, max_retries=0, timeout=120)


def rag(obj) -> dict:
    """The appliance's extra field, as the SDK keeps unknown fields."""
    return obj.model_extra["rag"]


def conversation_count(backend) -> int:
    listed = httpx.get(f"{backend.url}/api/conversations", params={"all": "true"},
                       headers=as_instructor(backend.services.settings))
    assert listed.status_code == 200, listed.text
    return int(listed.headers["X-Total-Count"])


def test_each_course_is_a_model(backend):
    client = sdk(backend)
    assert [m.id for m in client.models.list()] == ["main"]
    assert client.models.retrieve("main").owned_by
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("biology")
    assert missing.value.code == "model_not_found"


def test_an_answer_carries_its_sources_and_stores_nothing(backend):
    before = conversation_count(backend)
    reply = sdk(backend).chat.completions.create(
        model="main", messages=[{"role": "system", "content": "You are a pirate."},
                                {"role": "user", "content": "What is a hash table?"}])
    choice = reply.choices[0]
    assert choice.finish_reason in ("stop", "length") and reply.object == "chat.completion"
    extra = rag(reply)
    assert extra["outcome"] == "answered" and not extra["declined"] and extra["conversation_id"] is None
    top = extra["sources"][0]
    assert top["file"] == HASH_PDF and "stores key-value pairs" in top["text"]
    # the answer, then the sources for clients that show only text
    answer, _, listed = choice.message.content.rpartition("\n\nSources:\n")
    assert answer.strip() and HASH_PDF in listed and listed.startswith("[")
    assert reply.usage.completion_tokens > 0 and reply.usage.total_tokens > reply.usage.completion_tokens
    # the same retrieval as /api/chat
    native = httpx.post(f"{backend.url}/api/chat", json={"message": "What is a hash table?"}, timeout=120).json()
    assert [(s["file"], s["page_start"]) for s in native["sources"]] == \
        [(s["file"], s["page_start"]) for s in extra["sources"]]
    assert conversation_count(backend) == before + 1  # the /api/chat turn; the SDK's stored nothing


def test_a_stream_ends_with_sources_usage_and_done(backend):
    chunks = list(sdk(backend).chat.completions.create(
        model="main", messages=[{"role": "user", "content": "What is open addressing?"}], stream=True,
        stream_options={"include_usage": True}, extra_body={"a_field_we_do_not_know": 1}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    ending = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(ending) == 1 and ending[0].choices[0].finish_reason in ("stop", "length")
    extra = rag(ending[0])
    assert any(s["page_start"] <= 3 <= s["page_end"] for s in extra["sources"])  # the collisions page
    assert "\n\nSources:\n[" in text and text.split("\n\nSources:\n")[0].strip()
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert len({c.id for c in chunks}) == 1


def test_a_follow_up_is_understood_from_the_history_the_client_sends(backend):
    client = sdk(backend)
    first = client.chat.completions.create(model="main", messages=[{"role": "user", "content": "What is a hash table?"}])
    follow = client.chat.completions.create(model="main", messages=[
        {"role": "user", "content": "What is a hash table?"},
        {"role": "assistant", "content": first.choices[0].message.content},  # with its "Sources:" list
        {"role": "user", "content": [{"type": "text", "text": "and how does it handle collisions?"}]},
    ])
    extra = rag(follow)
    assert "hash table" in extra["retrieval_query"].lower() and extra["condensed_by"] != "none"
    assert any(s["page_start"] <= 3 <= s["page_end"] and "Separate chaining" in s["text"] for s in extra["sources"])


def test_a_question_off_the_materials_is_declined_in_plain_text(backend):
    reply = sdk(backend).chat.completions.create(
        model="main", messages=[{"role": "user", "content": "Who won the 2018 FIFA World Cup?"}])
    native = httpx.post(f"{backend.url}/api/chat", json={"message": "Who won the 2018 FIFA World Cup?"},
                        timeout=120).json()
    assert reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.content == native["answer"]  # the decline, no "Sources:" list
    assert rag(reply)["declined"] is True and rag(reply)["outcome"] == "declined" and rag(reply)["sources"] == []


def test_max_tokens_and_a_named_conversation(backend):
    reply = sdk(backend).chat.completions.create(
        model="main", messages=[{"role": "user", "content": "Explain separate chaining in detail."}],
        max_tokens=5, temperature=0, extra_body={"conversation_id": "sdk-notes-1"})
    assert reply.choices[0].finish_reason == "length" and 0 < reply.usage.completion_tokens <= 5
    assert rag(reply)["conversation_id"] == "sdk-notes-1"
    stored = httpx.get(f"{backend.url}/api/conversations/sdk-notes-1").json()
    assert [m["content"] for m in stored["messages"]] == [
        "Explain separate chaining in detail.", reply.choices[0].message.content.split("\n\nSources:\n")[0]]


def test_bad_requests_get_openai_errors(backend):
    client = sdk(backend)
    with pytest.raises(openai.NotFoundError) as wrong_model:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    assert wrong_model.value.code == "model_not_found" and "main" in wrong_model.value.message
    with pytest.raises(openai.BadRequestError) as no_question:
        client.chat.completions.create(model="main", messages=[{"role": "user", "content": "Hi"},
                                                               {"role": "assistant", "content": "Hello"}])
    assert "last message" in no_question.value.message
    raw = httpx.post(f"{backend.url}/v1/chat/completions", json={"model": "main", "messages": []})
    assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request_error"
    unnamed = httpx.post(f"{backend.url}/v1/chat/completions",
                         json={"model": "", "messages": [{"role": "user", "content": "Hi"}]})
    assert unnamed.status_code == 404 and unnamed.json()["error"]["code"] == "model_not_found"


def test_keys_follow_the_class_access_rules(openai_settings, embedder, backend):
    """Code mode: the access code is the api_key; a wrong one is an authentication error.
    (A second backend on the same data, as a restart in code mode would be.)"""
    server = BackendServer(openai_settings.model_copy(update={"student_access": "code"}), embedder)
    try:
        code = (openai_settings.access.access_path / "access.code").read_text().strip()
        with pytest.raises(openai.AuthenticationError):
            sdk(server, "not-the-code").models.list()
        locked = httpx.get(f"{server.url}/v1/models")  # no key at all (the SDK insists on one)
        assert locked.status_code == 401 and locked.json()["error"]["type"] == "authentication_error"
        assert "access code" in locked.json()["error"]["message"]
        assert [m.id for m in sdk(server, code).models.list()] == ["main"]
        reply = sdk(server, instructor_key(openai_settings)).chat.completions.create(
            model="main", messages=[{"role": "user", "content": "Thanks!"}])
        assert rag(reply)["outcome"] == "small_talk" and "Sources:" not in reply.choices[0].message.content
    finally:
        server.stop()
