"""The answer prompt: how excerpts are laid out for the LLM, and what gives way to the budget."""

import asyncio

from app.chat.prompt import build_prompt, format_excerpts
from app.conversations.store import Message
from app.retrieval.sources import Source


def source(number: int, text: str, page: int | None = 3, heading: str | None = None) -> Source:
    return Source(number, f"c-{number}", "lecture.pdf" if page else "notes.md", page, page, None, heading, 0.5, text)


async def count_words(text: str) -> int:
    return len(text.split())


def build(sources, history=(), window=10_000):
    return asyncio.run(build_prompt("Answer from the excerpts.", "What is chaining?", list(sources), list(history),
                                    count_words, context_window=window, answer_tokens=100))


def test_each_excerpt_is_named_by_its_number_and_place_and_its_text_is_fenced():
    text = format_excerpts([source(1, "Chaining keeps a list per bucket."), source(2, "Probing looks further.", None, "Hashing")])
    assert text == ('Excerpt [1], from lecture.pdf, p. 3:\n"""\nChaining keeps a list per bucket.\n"""\n\n'
                    'Excerpt [2], from notes.md › Hashing:\n"""\nProbing looks further.\n"""')


def test_no_line_starts_the_way_a_cited_statement_would():
    # "[6] (book.pdf, p. 3) ..." at a line start is what the packaged SmolLM2 went on
    # writing, inventing excerpts; no line of the prompt may show it that pattern.
    text = format_excerpts([source(n, f"Passage {n}.") for n in range(1, 6)])
    assert not [line for line in text.splitlines() if line.startswith("[")]


def test_the_question_comes_last_after_every_excerpt():
    prompt = build([source(1, "Chaining keeps a list per bucket."), source(2, "Probing looks further.")])
    turn = prompt.messages[-1]["content"]
    assert prompt.messages[0] == {"role": "system", "content": "Answer from the excerpts."}
    assert turn.index("Excerpt [1]") < turn.index("Excerpt [2]") < turn.index("Question: What is chaining?")
    assert turn.endswith("Question: What is chaining?")


def test_history_fills_what_the_excerpts_leave_newest_first():
    history = [Message("user", "first question"), Message("assistant", "first answer " + " ".join(["word"] * 40)),
               Message("user", "second question"), Message("assistant", "second answer")]
    sources = [source(n, f"Passage {n}.") for n in range(1, 5)]
    assert build(sources, history).history_used == 4
    bare = build(sources).prompt_tokens  # system prompt and the turn with all four excerpts
    tight = build(sources, history, window=100 + bare + 20)  # room for the last exchange only
    assert [s.number for s in tight.sources] == [1, 2, 3, 4] and tight.history_used == 2
    assert [m["content"] for m in tight.messages[1:3]] == ["second question", "second answer"]


def test_least_relevant_excerpts_give_way_when_the_question_does_not_fit():
    sources = [source(n, f"Passage {n}. " + " ".join(["word"] * 30)) for n in range(1, 5)]
    three = build(sources[:3]).prompt_tokens
    prompt = build(sources, [Message("user", "earlier"), Message("assistant", "reply")], window=100 + three + 5)
    assert [s.number for s in prompt.sources] == [1, 2, 3]  # the 4th, least relevant, went
    assert prompt.history_used == 0 and prompt.prompt_tokens <= three + 5
