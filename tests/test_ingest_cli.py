"""`python ingest.py` as a user runs it: real subprocesses, real kills, real locks."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import BACKEND, IngestHarness, cli_env, make_pdf, run_cli, topic_text


@pytest.fixture
def materials(tmp_path):
    root = tmp_path / "materials"
    for i in range(8):
        make_pdf(root / f"chapter{i}.pdf", [topic_text(f"subject{i} part{p}", 14) for p in range(10)])
    (root / "intro.md").write_text("# Intro\n" + topic_text("the course", 6))
    return root


def test_missing_directory_exits_2_with_one_line(settings, tmp_path):
    result = run_cli(["--directory", str(tmp_path / "nope")], cli_env(settings))
    assert result.returncode == 2
    assert "is not a folder" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_milvus_uri_exits_2_with_advice(settings, tmp_path):
    env = cli_env(settings, RAG_MILVUS_URI="http://127.0.0.1:9", RAG_MILVUS_CONNECT_TIMEOUT_S=2)
    result = run_cli(["--directory", str(tmp_path)], env, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Cannot reach Milvus at http://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_setting_exits_2(settings, tmp_path):
    result = run_cli(["--directory", str(tmp_path)], cli_env(settings, RAG_CHUNK_SIZE_TOKENS="lots"))
    assert result.returncode == 2 and "invalid configuration: RAG_CHUNK_SIZE_TOKENS='lots'" in result.stderr
    assert "Traceback" not in result.stderr


def test_full_run_then_rerun_is_a_quick_no_op(settings, materials):
    env = cli_env(settings)
    first = run_cli(["--directory", str(materials)], env)
    assert first.returncode == 0, first.stderr
    assert "9 new" in first.stdout and "0 failed" in first.stdout
    assert "pages" in first.stderr and "chunks/s" in first.stderr  # the progress bar
    second = run_cli(["--directory", str(materials), "--json"], env)
    assert second.returncode == 0
    import json

    summary = json.loads(second.stdout)
    assert summary["unchanged"] == 9 and summary["chunks_written"] == 0
    assert "Loading embedding model" not in second.stderr  # no model load when nothing changed


def _start_and_kill(args, env, when: str, sig: int) -> tuple[int, str]:
    """Start the CLI, wait until `when` shows in its progress output, send `sig`."""
    # The child must get SIGINT as a terminal gives it, even when the tests were started in the
    # background (`cmd &` in a script), where the shell makes SIGINT ignored for descendants.
    # A handled signal is reset to its default at exec, so handle it here while starting the
    # child. (A preexec_fn would do it in the child, but forking a process with threads and
    # running Python before exec can abort the child: CI saw exit -6 with no output.)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen([sys.executable, "ingest.py", *args], cwd=BACKEND, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    seen: list[str] = []

    def pump():
        while ch := proc.stderr.read(1):
            seen.append(ch)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = time.monotonic() + 240
    while not re.search(when, "".join(seen[-400:])):
        assert proc.poll() is None, "finished before it could be interrupted: " + "".join(seen)
        assert time.monotonic() < deadline, "".join(seen)
        time.sleep(0.02)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    reader.join(timeout=5)
    return proc.returncode, "".join(seen)


def _snapshot(settings, embedder):
    harness = IngestHarness(settings, embedder)
    try:
        rows = sorted((r["id"], r["doc_id"], r["text"], r.get("page_start")) for r in harness.rows())
        files = {p: (r.content_hash, r.chunk_count) for p, r in harness.ingestor().catalog.files().items()}
        return rows, files
    finally:
        harness.close()


def test_killed_runs_resume_to_the_same_database(settings, materials, embedder, tmp_path):
    reference = settings.model_copy(update={"milvus_uri": str(tmp_path / "ref" / "ref.db")})
    harness = IngestHarness(reference, embedder)
    harness.run(materials)
    harness.close()
    expected = _snapshot(reference, embedder)

    env = cli_env(settings)
    # Killed once a file is stored, so the second run still has most of the work ahead and
    # is surely running when it is interrupted (progress shows every 0.5 s; a file takes ~1 s).
    code, output = _start_and_kill(["--directory", str(materials)], env, r"files [1-9]/", signal.SIGKILL)
    assert code == -signal.SIGKILL
    code, output = _start_and_kill(["--directory", str(materials)], env, r"files [0-9]+/", signal.SIGINT)
    assert code == 130 and "run the same command again" in output, output
    final = run_cli(["--directory", str(materials)], env)
    assert final.returncode == 0, final.stderr
    assert _snapshot(settings, embedder) == expected


def test_ingest_works_while_a_shared_server_holds_the_database(settings, materials, embedder):
    from pymilvus import MilvusClient

    from app.storage import lite_server

    db = settings.storage.milvus_db_path
    state = lite_server.start_in_background(db)
    try:
        assert lite_server.lock_is_held(db)
        result = run_cli(["--directory", str(materials)], cli_env(settings))
        assert result.returncode == 0, result.stderr
        assert "through the running shared server" in result.stdout
        # another client of the same server (as the backend is) sees the new chunks at once
        other = MilvusClient(uri=state.uri)
        count = other.query(settings.storage.collection_name, filter="", output_fields=["count(*)"])[0]["count(*)"]
        assert count > 0 and f"{count} chunks in the database" in result.stdout
        other.close()
    finally:
        assert lite_server.stop(db)
    assert not lite_server.lock_is_held(db) and lite_server.running_server(db) is None
    # after the server stops, the same file opens embedded with all the data
    rows, files = _snapshot(settings, embedder)
    assert len(files) == 9 and len(rows) == sum(n for _, n in files.values())


def test_database_held_by_a_non_sharing_process_gives_a_clear_error(settings, materials):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pymilvus import MilvusClient; MilvusClient(sys.argv[1]); "
         "print('open', flush=True); time.sleep(120)", str(settings.storage.milvus_db_path)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    settings.storage.milvus_db_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        result = run_cli(["--directory", str(materials)], cli_env(settings))
        assert result.returncode == 2
        assert "open in another process" in result.stderr and "Traceback" not in result.stderr
    finally:
        holder.kill()
        holder.wait()


def test_shared_server_refuses_a_file_that_is_already_open(settings):
    from app.storage import lite_server

    db = settings.storage.milvus_db_path
    db.parent.mkdir(parents=True, exist_ok=True)
    first = lite_server.start_in_background(db)
    try:
        result = subprocess.run([sys.executable, "-m", "app.storage.lite_server", "--db", str(db)],
                                cwd=BACKEND, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and "already open" in result.stderr
        assert lite_server.running_server(db) == first
    finally:
        lite_server.stop(db)


def test_ctrl_c_turned_into_another_error_by_a_library_still_ends_as_an_interruption(
        settings, tmp_path, monkeypatch, capsys):
    # SIGINT arriving inside pydantic's serializer comes out as PydanticSerializationError,
    # which the CLI must not print as a traceback. The timing cannot be provoked reliably,
    # so the library's behaviour is imitated here.
    from app.ingestion import cli

    def run_that_wraps_the_interrupt(*args):
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            raise RuntimeError("Error calling function `<lambda>`: KeyboardInterrupt: ") from None

    def run_that_fails(*args):
        raise RuntimeError("a real bug")

    for name, value in cli_env(settings).items():
        if name.startswith("RAG_"):
            monkeypatch.setenv(name, value)
    # Ctrl-C as in a terminal: a suite started in the background (`cmd &` without job
    # control) inherits SIGINT ignored, and the CLI rightly leaves an ignored signal alone
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        before = signal.getsignal(signal.SIGINT)
        monkeypatch.setattr(cli, "_run", run_that_wraps_the_interrupt)
        assert cli.main(["--directory", str(tmp_path), "--quiet"]) == 130
        assert "run the same command again" in capsys.readouterr().err
        assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C is handled as before the run
        monkeypatch.setattr(cli, "_run", run_that_fails)
        with pytest.raises(RuntimeError, match="a real bug"):  # other errors are not hidden
            cli.main(["--directory", str(tmp_path), "--quiet"])
    finally:
        signal.signal(signal.SIGINT, inherited)
