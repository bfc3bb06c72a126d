"""A chat turn's event stream, observed: every API that answers (/api/chat, its SSE
twin, /v1/chat/completions) runs its turn through `observed`, so the metrics count
each the same way and the chat service knows nothing of them."""

from __future__ import annotations

from contextlib import aclosing
from typing import AsyncIterator

from app.metrics.registry import ApplianceMetrics


async def observed(events: AsyncIterator[tuple[str, dict]], metrics: ApplianceMetrics | None
                   ) -> AsyncIterator[tuple[str, dict]]:
    """Pass the events through; on `done` record the turn, on a failure an error. A
    stream the client leaves before its `done` (Stop, a closed tab) counts as stopped.
    Closing this closes the turn at once (the chat then stores what was said)."""
    outcome = None  # how the turn ended without a `done` event
    async with aclosing(events):
        try:
            async for kind, data in events:
                if kind == "done" and metrics is not None:
                    outcome = "done"
                    metrics.observe_turn(data)
                yield kind, data
        except Exception:
            outcome = "error"
            raise
        except BaseException:  # cancelled, or closed by the client going away
            outcome = outcome or "stopped"
            raise
        finally:
            if metrics is not None and outcome != "done":
                metrics.turn_failed(outcome or "stopped")
