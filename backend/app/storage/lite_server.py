"""Share one Milvus Lite database file between processes.

Why: Milvus Lite lets one process open a database file. The backend holds it while
it runs, yet `python ingest.py` must still work then. milvus-lite ships its engine
as a `milvus` binary that can also listen on a TCP address; this module runs that
binary as a small local server for one database file, so the backend and any
number of ingest runs talk to the same data over gRPC, exactly as they would to a
real Milvus server.

Safety: the server takes the same lock file that Milvus Lite's embedded mode takes,
so an embedded open and a shared server can never write the same file at once.
A state file beside the database tells clients the address.

Run it:  python -m app.storage.lite_server --db milvus_data/course.db
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from app.storage import engine_logs

LOOPBACK = "127.0.0.1"


def lock_path(db_path: Path) -> Path:
    """The lock file Milvus Lite's embedded mode also uses (same name, same folder)."""
    return db_path.parent / f".{db_path.name}.lock"


def state_path(db_path: Path) -> Path:
    return db_path.parent / f".{db_path.name}.server.json"


@dataclass(frozen=True)
class ServerState:
    pid: int
    host: str
    port: int

    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.port}"


def running_server(db_path: Path) -> ServerState | None:
    """The shared server serving `db_path`, if one is alive and accepting connections."""
    try:
        raw = json.loads(state_path(db_path).read_text())
        state = ServerState(pid=int(raw["pid"]), host=str(raw["host"]), port=int(raw["port"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _pid_alive(state.pid) or not _port_open(state.host, state.port):
        return None
    return state


def lock_is_held(db_path: Path) -> bool:
    """True if another process holds the database lock (embedded open or shared server).

    Careful: POSIX locks belong to the process, and closing any descriptor of the file
    drops them all. If this process already opened the database, probing would release
    Milvus Lite's own lock and stop its engine, so we never probe our own database.
    """
    path = lock_path(db_path)
    if not path.exists() or _opened_by_this_process(db_path):
        return False
    with open(path, "a") as fh:
        try:
            fcntl.lockf(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.lockf(fh, fcntl.LOCK_UN)
    return False


def _opened_by_this_process(db_path: Path) -> bool:
    try:
        from milvus_lite.server_manager import server_manager_instance
    except Exception:
        return False
    return str(db_path.absolute().resolve()) in getattr(server_manager_instance, "_servers", {})


def start_in_background(db_path: Path, timeout_s: float = 30.0) -> ServerState:
    """Start a shared server for `db_path` as a detached process and wait until it serves.

    Returns the running server if one already exists. Raises RuntimeError with the
    server's own message if it cannot start (for example: the file is held elsewhere).
    """
    existing = running_server(db_path)
    if existing:
        return existing
    backend_dir = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.storage.lite_server", "--db", str(db_path)],
        cwd=backend_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = running_server(db_path)
        if state and state.pid == proc.pid:
            return state
        if proc.poll() is not None:
            message = (proc.stderr.read() or b"").decode(errors="replace").strip()
            raise RuntimeError(message or f"the Milvus Lite server exited with code {proc.returncode}")
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError(f"the Milvus Lite server did not start within {timeout_s:.0f} s")


def stop(db_path: Path, timeout_s: float = 15.0) -> bool:
    """Ask the shared server of `db_path` to stop; True if one was running."""
    state = running_server(db_path)
    if not state:
        return False
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _pid_alive(state.pid):
        time.sleep(0.1)
    return True


# --- the server process itself -------------------------------------------


def _milvus_binary() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("milvus_lite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("milvus-lite is not installed (pip install -r requirements.txt)")
    return Path(spec.submodule_search_locations[0]) / "lib" / "milvus"


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the wrapper dies, so no orphan holds the file."""
    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def serve(db_path: Path, host: str = LOOPBACK, port: int = 0, log_level: str = "ERROR",
          logs_dir: Path | None = None) -> int:
    """Hold the lock, run the engine on host:port until SIGTERM/SIGINT, then clean up.
    The engine logs under `logs_dir` (engine_logs.py), old files pruned as it runs."""
    db_path = db_path.resolve()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    lock_fh = open(lock_path(db_path), "a")
    try:
        fcntl.lockf(lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(f"{db_path} is already open in another process; stop that process first.", file=sys.stderr)
        return 2
    port = port or _free_port(host)
    binary = _milvus_binary()
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = f"{binary.parent}:{env.get('LD_LIBRARY_PATH', '')}"
    if logs_dir is not None:
        env.update(engine_logs.engine_log_env(logs_dir))
        engine_logs.prune(logs_dir)
    engine = subprocess.Popen(
        [str(binary), str(db_path), f"{host}:{port}", log_level],
        cwd=str(db_path.parent),
        env=env,
        preexec_fn=_die_with_parent,
    )
    stopping = False

    def _on_signal(signum, frame):  # noqa: ARG001
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    state_file = state_path(db_path)
    try:
        deadline = time.monotonic() + 30
        while not _port_open(host, port):
            if engine.poll() is not None or time.monotonic() > deadline or stopping:
                print(f"the Milvus Lite engine failed to start for {db_path}", file=sys.stderr)
                return 1
            time.sleep(0.05)
        tmp = state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "host": host, "port": port, "db": str(db_path)}))
        tmp.replace(state_file)
        print(f"Milvus Lite server for {db_path} listening on {host}:{port}", flush=True)
        pruned_at = time.monotonic()
        while not stopping and engine.poll() is None:
            time.sleep(0.2)
            if logs_dir is not None and time.monotonic() - pruned_at > 60:
                engine_logs.prune(logs_dir)
                pruned_at = time.monotonic()
        return 0 if stopping else 1
    finally:
        state_file.unlink(missing_ok=True)
        if engine.poll() is None:
            engine.terminate()
            try:
                engine.wait(timeout=10)
            except subprocess.TimeoutExpired:
                engine.kill()
                engine.wait()
        fcntl.lockf(lock_fh, fcntl.LOCK_UN)
        lock_fh.close()


def _free_port(host: str) -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_open(host: str, port: int) -> bool:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _pid_alive(pid: int) -> bool:
    try:  # if it is our own child that exited, reap it: a zombie still answers kill(0)
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str] | None = None) -> int:
    from app.settings import get_settings

    parser = argparse.ArgumentParser(
        prog="python -m app.storage.lite_server",
        description="Serve a Milvus Lite database file to several local processes.",
    )
    parser.add_argument("--db", type=Path, help="database file (default: RAG_MILVUS_URI)")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: any free)")
    parser.add_argument("--stop", action="store_true", help="stop the server of this database, if one runs")
    parser.add_argument("--status", action="store_true", help="print the server's address, exit 1 if none")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.db is None and not settings.storage.milvus_is_local_file:
        print("RAG_MILVUS_URI points at a Milvus server; there is no local file to serve.", file=sys.stderr)
        return 2
    db = (args.db or settings.storage.milvus_db_path).resolve()
    if args.stop:
        print("stopped" if stop(db) else "not running")
        return 0
    if args.status:
        state = running_server(db)
        print(f"running (pid {state.pid}) at {state.uri}" if state else "not running")
        return 0 if state else 1
    return serve(db, port=args.port, logs_dir=settings.storage.logs_path)


if __name__ == "__main__":
    sys.exit(main())
