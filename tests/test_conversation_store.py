"""The conversation store on both engines: the SQLite file and a real PostgreSQL server.

Every case runs on each; the insight report's SQL is checked to read the same figures
from both; the PostgreSQL cases add what only a shared server brings: two stores (two
backends) racing for one conversation, a server that is down.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from postgres_server import postgres, postgres_url  # noqa: F401 (fixtures)

ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(params=ENGINES)
def open_store(request, tmp_path):
    """Opens stores on one database of the engine under test (call it twice: two backends)."""
    from app.conversations.store import ConversationStore

    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    opened = []

    def open_one():
        store = ConversationStore(tmp_path / "conversations.sqlite3", url=url)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


def _turn(question: str, answer: str, finish_reason: str = "stop", sources=(), cited=()):
    from app.conversations.store import Message

    meta = {"finish_reason": finish_reason, "cited": list(cited),
            "sources": [{"number": i + 1, "file": f, "page_start": p} for i, (f, p) in enumerate(sources)]}
    return Message("user", question, 3), Message("assistant", answer, 5, meta=meta)


def test_turns_conversations_and_owners(open_store):
    from app.conversations.store import NotYours

    store = open_store()
    first = asyncio.run(store.add_turn("c-1", *_turn("What is a hash table?", "A table [1]."), owner="ann"))
    asyncio.run(store.add_turn("c-1", *_turn("And its load factor?", "Entries per bucket."), owner="ann"))
    asyncio.run(store.add_turn("c-2", *_turn("Sorting?", "Ordering."), owner="bob"))

    conversation = asyncio.run(store.get("c-1"))
    assert (conversation.title, conversation.owner, conversation.message_count, conversation.course) == (
        "What is a hash table?", "ann", 4, "main")
    messages = asyncio.run(store.messages("c-1"))
    assert [m.role for m in messages] == ["user", "assistant"] * 2
    assert messages[1].id == first and messages[1].meta["finish_reason"] == "stop"
    assert messages[2].content == "And its load factor?"

    page, total = asyncio.run(store.list(owner="ann"))
    assert total == 1 and [c.id for c in page] == ["c-1"]
    assert asyncio.run(store.list()) == ([], 0)
    page, total = asyncio.run(store.list(everyone=True, limit=1))
    assert total == 2 and [c.id for c in page] == ["c-2"]  # newest first, one per page

    with pytest.raises(NotYours):  # someone else's: nothing is written
        asyncio.run(store.add_turn("c-1", *_turn("Mine now?", "No."), owner="bob"))
    with pytest.raises(NotYours):  # the same id in another course
        asyncio.run(store.add_turn("c-1", *_turn("Here?", "No."), owner="ann", course="physics"))
    assert asyncio.run(store.get("c-1")).message_count == 4

    regenerated = asyncio.run(store.add_turn("c-1", *_turn("And its load factor?", "n / m."), owner="ann",
                                             replaces=[messages[2].id, messages[3].id]))
    assert [m.content for m in asyncio.run(store.messages("c-1"))][2:] == ["And its load factor?", "n / m."]
    assert regenerated > first

    assert asyncio.run(store.rename("c-1", "  Hashing  ")) and asyncio.run(store.get("c-1")).title == "Hashing"
    assert asyncio.run(store.delete("c-1")) and asyncio.run(store.get("c-1")) is None
    assert asyncio.run(store.messages("c-1")) == [] and not asyncio.run(store.delete("c-1"))


def test_feedback_one_vote_per_voter(open_store):
    store = open_store()
    answer = asyncio.run(store.add_turn("c-1", *_turn("Q?", "A."), owner="ann"))
    assert asyncio.run(store.answer_in("c-1", answer)) and not asyncio.run(store.answer_in("c-1", answer - 1))
    asyncio.run(store.vote(answer, "ann", 1))
    asyncio.run(store.vote(answer, "ann", -1, "wrong page"))
    asyncio.run(store.vote(answer, "bob", 1))
    assert asyncio.run(store.votes("c-1", "ann")) == {answer: (-1, "wrong page")}
    assert asyncio.run(store.unvote(answer, "bob")) and not asyncio.run(store.unvote(answer, "bob"))
    assert asyncio.run(store.votes("c-1", "bob")) == {}


def _insight(store):
    from app.insight import queries

    period = queries.Period("main", 0, 4e9)
    return asyncio.run(store.read(lambda db: (
        queries.outcomes_per_day(db, period), queries.declined_questions(db, period), queries.votes(db, period),
        [(u.question, u.answer, u.sources, u.comments, u.votes_down) for u in queries.unhelpful_answers(db, period)],
        queries.cited(db, period))))


def test_the_insight_report_reads_the_same_from_both_engines(tmp_path, postgres_url):  # noqa: F811
    from app.conversations.store import ConversationStore

    figures = []
    for url in (None, postgres_url):
        store = ConversationStore(tmp_path / "insight.sqlite3", url=url)
        try:
            asyncio.run(store.add_turn("c-1", *_turn("What is hashing?", "Mapping [1].",
                                                     sources=[("a.pdf", 3), ("b.md", None)], cited=[1]), owner="ann"))
            answer = asyncio.run(store.add_turn("c-1", *_turn("Who won the cup?", "Not in the materials.",
                                                              finish_reason="no_relevant_sources"), owner="ann"))
            other = asyncio.run(store.add_turn("c-2", *_turn("Heaps?", "Trees [1].", sources=[("a.pdf", 3)], cited=[1]),
                                               owner="bob"))
            asyncio.run(store.vote(other, "bob", -1, "too short"))
            asyncio.run(store.vote(other, "ann", -1))
            asyncio.run(store.vote(answer, "ann", 1))
            figures.append(_insight(store))
        finally:
            store.close()
    sqlite_figures, postgres_figures = figures
    assert postgres_figures == sqlite_figures
    days, declined, votes, unhelpful, cited = sqlite_figures
    assert len(days) == 1 and days[0][1:] == (3, 1)
    assert declined == ["Who won the cup?"] and votes == (1, 2)
    assert unhelpful == [("Heaps?", "Trees [1].", ["a.pdf, p. 3"], ["too short"], 2)]
    assert cited == [("a.pdf", 3, 2, 2), ("b.md", None, 1, 0)]


def test_two_backends_racing_for_one_new_conversation_never_share_it(postgres_url):  # noqa: F811
    """Two stores on one server, as two backends: clients that picked the same new id at the
    same moment never write into each other's conversation."""
    from app.conversations.store import ConversationStore, NotYours

    stores = [ConversationStore(None, url=postgres_url) for _ in range(2)]
    try:
        for round_ in range(10):
            conversation_id = f"race-{round_}"
            outcomes: dict[str, str] = {}
            start = threading.Barrier(2)

            def add(store, owner):
                start.wait()
                try:
                    asyncio.run(store.add_turn(conversation_id, *_turn(f"{owner} asks", f"to {owner}"), owner=owner))
                    outcomes[owner] = "stored"
                except NotYours:
                    outcomes[owner] = "not yours"

            threads = [threading.Thread(target=add, args=(store, owner)) for store, owner in zip(stores, ("ann", "bob"))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(outcomes.values()) == ["not yours", "stored"]
            winner = next(owner for owner, outcome in outcomes.items() if outcome == "stored")
            conversation = asyncio.run(stores[0].get(conversation_id))
            assert conversation.owner == winner and conversation.message_count == 2
            assert [m.content for m in asyncio.run(stores[1].messages(conversation_id))] == [
                f"{winner} asks", f"to {winner}"]
    finally:
        for store in stores:
            store.close()


def test_a_server_that_is_down_is_named_without_its_password(postgres):  # noqa: F811
    from app.conversations.database import StoreUnavailable
    from app.conversations.store import ConversationStore
    from backend_fixtures import free_port

    url = f"postgresql://appliance:s3cret-pw@127.0.0.1:{free_port()}/appliance"
    store = ConversationStore(None, url=url)  # opens: the server may come up later
    try:
        with pytest.raises(StoreUnavailable) as raised:
            asyncio.run(store.list(owner="ann"))
        message = str(raised.value)
        assert f"postgresql://appliance@127.0.0.1:{url.split(':')[3].split('/')[0]}/appliance" in message
        assert "s3cret-pw" not in message
    finally:
        store.close()


def test_a_server_that_comes_back_serves_again_and_a_failed_turn_writes_nothing():
    """The store outlives its server: calls fail while it is down (nothing half-written) and
    work again once it is back, with no restart of the backend."""
    from app.conversations.database import StoreUnavailable
    from app.conversations.store import ConversationStore
    from postgres_server import PostgresServer

    server = PostgresServer()
    url = server.start()
    store = ConversationStore(None, url=url)
    try:
        asyncio.run(store.add_turn("c-1", *_turn("Before?", "Yes."), owner="ann"))
        server.stop()
        with pytest.raises(StoreUnavailable):
            asyncio.run(store.add_turn("c-1", *_turn("During?", "No."), owner="ann"))
        server.start_again()
        asyncio.run(store.add_turn("c-1", *_turn("After?", "Yes."), owner="ann"))
        assert [m.content for m in asyncio.run(store.messages("c-1"))] == ["Before?", "Yes.", "After?", "Yes."]
    finally:
        store.close()
        server.remove()


def test_a_pods_conversations_move_to_postgresql(tmp_path, postgres_url):  # noqa: F811
    """`python -m app.conversations.migrate --to URL`: the history, votes and ids come along,
    and new turns continue after them; a second copy into the same database is refused."""
    import os
    import subprocess
    import sys

    from app.conversations.store import ConversationStore
    from conftest import BACKEND

    path = tmp_path / "pod.sqlite3"
    pod = ConversationStore(path)
    asyncio.run(pod.add_turn("c-1", *_turn("What is hashing?", "Mapping [1].", sources=[("a.pdf", 3)], cited=[1]),
                             owner="ann"))
    answer = asyncio.run(pod.add_turn("c-2", *_turn("Heaps?", "Trees."), owner="bob"))
    asyncio.run(pod.vote(answer, "bob", -1, "too short"))
    before = _insight(pod), asyncio.run(pod.list(everyone=True)), asyncio.run(pod.messages("c-2"))
    pod.close()

    env = {**os.environ, "RAG_CONVERSATIONS_DB": str(path)}
    moved = subprocess.run([sys.executable, "-m", "app.conversations.migrate", "--to", postgres_url], cwd=BACKEND,
                           env=env, capture_output=True, text=True, timeout=120)
    assert moved.returncode == 0, moved.stderr
    assert "Done: 2 conversations, 4 messages; the counts match." in moved.stdout

    shared = ConversationStore(None, url=postgres_url)
    try:
        after = _insight(shared), asyncio.run(shared.list(everyone=True)), asyncio.run(shared.messages("c-2"))
        assert after == before
        assert asyncio.run(shared.votes("c-2", "bob")) == {answer: (-1, "too short")}
        assert asyncio.run(shared.add_turn("c-2", *_turn("And tries?", "Also trees."), owner="bob")) > answer
    finally:
        shared.close()
    again = subprocess.run([sys.executable, "-m", "app.conversations.migrate", "--to", postgres_url], cwd=BACKEND,
                           env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "already holds conversations" in again.stderr and "Traceback" not in again.stderr


def test_a_backend_whose_postgresql_goes_down_says_so_and_keeps_nothing_half_written(tmp_path, llm, embedder):
    """Through the API: conversations on PostgreSQL; the server stops: /api/ready names the
    problem, a question gets 503 naming the server (no password, no trace) and stores
    nothing; the server returns: the conversation carries on where it was."""
    import httpx

    from backend_fixtures import BackendServer, sample_course_settings
    from conftest import IngestHarness
    from postgres_server import PostgresServer

    server = PostgresServer()
    url = server.start().replace("appliance@", "appliance:pw-never-shown@")
    settings = sample_course_settings(tmp_path, llm.url, llm_max_tokens=24, conversations_url=url)
    harness = IngestHarness(settings, embedder)
    harness.run(settings.storage.materials_path)
    harness.close()
    backend = BackendServer(settings, embedder)
    try:
        student = httpx.Client(base_url=backend.url, timeout=120)
        assert student.get("/api/health").status_code == 200
        first = student.post("/api/chat", json={"message": "What is a hash table?"}).json()
        conversation = first["conversation_id"]
        assert student.get("/api/ready").json()["ready"]

        server.stop()
        ready = student.get("/api/ready")
        assert ready.status_code == 503 and "conversations: not reachable" in ready.json()["problems"]
        asked = student.post("/api/chat", json={"message": "How are collisions handled?",
                                                "conversation_id": conversation})
        assert asked.status_code == 503 and "Traceback" not in asked.text
        assert "postgresql://appliance@127.0.0.1" in asked.json()["detail"] and "pw-never-shown" not in asked.text
        listed = student.get("/api/conversations")
        assert listed.status_code == 503

        time.sleep(16)  # down longer than reconnects that back off (1, 2, 4, 8 s) would forgive
        server.start_again()
        history = student.get(f"/api/conversations/{conversation}").json()
        assert [m["role"] for m in history["messages"]] == ["user", "assistant"]  # nothing from the failed turn
        again = student.post("/api/chat", json={"message": "How are collisions handled?",
                                                "conversation_id": conversation})
        assert again.status_code == 200
        assert len(student.get(f"/api/conversations/{conversation}").json()["messages"]) == 4
    finally:
        backend.stop()
        server.remove()
