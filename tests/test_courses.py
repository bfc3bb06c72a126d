"""Several courses on one appliance: separate materials, separate answers, one database.
Real Milvus Lite, the real embedder, the ingest CLI, the real backend and llama.cpp."""

from __future__ import annotations

import httpx
import pytest

from backend_fixtures import BackendServer, as_instructor, sample_course_settings
from conftest import IngestHarness, cli_env, run_cli

BIO_SYLLABUS = ("# Biology 101 syllabus\nThe Krebs cycle, also called the citric acid cycle, releases energy "
                "from acetyl-CoA inside the mitochondria. Photosynthesis happens in the chloroplasts.\n")
CHEM_SYLLABUS = ("# Chemistry 101 syllabus\nA covalent bond shares electron pairs between atoms; an ionic "
                 "bond transfers electrons. Titration measures the concentration of a solution.\n")


@pytest.fixture(scope="module")
def two_courses(tmp_path_factory, llm, embedder):
    """The sample course as the default course (ingested the way it always was, with no
    course named), and a course 'bio' with a file of the same name as one in 'chem'."""
    from app.courses.course import course_settings

    base = tmp_path_factory.mktemp("courses")
    settings = sample_course_settings(base, llm.url, llm_max_tokens=24, courses_dir=base / "courses")
    materials = settings.storage.materials_path
    (materials / "syllabus.md").write_text(CHEM_SYLLABUS)
    harness = IngestHarness(settings, embedder)
    harness.run(materials)
    harness.close()
    bio = course_settings(settings, "bio")
    bio.storage.materials_path.mkdir(parents=True)
    (bio.storage.materials_path / "syllabus.md").write_text(BIO_SYLLABUS)
    (bio.storage.materials_path / "cells.md").write_text("# Cells\nA cell membrane is a lipid bilayer that controls "
                                                 "what enters and leaves the cell.\n")
    result = run_cli(["--course", "bio"], cli_env(settings, RAG_COURSES_DIR=settings.storage.courses_path,
                                                  RAG_ACCESS_DIR=settings.access.access_path))
    assert result.returncode == 0, result.stderr
    assert "2 new" in result.stdout
    return settings


@pytest.fixture(scope="module")
def backend(two_courses, embedder):
    server = BackendServer(two_courses, embedder)
    yield server
    server.stop()


def test_the_default_course_is_the_database_as_it_was(backend, two_courses):
    courses = {c["name"]: c for c in httpx.get(f"{backend.url}/api/courses").json()}
    assert set(courses) == {"main", "bio"}
    assert courses["main"]["default"] and courses["main"]["chunks"] > 0 and courses["bio"]["documents"] == 2
    without = {d["file"] for d in httpx.get(f"{backend.url}/api/documents").json()}
    named = {d["file"] for d in httpx.get(f"{backend.url}/api/documents?course=main").json()}
    assert without == named and "data-structures-101/lecture-04-hash-tables.pdf" in without
    assert {d["file"] for d in httpx.get(f"{backend.url}/api/documents?course=bio").json()} == {"syllabus.md",
                                                                                               "cells.md"}


def test_each_course_answers_from_its_own_materials(backend):
    bio = httpx.post(f"{backend.url}/api/chat", timeout=120,
                     json={"message": "Where does the Krebs cycle happen?", "course": "bio"}).json()
    assert bio["sources"] and all(s["file"] in ("syllabus.md", "cells.md") for s in bio["sources"])
    assert "Krebs" in bio["sources"][0]["text"]
    chem = httpx.post(f"{backend.url}/api/chat", timeout=120,
                      json={"message": "What is a covalent bond?"}).json()
    assert chem["sources"][0]["file"] == "syllabus.md" and "covalent" in chem["sources"][0]["text"]
    # the Krebs cycle is not in the default course: declined there
    declined = httpx.post(f"{backend.url}/api/chat", timeout=120,
                          json={"message": "Where does the Krebs cycle happen?"}).json()
    assert declined["finish_reason"] == "no_relevant_sources"

    # a conversation belongs to its course: a follow-up stays there, another course is refused
    cid = bio["conversation_id"]
    follow = httpx.post(f"{backend.url}/api/chat", timeout=120,
                        json={"message": "And photosynthesis?", "conversation_id": cid}).json()
    assert all(s["file"] in ("syllabus.md", "cells.md") for s in follow["sources"])
    moved = httpx.post(f"{backend.url}/api/chat", timeout=120,
                       json={"message": "And hash tables?", "conversation_id": cid, "course": "main"})
    assert moved.status_code == 409 and "bio" in moved.json()["detail"]
    assert httpx.get(f"{backend.url}/api/conversations/{cid}").json()["course"] == "bio"


def test_course_names_are_checked_and_unknown_courses_named(backend, two_courses):
    for bad in ("../etc", "Bio", "a" * 50, "1abc", "bio%00"):
        response = httpx.get(f"{backend.url}/api/documents", params={"course": bad})
        assert response.status_code == 422, bad
    missing = httpx.get(f"{backend.url}/api/documents?course=physics")
    assert missing.status_code == 404 and "bio" in missing.json()["detail"] and "main" in missing.json()["detail"]
    assert httpx.post(f"{backend.url}/api/chat", json={"message": "hi", "course": "physics"}).status_code == 404
    assert httpx.post(f"{backend.url}/api/courses", json={"name": "physics"}).status_code == 401
    assert httpx.post(f"{backend.url}/api/courses", json={"name": "Physics!"}, headers=as_instructor(two_courses)).status_code == 422


def test_the_instructor_creates_a_course_and_uploads_into_it(backend, two_courses):
    created = httpx.post(f"{backend.url}/api/courses", json={"name": "physics"}, headers=as_instructor(two_courses))
    assert created.status_code == 201 and created.json() == {"name": "physics", "default": False,
                                                              "documents": 0, "chunks": 0}
    assert httpx.post(f"{backend.url}/api/courses", json={"name": "physics"},
                      headers=as_instructor(two_courses)).status_code == 200
    empty = httpx.post(f"{backend.url}/api/chat", timeout=120, json={"message": "What is inertia?",
                                                                      "course": "physics"}).json()
    assert "Nothing has been ingested yet" in empty["answer"]
    notes = {"file": ("syllabus.md", b"# Physics syllabus\nInertia is the resistance of a body to any change "
                      b"in its velocity; Newton's first law states it.\n", "text/markdown")}
    uploaded = httpx.post(f"{backend.url}/api/documents?course=physics&wait=110", files=notes,
                          headers=as_instructor(two_courses), timeout=120)
    assert uploaded.status_code == 201, uploaded.text
    assert (two_courses.storage.courses_path / "physics" / "uploads" / "syllabus.md").exists()
    answer = httpx.post(f"{backend.url}/api/chat", timeout=120, json={"message": "What is inertia?",
                                                                       "course": "physics"}).json()
    assert answer["sources"][0]["file"] == "uploads/syllabus.md"
    assert httpx.get(f"{backend.url}/api/documents/file/uploads/syllabus.md?course=physics").status_code == 200
    assert httpx.get(f"{backend.url}/api/documents/file/uploads/syllabus.md").status_code == 404  # not main's
    # deleting in one course leaves the same name in another alone
    assert httpx.delete(f"{backend.url}/api/documents/syllabus.md?course=bio", headers=as_instructor(two_courses)).status_code == 204
    assert "syllabus.md" in {d["file"] for d in httpx.get(f"{backend.url}/api/documents").json()}
    assert (two_courses.storage.materials_path / "syllabus.md").exists()
    entries = httpx.get(f"{backend.url}/api/access/audit", headers=as_instructor(two_courses)).json()
    assert {(e["action"], e["target"]) for e in entries} >= {("create course", "physics"),
                                                            ("upload", "physics:uploads/syllabus.md"),
                                                            ("delete document", "bio:syllabus.md")}


def test_prune_never_leaves_its_course(backend, two_courses, tmp_path):
    """`--prune` on one course with a folder that lacks the other course's files; the
    course, made from the shell while the backend runs, is served without a restart."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "syllabus.md").write_text("# Another syllabus\nGeology: rocks and minerals.\n")
    env = cli_env(two_courses, RAG_COURSES_DIR=two_courses.storage.courses_path)
    result = run_cli(["--course", "geo", "--directory", str(other)], env)
    assert result.returncode == 0, result.stderr
    (other / "syllabus.md").unlink()
    (other / "rocks.md").write_text("# Rocks\nGranite is an igneous rock.\n")
    pruned = run_cli(["--course", "geo", "--directory", str(other), "--prune"], env)
    assert pruned.returncode == 0, pruned.stderr
    assert "Removed from the database: syllabus.md" in pruned.stdout

    def files(course: str) -> set[str]:
        return {d["file"] for d in httpx.get(f"{backend.url}/api/documents?course={course}").json()}

    assert "syllabus.md" in files("main")  # the default course keeps its own
    assert files("geo") == {"rocks.md"}
    bad = run_cli(["--course", "../etc"], env)
    assert bad.returncode == 2 and "not a course name" in bad.stderr


def test_the_page_offers_a_course_picker(backend, two_courses):
    from test_ui import ask, chromium_path, new_context, shot, wait_answer

    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path(), headless=True,
                                     args=["--no-sandbox", "--disable-gpu"])
        context = new_context(chromium, backend.url)
        try:
            page = context.new_page()
            page.goto("/")
            page.wait_for_selector('#status-pill[data-state="ready"]')
            picker = page.locator("#course-picker")
            expect(picker).to_be_visible()
            assert "main" in picker.input_value()
            names = page.locator("#course-picker option").all_inner_texts()
            assert any(n.startswith("bio (") for n in names) and any(n.startswith("main (") for n in names)
            picker.select_option("bio")
            page.click("#open-materials")
            page.wait_for_selector('#documents-body tr[data-file="cells.md"]')
            assert page.locator('#documents-body tr[data-file="data-structures-101/00-syllabus.md"]').count() == 0
            shot(page, "14-course-picker-materials")
            page.click("#close-materials")
            ask(page, "What does a cell membrane control?")
            answer = wait_answer(page)
            answer.locator(".sources summary").click()
            where = answer.locator(".source .where").first.inner_text()
            assert where.startswith("cells.md"), where
            shot(page, "15-answer-from-the-chosen-course")
            page.reload()  # the choice is kept in this browser
            page.wait_for_selector('#status-pill[data-state="ready"]')
            expect(page.locator("#course-picker")).to_have_value("bio")
            assert page.locator(".conversation").count() == 1  # this course's conversation only
            page.locator("#course-picker").select_option("main")
            expect(page.locator(".conversation")).to_have_count(0)
        finally:
            context.close()
            chromium.close()
