"""Who is calling: the instructor, a student, or someone who has not yet given the code.

Why one place: every route asks this object (through the dependencies in
app/api/deps.py) and nothing else, so a rule changes once for the API and the page.

How a caller is known, strongest first:
- `Authorization: Bearer <instructor key>` or the signed instructor cookie: instructor;
- `Authorization: Bearer <access code>` or the signed access cookie (code mode), or
  nothing at all (open mode): student;
- the signed student cookie names which student, so each sees their own conversations.
  A client without it (curl) reaches a conversation only by its id.
A wrong key or code is refused (401), and counted per client address: past the limit,
every attempt from that address is refused for a while (429), right or wrong.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from app.access.audit import AuditLog
from app.access.keys import AccessKeys, fingerprint
from app.access.limits import AnswerGate, SlidingWindow, TooMany
from app.settings import Settings

STUDENT_COOKIE = "rag_student"
INSTRUCTOR_COOKIE = "rag_instructor"
ACCESS_COOKIE = "rag_access"

Role = Literal["instructor", "student", "locked"]


def _same(given: str | None, expected: str) -> bool:
    """Constant-time equality that also takes whatever bytes a client put in a cookie."""
    return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


class AccessDenied(Exception):
    """401 (no or wrong credentials) or 403 (known, but not allowed); one sentence."""

    def __init__(self, message: str, status: int = 401):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Caller:
    role: Role
    student_id: str | None  # from the student cookie; None for clients that keep no cookie
    address: str

    @property
    def is_instructor(self) -> bool:
        return self.role == "instructor"

    @property
    def rate_key(self) -> str:
        """Whom a per-person limit counts: the student, or else their address."""
        return f"s:{self.student_id}" if self.student_id else f"a:{self.address}"

    def may_open(self, owner: str | None) -> bool:
        """A conversation is the instructor's to see, its owner's, or (made by a client
        without a cookie) anyone's who knows its unguessable id."""
        return self.is_instructor or owner is None or owner == self.student_id


class AccessControl:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.keys = AccessKeys(settings.access.access_path, settings.access.access_code.get_secret_value()
                               if settings.access.access_code else None)
        self.failures = SlidingWindow(settings.access.key_attempts_limit, settings.access.key_attempts_window_s)
        self.questions = SlidingWindow(settings.access.questions_per_minute, 60)
        self.new_conversations = SlidingWindow(settings.access.new_conversations_per_minute, 60)
        self.address_questions = SlidingWindow(settings.access.address_questions_per_minute, 60)
        self.answers = AnswerGate(settings.access.max_concurrent_answers, settings.access.max_waiting_answers)
        self.audit = AuditLog(settings.access.audit_log_path)

    def prepare(self) -> None:
        """Create the key files now, so the start-up summary can show them."""
        self.keys.instructor_key, self.keys.cookie_secret  # noqa: B018 (read to create)
        if self.settings.access.student_access == "code":
            self.keys.access_code  # noqa: B018

    @property
    def code_required(self) -> bool:
        return self.settings.access.student_access == "code"

    # -- cookies ---------------------------------------------------------------
    def new_student_cookie(self) -> str:
        return self.keys.sign(secrets.token_hex(16))

    def student_from_cookie(self, value: str | None) -> str | None:
        return self.keys.unsign(value)

    def instructor_cookie(self) -> str:
        return self.keys.sign("i:" + fingerprint(self.keys.instructor_key))

    def access_cookie(self) -> str:
        return self.keys.sign("c:" + fingerprint(self.keys.access_code))

    # -- who is calling ------------------------------------------------------------
    def identify(self, authorization: str | None, cookies: dict[str, str], address: str,
                 any_key_is_a_student: bool = False) -> Caller:
        """`any_key_is_a_student`: in open mode, a key that is not the instructor's is a
        student's, not a wrong key: OpenAI clients must send some key, and in open mode a
        student needs none (it grants nothing that no key would, and it reveals nothing
        about the instructor key, whose wrong guesses count where instructor rights are asked)."""
        student_id = self.student_from_cookie(cookies.get(STUDENT_COOKIE))
        if authorization:
            scheme, _, token = authorization.partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                raise AccessDenied("Send the key as 'Authorization: Bearer <key>'.")
            if any_key_is_a_student and not self.code_required and not self.keys.is_instructor_key(token):
                return Caller("student", student_id, address)
            return Caller(self.check_secret(token, address), student_id, address)
        # The unlock cookies are deterministic signatures: a valid one equals the one we would set.
        if _same(cookies.get(INSTRUCTOR_COOKIE), self.instructor_cookie()):
            return Caller("instructor", student_id, address)
        if not self.code_required:
            return Caller("student", student_id, address)
        if _same(cookies.get(ACCESS_COOKIE), self.access_cookie()):
            return Caller("student", student_id, address)
        return Caller("locked", student_id, address)

    def check_secret(self, candidate: str, address: str) -> Role:
        """The role a key or code gives; wrong ones are counted against the address."""
        wait = self.failures.wait_s(address)
        if wait > 0:
            raise TooMany("Too many wrong keys or codes from this address. Try again later.", wait)
        if self.keys.is_instructor_key(candidate):
            return "instructor"
        if self.code_required and self.keys.is_access_code(candidate):
            return "student"
        self.failures.record(address)
        self.audit.record(address, "key rejected", outcome="refused")
        raise AccessDenied("That key or access code is not valid.")

    # -- limits ----------------------------------------------------------------------
    def count_question(self, caller: Caller, new_conversation: bool) -> None:
        """Per person: questions and new conversations per minute (raises TooMany). A
        client without the student cookie is counted by its address, under one larger
        budget of questions: scripts and harnesses start a conversation per question, and
        behind a proxy they all share one address."""
        if caller.is_instructor:
            return
        if caller.student_id is None:
            wait = self.address_questions.take(caller.rate_key)
            if wait > 0:
                raise TooMany(f"This address has asked {self.address_questions.limit} questions in the last "
                              "minute. Please wait a moment before the next one.", wait)
            return
        if new_conversation:
            wait = self.new_conversations.wait_s(caller.rate_key)
            if wait > 0:
                raise TooMany(f"You have started {self.new_conversations.limit} conversations in the last "
                              "minute. Continue one of them, or wait a moment.", wait)
        wait = self.questions.take(caller.rate_key)
        if wait > 0:
            raise TooMany(f"You have asked {self.questions.limit} questions in the last minute. "
                          "Please wait a moment before the next one.", wait)
        if new_conversation:
            self.new_conversations.record(caller.rate_key)
