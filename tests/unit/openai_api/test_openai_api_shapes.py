"""The OpenAI-compatible endpoint's pure parts: reading the conversation a client sends,
and the shapes of what goes back. No server, no model."""

from __future__ import annotations

import pytest

from app.chat.service import SMALL_TALK_REPLY, ChatService
from app.openai_api.conversation import NoQuestion, question_and_history
from app.openai_api.responses import Completion, rag_field, sources_text
from app.openai_api.schemas import ChatMessage
from app.settings import Settings


@pytest.fixture
def chat() -> ChatService:
    return ChatService(Settings(_env_file=None), retriever=None, llm=None, store=None)


def messages(*pairs) -> list[ChatMessage]:
    return [ChatMessage(role=role, content=content) for role, content in pairs]


def test_the_last_user_message_is_the_question_and_system_messages_go(chat):
    question, history = question_and_history(messages(
        ("system", "Answer like a pirate."), ("user", "What is a hash table?"),
        ("assistant", "A map from keys to values [1].\n\nSources:\n[1] notes.pdf, p. 2"),
        ("tool", "ignored"), ("user", [{"type": "text", "text": "and its worst case?"}, {"type": "image_url"}]),
    ), chat)
    assert question == "and its worst case?"
    assert [(m.role, m.content) for m in history] == [
        ("user", "What is a hash table?"), ("assistant", "A map from keys to values [1].")]


@pytest.mark.parametrize("reply, kind", [
    (SMALL_TALK_REPLY, "small_talk"),
    ("The course materials never mention \u201cRust\u201d, so I can't answer this from them.", "no_relevant_sources"),
    ("Nothing has been ingested yet, so there are no course materials to answer from.", "no_relevant_sources"),
    ("A stack is last in, first out [1].", None),
])
def test_the_chats_own_replies_are_known_again(chat, reply, kind):
    _, history = question_and_history(messages(("user", "q"), ("assistant", reply), ("user", "next")), chat)
    assert history[-1].meta.get("finish_reason") == kind


def test_the_configured_decline_is_known_again():
    chat = ChatService(Settings(_env_file=None, no_answer_message="Not in the notes."), None, None, None)
    _, history = question_and_history(messages(("user", "q"), ("assistant", "Not in the notes."), ("user", "n")), chat)
    assert history[-1].meta["finish_reason"] == "no_relevant_sources"


@pytest.mark.parametrize("sent", [
    [("user", "q"), ("assistant", "a")],
    [("user", "   ")],
    [("user", None)],
])
def test_a_conversation_must_end_with_a_question(chat, sent):
    with pytest.raises(NoQuestion):
        question_and_history(messages(*sent), chat)


SOURCES = [{"number": 1, "location": "a.pdf, p. 2"}, {"number": 2, "location": "b.md › Intro"}]


@pytest.mark.parametrize("done, listed", [
    ({"sources": SOURCES, "cited": [2], "finish_reason": "stop"}, "\n\nSources:\n[2] b.md › Intro"),
    ({"sources": SOURCES, "cited": [], "finish_reason": "stop"}, "\n\nSources:\n[1] a.pdf, p. 2\n[2] b.md › Intro"),
    ({"sources": [], "cited": [], "finish_reason": "no_relevant_sources"}, ""),
    ({"sources": SOURCES, "cited": [], "finish_reason": "small_talk"}, ""),
])
def test_the_sources_appended_for_text_only_clients(done, listed):
    assert sources_text(done) == listed


def test_a_decline_is_marked_and_ends_as_stop():
    done = {"answer": "Not there.", "sources": [], "cited": [], "finish_reason": "no_relevant_sources",
            "usage": {"prompt_tokens": 0, "completion_tokens": 0}, "timings": {}}
    whole = Completion("main").whole("Not there.", done)
    assert whole["choices"][0]["finish_reason"] == "stop" and whole["object"] == "chat.completion"
    assert whole["rag"]["declined"] and whole["rag"]["outcome"] == "declined"
    assert whole["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert rag_field({**done, "finish_reason": "length"})["outcome"] == "answered"


def test_every_chunk_of_a_stream_shares_its_id():
    completion = Completion("bio")
    first, last = completion.chunk({"role": "assistant", "content": ""}), completion.final_chunk(
        {"finish_reason": "length", "sources": []})
    assert first["id"] == last["id"] and first["created"] == last["created"] and last["model"] == "bio"
    assert last["choices"][0]["finish_reason"] == "length" and "rag" in last
    assert completion.usage_chunk({"usage": {"completion_tokens": 3}})["choices"] == []
