"""The access layer's pure parts: keys, cookies, limits, origins and document paths.
No server, no model: these run in a second."""

from __future__ import annotations

import asyncio
import stat

import pytest

from app.access.control import AccessControl, AccessDenied, Caller
from app.access.keys import ACCESS_CODE, INSTRUCTOR_KEY, AccessKeys, rotate
from app.access.limits import AnswerGate, SlidingWindow, TooMany
from app.access.middleware import cookies_of, foreign_origin
from app.documents.service import UploadRejected, check_document_path


def access_settings(tmp_path, **extra):
    from app.settings import Settings

    return Settings(_env_file=None, access_dir=tmp_path / "access", audit_log=tmp_path / "audit.log", **extra)


def test_keys_are_made_once_private_and_kept(tmp_path):
    first = AccessKeys(tmp_path / "access")
    key = first.instructor_key
    assert len(key) >= 40
    mode = stat.S_IMODE((tmp_path / "access" / INSTRUCTOR_KEY).stat().st_mode)
    assert mode == 0o600
    assert AccessKeys(tmp_path / "access").instructor_key == key  # a restart keeps it
    rotated = rotate(tmp_path / "access", INSTRUCTOR_KEY)
    assert rotated != key and first.instructor_key == rotated  # a running backend sees the new key
    assert stat.S_IMODE((tmp_path / "access" / INSTRUCTOR_KEY).stat().st_mode) == 0o600


def test_access_code_is_easy_to_type_and_forgiving_of_case(tmp_path):
    keys = AccessKeys(tmp_path)
    code = keys.access_code
    assert len(code) == 10 and not set(code) & set("0o1lI")
    assert keys.is_access_code(f"  {code.upper()} ") and not keys.is_access_code(code[:-1])
    assert (tmp_path / ACCESS_CODE).exists()
    assert AccessKeys(tmp_path, configured_code="Chem101").access_code == "Chem101"


def test_signed_values_refuse_tampering(tmp_path):
    keys = AccessKeys(tmp_path)
    signed = keys.sign("abc")
    assert keys.unsign(signed) == "abc"
    value, _, tag = signed.rpartition(".")
    for forged in ("abd." + tag, value + "." + "0" * len(tag), "abc", "", None, "x" * 600):
        assert keys.unsign(forged) is None, forged
    assert AccessKeys(tmp_path / "other").unsign(signed) is None  # another appliance's cookie


def test_identify_roles(tmp_path):
    control = AccessControl(access_settings(tmp_path))
    key = control.keys.instructor_key
    student_cookie = control.new_student_cookie()
    sid = control.student_from_cookie(student_cookie)
    assert control.identify(None, {}, "1.2.3.4") == Caller("student", None, "1.2.3.4")
    assert control.identify(None, {"rag_student": student_cookie}, "a").student_id == sid
    assert control.identify(f"Bearer {key}", {}, "a").role == "instructor"
    assert control.identify(None, {"rag_instructor": control.instructor_cookie()}, "a").role == "instructor"
    with pytest.raises(AccessDenied):
        control.identify("Bearer wrong", {}, "a")
    with pytest.raises(AccessDenied):
        control.identify(f"Basic {key}", {}, "a")
    odd = {"rag_instructor": "é\u2603.x", "rag_student": "é.ü"}  # whatever a client sends
    assert control.identify(None, odd, "a") == Caller("student", None, "a")
    # a cookie made before the key was rotated no longer unlocks anything
    old = control.instructor_cookie()
    rotate(tmp_path / "access", INSTRUCTOR_KEY)
    assert control.identify(None, {"rag_instructor": old}, "a").role == "student"


def test_code_mode_locks_until_the_code_is_given(tmp_path):
    control = AccessControl(access_settings(tmp_path, student_access="code"))
    code = control.keys.access_code
    assert control.identify(None, {}, "a").role == "locked"
    assert control.identify(f"Bearer {code}", {}, "a").role == "student"
    assert control.identify(None, {"rag_access": control.access_cookie()}, "a").role == "student"
    open_control = AccessControl(access_settings(tmp_path / "open"))
    with pytest.raises(AccessDenied):  # in open mode there is no code to give
        open_control.identify(f"Bearer {open_control.keys.access_code}", {}, "a")


def test_wrong_keys_lock_out_the_address_even_for_the_right_key(tmp_path):
    control = AccessControl(access_settings(tmp_path, key_attempts_limit=3))
    for _ in range(3):
        with pytest.raises(AccessDenied):
            control.check_secret("guess", "9.9.9.9")
    with pytest.raises(TooMany) as refused:
        control.check_secret(control.keys.instructor_key, "9.9.9.9")
    assert refused.value.retry_after_s > 0
    assert control.check_secret(control.keys.instructor_key, "8.8.8.8") == "instructor"  # others unaffected
    assert [e["action"] for e in control.audit.entries()] == ["key rejected"] * 3


@pytest.mark.parametrize("owner, student_id, role, allowed", [
    ("s1", "s1", "student", True),
    ("s1", "s2", "student", False),
    ("s1", None, "student", False),
    (None, "s2", "student", True),   # started without a cookie: its id is the key
    ("s1", None, "instructor", True),
])
def test_who_may_open_a_conversation(owner, student_id, role, allowed):
    assert Caller(role, student_id, "a").may_open(owner) is allowed


def test_sliding_window_counts_per_key_and_forgets_with_time():
    window = SlidingWindow(limit=2, window_s=60)
    assert window.take("a", now=0) == 0 and window.take("a", now=1) == 0
    assert window.take("a", now=2) == pytest.approx(58)
    assert window.take("b", now=2) == 0
    assert window.take("a", now=60.5) == 0  # the first one has left the window


def test_sliding_window_memory_is_bounded():
    window = SlidingWindow(limit=1, window_s=60, max_keys=100)
    for n in range(1000):
        window.record(f"k{n}", now=0)
    assert len(window._events) == 100


def test_answer_gate_queues_then_refuses():
    async def scenario():
        gate = AnswerGate(running=1, waiting=1)
        first, second = gate.admit(), gate.admit()
        with pytest.raises(TooMany):
            gate.admit()
        order = []

        async def run(ticket, name, hold):
            async with ticket:
                order.append(name)
                await asyncio.sleep(hold)

        await asyncio.gather(run(first, "first", 0.05), run(second, "second", 0))
        assert order == ["first", "second"] and gate.admitted == 0
        unused = gate.admit()
        unused.close()
        unused.close()  # idempotent
        assert gate.admitted == 0

    asyncio.run(scenario())


def test_a_waiting_question_learns_its_place_and_gives_up_at_the_bound():
    async def scenario():
        gate = AnswerGate(running=1, waiting=5)
        holder, second, third = gate.admit(), gate.admit(), gate.admit()
        assert [p async for p in holder.turn(1)] == []  # a free slot: no wait, no queued event
        places: dict[str, list[int]] = {"second": [], "third": []}

        async def wait(ticket, name, bound):
            async for place in ticket.turn(bound):
                places[name].append(place)

        waiting = asyncio.gather(wait(second, "second", 5), wait(third, "third", 5))
        await asyncio.sleep(0.05)
        assert places == {"second": [1], "third": [2]}
        holder.close()  # the answer ends: the next one runs, the one behind it moves up
        await asyncio.sleep(0.05)
        assert places == {"second": [1], "third": [2, 1]} and gate.busy == 1
        second.close()
        await waiting  # the third has the slot now
        assert gate.busy == 1 and not gate._queue
        late = gate.admit()
        with pytest.raises(TooMany, match="busy with other questions for 0.1 seconds"):
            async for _ in late.turn(0.1):
                pass
        late.close()
        third.close()
        assert gate.admitted == 0 and gate.busy == 0 and not gate._queue

    asyncio.run(scenario())


@pytest.mark.parametrize("method, headers, refused", [
    ("GET", {"origin": "https://evil.example", "host": "pod:8000"}, False),  # reads are not writes
    ("POST", {"host": "pod:8000"}, False),  # curl, SDKs: no browser, no ambient cookies
    ("POST", {"origin": "https://evil.example", "host": "pod:8000"}, True),
    ("DELETE", {"origin": "null", "host": "pod:8000"}, True),
    ("POST", {"origin": "http://pod:8000", "host": "pod:8000"}, False),
    ("POST", {"origin": "https://x-8000.proxy.runpod.net", "host": "127.0.0.1:8000",
              "x-forwarded-host": "x-8000.proxy.runpod.net"}, False),
    ("POST", {"sec-fetch-site": "same-origin", "origin": "https://x", "host": "y"}, False),
    ("POST", {"sec-fetch-site": "cross-site", "host": "pod:8000"}, True),
    ("PATCH", {"origin": "https://lms.example.edu", "host": "pod:8000"}, False),  # allow-listed
])
def test_foreign_origins_cannot_change_anything(method, headers, refused):
    assert (foreign_origin(method, headers, {"https://lms.example.edu"}) is not None) is refused


def test_malformed_cookie_headers_count_as_none():
    assert cookies_of({"cookie": 'a="unterminated; b=2'}) in ({}, {"b": "2"})
    assert cookies_of({"cookie": "rag_student=abc.def"}) == {"rag_student": "abc.def"}
    assert cookies_of({}) == {}


@pytest.mark.parametrize("path", [
    "../etc/passwd", "a/../../etc/passwd", "/etc/passwd", "a//b.md", "./a.md", "a/./b.md",
    "bad\x00name.md", "x" * 1025, "", "..",
])
def test_document_paths_with_tricks_are_refused(path):
    with pytest.raises(UploadRejected) as refused:
        check_document_path(path)
    assert refused.value.status == 400


@pytest.mark.parametrize("path", ["uploads/notes.md", "data-structures-101/lecture 04.pdf", "a..b.md"])
def test_plain_document_paths_pass(path):
    assert check_document_path(path) == path


def test_students_are_limited_per_cookie_and_scripts_per_address(tmp_path):
    control = AccessControl(access_settings(tmp_path, questions_per_minute=3, new_conversations_per_minute=2,
                                            address_questions_per_minute=5))
    student = Caller("student", "s1", "10.0.0.1")
    control.count_question(student, new_conversation=True)
    control.count_question(student, new_conversation=True)
    with pytest.raises(TooMany, match="started 2 conversations"):
        control.count_question(student, new_conversation=True)
    control.count_question(student, new_conversation=False)  # the refused one did not count as asked
    with pytest.raises(TooMany, match="asked 3 questions"):
        control.count_question(student, new_conversation=False)
    # a harness without the cookie starts a conversation per question: only the address budget counts
    script = Caller("student", None, "10.0.0.1")
    for _ in range(5):
        control.count_question(script, new_conversation=True)
    with pytest.raises(TooMany, match="This address has asked 5"):
        control.count_question(script, new_conversation=True)
    control.count_question(Caller("instructor", None, "10.0.0.1"), new_conversation=True)  # never limited
