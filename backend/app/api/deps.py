"""Typed dependencies every route declares: the services, and who may call it.

Access is decided here and nowhere else (app/access/control.py holds the rules):
- `Anyone`: no check (health, the access routes themselves);
- `Student`: a student of the course (in code mode, one who gave the access code) or the
  instructor: chat, their own conversations, the documents' list and cited files;
- `Instructor`: the instructor key, by header or unlocked cookie: uploads, deletes,
  everyone's conversations, the audit trail.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.access.control import AccessControl, AccessDenied, Caller
from app.api.errors import OPENAI_PREFIX
from app.courses.course import COURSE_NAME, Course
from app.courses.registry import UnknownCourse
from app.documents.jobs import IngestJobs
from app.errors import StorageUnavailableError
from app.services import Services


def services_of(request: Request) -> Services:
    """The backend's services; 503 naming the cause while they cannot be built (a Milvus
    server that does not answer yet)."""
    services = request.app.state.services
    if services is None:
        raise StorageUnavailableError(request.app.state.unavailable or "The backend is still starting.")
    return services


async def get_services(request: Request) -> Services:
    return services_of(request)


async def get_access(request: Request) -> AccessControl:
    return request.app.state.access


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# Declared so that /docs shows the key field ("Authorize"); the header itself is read below,
# so that a malformed one gets a sentence rather than a bare 403.
_bearer = HTTPBearer(auto_error=False, scheme_name="Instructor key or access code",
                     description="The instructor key, or in code mode the course access code. "
                     "Students in open mode need none.")


# The access checks are `async def` on purpose: FastAPI runs a plain `def` dependency in a
# worker thread, and that hop alone cost ~0.3 ms a request (bench/access_cost.py).
async def identify(request: Request,
                   _documented: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None) -> Caller:
    access: AccessControl = request.app.state.access
    try:
        return access.identify(request.headers.get("authorization"), request.cookies, client_address(request),
                               any_key_is_a_student=request.url.path.startswith(OPENAI_PREFIX))
    except AccessDenied as exc:
        raise HTTPException(exc.status, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


async def require_student(caller: Annotated[Caller, Depends(identify)]) -> Caller:
    if caller.role == "locked":
        raise HTTPException(401, "This course needs its access code: enter the code your instructor gave you "
                            "(API: Authorization: Bearer <code>).", headers={"WWW-Authenticate": "Bearer"})
    return caller


async def require_instructor(request: Request, caller: Annotated[Caller, Depends(identify)]) -> Caller:
    if caller.is_instructor:
        return caller
    if caller.role == "student" and request.headers.get("authorization"):
        raise HTTPException(403, "Only the instructor may do this.")
    raise HTTPException(401, "Only the instructor may do this: unlock instructor mode with the instructor key "
                        "(API: Authorization: Bearer <key>).", headers={"WWW-Authenticate": "Bearer"})


def get_jobs(request: Request) -> IngestJobs:
    return services_of(request).jobs


ServicesDep = Annotated[Services, Depends(get_services)]
JobsDep = Annotated[IngestJobs, Depends(get_jobs)]
AccessDep = Annotated[AccessControl, Depends(get_access)]
Anyone = Annotated[Caller, Depends(identify)]
Student = Annotated[Caller, Depends(require_student)]
Instructor = Annotated[Caller, Depends(require_instructor)]


async def find_course(services: Services, name: str | None) -> Course:
    """The named course (None: the default one), or 404 naming the courses there are."""
    try:
        return await asyncio.to_thread(services.courses.get, name)
    except UnknownCourse as exc:
        raise HTTPException(404, str(exc)) from None


async def course_query(
    request: Request,
    course: str | None = Query(None, pattern=COURSE_NAME.pattern,
                               description="The course (GET /api/courses lists them); default: the default course."),
) -> Course:
    return await find_course(services_of(request), course)


CourseDep = Annotated[Course, Depends(course_query)]
