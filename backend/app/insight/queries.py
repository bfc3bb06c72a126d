"""The insight report's SQL over the conversation store: turns, votes and cited pages.

Why columns, not the answers' JSON metadata: that holds the passages (kilobytes each),
and reading it for 10,000 turns took seconds, even with SQLite's JSON functions. The
store keeps each answer's outcome (`messages.finish_reason`) and its sources
(`answer_sources`) apart when it stores the turn. Nothing here reads who asked: owners
never leave the store.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

# The answers of a course in a period.
_ANSWERS = """
FROM messages a JOIN conversations c ON c.id = a.conversation_id
WHERE a.role = 'assistant' AND c.course = ? AND a.created_at >= ? AND a.created_at < ?
"""
# An answer with its question: the user message stored just before it in the same
# transaction (ConversationStore.add_turn) has the id before.
_TURNS = _ANSWERS.replace(
    "JOIN conversations", "JOIN messages u ON u.id = a.id - 1 AND u.conversation_id = a.conversation_id "
    "AND u.role = 'user' JOIN conversations", 1)


@dataclass(frozen=True)
class Period:
    course: str
    since: float  # unix seconds, inclusive
    until: float  # exclusive

    @property
    def params(self) -> tuple:
        return (self.course, self.since, self.until)


@dataclass
class UnhelpfulAnswer:
    question: str
    answer: str
    sources: list[str]  # where each passage came from ("book.pdf, p. 12")
    comments: list[str]
    votes_down: int
    at: float


def outcomes_per_day(db: sqlite3.Connection, period: Period, utc_offset_s: int = 0) -> list[tuple[str, int, int]]:
    """(day, questions, declined) per day with questions, oldest first."""
    sql = ("SELECT date(a.created_at + ?, 'unixepoch') AS day, COUNT(*), "
           "SUM(a.finish_reason = 'no_relevant_sources') " + _ANSWERS +
           " AND coalesce(a.finish_reason, '') != 'small_talk' GROUP BY day ORDER BY day")
    return [(day, asked, declined or 0) for day, asked, declined in db.execute(sql, (utc_offset_s, *period.params))]


def declined_questions(db: sqlite3.Connection, period: Period) -> list[str]:
    """The questions the chat declined as not covered by the materials."""
    sql = "SELECT u.content " + _TURNS + " AND a.finish_reason = 'no_relevant_sources'"
    return [row[0] for row in db.execute(sql, period.params)]


def unhelpful_answers(db: sqlite3.Connection, period: Period, limit: int = 200) -> list[UnhelpfulAnswer]:
    """Answers with a thumbs down, newest first, with their questions and comments."""
    sql = ("SELECT u.content, a.content, a.created_at, a.id, "
           "(SELECT json_group_array(s.file || coalesce(', p. ' || s.page, '')) FROM answer_sources s "
           "WHERE s.message_id = a.id), "
           "(SELECT COUNT(*) FROM feedback f WHERE f.message_id = a.id AND f.vote < 0), "
           "(SELECT json_group_array(f.comment) FROM feedback f WHERE f.message_id = a.id AND f.vote < 0 "
           "AND f.comment != '') " + _TURNS +
           " AND EXISTS (SELECT 1 FROM feedback f WHERE f.message_id = a.id AND f.vote < 0)"
           " ORDER BY a.created_at DESC LIMIT ?")
    return [UnhelpfulAnswer(q, a, json.loads(sources or "[]"), json.loads(comments or "[]"), downs, at)
            for q, a, at, _, sources, downs, comments in db.execute(sql, (*period.params, limit))]


def votes(db: sqlite3.Connection, period: Period) -> tuple[int, int]:
    """Thumbs up and thumbs down on the period's answers."""
    sql = ("SELECT coalesce(SUM(f.vote > 0), 0), coalesce(SUM(f.vote < 0), 0) FROM feedback f "
           "WHERE f.message_id IN (SELECT a.id " + _ANSWERS + ")")
    return tuple(db.execute(sql, period.params).fetchone())


def cited(db: sqlite3.Connection, period: Period) -> list[tuple[str, int | None, int, int]]:
    """(file, page, answers that showed it, answers that cited it) for every page the
    period's answers showed, the most cited first."""
    sql = ("SELECT file, page, COUNT(*) AS shown, SUM(cited) AS cited FROM answer_sources "
           "WHERE course = ? AND created_at >= ? AND created_at < ? GROUP BY file, page ORDER BY cited DESC, shown DESC")
    return [(f, p, shown, c) for f, p, shown, c in db.execute(sql, period.params)]
