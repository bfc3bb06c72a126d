"""What the metrics make of a turn and an ingest report: pure, no server."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.ingestion.progress import IngestReport
from app.metrics.registry import ApplianceMetrics, failure_kind, turn_outcome


def samples(metrics: ApplianceMetrics) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(metrics.render().decode()) for s in family.samples}


@pytest.mark.parametrize("reason, kind", [
    ("reading it took longer than 300 s and was stopped (RAG_MAX_READ_SECONDS)", "time_limit"),
    ("reading it needed more than 4,096 MB of memory (RAG_MAX_READ_MEMORY_MB)", "memory_limit"),
    ("it unzips to 600 MB, over the 500 MB limit for Office files", "size_limit"),
    ("it has 3 pages; the limit is 2 (RAG_MAX_DOCUMENT_PAGES)", "size_limit"),
    ("encrypted PDF (needs a password); save an unprotected copy", "encrypted"),
    ("empty file (0 bytes)", "no_text"),
    ("no text found in the file", "no_text"),
    ("not a regular file (a named pipe); only files are read", "not_a_file"),
    ("a link to a file outside the materials folder (not followed)", "not_a_file"),
    ("corrupt or not a PDF (PDFium cannot open it)", "unsupported"),
    ("permission denied (cannot read the file)", "permission"),
    ("something nobody foresaw", "other"),
])
def test_failure_reasons_become_a_few_kinds(reason, kind):
    assert failure_kind(reason) == kind


@pytest.mark.parametrize("done, outcome", [
    ({"finish_reason": "stop"}, "answered"),
    ({"finish_reason": "length"}, "answered"),
    ({"finish_reason": "no_relevant_sources"}, "declined"),
    ({"finish_reason": "small_talk"}, "small_talk"),
    ({"finish_reason": "stop", "stopped": True}, "stopped"),
    ({"finish_reason": "interrupted", "interrupted": True, "stopped": False}, "error"),
])
def test_how_a_turn_ended(done, outcome):
    assert turn_outcome(done) == outcome


def test_a_turn_records_its_stages_tokens_and_speed():
    metrics = ApplianceMetrics()
    metrics.observe_turn({"finish_reason": "stop", "usage": {"completion_tokens": 11},
                          "timings": {"embed_ms": 4.0, "dense_ms": 2.0, "first_token_ms": 100.0,
                                      "generation_ms": 1100.0, "total_ms": 1200.0}})
    metrics.observe_turn({"finish_reason": "no_relevant_sources", "usage": {"completion_tokens": 30},
                          "timings": {"embed_ms": 4.0, "generation_ms": 0.1, "total_ms": 9.0}})
    got = samples(metrics)
    assert got[("rag_turn_stage_duration_seconds_count", (("stage", "embed"),))] == 2
    assert got[("rag_turn_stage_duration_seconds_count", (("stage", "generation"),))] == 1  # not the decline's
    assert got[("rag_turn_stage_duration_seconds_sum", (("stage", "dense_search"),))] == pytest.approx(0.002)
    assert got[("rag_generated_tokens_total", ())] == 11  # a canned decline generates nothing
    assert got[("rag_generation_tokens_per_second_sum", ())] == pytest.approx(10.0)  # 10 tokens in 1 s
    assert got[("rag_answers_total", (("outcome", "declined"),))] == 1
    assert got[("rag_answers_total", (("outcome", "busy"),))] == 0  # every outcome shows, at 0


def test_an_ingest_report_counts_new_failures_once():
    metrics = ApplianceMetrics()
    report = IngestReport("d", "db", ingested=["a.md"], unchanged=3, pages=5, chunks_written=7, elapsed_s=2.0,
                          failed={"b.pdf": "encrypted PDF (needs a password)", "c.md": "empty file (0 bytes)"},
                          failed_before=["c.md"])
    metrics.observe_ingest(report)
    got = samples(metrics)
    assert got[("rag_ingest_files_total", (("result", "failed"),))] == 2
    assert got[("rag_ingest_failures_total", (("kind", "encrypted"),))] == 1
    assert ("rag_ingest_failures_total", (("kind", "no_text"),)) not in got  # failed on an earlier run
    assert got[("rag_ingest_chunks_total", ())] == 7 and got[("rag_ingest_pages_total", ())] == 5


def test_two_apps_keep_their_own_counts():
    first, second = ApplianceMetrics(), ApplianceMetrics()
    first.turn_failed("busy")
    assert samples(first)[("rag_answers_total", (("outcome", "busy"),))] == 1
    assert samples(second)[("rag_answers_total", (("outcome", "busy"),))] == 0
