"""The insight report's SQL over the conversation store: turns, votes and cited pages.

Why columns, not the answers' JSON metadata: that holds the passages (kilobytes each),
and reading it for 10,000 turns took seconds, even with SQLite's JSON functions. The
store keeps each answer's outcome (`messages.finish_reason`) and its sources
(`answer_sources`) apart when it stores the turn. Nothing here reads who asked: owners
never leave the store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from app.conversations.database import Connection

# The answers of a course in a period.
_ANSWERS = """
FROM messages a JOIN conversations c ON c.id = a.conversation_id
WHERE a.role = 'assistant' AND c.course = ? AND a.created_at >= ? AND a.created_at < ?
"""
# An answer with its question: the conversation's message stored just before it, in the
# same transaction (ConversationStore.add_turn). Not `a.id - 1`: on PostgreSQL two backends
# storing turns at once draw ids from one sequence, interleaved.
_TURNS = _ANSWERS.replace(
    "JOIN conversations", "JOIN messages u ON u.id = (SELECT MAX(p.id) FROM messages p WHERE "
    "p.conversation_id = a.conversation_id AND p.id < a.id) AND u.role = 'user' JOIN conversations", 1)


def _day(db: Connection, seconds: str) -> str:
    """The UTC date (YYYY-MM-DD) of a unix time, in the engine's words."""
    if db.dialect == "postgresql":
        return f"to_char(to_timestamp({seconds}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    return f"date({seconds}, 'unixepoch')"


def _json_list(db: Connection, expression: str) -> str:
    """The values of `expression` over a group, as a JSON array."""
    return f"{'json_agg' if db.dialect == 'postgresql' else 'json_group_array'}({expression})"


def _as_list(value) -> list:
    """A JSON array as the engine returns it: text from SQLite, a list from PostgreSQL."""
    if value is None:
        return []
    return json.loads(value) if isinstance(value, str) else list(value)


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


def outcomes_per_day(db: Connection, period: Period, utc_offset_s: int = 0) -> list[tuple[str, int, int]]:
    """(day, questions, declined) per day with questions, oldest first."""
    sql = (f"SELECT {_day(db, 'a.created_at + ?')} AS day, COUNT(*), "
           "SUM(CASE WHEN a.finish_reason = 'no_relevant_sources' THEN 1 ELSE 0 END) " + _ANSWERS +
           " AND coalesce(a.finish_reason, '') != 'small_talk' GROUP BY day ORDER BY day")
    return [(day, asked, declined or 0) for day, asked, declined in db.execute(sql, (utc_offset_s, *period.params))]


def declined_questions(db: Connection, period: Period) -> list[str]:
    """The questions the chat declined as not covered by the materials."""
    sql = "SELECT u.content " + _TURNS + " AND a.finish_reason = 'no_relevant_sources'"
    return [row[0] for row in db.execute(sql, period.params)]


def unhelpful_answers(db: Connection, period: Period, limit: int = 200) -> list[UnhelpfulAnswer]:
    """Answers with a thumbs down, newest first, with their questions and comments."""
    where_from = _json_list(db, "s.file || coalesce(', p. ' || s.page, '')")
    sql = ("SELECT u.content, a.content, a.created_at, a.id, "
           f"(SELECT {where_from} FROM answer_sources s WHERE s.message_id = a.id), "
           "(SELECT COUNT(*) FROM feedback f WHERE f.message_id = a.id AND f.vote < 0), "
           f"(SELECT {_json_list(db, 'f.comment')} FROM feedback f WHERE f.message_id = a.id AND f.vote < 0 "
           "AND f.comment != '') " + _TURNS +
           " AND EXISTS (SELECT 1 FROM feedback f WHERE f.message_id = a.id AND f.vote < 0)"
           " ORDER BY a.created_at DESC LIMIT ?")
    return [UnhelpfulAnswer(q, a, _as_list(sources), _as_list(comments), downs, at)
            for q, a, at, _, sources, downs, comments in db.execute(sql, (*period.params, limit))]


def votes(db: Connection, period: Period) -> tuple[int, int]:
    """Thumbs up and thumbs down on the period's answers."""
    sql = ("SELECT COUNT(CASE WHEN f.vote > 0 THEN 1 END), COUNT(CASE WHEN f.vote < 0 THEN 1 END) FROM feedback f "
           "WHERE f.message_id IN (SELECT a.id " + _ANSWERS + ")")
    return tuple(db.execute(sql, period.params).fetchone())


def cited(db: Connection, period: Period) -> list[tuple[str, int | None, int, int]]:
    """(file, page, answers that showed it, answers that cited it) for every page the
    period's answers showed, the most cited first."""
    sql = ("SELECT file, page, COUNT(*) AS shown, SUM(cited) AS cited FROM answer_sources "
           "WHERE course = ? AND created_at >= ? AND created_at < ? GROUP BY file, page ORDER BY cited DESC, shown DESC")
    return [(f, p, shown, c) for f, p, shown, c in db.execute(sql, period.params)]
