"""Every exception Learning Machines raises, in one place.

The hierarchy separates a caller's mistake from a failure at run time::

    LearningMachinesError
    ├── ConfigurationError      the machine, agent or a store was set up wrongly
    ├── ValidationError         a value passed in (or produced by a model) is not acceptable
    ├── NotFoundError           an id names nothing (learning, proposal, pending work)
    ├── PermissionDenied        the caller may not do this (approve their own HITL proposal, …)
    ├── IsolationError          a read or write would cross a user's private namespace
    ├── EmbedderMismatchError   stored vectors were made by another embedder
    ├── BackendError            the database failed (after retries); nothing was half-written
    └── ModelError              the language model failed or its output did not validate

Every message says what went wrong *and* how to fix it.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "ConfigurationError",
    "EmbedderMismatchError",
    "IsolationError",
    "LearningMachinesError",
    "ModelError",
    "NotFoundError",
    "PermissionDenied",
    "ValidationError",
]


class LearningMachinesError(Exception):
    """Base class of every error raised by Learning Machines."""


class ConfigurationError(LearningMachinesError):
    """The machine, the agent or a store is configured in a way that cannot work.

    Raised when the object is built, never later as a silent no-op.
    """


class ValidationError(LearningMachinesError, ValueError):
    """A value passed in, or produced by a model, is not acceptable."""


class NotFoundError(LearningMachinesError, LookupError):
    """An id does not name an existing learning, proposal or piece of pending work."""


class PermissionDenied(LearningMachinesError):
    """The caller is not allowed to perform this action (for example approving a HITL proposal)."""


class IsolationError(LearningMachinesError):
    """A read or write would reach another user's private namespace."""


class EmbedderMismatchError(LearningMachinesError):
    """Stored vectors were made by a different embedder than the one in use.

    Mixing vectors from two models gives meaningless similarities, so searches refuse to do it.
    Re-embed with ``learning-machines reembed`` (or ``db.reembed(embedder=...)``), or use the
    embedder named in the message.
    """


class BackendError(LearningMachinesError):
    """The database failed after retries. The transaction was rolled back; nothing half-written."""


class ModelError(LearningMachinesError):
    """The language model failed, or its output did not parse or validate after retries.

    ``raw_output`` keeps what the model said, when there was anything.
    """

    def __init__(self, message: str, *, raw_output: str | None = None) -> None:
        super().__init__(message)
        self.raw_output = raw_output
