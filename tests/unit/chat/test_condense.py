"""The follow-up rewrite: what the LLM is shown, and which of its replies are trusted."""

from app.chat.prompt import condense_messages, usable_rewrite
from app.conversations.store import Message


def test_short_query_is_accepted_and_trimmed():
    assert usable_rewrite('  "How do hash tables handle collisions?"\n') == "How do hash tables handle collisions?"


def test_first_line_is_the_query():
    assert usable_rewrite("Where is DNA stored in the cell?\n\n(I added the topic.)") == "Where is DNA stored in the cell?"


def test_an_answer_posing_as_a_query_is_refused():
    # what SmolLM2 writes when it continues the earlier answer instead of rewriting
    long_answer = ("The hash table is a data structure that maps keys to values using a hash function. "
                   "This allows for fast lookup of keys by their corresponding values, which is useful in many algorithms.")
    assert usable_rewrite(long_answer) is None
    assert usable_rewrite("Hash tables use chaining [1].") is None
    assert usable_rewrite("   \n  ") is None


def test_prompt_shows_the_earlier_turn_without_citation_markers():
    history = [Message("user", "What is a hash table?"), Message("assistant", "It maps keys to values [1, 2]. " + "x" * 900)]
    messages = condense_messages(history, "and collisions?")
    last = messages[-1]["content"]
    assert messages[0]["role"] == "system" and messages[-1]["role"] == "user"
    assert "Earlier question: What is a hash table?" in last and last.endswith("Follow-up: and collisions?")
    assert "[1" not in last and len(last) < 450
    # the worked examples alternate user / assistant so chat templates accept them
    assert [m["role"] for m in messages[1:-1]] == ["user", "assistant"] * 2
