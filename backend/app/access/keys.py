"""The appliance's secrets, generated on first start and kept with the data.

Why files beside the database: a teacher who backs up or moves `milvus_data/` keeps the
same key, and a restart keeps every student's cookie valid. Each file is created with
mode 0600, so other users of the machine cannot read it.

- `instructor.key`: the instructor key (unlocks uploads, deletes, every conversation);
- `access.code`: the course access code students type when RAG_STUDENT_ACCESS=code;
- `cookie.secret`: signs the cookies the page keeps (student identity, unlocked modes).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

INSTRUCTOR_KEY = "instructor.key"
ACCESS_CODE = "access.code"
COOKIE_SECRET = "cookie.secret"
# No 0/O or 1/l/I: a code is read aloud or copied from a slide.
_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def _new_value(name: str) -> str:
    if name == ACCESS_CODE:
        return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))
    return secrets.token_urlsafe(32)


def _write_private(path: Path, value: str) -> None:
    """Write atomically with mode 0600 (never readable by others, even for an instant)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (value + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_or_create(folder: Path, name: str) -> str:
    path = folder / name
    try:
        value = path.read_text().strip()
        if value:
            return value
    except FileNotFoundError:
        pass
    value = _new_value(name)
    try:  # O_EXCL: two processes starting at once agree on one value
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        existing = path.read_text().strip()
        if existing:
            return existing
        _write_private(path, value)
        return value
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        return read_or_create(folder, name)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value


def rotate(folder: Path, name: str) -> str:
    value = _new_value(name)
    _write_private(folder / name, value)
    return value


def fingerprint(value: str) -> str:
    """A short, one-way tag of a secret: cookies carry it, so rotating the secret
    invalidates every cookie made with the old one."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


@dataclass
class AccessKeys:
    """The secrets in force, re-read when a file changes (a rotation from the shell
    takes effect without a restart)."""

    folder: Path
    configured_code: str | None = None  # RAG_ACCESS_CODE, when the teacher chose one

    def __post_init__(self) -> None:
        self._cache: dict[str, tuple[tuple, str]] = {}

    def _value(self, name: str) -> str:
        path = self.folder / name
        try:
            info = path.stat()
            version = (info.st_ino, info.st_mtime_ns, info.st_size)  # a rotation replaces the file
        except FileNotFoundError:
            version = None
        cached = self._cache.get(name)
        if cached is not None and version is not None and cached[0] == version:
            return cached[1]
        value = read_or_create(self.folder, name)
        info = path.stat()
        self._cache[name] = ((info.st_ino, info.st_mtime_ns, info.st_size), value)
        return value

    @property
    def instructor_key(self) -> str:
        return self._value(INSTRUCTOR_KEY)

    @property
    def access_code(self) -> str:
        return self.configured_code or self._value(ACCESS_CODE)

    @property
    def cookie_secret(self) -> bytes:
        return self._value(COOKIE_SECRET).encode()

    def is_instructor_key(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self.instructor_key.encode())

    def is_access_code(self, candidate: str) -> bool:
        # Codes are typed by people: case and surrounding spaces do not count.
        return hmac.compare_digest(candidate.strip().lower().encode(), self.access_code.strip().lower().encode())

    def sign(self, value: str) -> str:
        tag = hmac.new(self.cookie_secret, value.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{value}.{tag}"

    def unsign(self, signed: str | None) -> str | None:
        if not signed or "." not in signed or len(signed) > 512:
            return None
        value, _, tag = signed.rpartition(".")
        good = hmac.new(self.cookie_secret, value.encode(), hashlib.sha256).hexdigest()[:32]
        return value if hmac.compare_digest(tag.encode(), good.encode()) else None
