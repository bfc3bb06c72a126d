"""Counting what one client may do in a while, and how many answers run at once.

Why in memory: one backend serves one class; counts that reset on a restart cost
nothing worth a database. Memory stays bounded: idle keys are dropped as they expire,
and past `max_keys` the oldest are forgotten first.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import OrderedDict, deque


class TooMany(Exception):
    """Refused for now; `retry_after_s` says when to try again (HTTP 429 + Retry-After)."""

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = max(1, math.ceil(retry_after_s))


class SlidingWindow:
    """At most `limit` events per `window_s` seconds for each key."""

    def __init__(self, limit: int, window_s: float, max_keys: int = 100_000):
        self.limit, self.window_s, self.max_keys = limit, window_s, max_keys
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        events = self._events.get(key)
        if events is None:
            events = self._events[key] = deque()
            while len(self._events) > self.max_keys:
                self._events.popitem(last=False)
        self._events.move_to_end(key)
        while events and events[0] <= now - self.window_s:
            events.popleft()
        return events

    def wait_s(self, key: str, now: float | None = None) -> float:
        """0 if one more event is allowed now, else the seconds until it is."""
        now = time.monotonic() if now is None else now
        with self._lock:
            events = self._recent(key, now)
            return 0.0 if len(events) < self.limit else events[0] + self.window_s - now

    def record(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._recent(key, now).append(now)

    def take(self, key: str, now: float | None = None) -> float:
        """Record one event if allowed (returns 0), else return the wait without recording."""
        now = time.monotonic() if now is None else now
        with self._lock:
            events = self._recent(key, now)
            if len(events) >= self.limit:
                return events[0] + self.window_s - now
            events.append(now)
            return 0.0

    def forget(self, key: str) -> None:
        with self._lock:
            self._events.pop(key, None)


class AnswerGate:
    """At most `running` answers at once; up to `waiting` more wait their turn in order;
    beyond that a question is refused at once, so nobody waits without knowing."""

    def __init__(self, running: int, waiting: int):
        self.running, self.waiting = running, waiting
        self._slots = asyncio.Semaphore(running)
        self._admitted = 0  # running + waiting

    @property
    def admitted(self) -> int:
        return self._admitted

    def admit(self) -> "AnswerTicket":
        if self._admitted >= self.running + self.waiting:
            raise TooMany(
                f"The assistant is answering {self.running} questions and {self.waiting} more are "
                "waiting. Please try again in a moment.", retry_after_s=10)
        self._admitted += 1
        return AnswerTicket(self)


class AnswerTicket:
    """A place in the gate: `async with ticket:` waits for a slot, then holds it."""

    def __init__(self, gate: AnswerGate):
        self.gate = gate
        self._holding = False
        self._done = False

    async def __aenter__(self) -> "AnswerTicket":
        try:
            await self.gate._slots.acquire()
        except BaseException:
            self.close()
            raise
        self._holding = True
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Give the place back (idempotent; also for a ticket never used)."""
        if self._done:
            return
        self._done = True
        if self._holding:
            self.gate._slots.release()
        self.gate._admitted -= 1
