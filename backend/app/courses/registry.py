"""The courses the backend serves, built when first asked for.

Why lazily: a course ingested from the shell while the backend runs (`python ingest.py
--course NAME`) is served on its first question, with no restart; one never asked
about costs nothing.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from app.courses.course import Course, check_course_name, course_of_collection, course_settings
from app.settings import Settings


class UnknownCourse(LookupError):
    """No such course (HTTP 404); the message names the ones there are."""


class CourseRegistry:
    def __init__(self, settings: Settings, client, build: Callable[[str, Settings], Course]):
        self.settings = settings
        self.client = client
        self._build = build
        self._courses: dict[str, Course] = {}
        self._lock = threading.Lock()

    @property
    def default(self) -> Course:
        return self.get(self.settings.storage.default_course)

    def names(self) -> list[str]:
        """Every course: the default, those with a collection, those with a folder."""
        found = {self.settings.storage.default_course, *self._courses}
        for collection in self.client.list_collections():
            name = course_of_collection(self.settings, collection)
            if name:
                found.add(name)
        root: Path = self.settings.storage.courses_path
        if root.is_dir():
            found.update(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        return sorted(n for n in found if _valid(n))

    def get(self, name: str | None) -> Course:
        name = name or self.settings.storage.default_course
        course = self._courses.get(name)
        if course is not None:
            return course
        if not _valid(name) or name not in self.names():
            raise UnknownCourse(f"No course '{name[:60]}'. Courses: {', '.join(self.names())}.")
        with self._lock:
            if name not in self._courses:
                self._courses[name] = self._build(name, course_settings(self.settings, name))
            return self._courses[name]

    def create(self, name: str) -> tuple[Course, bool]:
        """Make a course (its materials folder); returns it and whether it is new."""
        check_course_name(name)
        existed = name in self.names()
        course_settings(self.settings, name).storage.materials_path.mkdir(parents=True, exist_ok=True)
        return self.get(name), not existed

    def loaded(self) -> list[Course]:
        return list(self._courses.values())


def _valid(name: str) -> bool:
    try:
        check_course_name(name)
        return True
    except Exception:
        return False
