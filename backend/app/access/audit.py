"""The instructor's actions, one JSON line each: time, client address, action, target.

Why a file of its own beside the data: it answers "who deleted the syllabus, and when"
after the fact, survives restarts, and is not rotated away with the service logs.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

log = logging.getLogger("app.audit")


class AuditLog:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def record(self, address: str, action: str, target: str = "", outcome: str = "ok") -> None:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "address": address, "action": action,
                 "target": target, "outcome": outcome}
        log.info("%s %s %s (%s)", address, action, target, outcome)
        line = json.dumps(entry, ensure_ascii=False)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(line + "\n")

    def entries(self) -> list[dict]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]
