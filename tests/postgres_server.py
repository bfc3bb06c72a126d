"""A real PostgreSQL server for the tests, from Debian's `postgresql` package: its own data
folder, a free port on 127.0.0.1, trust authentication for one user, stopped at the end.

PostgreSQL refuses to run as root; as root (CI) the server runs as the package's
`postgres` user, which owns the data folder.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

USER = "appliance"


def binaries() -> Path | None:
    """The folder of initdb and postgres (the newest version installed), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self):
        """Its folder is made under the system's temporary folder, not pytest's: the
        `postgres` user must be able to reach it, and pytest's folders are private to root."""
        bindir = binaries()
        if bindir is None:
            pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
        self.bindir = bindir
        self.folder = folder = Path(tempfile.mkdtemp(prefix="appliance-postgres-"))
        self.data = folder / "data"
        self.port = _free_port()
        self.running = False
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(folder, "postgres")

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> str:
        """Initialise and start the server; returns the URL of a fresh database."""
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", USER, "--auth=trust",
                  "--encoding=UTF8", "--no-sync")
        self.start_again()
        return self.new_database("appliance")

    def start_again(self) -> None:
        """Start the server on its existing data folder (after `stop`)."""
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.folder} "
                   "-c fsync=off -c max_connections=60")
        self._run(str(self.bindir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.data),
                  "-l", str(self.folder / "server.log"), "-o", options)
        self.running = True

    def new_database(self, name: str) -> str:
        subprocess.run([str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, name],
                       check=True, capture_output=True, timeout=60)
        return self.url(name)

    def url(self, name: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Fast shutdown: clients still connected (a backend's pool) are disconnected."""
        if self.running:
            self._run(str(self.bindir / "pg_ctl"), "stop", "-m", "fast", "-D", str(self.data))
            self.running = False

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


_counter = iter(range(1, 10_000))


@pytest.fixture(scope="session")
def postgres():
    server = PostgresServer()
    server.start()
    yield server
    server.remove()


@pytest.fixture
def postgres_url(postgres) -> str:
    """A new, empty database on the session's server."""
    return postgres.new_database(f"test_{next(_counter)}")
