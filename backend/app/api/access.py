"""Unlocking: the instructor key and the course access code, kept as signed HttpOnly
cookies so the page never holds a secret where script could read it."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.access.control import ACCESS_COOKIE, INSTRUCTOR_COOKIE, AccessDenied
from app.access.middleware import cookie_header, headers_of, is_https
from app.api.deps import AccessDep, Anyone, Instructor, client_address

router = APIRouter(prefix="/api/access", tags=["access"])

INSTRUCTOR_COOKIE_AGE_S = 30 * 24 * 3600
ACCESS_COOKIE_AGE_S = 180 * 24 * 3600


class KeyBody(BaseModel):
    key: str = Field(..., min_length=1, max_length=512, description="The instructor key.")


class CodeBody(BaseModel):
    code: str = Field(..., min_length=1, max_length=512, description="The course access code.")


def _set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    header, raw = cookie_header(name, value, max_age, is_https(request.scope, headers_of(request.scope)))
    response.raw_headers.append((header, raw))


@router.get("", summary="Who you are to the appliance, and what it asks of students (anyone)")
async def whoami(caller: Anyone, access: AccessDep) -> dict:
    """`role`: instructor, student, or locked (code mode, no code given yet)."""
    return {"role": caller.role, "student_access": access.settings.access.student_access,
            "identified": caller.student_id is not None,
            "insight": access.settings.appliance.insight}


@router.post("/instructor", status_code=204, summary="Unlock instructor mode with the key (anyone; rate limited)")
async def unlock_instructor(body: KeyBody, request: Request, access: AccessDep) -> Response:
    """Sets an HttpOnly cookie; 401 for a wrong key, 429 after too many wrong ones from
    one address. Rotating the key locks every browser again."""
    address = client_address(request)
    try:
        if access.check_secret(body.key.strip(), address) != "instructor":
            raise AccessDenied("That is the access code, not the instructor key.")
    except AccessDenied as exc:
        return JSONResponse(status_code=exc.status, content={"detail": str(exc)})
    access.audit.record(address, "unlock instructor mode")
    response = Response(status_code=204)
    _set_cookie(response, request, INSTRUCTOR_COOKIE, access.instructor_cookie(), INSTRUCTOR_COOKIE_AGE_S)
    return response


@router.delete("/instructor", status_code=204, summary="Lock instructor mode in this browser (anyone)")
async def lock_instructor(request: Request) -> Response:
    response = Response(status_code=204)
    _set_cookie(response, request, INSTRUCTOR_COOKIE, "", 0)
    return response


@router.post("/code", status_code=204, summary="Enter the course access code (anyone; rate limited)")
async def enter_code(body: CodeBody, request: Request, access: AccessDep) -> Response:
    address = client_address(request)
    try:
        role = access.check_secret(body.code.strip(), address)
    except AccessDenied as exc:
        return JSONResponse(status_code=exc.status, content={"detail": str(exc)})
    response = Response(status_code=204)
    if role == "instructor":
        access.audit.record(address, "unlock instructor mode")
        _set_cookie(response, request, INSTRUCTOR_COOKIE, access.instructor_cookie(), INSTRUCTOR_COOKIE_AGE_S)
    elif access.code_required:
        _set_cookie(response, request, ACCESS_COOKIE, access.access_cookie(), ACCESS_COOKIE_AGE_S)
    return response


@router.get("/audit", summary="The instructor actions logged, newest first (instructor)")
async def audit_trail(caller: Instructor, access: AccessDep,
                      limit: int = Query(200, ge=1, le=5000)) -> list[dict]:
    return list(reversed(access.audit.entries()))[:limit]
