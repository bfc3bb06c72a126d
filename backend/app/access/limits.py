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
    beyond that a question is refused at once, so nobody waits without knowing. A waiting
    question learns its place as it changes (the chat stream's `queued` events)."""

    def __init__(self, running: int, waiting: int):
        self.running, self.waiting = running, waiting
        self._free = running
        self._queue: deque[AnswerTicket] = deque()  # waiting, in order
        self._changed = asyncio.Event()
        self._admitted = 0  # running + waiting

    @property
    def admitted(self) -> int:
        return self._admitted

    @property
    def busy(self) -> int:
        """Answers being worked on now."""
        return self.running - self._free

    def admit(self) -> "AnswerTicket":
        if self._admitted >= self.running + self.waiting:
            raise TooMany(
                f"The assistant is answering {self.running} questions and {self.waiting} more are "
                "waiting. Please try again in a moment.", retry_after_s=10)
        self._admitted += 1
        return AnswerTicket(self)

    def _moved(self) -> None:
        """Wake every waiter to look at its place again."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _release(self) -> None:
        self._free += 1
        self._moved()


class AnswerTicket:
    """A place in the gate: `async for place in ticket.turn(wait_s)` yields the place in the
    queue (1 = next) each time it changes, and ends holding a slot; `async with ticket:`
    simply waits. `close()` gives the place back."""

    def __init__(self, gate: AnswerGate):
        self.gate = gate
        self._holding = False
        self._done = False

    async def turn(self, wait_s: float | None = None):
        gate = self.gate
        if gate._free > 0 and not gate._queue:  # a free slot and nobody ahead: no wait at all
            gate._free -= 1
            self._holding = True
            return
        gate._queue.append(self)
        loop = asyncio.get_running_loop()
        deadline = None if wait_s is None else loop.time() + wait_s
        shown = None
        try:
            while True:
                if gate._queue[0] is self and gate._free > 0:
                    gate._queue.popleft()
                    gate._free -= 1
                    self._holding = True
                    gate._moved()  # everyone behind moves up
                    return
                place = gate._queue.index(self) + 1
                if place != shown:
                    shown = place
                    yield place
                changed = gate._changed
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    raise TooMany(f"The assistant has been busy with other questions for {wait_s:g} seconds. "
                                  "Please ask again in a moment.", retry_after_s=15)
                try:
                    await asyncio.wait_for(changed.wait(), remaining)
                except asyncio.TimeoutError:
                    pass
        finally:
            if not self._holding and self in gate._queue:
                gate._queue.remove(self)
                gate._moved()

    async def __aenter__(self) -> "AnswerTicket":
        try:
            async for _ in self.turn():
                pass
        except BaseException:
            self.close()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Give the place back (idempotent; also for a ticket never used)."""
        if self._done:
            return
        self._done = True
        if self in self.gate._queue:
            self.gate._queue.remove(self)
            self.gate._moved()
        if self._holding:
            self.gate._release()
        self.gate._admitted -= 1

