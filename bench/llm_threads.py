"""How fast the CPU LLM answers with llama_cpp.server's default threads and with the
appliance's (one per physical core, app/cpus.py), in the same run.

    python bench/llm_threads.py [--rounds 3] [--max-tokens 128]

The packaged SmolLM2 through llama-cpp-python (the engine llama_cpp.server runs), a
course-sized prompt (~600 tokens of the sample course), the two settings taking turns each
round so that the machine's noise falls on both. Prints prompt and decode tokens/s and the
time to the first token, p50 over the rounds, and the ratio of the two.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "backend"), str(ROOT / "tests")]


def course_prompt(words: int = 420) -> str:
    text = " ".join(p.read_text() for p in sorted((ROOT / "course_materials").rglob("*.md")))
    excerpt = " ".join(text.split()[:words])
    return f"Answer from these excerpts.\n\n{excerpt}\n\nQuestion: What is a hash table?\nAnswer:"


def measure(model_path: str, threads: int, batch_threads: int, prompt: str, max_tokens: int) -> dict:
    from llama_cpp import Llama

    llm = Llama(model_path=model_path, n_ctx=4096, n_threads=threads, n_threads_batch=batch_threads,
                verbose=False, seed=7)
    started = time.perf_counter()
    first = None
    tokens = 0
    prompt_tokens = len(llm.tokenize(prompt.encode()))
    for _ in llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, stream=True):
        now = time.perf_counter()
        first = first or now
        tokens += 1
    ended = time.perf_counter()
    del llm
    return {"ttft_s": first - started, "prompt_tps": prompt_tokens / (first - started),
            "decode_tps": (tokens - 1) / (ended - first) if tokens > 1 else 0.0, "tokens": tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()

    from app.cpus import usable_cores
    from backend_fixtures import smollm2_path

    cpus, cores = multiprocessing.cpu_count(), usable_cores()
    configs = {
        f"llama_cpp.server default ({max(cpus // 2, 1)} decode, {cpus} prompt threads)": (max(cpus // 2, 1), cpus),
        f"appliance ({cores} per physical core, both)": (cores, cores),
    }
    prompt = course_prompt()
    runs: dict[str, list[dict]] = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name, (threads, batch) in configs.items():
            runs[name].append(measure(str(smollm2_path()), threads, batch, prompt, args.max_tokens))

    print(f"\nSmolLM2-135M on the CPU, {args.rounds} rounds, {runs[next(iter(runs))][0]['tokens']} tokens "
          f"generated, {cpus} CPUs\n")
    print("| threads | prompt tokens/s | first token s | decode tokens/s |\n|---|---|---|---|")
    medians = {}
    for name, measured in runs.items():
        m = {key: statistics.median(r[key] for r in measured) for key in ("prompt_tps", "ttft_s", "decode_tps")}
        medians[name] = m
        print(f"| {name} | {m['prompt_tps']:.0f} | {m['ttft_s']:.2f} | {m['decode_tps']:.1f} |")
    base, ours = medians.values()
    print(f"| ratio, appliance / default | {ours['prompt_tps'] / base['prompt_tps']:.2f}x | "
          f"{ours['ttft_s'] / base['ttft_s']:.2f}x | {ours['decode_tps'] / base['decode_tps']:.2f}x |")


if __name__ == "__main__":
    main()
