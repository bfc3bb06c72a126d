"""./runpod_simple_startup.sh run for real in a temporary copy of the project, with the
embedded defaults (packaged SmolLM2 on CPU, MiniLM, Milvus Lite), on its own tmux server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from backend_fixtures import free_port

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


@pytest.fixture
def appliance(tmp_path):
    """A copy of the project (tracked and untracked files, no data) and its environment."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    copy = tmp_path / "appliance"
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, copy / rel)
    env = dict(os.environ)
    for key in list(env):
        if key.startswith("RAG_"):
            del env[key]
    env.update({
        "APPLIANCE_VENV": str(ROOT / ".venv"),
        "APPLIANCE_TMUX_SOCKET": f"test-{uuid.uuid4().hex[:8]}",
        "RAG_LLM_PORT": str(free_port()),
        "RAG_BACKEND_PORT": str(free_port()),
        "RAG_TORCH_THREADS": "2",
    })
    yield copy, env
    subprocess.run([str(copy / "runpod_simple_startup.sh"), "stop"], env=env, capture_output=True, timeout=120)


def run(copy: Path, env: dict, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    return subprocess.run([str(copy / "runpod_simple_startup.sh"), *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def processes_mentioning(text: str) -> list[str]:
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if text in line and "ps -ww" not in line]


def test_start_chat_rerun_status_and_stop(appliance):
    copy, env = appliance
    first = run(copy, env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "The appliance is running." in first.stdout and "database empty: ingesting" in first.stdout
    backend = f"http://127.0.0.1:{env['RAG_BACKEND_PORT']}"
    ready = httpx.get(f"{backend}/api/ready").json()
    assert ready["ready"] and ready["chunks"] > 0
    # no GPU: the LLM decodes with a thread per core, not llama_cpp.server's half of the CPUs
    [server] = [p for p in processes_mentioning("-m llama_cpp.server") if f"--port {env['RAG_LLM_PORT']}" in p
                and p.split()[1].endswith("python")]  # the server, not the tmux command that started it
    threads = config_of()["LLM_THREADS"]
    assert f"--n_threads {threads} --n_threads_batch {threads}" in server
    assert f"on CPU, {threads} threads" in first.stdout and ready["llm_device"].startswith(f"CPU, {threads} threads")
    assert "--host 127.0.0.1" in server  # only the backend listens beyond this machine
    # the summary hands out the students' URL and the instructor key, made on first start and private
    key_file = copy / "milvus_data" / "access" / "instructor.key"
    key = key_file.read_text().strip()
    assert (key_file.stat().st_mode & 0o777) == 0o600
    assert f"Instructor key  : {key}" in first.stdout and "Students open   : http" in first.stdout
    shown = run(copy, env, "admin-key")
    assert shown.returncode == 0 and f"instructor key: {key}" in shown.stdout
    assert httpx.post(f"{backend}/api/documents", files={"file": ("x.md", b"# X\n", "text/markdown")}).status_code == 401
    answer = httpx.post(f"{backend}/api/chat", json={"message": "What is a hash table?"}, timeout=300).json()
    assert answer["answer"] and answer["sources"][0]["file"].endswith("lecture-04-hash-tables.pdf")
    rotated = run(copy, env, "admin-key", "--rotate")
    assert rotated.returncode == 0 and key not in rotated.stdout and key_file.read_text().strip() != key
    assert httpx.get(f"{backend}/api/access/audit",
                     headers={"Authorization": f"Bearer {key_file.read_text().strip()}"}).status_code == 200
    assert (copy / "logs" / "backend.log").is_file() and (copy / "logs" / "llm-server.log").is_file()

    started = time.monotonic()
    second = run(copy, env)
    assert second.returncode == 0 and "already running" in second.stdout
    assert "ingesting" not in second.stdout
    assert time.monotonic() - started < 60

    status = run(copy, env, "status")
    assert status.returncode == 0 and "LLM server : running, healthy" in status.stdout
    assert "backend    : running, ready" in status.stdout

    stop = run(copy, env, "stop")
    assert stop.returncode == 0 and "all stopped" in stop.stdout
    time.sleep(1)
    assert processes_mentioning(str(copy)) == []
    assert run(copy, env, "status").returncode == 1

    # After an upgrade that reads or chunks differently (here: another chunk overlap, which
    # changes the ingest's fingerprint the same way), starting redoes the files once; a folder
    # ingested by hand is the user's to redo, and the script says how
    extra = copy.parent / "extra-notes"
    extra.mkdir()
    (extra / "tries.md").write_text("# Tries\n\nA trie stores strings by their prefixes, one letter per edge.\n")
    ingested = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "ingest.py", "--directory", str(extra)],
                              cwd=copy / "backend", env=env, capture_output=True, text=True, timeout=600)
    assert ingested.returncode == 0, ingested.stdout + ingested.stderr
    upgraded = dict(env, RAG_CHUNK_OVERLAP_TOKENS="20")
    again = run(copy, upgraded)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "ingested by an older version" in again.stdout and "database empty" not in again.stdout
    assert "1 file(s) from other folders" in again.stdout and "ingest.py --directory FOLDER" in again.stdout
    warm = run(copy, upgraded)  # course_materials done: nothing redone, the hint stays
    assert warm.returncode == 0 and "redoing" not in warm.stdout and "chunks indexed" in warm.stdout
    assert "1 file(s) from other folders" in warm.stdout


def test_an_exposed_llm_server_requires_its_key(appliance):
    copy, env = appliance
    env["RAG_LLM_EXPOSE"] = "true"
    started = run(copy, env)
    assert started.returncode == 0, started.stdout + started.stderr
    assert "(all interfaces, key required)" in started.stdout
    [server] = [p for p in processes_mentioning("-m llama_cpp.server") if f"--port {env['RAG_LLM_PORT']}" in p
                and p.split()[1].endswith("python")]
    key = (copy / "milvus_data" / "access" / "llm.key").read_text().strip()
    assert "--host 0.0.0.0" in server and f"--api_key {key}" in server
    llm = f"http://127.0.0.1:{env['RAG_LLM_PORT']}/v1/models"
    assert httpx.get(llm).status_code == 401
    assert httpx.get(llm, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    backend = f"http://127.0.0.1:{env['RAG_BACKEND_PORT']}"
    answer = httpx.post(f"{backend}/api/chat", json={"message": "What is a hash table?"}, timeout=300)
    assert answer.status_code == 200 and answer.json()["answer"]  # the backend sends the key
    assert run(copy, env, "status").returncode == 0


def test_an_external_llm_server_is_used_and_none_is_started(appliance, llm):
    """RAG_LLM_SERVER=external: the OpenAI-compatible server at RAG_LLM_BASE_URL (here a
    llama.cpp server the test runs, as vLLM or another machine would be) answers the
    students; the script starts no LLM server, and says where the LLM is."""
    copy, env = appliance
    env.update({"RAG_LLM_SERVER": "external", "RAG_LLM_BASE_URL": llm.url})
    started = run(copy, env)
    assert started.returncode == 0, started.stdout + started.stderr
    assert f"none: the LLM server at {llm.url} is used" in started.stdout
    assert f"LLM server      : {llm.url} (external, not started here)" in started.stdout
    assert not [p for p in processes_mentioning("llama_cpp.server") if f"--port {env['RAG_LLM_PORT']}" in p]
    backend = f"http://127.0.0.1:{env['RAG_BACKEND_PORT']}"
    ready = httpx.get(f"{backend}/api/ready").json()
    assert ready["ready"] and ready["llm_device"] == f"external server at {llm.url}"
    answer = httpx.post(f"{backend}/api/chat", json={"message": "What is a hash table?"}, timeout=300)
    assert answer.status_code == 200 and answer.json()["answer"]
    status = run(copy, env, "status")
    assert status.returncode == 0 and f"LLM server : external, answering at {llm.url}" in status.stdout
    run(copy, env, "stop")

    # An external server that does not answer stops the start with the address it tried.
    env["RAG_LLM_BASE_URL"] = f"http://127.0.0.1:{free_port()}/v1"
    refused = run(copy, env, timeout=300)
    assert refused.returncode != 0
    assert f"the LLM server at {env['RAG_LLM_BASE_URL']} does not answer" in refused.stderr


def test_port_already_in_use_is_reported(appliance):
    copy, env = appliance
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", int(env["RAG_LLM_PORT"])))
        blocker.listen()
        result = run(copy, env)
    assert result.returncode != 0
    assert f"port {env['RAG_LLM_PORT']} (LLM server) is already in use" in result.stderr


def test_missing_model_path_is_reported(appliance):
    copy, env = appliance
    env["RAG_LLM_MODEL_PATH"] = str(copy / "no-such-model.gguf")
    result = run(copy, env)
    assert result.returncode != 0
    assert "does not exist" in result.stderr and "no model to serve" in result.stderr


def llm_server_pid(env) -> int:
    [line] = [p for p in processes_mentioning("llama_cpp.server")
              if f"--port {env['RAG_LLM_PORT']}" in p and p.split()[1].endswith("python")]
    return int(line.split()[0])


def test_an_llm_server_killed_mid_answer_is_back_by_itself(appliance):
    """The student whose answer it cut gets an error event and the part they saw is kept as
    `interrupted` (not `stopped`, the word for their own Stop); status tells the outage;
    the supervisor starts the server again, and the next question is answered."""
    copy, env = appliance
    env["RAG_LLM_MAX_TOKENS"] = "400"  # long enough to be killed in the middle
    assert run(copy, env).returncode == 0
    backend = f"http://127.0.0.1:{env['RAG_BACKEND_PORT']}"
    first_pid = llm_server_pid(env)
    events: list[tuple[str, dict]] = []
    with httpx.stream("POST", f"{backend}/api/chat/stream", timeout=300,
                      json={"message": "Explain in detail how a hash table resolves collisions."}) as response:
        name = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line[5:])))
                if name == "token" and sum(1 for kind, _ in events if kind == "token") == 5:
                    os.kill(first_pid, signal.SIGKILL)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "error" and "done" not in kinds, kinds
    assert events[-1][1]["status"] == 503 and "stopped in the middle of the answer" in events[-1][1]["message"]
    cid = next(data["conversation_id"] for kind, data in events if kind == "sources")
    stored = httpx.get(f"{backend}/api/conversations/{cid}").json()["messages"][-1]
    assert stored["meta"]["interrupted"] is True and stored["meta"]["stopped"] is False
    assert stored["content"] == "".join(data["delta"] for kind, data in events if kind == "token")
    status = run(copy, env, "status")
    assert status.returncode == 1 and "NOT answering" in status.stdout

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            if llm_server_pid(env) != first_pid and httpx.get(
                    f"http://127.0.0.1:{env['RAG_LLM_PORT']}/v1/models", timeout=2).status_code == 200:
                break
        except (ValueError, httpx.HTTPError):
            pass
        time.sleep(1)
    else:
        raise AssertionError("the LLM server did not come back")
    assert "LLM server exited (code 137" in (copy / "logs" / "llm-server.log").read_text()
    answer = httpx.post(f"{backend}/api/chat", json={"message": "What is a hash table?"}, timeout=300)
    assert answer.status_code == 200 and answer.json()["answer"]
    assert run(copy, env, "status").returncode == 0
    assert run(copy, env, "stop").returncode == 0
    time.sleep(1)
    assert processes_mentioning(str(copy)) == [] and processes_mentioning(f"--port {env['RAG_LLM_PORT']}") == []


@pytest.mark.skipif(not os.environ.get("LLAMA_SERVER_BIN"),
                    reason="needs a built llama-server: LLAMA_SERVER_BIN=$(./scripts/build_llama_server.sh) (CI does this)")
def test_native_llama_server_serves_students_in_parallel(appliance):
    import concurrent.futures

    copy, env = appliance
    env.update({"RAG_LLM_SERVER": "native", "RAG_LLM_PARALLEL": "3", "RAG_LLM_THREADS": "2",
                "LLAMA_SERVER_BIN": os.environ["LLAMA_SERVER_BIN"]})
    first = run(copy, env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "native llama-server, 3 parallel slots" in first.stdout
    [server] = [p for p in processes_mentioning(env["LLAMA_SERVER_BIN"])
                if f"--port {env['RAG_LLM_PORT']}" in p and p.split()[1] == env["LLAMA_SERVER_BIN"]]
    assert "-np 3" in server and f"-c {3 * 4096}" in server and " -t 2 -tb 2 " in server  # RAG_LLM_THREADS
    backend = f"http://127.0.0.1:{env['RAG_BACKEND_PORT']}"
    questions = ["What is a hash table?", "What is a stack?", "What is a binary search tree?"]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda q: httpx.post(f"{backend}/api/chat", json={"message": q}, timeout=300), questions))
    assert all(a.status_code == 200 and a.json()["answer"].strip() for a in answers)
    # llama-server's own metrics (--metrics), passed through the backend to the instructor
    from prometheus_client.parser import text_string_to_metric_families

    key = (copy / "milvus_data" / "access" / "instructor.key").read_text().strip()
    passed = httpx.get(f"{backend}/metrics/llm", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert passed.status_code == 200, passed.text
    served = {s.name: s.value for f in text_string_to_metric_families(passed.text) for s in f.samples}
    generated = sum(a.json()["usage"]["completion_tokens"] for a in answers)
    assert served["llamacpp:tokens_predicted_total"] >= generated > 0
    assert httpx.get(f"{backend}/metrics/llm").status_code == 401
    assert run(copy, env, "stop").returncode == 0
    time.sleep(1)
    assert processes_mentioning(str(copy)) == [] and processes_mentioning(f"--port {env['RAG_LLM_PORT']}") == []


def machine_defaults(gpu: bool, **config: str) -> list[str]:
    """The script's own device_env function, run with the GPU check answered for it: the
    settings it adds to the backend's environment on this kind of machine."""
    script = (ROOT / "runpod_simple_startup.sh").read_text()
    start = script.index("device_env() {")
    body = script[start:script.index("\n}\n", start) + 3]
    assignments = "".join(f"{k}={v}\n" for k, v in config.items())
    program = f"has_gpu() {{ {'true' if gpu else 'false'}; }}\n{assignments}{body}device_env\n"
    return subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True).stdout.split()


def test_machine_dependent_defaults_give_way_to_the_users_choice():
    chosen = {"RERANKER": "cross-encoder/x", "GPU_TOP_K": "10", "LLM_SERVER": "native", "LLM_PARALLEL": "4"}
    assert machine_defaults(True, RERANKER_SET="0", TOP_K_SET="0", CONDENSE_MODE_SET="0", ANSWERS_SET="0",
                            **chosen) == ["RAG_MAX_CONCURRENT_ANSWERS=4", "RAG_RERANKER_MODEL=cross-encoder/x",
                                          "RAG_TOP_K=10"]
    assert machine_defaults(True, RERANKER_SET="1", TOP_K_SET="1", CONDENSE_MODE_SET="0", ANSWERS_SET="1",
                            **chosen) == []
    assert machine_defaults(False, RERANKER_SET="0", TOP_K_SET="0", CONDENSE_MODE_SET="0", ANSWERS_SET="0",
                            **dict(chosen, LLM_SERVER="python")) == [
        "RAG_MAX_CONCURRENT_ANSWERS=1", "RAG_CONDENSE_MODE=concat"]


def config_of(**chosen: str) -> dict[str, str]:
    """What `python -m app.appliance config` tells the script, with only these RAG_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "app.appliance", "config"],
                         cwd=ROOT / "backend", env={**env, **chosen}, capture_output=True, text=True,
                         check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def test_the_settings_say_what_the_user_chose():
    """`python -m app.appliance config` tells the script which defaults the user set
    (environment or .env, the same to the settings), so that a machine-dependent default
    never overrides them."""
    default = config_of()
    assert int(default["LLM_THREADS"]) >= 1 and config_of(RAG_LLM_THREADS="3")["LLM_THREADS"] == "3"
    assert (default["TOP_K_SET"], default["GPU_TOP_K"]) == ("0", "10")
    assert config_of(RAG_TOP_K="7")["TOP_K_SET"] == "1"
