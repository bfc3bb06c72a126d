"""The browser UI end to end: headless Chromium (Debian's package, driven by Playwright)
against the real backend, a real llama.cpp server with SmolLM2, real Milvus Lite.

Screenshots of the main states go to test-artifacts/ui/ (UI_SCREENSHOTS to change it).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from backend_fixtures import ROOT, BackendServer, copy_sample_course, free_port, instructor_key
from conftest import IngestHarness

playwright_sync = pytest.importorskip("playwright.sync_api", reason="pip install playwright (requirements-dev.txt)")
expect = playwright_sync.expect

HASH_PDF = "data-structures-101/lecture-04-hash-tables.pdf"
SHOTS = Path(os.environ.get("UI_SCREENSHOTS", ROOT / "test-artifacts" / "ui"))
HOSTILE_MD = """# Quokka safety notes

The quokka escape sequence is how this course names an unsafe string in a web page.
<script>window.__pwned = "script in document"</script>
<img src="x" onerror="window.__pwned = 'img in document'">
A quokka escape sequence must never run in the reader's browser.
"""
HOSTILE_ANSWER = """Here is the **quokka escape sequence** [1].

<script>window.__pwned = "script in answer"</script>
<img src=x onerror="window.__pwned='img in answer'">
<a href="javascript:window.__pwned='link'">a link</a> and [a markdown link](javascript:window.__pwned='md')
<iframe src="javascript:window.__pwned='iframe'"></iframe>

```html
<script>alert(1)</script>
```
"""
ZORBLAX_MD = """# The Zorblax protocol

The Zorblax protocol is a made-up handshake this course uses to teach retransmission.
A Zorblax sender waits exactly seven ticks before it resends a frame that was not acknowledged.
After three failed resends, the Zorblax sender gives up and reports the link as broken.
"""


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("Chromium is needed for the UI tests: apt-get install chromium (or set CHROMIUM_PATH).")
    return path


@pytest.fixture(scope="module")
def ui_settings(tmp_path_factory, llm, embedder):
    from app.settings import Settings

    base = tmp_path_factory.mktemp("ui")
    materials = copy_sample_course(base / "materials")
    (materials / "safety").mkdir()
    (materials / "safety" / "quokka-safety.md").write_text(HOSTILE_MD)
    settings = Settings(
        _env_file=None, milvus_uri=str(base / "db" / "ui.db"), collection_name="chunks",
        materials_dir=materials, conversations_db=base / "db" / "conversations.sqlite3",
        access_dir=base / "db" / "access", audit_log=base / "db" / "audit.log",
        llm_base_url=llm.url, llm_max_tokens=160, llm_context_window=4096, condense_mode="concat",
        embedding_device="cpu", torch_threads=2, llm_device="CPU (test)",
    )
    harness = IngestHarness(settings, embedder)
    harness.run(materials)
    harness.close()
    return settings


@pytest.fixture(scope="module")
def backend(ui_settings, embedder):
    server = BackendServer(ui_settings, embedder)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    with playwright_sync.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=chromium_path(), headless=True,
                                     args=["--no-sandbox", "--disable-gpu"])
        yield instance
        instance.close()


def new_context(browser, url: str, **options):
    """A browser context with time for a 2-core machine to answer (the LLM runs on it too)."""
    options.setdefault("viewport", {"width": 1280, "height": 860})
    context = browser.new_context(base_url=url, **options)
    context.set_default_timeout(90_000)
    return context


@pytest.fixture
def page(browser, backend):
    context = new_context(browser, backend.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.add_init_script(RECORD_STREAMING)
    page.goto("/")
    page.wait_for_selector('#status-pill[data-state="ready"]')
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


# Records the answer's visible length each time it changes while it is streaming, so a
# test can tell an answer that arrived token by token from one that appeared at once.
RECORD_STREAMING = """
window.__streamLengths = [];
new MutationObserver(() => {
  const a = document.querySelector('.answer.streaming');
  if (a) window.__streamLengths.push(a.textContent.length);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def ask(page, question: str) -> None:
    page.fill("#prompt", question)
    page.press("#prompt", "Enter")


def wait_answer(page, index: int = -1):
    """Wait until answer `index` is complete (its Copy button appears); return it."""
    answers = page.locator("article.msg.assistant")
    page.wait_for_function("n => document.querySelectorAll('article.msg.assistant .turn-footer .copy').length >= n",
                           arg=answers.count())
    return answers.nth(index)


def conversation_id(page) -> str:
    page.wait_for_url(re.compile(r"#c=.+$"))
    match = re.search(r"#c=(.+)$", page.url)
    assert match, f"no conversation in the URL {page.url}"
    return match.group(1)


def inject_turn(backend, cid: str, question: str, answer: str, sources: list[dict]) -> None:
    """Store a turn directly (the model cannot be made to write hostile HTML or cite on cue)."""
    from app.conversations.store import Message

    store = backend.services.conversations
    turn = store.add_turn(cid, Message("user", question, 5),
                          Message("assistant", answer, 20, meta={"sources": sources, "cited": [1]}))
    # Playwright's sync API runs an event loop in this thread: store from another one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, turn).result()


def test_answer_streams_with_sources_and_status(page, backend):
    card = page.locator("#status-card")
    assert "SmolLM2" in card.inner_text() or "smollm" in card.inner_text().lower()
    assert "CPU (test)" in card.inner_text() and "chunks" in card.inner_text()
    assert "hybrid, reranked by token-match (all-MiniLM-L6-v2)" in card.inner_text()
    shot(page, "01-empty")

    ask(page, "What is a hash table?")
    page.wait_for_selector(".answer.streaming")
    answer = wait_answer(page)
    lengths = page.evaluate("window.__streamLengths")
    assert len(set(lengths)) >= 3, f"the answer did not stream (lengths seen: {lengths})"
    text = answer.locator(".answer").inner_text().strip()
    assert text

    sources = answer.locator(".sources")
    assert sources.locator("summary").inner_text().endswith("from the course materials")
    sources.locator("summary").click()
    first = sources.locator(".source").first
    assert re.search(r"lecture-04-hash-tables\.pdf, (p\. 2|pp\. 1–2|pp\. 2–3)", first.locator(".where").inner_text())
    assert "stores key-value pairs" in first.locator(".passage").inner_text()
    assert re.fullmatch(r"relevance 0\.\d\d", first.locator(".relevance").inner_text().strip())
    shot(page, "02-answer-with-sources")
    # what the page showed while streaming is what the server stored: reload, compare
    stored = page.request.get(f"api/conversations/{conversation_id(page)}").json()  # with its cookies
    assert stored["messages"][1]["content"].strip()
    page.reload()
    page.wait_for_selector("article.msg.assistant .turn-footer .copy")
    assert page.locator("article.msg.assistant .answer").first.inner_text().strip() == text


def test_citation_opens_the_passage_and_the_page(page, backend):
    retrieval = backend.services.retriever.search("What is a hash table?")
    sources = [s.to_dict() for s in retrieval.sources]
    assert sources[0]["file"] == HASH_PDF
    inject_turn(backend, "cited-1", "What is a hash table?",
                "A hash table stores key-value pairs in an array of buckets [1]. Lookups are fast on average [1, 2].",
                sources)
    page.goto("/#c=cited-1")
    page.wait_for_selector("article.msg.assistant a.cite")
    answer = page.locator("article.msg.assistant").first
    links = answer.locator("a.cite")
    assert links.count() == 3 and links.first.inner_text() == "1"
    assert not answer.locator(".sources").evaluate("d => d.open")
    links.first.click()
    item = answer.locator('.source[data-source="1"]')
    assert answer.locator(".sources").evaluate("d => d.open")
    assert "highlight" in item.get_attribute("class")
    shot(page, "03-citation-opened")

    open_page = item.locator("a.open-page")
    page_number = sources[0]["page_start"]
    assert open_page.inner_text().startswith(f"Open page {page_number}")
    with page.expect_popup() as popup_info:
        open_page.click()
    popup = popup_info.value
    assert popup.url.endswith(f"/api/documents/file/{HASH_PDF}?course=main#page={page_number}")
    popup.close()
    response = page.request.get(open_page.get_attribute("href"))
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"


def test_follow_up_and_reload_keep_the_conversation(page, backend):
    ask(page, "What is a hash table?")
    wait_answer(page)
    cid = conversation_id(page)
    ask(page, "and how does it handle collisions?")
    follow = wait_answer(page)
    assert conversation_id(page) == cid
    follow.locator(".sources summary").click()
    passages = " ".join(follow.locator(".source .passage").all_inner_texts())
    assert "chaining" in passages.lower() or "open addressing" in passages.lower()

    page.reload()
    page.wait_for_selector("article.msg.assistant .turn-footer .copy")
    assert page.locator("article.msg").count() == 4
    active = page.locator(".conversation.active .open")
    assert active.inner_text().startswith("What is a hash table")
    titles = [c["title"] for c in page.request.get("api/conversations").json()]  # with the page's cookies
    assert active.inner_text() in titles
    shot(page, "04-follow-up-after-reload")


def test_rate_an_answer_and_change_the_vote(page, backend):
    ask(page, "What is a hash table?")
    answer = wait_answer(page)
    up, down = answer.locator(".vote-up"), answer.locator(".vote-down")
    up.click()
    expect(up).to_have_attribute("aria-pressed", "true")
    down.click()  # changed: a thumbs down asks what was wrong
    expect(down).to_have_attribute("aria-pressed", "true")
    expect(up).to_have_attribute("aria-pressed", "false")
    answer.locator(".rating-comment input").fill("Too vague about resizing.")
    answer.locator(".rating-comment button").click()
    expect(answer.locator(".rating-comment")).to_be_hidden()
    expect(answer.locator(".rating-status")).to_have_text("Thanks for the feedback")
    assert "without names" in page.locator("#privacy-note").inner_text()

    page.reload()  # the vote is stored with the answer
    stored = page.locator("article.msg.assistant").last
    expect(stored.locator(".vote-down")).to_have_attribute("aria-pressed", "true")
    messages = page.request.get(f"api/conversations/{conversation_id(page)}").json()["messages"]
    assert messages[1]["feedback"] == {"vote": "down", "comment": "Too vague about resizing."}
    stored.locator(".vote-down").click()  # pressed again: taken back
    expect(stored.locator(".vote-down")).to_have_attribute("aria-pressed", "false")
    assert page.request.get(f"api/conversations/{conversation_id(page)}").json()["messages"][1]["feedback"] is None
    shot(page, "14-rated-answer")


def test_the_instructor_reads_what_the_materials_do_not_answer(page, backend, ui_settings):
    ask(page, "What were the main causes of the French Revolution?")
    wait_answer(page)
    unlock_instructor(page, ui_settings)
    page.click("#open-insight")
    summary = page.locator(".insight-summary")
    expect(summary).to_contain_text("declined as not covered")
    assert int(summary.get_attribute("data-declined")) >= 1
    groups = page.locator(".insight-not_covered summary")
    expect(groups.filter(has_text="French Revolution")).to_have_count(1)
    assert page.locator(".insight-chart svg rect.bar-declined").count() >= 1
    link = page.locator(".insight-not_covered a", has_text="CSV").get_attribute("href")
    exported = page.request.get(link)  # with the instructor's cookie
    assert exported.ok and "French Revolution" in exported.text()
    shot(page, "13-insight")
    page.click("#close-insight")
    page.click("#instructor-button")  # locked again: no insight for a student
    expect(page.locator("#open-insight")).to_be_hidden()


def test_rename_switch_and_delete_conversations(page, backend):
    ask(page, "What is open addressing?")
    wait_answer(page)
    cid = conversation_id(page)
    row = page.locator(f'.conversation[data-id="{cid}"]')
    row.hover()
    row.locator(".rename").click()
    page.fill(".conversation input", "Open addressing notes")
    page.press(".conversation input", "Enter")
    page.wait_for_selector(f'.conversation[data-id="{cid}"] .open:text("Open addressing notes")')
    assert page.request.get(f"api/conversations/{cid}").json()["title"] == "Open addressing notes"
    expect(page.locator("#chat-title")).to_have_text("Open addressing notes")

    page.click("#new-chat")
    expect(page.locator("article.msg")).to_have_count(0)
    assert "#c=" not in page.url
    page.locator(f'.conversation[data-id="{cid}"] .open').click()
    page.wait_for_selector("article.msg.assistant .copy")
    assert conversation_id(page) == cid

    row.hover()
    row.locator(".delete").click()
    row.locator(".delete.confirm").click()
    page.wait_for_selector(f'.conversation[data-id="{cid}"]', state="detached")
    assert page.request.get(f"api/conversations/{cid}").status == 404
    expect(page.locator("article.msg")).to_have_count(0)


def test_stop_regenerate_and_copy(page, backend):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    ask(page, "Explain in detail how separate chaining and open addressing differ, with examples.")
    page.wait_for_selector(".answer.streaming")
    page.click("#stop")
    answer = wait_answer(page)
    assert answer.locator(".badge.stopped").is_visible()
    assert page.locator("#send").is_visible() and not page.locator("#stop").is_visible()
    cid = conversation_id(page) if "#c=" in page.url else None
    shot(page, "05-stopped")

    ask(page, "What is a hash table?")
    wait_answer(page)
    cid = conversation_id(page)
    before = page.request.get(f"api/conversations/{cid}").json()["messages"]
    page.locator("article.msg.assistant").last.locator(".regenerate").click()
    page.wait_for_selector("article.msg.assistant:last-of-type .answer.waiting, article.msg.assistant:last-of-type .answer.streaming",
                           timeout=30_000)
    wait_answer(page)
    after = page.request.get(f"api/conversations/{cid}").json()["messages"]
    assert len(after) == len(before)  # replaced, not appended
    assert after[-1]["id"] != before[-1]["id"] and after[-2]["content"] == "What is a hash table?"

    page.locator("article.msg.assistant").last.locator(".copy").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == after[-1]["content"]


def unlock_instructor(page, settings) -> None:
    page.click("#instructor-button")
    page.fill("#instructor-key", "not the key")
    page.click("#instructor-submit")
    expect(page.locator("#instructor-error")).to_have_text("That key is not right.")
    shot(page, "09-instructor-key-wrong")
    page.fill("#instructor-key", instructor_key(settings))
    page.click("#instructor-submit")
    expect(page.locator("#instructor-button")).to_have_text("Instructor mode · Lock")
    # the proof is an HttpOnly cookie: nothing on the page can read it
    assert "rag_instructor" not in page.evaluate("document.cookie")


def test_upload_a_document_then_ask_about_it(page, backend, ui_settings):
    page.click("#open-materials")
    page.wait_for_selector("#documents-body tr")
    assert page.locator(f'#documents-body tr[data-file="{HASH_PDF}"]').count() == 1
    # a student sees the materials, but neither the drop zone nor delete buttons
    assert page.locator("#dropzone").is_hidden() and page.locator("#read-only-note").is_visible()
    assert page.locator("#documents-body .delete").count() == 0
    shot(page, "10-materials-as-a-student")
    page.click("#close-materials")
    unlock_instructor(page, ui_settings)
    page.click("#open-materials")
    page.wait_for_selector("#documents-body .delete")
    assert page.locator("#dropzone").is_visible() and page.locator("#read-only-note").is_hidden()
    streams: list[str] = []  # the progress comes as server-sent events, one stream per upload
    page.on("request", lambda request: "/events" in request.url and streams.append(request.url))
    page.set_input_files("#upload-input", files=[
        {"name": "zorblax notes.md", "mimeType": "text/markdown", "buffer": ZORBLAX_MD.encode()},
        {"name": "quux notes.md", "mimeType": "text/markdown",
         "buffer": b"# Quux trees\nA quux tree keeps every leaf at the same depth by splitting full nodes.\n"}])
    expect(page.locator(".upload.done")).to_have_count(2, timeout=120_000)
    assert all("Ready to ask about" in text for text in page.locator(".upload.done .state").all_inner_texts())
    assert len(streams) == 2, streams
    page.wait_for_selector('#documents-body tr[data-file="uploads/zorblax notes.md"]')
    page.wait_for_selector('#documents-body tr[data-file="uploads/quux notes.md"]')
    shot(page, "06-materials-after-upload")
    page.click("#close-materials")

    ask(page, "How many ticks does a Zorblax sender wait before resending?")
    answer = wait_answer(page)
    answer.locator(".sources summary").click()
    assert answer.locator(".source .where").first.inner_text().startswith("uploads/zorblax notes.md")

    page.click("#open-materials")
    row = page.locator('#documents-body tr[data-file="uploads/zorblax notes.md"]')
    row.locator(".delete").click()
    row.locator(".delete.armed").click()
    row.wait_for(state="detached")
    files = [d["file"] for d in httpx.get(f"{backend.url}/api/documents").json()]
    assert "uploads/zorblax notes.md" not in files
    page.click("#close-materials")
    page.click("#instructor-button")  # lock again
    expect(page.locator("#instructor-button")).to_have_text("Instructor")


def test_each_student_sees_only_their_own_conversations_and_the_instructor_sees_all(browser, backend, ui_settings):
    alice_context, bob_context = new_context(browser, backend.url), new_context(browser, backend.url)
    try:
        alice, bob = alice_context.new_page(), bob_context.new_page()
        for who in (alice, bob):
            who.goto("/")
            who.wait_for_selector('#status-pill[data-state="ready"]')
        ask(alice, "What is a hash table?")
        wait_answer(alice)
        cid = conversation_id(alice)
        alice.reload()
        alice.wait_for_selector(f'.conversation[data-id="{cid}"]')  # kept across a reload
        bob.reload()
        bob.wait_for_selector('#status-pill[data-state="ready"]')
        bob.wait_for_timeout(500)
        assert bob.locator(f'.conversation[data-id="{cid}"]').count() == 0
        bob.goto(f"/#c={cid}")  # Alice's link in Bob's browser: a fresh chat, nothing of Alice's
        bob.wait_for_timeout(1000)
        assert bob.locator("article.msg").count() == 0 and "#c=" not in bob.url
        assert bob.locator("#all-toggle").is_hidden()
        shot(bob, "11-another-student-sees-nothing-of-alice")

        unlock_instructor(bob, ui_settings)
        bob.check("#show-all")
        bob.wait_for_selector(f'.conversation[data-id="{cid}"]')
        shot(bob, "12-instructor-sees-every-conversation")
        bob.click("#instructor-button")
        expect(bob.locator("#instructor-button")).to_have_text("Instructor")
        expect(bob.locator(f'.conversation[data-id="{cid}"]')).to_have_count(0)
    finally:
        alice_context.close()
        bob_context.close()


def test_code_mode_asks_for_the_code_once(browser, ui_settings, embedder):
    settings = ui_settings.model_copy(update={"student_access": "code"})
    server = BackendServer(settings, embedder)
    context = new_context(browser, server.url)
    try:
        page = context.new_page()
        page.goto("/")
        page.wait_for_selector("#code-dialog[open]")
        shot(page, "13-access-code-asked")
        page.fill("#access-code", "wrong-code")
        page.press("#access-code", "Enter")
        expect(page.locator("#code-error")).to_contain_text("not right")
        page.fill("#access-code", (settings.access.access_path / "access.code").read_text().strip())
        page.press("#access-code", "Enter")
        page.wait_for_selector("#code-dialog[open]", state="detached")
        ask(page, "What is a hash table?")
        wait_answer(page)
        page.reload()
        page.wait_for_selector('#status-pill[data-state="ready"]')
        page.wait_for_timeout(500)
        assert page.locator("#code-dialog[open]").count() == 0  # once per browser
    finally:
        context.close()
        server.stop()


def test_hostile_document_and_answer_render_inert(page, backend):
    ask(page, "What is the quokka escape sequence?")
    answer = wait_answer(page)
    answer.locator(".sources summary").click()
    passage = answer.locator('.source:has(.where:text("safety/quokka-safety.md")) .passage').first
    assert "quokka" in passage.inner_text().lower()

    retrieval = backend.services.retriever.search("quokka escape sequence")
    inject_turn(backend, "hostile-1", "Show me the quokka escape sequence", HOSTILE_ANSWER,
                [s.to_dict() for s in retrieval.sources])
    page.goto("/#c=hostile-1")
    page.wait_for_selector("#chat-title:text('Show me the quokka')")
    rendered = page.locator("article.msg.assistant .answer").first
    page.wait_for_timeout(500)  # give any handler that slipped through the chance to fire
    assert page.evaluate("window.__pwned") is None
    assert rendered.locator("script, img, iframe, [onerror]").count() == 0
    hrefs = rendered.locator("a:not(.cite)").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert not any(h and h.lower().startswith("javascript:") for h in hrefs)
    assert "<script>alert(1)</script>" in rendered.locator("pre code").inner_text()  # shown as code, not run
    assert rendered.locator("strong").inner_text() == "quokka escape sequence"  # Markdown still renders
    # The UI page itself refuses inline script even if something slipped through.
    csp = httpx.get(f"{backend.url}/").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    shot(page, "07-hostile-content-inert")


def test_llm_down_shows_a_plain_message_and_keeps_the_question(browser, ui_settings, embedder, backend):
    dead = ui_settings.model_copy(update={
        "llm_base_url": f"http://127.0.0.1:{free_port()}/v1",
        "conversations_db": ui_settings.storage.conversations_path.with_name("down.sqlite3"),
    })
    server = BackendServer(dead, embedder)
    context = new_context(browser, server.url)
    try:
        page = context.new_page()
        page.goto("/")
        page.wait_for_selector('#status-pill[data-state="degraded"]')
        assert "LLM" in page.locator("#status-card .problem").first.inner_text()
        ask(page, "What is a hash table?")
        notice = page.locator(".notice")
        notice.wait_for()
        text = notice.inner_text()
        assert "not ready" in text.lower() and "start" in text.lower()
        assert "Traceback" not in text
        assert page.locator("#prompt").input_value() == "What is a hash table?"  # nothing typed is lost
        assert page.locator(".notice .retry").is_visible()
        shot(page, "08-llm-down")
        page.locator(".notice .retry").click()
        page.wait_for_selector(".notice")
        assert page.locator("article.msg.user").count() == 1  # the retry replaced the failed turn
    finally:
        context.close()
        server.stop()


def test_phone_screen_keyboard_and_dark_theme(browser, backend):
    context = new_context(browser, backend.url, viewport={"width": 390, "height": 844},
                          color_scheme="dark", is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto("/")
        page.wait_for_selector('#status-pill[data-state="ready"]')
        assert page.locator("#sidebar").bounding_box()["x"] < 0  # the drawer is closed
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(21, 23, 28)"  # the dark theme follows the system
        page.click("#prompt")
        page.keyboard.type("first line")
        page.keyboard.press("Shift+Enter")
        page.keyboard.type("second line")
        assert page.locator("#prompt").input_value() == "first line\nsecond line"
        page.fill("#prompt", "What is a hash table?")
        page.keyboard.press("Enter")
        wait_answer(page)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
        shot(page, "09-phone-dark")
        page.click("#open-sidebar")
        page.wait_for_function("() => document.getElementById('sidebar').getBoundingClientRect().x >= 0")
        shot(page, "10-phone-menu")
    finally:
        context.close()
