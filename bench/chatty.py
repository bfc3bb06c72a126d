"""What a chatty message costs retrieval over the bare question, on real books.

    python bench/chatty.py [--questions 24] [--rounds 4]

"Hi! I'm revising for the exam tomorrow. <question>? Thanks a lot!": the chatter check
embeds and searches each clause to keep only the question (app/retrieval/chatter.py). On
the textbooks' evaluation database (built by `python -m app.evaluation`, or here on first
use, ~2.5 minutes), real vectors: bench/chat.py's random vectors make every clause look
like chatter, so nothing is kept there. Three ways taking turns, so the machine's noise falls
on all: the bare question; the chatty message as the retriever runs it (the kept
question's vector, embedded with the clauses, is searched with); and the same with that
vector thrown away, so the question is embedded again (as the retriever once did).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=4)
    options = parser.parse_args()

    from app.evaluation.__main__ import DEFAULT_QUESTIONS, corpus_retriever, parse_args
    from app.settings import Settings

    args = parse_args([])
    settings = Settings(_env_file=None, milvus_uri=str(args.db), collection_name="eval", embedding_device="cpu")
    retriever = corpus_retriever(args, settings)
    retriever.prepare()
    store = retriever.store
    understanding = retriever.understanding
    reuse = understanding.question_and_vector

    def embed_again(message):
        return reuse(message)[0], None

    questions = [q["question"] for q in json.loads(DEFAULT_QUESTIONS.read_text())["answerable"]]
    questions = questions[:options.questions]
    chatty = [f"Hi! I'm revising for the exam tomorrow. {q[0].upper()}{q[1:]}? Thanks a lot!" for q in questions]
    times: dict[str, list[float]] = {"bare question": [], "chatty, question embedded again": [],
                                      "chatty, clause vector reused (default)": []}
    kept_whole = 0
    for round_ in range(options.rounds + 1):  # round 0 warms up
        for question, message in zip(questions, chatty):
            for name, text, split in (("bare question", question, reuse),
                                      ("chatty, question embedded again", message, embed_again),
                                      ("chatty, clause vector reused (default)", message, reuse)):
                understanding.question_and_vector = split
                t = time.perf_counter()
                found = retriever.search(text)
                if round_:
                    times[name].append((time.perf_counter() - t) * 1000)
                if round_ and name.endswith("(default)"):
                    kept_whole += found.search_text == f"{question[0].upper()}{question[1:]}?"
    del understanding.question_and_vector  # the method again
    bare = statistics.median(times["bare question"])
    print(f"\n{options.questions} questions x {options.rounds} rounds, {store.count():,} chunks; "
          f"the question kept alone in {kept_whole} of {len(times['bare question'])} chatty messages\n")
    print("| message | retrieval p50 ms | p95 ms | p50 / bare |")
    print("|---|---|---|---|")
    for name, values in times.items():
        values = sorted(values)
        p95 = values[int(0.95 * (len(values) - 1))]
        print(f"| {name} | {statistics.median(values):.1f} | {p95:.1f} | {statistics.median(values) / bare:.2f}x |")


if __name__ == "__main__":
    main()
