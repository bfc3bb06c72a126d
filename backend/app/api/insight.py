"""The instructor's insight report: JSON for the page, CSV for a spreadsheet.

Instructor only. It shows questions, never who asked them; RAG_INSIGHT=false turns it
off (404), and ratings with it."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone

from fastapi import APIRouter, HTTPException, Query, Response

from app.api.deps import AccessDep, CourseDep, Instructor, ServicesDep
from app.insight.queries import Period
from app.services import Services

router = APIRouter(prefix="/api/insight", tags=["insight"])
TABLES = ("not_covered", "unhelpful", "pages", "documents", "days")


def _period(services: Services, course: str, since: date | None, until: date | None) -> Period:
    if not services.settings.appliance.insight:
        raise HTTPException(404, "The insight report is turned off on this appliance (RAG_INSIGHT=false).")
    until = until or datetime.now(timezone.utc).date()
    since = since or until - timedelta(days=29)
    if since > until:
        raise HTTPException(422, f"The period starts ({since}) after it ends ({until}).")
    start = datetime.combine(since, datetime.min.time(), timezone.utc).timestamp()
    end = datetime.combine(until + timedelta(days=1), datetime.min.time(), timezone.utc).timestamp()
    return Period(course, start, end)


SINCE = Query(None, description="First day (YYYY-MM-DD, UTC); default: 29 days before `until`.")
UNTIL = Query(None, description="Last day, included (YYYY-MM-DD, UTC); default: today.")


@router.get("", summary="What students asked, what the materials don't answer, unhelpful answers (instructor)")
async def insight(caller: Instructor, services: ServicesDep, course: CourseDep, access: AccessDep,
                  since: date | None = SINCE, until: date | None = UNTIL) -> dict:
    report = await services.insight.report(_period(services, course.name, since, until))
    access.audit.record(caller.address, "insight report", f"{course.name}")
    return report.to_dict()


@router.get("/export.csv", summary="One table of the insight report as CSV (instructor)")
async def export(caller: Instructor, services: ServicesDep, course: CourseDep,
                 table: str = Query(..., pattern="^(" + "|".join(TABLES) + ")$",
                                    description="Which table: " + ", ".join(TABLES) + "."),
                 since: date | None = SINCE, until: date | None = UNTIL) -> Response:
    report = await services.insight.report(_period(services, course.name, since, until))
    out = io.StringIO()
    writer = csv.writer(out)
    if table == "not_covered":
        writer.writerow(["questions", "group", "every question"])
        writer.writerows([g.count, g.label, " | ".join(g.questions)] for g in report.not_covered)
    elif table == "unhelpful":
        writer.writerow(["when (UTC)", "question", "answer", "thumbs down", "comments", "sources"])
        writer.writerows([_when(u["at"]), u["question"], u["answer"], u["votes_down"], " | ".join(u["comments"]),
                          " | ".join(u["sources"])] for u in report.unhelpful)
    elif table == "pages":
        writer.writerow(["document", "page", "answers that showed it", "answers that cited it"])
        writer.writerows([p["file"], p["page"], p["shown"], p["cited"]] for p in report.pages)
    elif table == "documents":
        writer.writerow(["document", "answers that showed it", "answers that cited it"])
        writer.writerows([d["file"], d["shown"], d["cited"]] for d in report.documents)
    else:
        writer.writerow(["day (UTC)", "questions", "declined as not covered"])
        writer.writerows([d["day"], d["questions"], d["declined"]] for d in report.per_day)
    name = f"insight-{course.name}-{table}.csv"
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d %H:%M")
