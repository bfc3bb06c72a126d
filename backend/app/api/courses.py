"""Courses: list them (students, for the page's picker), create one (the instructor)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, Field

from app.api.deps import AccessDep, Instructor, ServicesDep, Student
from app.courses.course import COURSE_NAME
from app.errors import ConfigurationError

router = APIRouter(prefix="/api/courses", tags=["courses"])


class NewCourse(BaseModel):
    name: str = Field(..., pattern=COURSE_NAME.pattern, examples=["chem101"],
                      description="1-40 lowercase letters, digits or '_', starting with a letter.")


def _describe(services, name: str) -> dict:
    course = services.courses.get(name)
    return {"name": name, "default": name == services.settings.storage.default_course,
            "documents": len(course.documents.catalog.files()), "chunks": course.store.count()}


@router.get("", summary="The courses of this appliance (students and the instructor)")
async def list_courses(caller: Student, services: ServicesDep) -> list[dict]:
    """Each with its documents and chunks; `default` marks the one a request without a
    `course` gets."""
    names = await asyncio.to_thread(services.courses.names)
    return [await asyncio.to_thread(_describe, services, name) for name in names]


@router.post("", status_code=201, summary="Create a course (instructor)")
async def create_course(body: NewCourse, caller: Instructor, services: ServicesDep, access: AccessDep,
                        response: Response) -> dict:
    """Makes its materials folder (`courses/NAME`); upload into it with
    `POST /api/documents?course=NAME`, or `python ingest.py --course NAME`. 200 if it exists."""
    try:
        _, created = await asyncio.to_thread(services.courses.create, body.name)
    except ConfigurationError as exc:
        raise HTTPException(422, str(exc)) from None
    access.audit.record(caller.address, "create course", body.name, "ok" if created else "exists")
    if not created:
        response.status_code = 200
    return await asyncio.to_thread(_describe, services, body.name)
