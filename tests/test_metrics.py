"""GET /metrics after real turns and ingests: parsed with prometheus_client's own parser,
and every counter checked to have moved by exactly what was done (real backend,
llama.cpp server with SmolLM2, Milvus Lite, the packaged embedder)."""

from __future__ import annotations

import time

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from backend_fixtures import BackendServer, as_instructor, sample_course_settings


@pytest.fixture(scope="module")
def metrics_settings(tmp_path_factory, llm):
    # nothing ingested beforehand: the start-up check ingests the sample course, and counts it
    return sample_course_settings(tmp_path_factory.mktemp("metrics"), llm.url, llm_max_tokens=48)


@pytest.fixture(scope="module")
def backend(metrics_settings, embedder):
    server = BackendServer(metrics_settings, embedder)
    try:
        deadline = time.monotonic() + 300
        while any(j["state"] in ("queued", "running") for j in jobs(server, metrics_settings)):
            assert time.monotonic() < deadline, "the start-up check did not finish"
            time.sleep(0.5)
        yield server
    finally:
        server.stop()


def jobs(server, settings) -> list[dict]:
    return httpx.get(f"{server.url}/api/documents/jobs", headers=as_instructor(settings)).json()


def scrape(backend, settings) -> dict[tuple, float]:
    """Every sample as {(name, sorted labels): value}."""
    response = httpx.get(f"{backend.url}/metrics", headers=as_instructor(settings), timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: dict, after: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def ask(backend, message: str) -> dict:
    response = httpx.post(f"{backend.url}/api/chat", json={"message": message}, timeout=180)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_start_up_ingest_is_counted(backend, metrics_settings):
    samples = scrape(backend, metrics_settings)
    files = sorted(p for p in metrics_settings.storage.materials_path.rglob("*") if p.is_file())
    assert value(samples, "rag_ingest_files_total", result="ingested") == len(files)
    assert value(samples, "rag_ingest_failures_total", kind="no_text") == 0
    chunks = backend.services.store.count()
    assert value(samples, "rag_ingest_chunks_total") == chunks > 0
    assert value(samples, "rag_course_chunks", course="main") == chunks
    assert value(samples, "rag_ingest_pages_total") >= len(files)
    assert value(samples, "rag_ingest_run_duration_seconds_count") == 1


def test_turns_move_each_counter_by_what_was_done(backend, metrics_settings):
    before = scrape(backend, metrics_settings)
    answered = [ask(backend, "What is a hash table?")]
    sdk = openai.OpenAI(base_url=f"{backend.url}/v1", api_key="student", max_retries=0, timeout=180)
    reply = sdk.chat.completions.create(model="main", messages=[{"role": "user", "content": "What is open addressing?"}])
    answered.append({"usage": {"completion_tokens": reply.usage.completion_tokens}})
    assert ask(backend, "Who won the 2018 FIFA World Cup?")["finish_reason"] == "no_relevant_sources"
    assert ask(backend, "Thanks!")["finish_reason"] == "small_talk"
    # a stream the student leaves after its first words
    with httpx.stream("POST", f"{backend.url}/api/chat/stream", json={"message": "Explain separate chaining."},
                      timeout=180) as response:
        for line in response.iter_lines():
            if line.startswith("event: token"):
                break
    deadline = time.monotonic() + 30
    while moved(before, after := scrape(backend, metrics_settings), "rag_answers_total", outcome="stopped") < 1:
        assert time.monotonic() < deadline, "the stopped stream was not counted"
        time.sleep(0.3)

    assert moved(before, after, "rag_answers_total", outcome="answered") == 2
    assert moved(before, after, "rag_answers_total", outcome="declined") == 1
    assert moved(before, after, "rag_answers_total", outcome="small_talk") == 1
    assert moved(before, after, "rag_answers_total", outcome="stopped") == 1
    assert moved(before, after, "rag_answers_total", outcome="error") == 0
    tokens = sum(a["usage"]["completion_tokens"] for a in answered)
    assert moved(before, after, "rag_generated_tokens_total") == tokens > 0
    stage = "rag_turn_stage_duration_seconds_count"
    # the two answers reached the LLM; every question but the small talk was embedded and searched
    assert moved(before, after, stage, stage="first_token") == 2
    assert moved(before, after, stage, stage="generation") == 2
    assert moved(before, after, stage, stage="total") == 4  # and the decline and the small talk
    assert moved(before, after, stage, stage="prompt_build") == 2
    for searched in ("embed", "dense_search", "keyword_search"):
        assert moved(before, after, stage, stage=searched) >= 3, searched
    assert moved(before, after, "rag_generation_tokens_per_second_count") == 2
    assert moved(before, after, "rag_http_requests_total", route="/api/chat", method="POST", status="200") == 3
    assert moved(before, after, "rag_http_requests_total", route="/v1/chat/completions", method="POST",
                 status="200") == 1
    assert moved(before, after, "rag_http_requests_total", route="/api/chat/stream", method="POST",
                 status="200") == 1
    assert value(after, "rag_active_streams") == 0 and value(after, "rag_answers_queued") == 0
    assert value(after, "rag_llm_up") == 1
    assert any(name == "rag_llm_model_info" and dict(labels).get("model") for name, labels in after)
    # no question text and no conversation id in any label
    labels = {v for _, pairs in after for _, v in pairs}
    assert not any("hash" in v.lower() or "FIFA" in v for v in labels)


def test_uploads_count_files_and_failures_by_kind(backend, metrics_settings):
    before = scrape(backend, metrics_settings)
    post = lambda name, content: httpx.post(  # noqa: E731
        f"{backend.url}/api/documents", files={"file": (name, content, "text/markdown")},
        headers=as_instructor(metrics_settings), params={"wait": 120}, timeout=180)
    assert post("empty.md", b"").status_code == 422
    assert post("treaps.md", b"# Treaps\nA treap keeps a random priority in each node, as a heap does.\n"
                ).status_code == 201
    after = scrape(backend, metrics_settings)
    assert moved(before, after, "rag_ingest_failures_total", kind="no_text") == 1
    assert moved(before, after, "rag_ingest_files_total", result="failed") == 1
    assert moved(before, after, "rag_ingest_files_total", result="ingested") == 1
    assert moved(before, after, "rag_ingest_chunks_total") == 1
    assert value(after, "rag_course_chunks", course="main") == backend.services.store.count()
    assert moved(before, after, "rag_http_requests_total", route="/api/documents", method="POST", status="422") == 1
    assert moved(before, after, "rag_http_requests_total", route="/api/documents", method="POST", status="201") == 1


def test_metrics_are_the_instructors(backend, metrics_settings):
    assert httpx.get(f"{backend.url}/metrics").status_code == 401
    assert httpx.get(f"{backend.url}/metrics", headers={"Authorization": "Bearer guess"}).status_code == 401
    assert httpx.get(f"{backend.url}/metrics/llm").status_code == 401
    # llama_cpp.server has no metrics of its own (llama-server has, with --metrics: test_startup_script)
    llm = httpx.get(f"{backend.url}/metrics/llm", headers=as_instructor(metrics_settings))
    assert llm.status_code == 404 and "--metrics" in llm.json()["detail"]
    # unmatched paths share one label, however many there are
    for path in ("/nope-1", "/nope-2", "/api/nope"):
        httpx.get(f"{backend.url}{path}")
    routes = {dict(labels)["route"] for name, labels in scrape(backend, metrics_settings)
              if name == "rag_http_requests_total"}
    assert not any("nope" in r for r in routes)
