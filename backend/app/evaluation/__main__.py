"""python -m app.evaluation: retrieval quality of the appliance, in tables.

    cd backend && python -m app.evaluation [--questions FILE] [--corpus FOLDER] [--llm-url URL]

Ingests the books of a corpus folder (../shared/corpus by default; PDFs unless --types
says otherwise) into a database cached per folder (bench/.cache/eval/; unchanged files
are skipped), then asks every question of the question file (bench/eval/questions.json
by default; its format: docs/EVALUATION.md) through the appliance's own Retriever, once
per configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from app.evaluation.corpus import (
    CorpusError,
    corpus_files,
    default_database,
    link_books,
    prepare_database,
    read_pages,
    read_sections,
)
from app.evaluation.metrics import percentile
from app.evaluation.questions import QuestionFileError, QuestionSet, check
from app.evaluation.runner import Expander, first_questions, gate_outcome, run_config
from app.settings import PROJECT_ROOT, TOKEN_MATCH, Settings

DEFAULT_QUESTIONS = PROJECT_ROOT / "bench" / "eval" / "questions.json"
DEFAULT_CORPUS = PROJECT_ROOT.parent / "shared" / "corpus"
DEFAULT_DB = default_database(DEFAULT_CORPUS)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app.evaluation", description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of the books")
    parser.add_argument("--types", nargs="+", default=["pdf"], metavar="EXT",
                        help="which files of the corpus to ingest (default: pdf; e.g. pdf pptx md html docx ipynb txt)")
    parser.add_argument("--db", type=Path, default=None,
                        help="Milvus Lite file to (re)use (default: one per corpus folder under bench/.cache/eval/)")
    parser.add_argument("--strict", action="store_true",
                        help="stop when an evidence phrase is not on its listed page (default: warn, count by page)")
    parser.add_argument("--modes", nargs="+", default=["dense", "keyword", "hybrid"],
                        choices=["dense", "keyword", "hybrid"])
    parser.add_argument("--rerank-model", default=TOKEN_MATCH,
                        help="also run hybrid + this reranker: token-match (the appliance's default), a "
                        "cross-encoder (e.g. cross-encoder/ms-marco-MiniLM-L-6-v2), or '' for none")
    parser.add_argument("--llm-url", default=None,
                        help="an OpenAI-compatible server: also rewrite follow-ups with the LLM, and run "
                        "hybrid + LLM query expansion")
    parser.add_argument("--report", type=Path, default=None, metavar="FILE",
                        help="also write every question's rank, top 5 and gate inputs here (JSON)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--fit", action="store_true",
                        help="fit a calibration profile for RAG_EMBEDDING_MODEL on these questions and write "
                        "it to models/calibration/, where the backend finds it")
    args = parser.parse_args(argv)
    args.db = args.db or default_database(args.corpus)
    return args


def checked_questions(args) -> QuestionSet:
    """The question file, its books resolved against the corpus and its evidence
    phrases checked against their pages. Raises QuestionFileError with every problem."""
    questions = QuestionSet.load(args.questions)
    books = args.db.parent / "books"
    files = link_books(args.corpus, corpus_files(args.corpus, args.types), books)
    errors, warnings = check(questions, files, read_pages(books), read_sections(books))
    if errors or (warnings and args.strict):
        raise QuestionFileError("The question file has problems:\n  " + "\n  ".join(errors + warnings))
    if warnings:
        print(f"warning: {len(warnings)} evidence phrase(s) not found on their listed pages; those questions "
              f"count by page only (--strict stops instead):\n  " + "\n  ".join(warnings), file=sys.stderr)
    return questions


def embedded_share(store, window: int) -> float:
    """Share of chunk text (in embedder word pieces) inside the embedder's window."""
    total = inside = 0
    iterator = store.client.query_iterator(store.collection, batch_size=2000, filter="",
                                           output_fields=["token_count"])
    try:
        while rows := iterator.next():
            for row in rows:
                n = int(row.get("token_count") or 0)
                total += n
                inside += min(n, window)
    finally:
        iterator.close()
    return inside / total if total else 1.0


def corpus_retriever(args, settings: Settings):
    """The appliance's Retriever over the corpus's database (ingested first where needed):
    what the evaluation asks, and what bench/chatty.py times."""
    from app.courses.course import read_side_of
    from app.embedding.encoder import load_embedder

    embedder = load_embedder(settings.embedding.embedding_model, "cpu", 64, threads=args.threads)
    embedder.enable_fast_queries(settings.embedding.embedding_query_runtime, settings.storage.models_path / "onnx")
    ingestor = prepare_database(args, settings, embedder)
    # No reranker inside: the evaluation reranks each configuration itself.
    return read_side_of(ingestor, embedder, reranker_model="").retriever


def _follow_up_cell(result, method: str, total: int) -> str:
    """ "5 of 6", saying so when the chat had to rewrite some another way (the LLM was
    unreachable or slow), so a fallback's score is never shown as the LLM's."""
    cell = f"{result.follow_ups.get(method, 0)} of {total}"
    fell_back = result.fell_back.get(method, 0)
    return f"{cell} ({fell_back} fell back from {method})" if fell_back else cell


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        questions = checked_questions(args)
    except (QuestionFileError, CorpusError) as exc:
        print(exc, file=sys.stderr)
        return 2

    from app.chat.service import ChatService
    from app.llm.client import LLMClient
    from app.retrieval.reranker import load_reranker

    settings = Settings(_env_file=None, milvus_uri=str(args.db), collection_name="eval",
                        embedding_device="cpu", torch_threads=args.threads,
                        llm_base_url=args.llm_url or "http://127.0.0.1:9/v1", condense_timeout_s=30,
                        query_expansion_timeout_s=30)
    retriever = corpus_retriever(args, settings)
    store, embedder = retriever.store, retriever.embedder
    chat = ChatService(settings, retriever, LLMClient(settings), store=None)
    methods = ("raw", "concat", "llm") if args.llm_url else ("raw", "concat")

    configs = [(mode, mode, False, False) for mode in args.modes]
    if args.llm_url and "hybrid" in args.modes:  # the chat's optional LLM query expansion
        configs.append(("hybrid + expansion", "hybrid", False, True))
    if args.rerank_model:
        retriever.reranker = load_reranker(args.rerank_model, "auto", settings.storage.models_path, embedder,
                                          retriever.keyword_index)
        if retriever.reranker is None:
            print(f"reranker {args.rerank_model} could not be loaded; skipping it", file=sys.stderr)
        else:
            configs.append((f"hybrid + {args.rerank_model}", "hybrid", True, False))
    results = []
    for name, mode, rerank, expand in configs:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        expander = Expander(settings) if expand else None
        try:
            results.append(run_config(retriever, questions, name, mode, rerank, chat, methods, expander))
        finally:
            if expander is not None:
                expander.close()

    n, n_ooc, n_fu = len(questions.answerable), len(questions.out_of_corpus), len(questions.follow_ups)
    calibration = retriever.calibration
    threshold = calibration.similarity_cutoff
    ooc_splits = sorted({o.split for o in questions.out_of_corpus})

    def gate(t: float, keyword: bool = True, unknown: bool = True):
        """The gate at threshold t, with or without its keyword and unknown-word rules."""
        return lambda g: retriever.decide(g.similarity, g.coverage if keyword else 0.0,
                                          g.unknown_words if unknown else (), t).answer

    def declined_cell(result, passes) -> str:
        declined, _ = gate_outcome(result, passes)
        cell = f"{declined} of {n_ooc}"
        if len(ooc_splits) > 1:
            per = {s: sum(o.split == s for o in questions.out_of_corpus) for s in ooc_splits}
            cell += " (" + ", ".join(f"{s} {gate_outcome(result, passes, s)[0]} of {per[s]}"
                                     for s in ooc_splits) + ")"
        return cell
    print(f"\nRetrieval, {n} questions over {len({q.file for q in questions.answerable})} books, "
          f"{store.count():,} chunks, embedder {settings.embedding.embedding_model}; "
          f"text inside the embedder window: {embedded_share(store, embedder.max_tokens - 2):.1%}\n")
    fu_header = " | ".join(f"follow-ups {m}" for m in methods)
    # hit@10: how often the answering page is among the passages a GPU pod hands the LLM
    # (RAG_GPU_TOP_K); a CPU start hands it 5.
    print(f"| configuration | hit@1 | hit@3 | hit@5 | hit@10 | MRR@10 | {fu_header} | out-of-corpus declined | "
          f"answerable refused | p50 ms | p95 ms |")
    print("|---" * (10 + len(methods)) + "|")
    for r in results:
        passes = gate(threshold, keyword=r.name != "dense")  # dense alone has no keyword evidence
        _, refused = gate_outcome(r, passes)
        fu = " | ".join(_follow_up_cell(r, m, n_fu) for m in methods)
        print(f"| {r.name} | {r.overall.hit_at(1):.2f} | {r.overall.hit_at(3):.2f} | {r.overall.hit_at(5):.2f} "
              f"| {r.overall.hit_at(10):.2f} | {r.overall.mrr10:.2f} | {fu} | {declined_cell(r, passes)} | {refused} of {n} "
              f"| {percentile(r.latencies_ms, .5):.0f} | {percentile(r.latencies_ms, .95):.0f} |")

    for r in results:
        if r.expanded:
            got, asked = r.expanded
            rest = f" (the other {asked - got} used the question alone: the LLM was down or slow)" if got < asked else ""
            print(f"\n{r.name}: the LLM wrote a passage for {got} of {asked} searches{rest}; "
                  f"its p50/p95 include that wait.")

    asked_after = [r for r in results if r.mid_conversation or r.generic_answered]
    if asked_after:
        firsts = len(first_questions(questions))
        print(f"\nAsked mid-conversation, each after the first question of {firsts} conversation"
              f"{'s' if firsts != 1 else ''} and joined to it as the chat joins a follow-up:")
        if asked_after[0].mid_conversation:
            print("- out-of-corpus questions declined (asked alone: above): " + ", ".join(
                f"{r.name} {r.mid_conversation[0]} of {r.mid_conversation[1]}" for r in asked_after))
        if asked_after[0].generic_answered:
            print("- follow-ups about the last answer (\"What is the worst case?\") answered, not declined: "
                  + ", ".join(f"{r.name} {r.generic_answered[0]} of {r.generic_answered[1]}"
                              for r in asked_after))

    splits = sorted({q.split for q in questions.answerable})
    if len(splits) > 1:
        counts = ", ".join(f"{s} {results[0].per_split[s].count}" for s in splits)
        print(f"\nBy split ({counts} questions; the question file's \"about\" says how each was written):\n")
        print("| configuration | " + " | ".join(f"{s} hit@1 | {s} hit@3 | {s} hit@5 | {s} MRR@10" for s in splits) + " |")
        print("|---" * (1 + 4 * len(splits)) + "|")
        for r in results:
            cells = " | ".join(f"{r.per_split[s].hit_at(1):.2f} | {r.per_split[s].hit_at(3):.2f} | "
                               f"{r.per_split[s].hit_at(5):.2f} | {r.per_split[s].mrr10:.2f}" for s in splits)
            print(f"| {r.name} | {cells} |")

    # the appliance's default: hybrid reranked by token-match, unless another reranker was asked for
    default = (f"{settings.retrieval.retrieval_mode} + {args.rerank_model}" if args.rerank_model == settings.retrieval.reranker_model
               else settings.retrieval.retrieval_mode)
    main_result = next((r for r in results if r.name == default),
                       next((r for r in results if r.name == settings.retrieval.retrieval_mode), results[-1]))
    print(f"\nPer book ({main_result.name}):\n")
    print("| book | questions | hit@3 | hit@5 | MRR@10 |\n|---|---|---|---|---|")
    for book, summary in sorted(main_result.per_book.items()):
        print(f"| {book[:48]} | {summary.count} | {summary.hit_at(3):.2f} | {summary.hit_at(5):.2f} "
              f"| {summary.mrr10:.2f} |")
    print(f"\nNot in the top 5 ({main_result.name}): {', '.join(main_result.misses) or 'none'}")

    print(f"\nRelevance gate ({main_result.name}): answer when the best passage's cosine similarity "
          f"reaches the threshold, or when the best keyword match holds >= "
          f"{settings.gate.keyword_gate_coverage:.0%} of the question's rarity-weighted words and the "
          f"similarity is >= {calibration.keyword_gate_min_similarity}; a question with a rare word the "
          f"materials never use needs similarity >= {calibration.unknown_word_similarity} "
          f"(calibration: {calibration.source}). "
          f"Configured threshold {threshold}; out-of-corpus declined / answerable refused:\n")
    print("| threshold | similarity only | + keyword evidence | + unknown rare words (default) |")
    print("|---|---|---|---|")
    for t in (0.25, 0.3, 0.35, 0.39, 0.4, 0.45, 0.5):
        cells = []
        for passes in (gate(t, keyword=False, unknown=False), gate(t, unknown=False), gate(t)):
            declined, refused = gate_outcome(main_result, passes)
            cells.append(f"{declined} of {n_ooc} / {refused} of {n}")
        print(f"| {t:.2f} | " + " | ".join(cells) + " |")
    with_unknown = [g for g in main_result.out_of_corpus_signals if g.unknown_words]
    answerable_unknown = [g for g in main_result.answerable_signals if g.unknown_words]
    print(f"\nWith a rare word the materials never use: {len(with_unknown)} of {n_ooc} out-of-corpus "
          f"questions, {len(answerable_unknown)} of {n} answerable"
          + (f" ({', '.join(w for g in answerable_unknown for w in g.unknown_words)})" if answerable_unknown
             else ""))
    answerable = sorted(main_result.answerable_signals, key=lambda g: g.similarity)[:4]
    outside = sorted(main_result.out_of_corpus_signals, key=lambda g: g.similarity)[-4:]
    print("lowest answerable (similarity, coverage): "
          + ", ".join(f"({g.similarity:.3f}, {g.coverage:.2f})" for g in answerable))
    print("highest out-of-corpus (similarity, coverage, unknown words): "
          + ", ".join(f"({g.similarity:.3f}, {g.coverage:.2f}, {'/'.join(g.unknown_words) or '-'})"
                      for g in outside))
    if args.report:
        write_report(args, results, lambda r: gate(threshold, keyword=r.name != "dense"))
        print(f"\nEvery question's rank, top 5 and gate inputs: {args.report}")
    if args.fit:
        fit_profile(args, settings, retriever, lambda t: gate_outcome(main_result, gate(t)), n)
    return 0


def fit_profile(args, settings, retriever, outcome_at, answerable: int) -> None:
    """--fit: the similarity cutoff fitted on these questions (the most out-of-corpus
    questions declined with at most 1 in 100 answerable ones refused), the other thresholds
    derived from the embedder's anchors; written where the backend looks."""
    from dataclasses import replace

    from app.retrieval.calibration import anchors, derive, fit_cutoff, write_profile

    grid = [round(0.05 + 0.01 * i, 2) for i in range(90)]
    cutoff = fit_cutoff({t: outcome_at(t) for t in grid}, answerable)
    profile = replace(derive(settings.embedding.embedding_model, *anchors(retriever.embedder.encode)),
                      similarity_cutoff=cutoff, source="fitted",
                      warning=None, measured_on=f"{args.corpus.name}, {args.questions.name}")
    path = write_profile(profile, settings.storage.models_path / "calibration")
    declined, refused = outcome_at(cutoff)
    print(f"\nFitted for {settings.embedding.embedding_model}: similarity cutoff {cutoff} ({declined} out-of-corpus "
          f"declined, {refused} of {answerable} answerable refused on these questions); written to {path}")


def write_report(args, results, gate_for) -> None:
    """The per-question record behind the tables, as JSON: for each configuration,
    each question's rank (null: not in the top 10), its top 5, the gate's inputs and
    whether the configured gate declined it."""
    from app.evaluation.runner import GateSignals

    configurations = {}
    for r in results:
        passes = gate_for(r)
        for d in r.details:
            if "similarity" not in d:  # declined by the chat's own path (mid-conversation): as it said
                continue
            d["declined"] = not passes(GateSignals(d["similarity"], d["keyword_coverage"],
                                                   tuple(d["unknown_words"])))
        configurations[r.name] = {
            "hit@1": r.overall.hit_at(1), "hit@3": r.overall.hit_at(3), "hit@5": r.overall.hit_at(5),
            "hit@10": r.overall.hit_at(10), "mrr@10": r.overall.mrr10, "questions": r.details,
        }
    report = {"questions_file": str(args.questions), "corpus": str(args.corpus), "configurations": configurations}
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
