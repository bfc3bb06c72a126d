"""Errors that carry a plain-language message meant for the user.

Why: the CLI and the API turn these into a one-line message (CLI exit code 2,
HTTP 503/409) instead of a stack trace. Anything else is a bug and is shown as one.
"""

from __future__ import annotations


class ApplianceError(Exception):
    """A problem the user can fix; `str(exc)` says what happened and what to do."""


class ConfigurationError(ApplianceError):
    """Settings point at something that cannot work (bad path, bad URI, wrong model)."""


class StorageUnavailableError(ApplianceError):
    """The vector database cannot be reached or opened."""


class DatabaseBusyError(StorageUnavailableError):
    """A Milvus Lite file is held by another process."""


class EmbeddingModelMismatchError(ConfigurationError):
    """The collection was built with a different embedding model or dimension."""
