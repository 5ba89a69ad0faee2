"""Every exception Learning Machines raises, in one place.

The hierarchy separates a caller's mistake (fix the call) from a failure at run time (retry,
or look at the database or the model)::

    LearningMachinesError
    ├── UsageError                  the caller did something that can never work as written
    │   ├── ConfigurationError      the machine, agent or a store was set up wrongly
    │   ├── ValidationError         a value passed in (or produced by a model) is not acceptable
    │   ├── NotFoundError           an id names nothing (learning, proposal, pending work)
    │   ├── PermissionDenied        the caller may not do this (approve their own HITL proposal, …)
    │   └── IsolationError          a read or write would cross a user's private namespace
    └── RuntimeFailure              the call was right, something at run time failed
        ├── ConflictError           another writer got there first (a lost race); reload, retry
        ├── EmbedderMismatchError   stored vectors were made by another embedder
        ├── BackendError            the database failed (after retries); nothing was half-written
        ├── ModelError              the language model failed or its output did not validate
        └── LearningFailedError     background learning gave up on some work (``wait_idle``)

Every message says what went wrong *and* how to fix it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BackendError",
    "ConfigurationError",
    "ConflictError",
    "EmbedderMismatchError",
    "IsolationError",
    "LearningFailedError",
    "LearningMachinesError",
    "ModelError",
    "NotFoundError",
    "PermissionDenied",
    "RuntimeFailure",
    "UsageError",
    "ValidationError",
]


class LearningMachinesError(Exception):
    """Base class of every error raised by Learning Machines."""


class UsageError(LearningMachinesError):
    """The caller made a mistake: the same call will fail again until it is changed."""


class RuntimeFailure(LearningMachinesError):
    """Something failed at run time (database, model, a concurrent writer); the call was valid."""


class ConfigurationError(UsageError):
    """The machine, the agent or a store is configured in a way that cannot work.

    Raised when the object is built, never later as a silent no-op.
    """


class ValidationError(UsageError, ValueError):
    """A value passed in, or produced by a model, is not acceptable."""


class NotFoundError(UsageError, LookupError):
    """An id does not name an existing learning, proposal or piece of pending work."""


class PermissionDenied(UsageError):
    """The caller is not allowed to perform this action (for example approving a HITL proposal)."""


class IsolationError(UsageError):
    """A read or write would reach another user's private namespace."""


class ConflictError(RuntimeFailure):
    """Another writer changed the same thing first (a lost race).

    Nothing of this call was written. Reload what you were changing and try again; the library
    does so itself where it can (profile and session updates are re-applied on a fresh copy).
    """

    def __init__(self, message: str, *, learning_id: str | None = None) -> None:
        super().__init__(message)
        #: The learning whose stored version did not match, when the conflict is about one.
        self.learning_id = learning_id


class EmbedderMismatchError(RuntimeFailure):
    """Stored vectors were made by a different embedder than the one in use.

    Mixing vectors from two models gives meaningless similarities, so searches refuse to do it.
    Use the embedder named in the message, or re-embed the stored rows with the new one.
    """


class BackendError(RuntimeFailure):
    """The database failed after retries. The transaction was rolled back; nothing half-written."""


class ModelError(RuntimeFailure):
    """The language model failed, or its output did not parse or validate after retries.

    ``raw_output`` keeps what the model said, when there was anything.
    """

    def __init__(self, message: str, *, raw_output: str | None = None) -> None:
        super().__init__(message)
        self.raw_output = raw_output


class LearningFailedError(RuntimeFailure):
    """Background learning parked some work as failed (raised by ``wait_idle``).

    ``failures`` holds the parked items: each with its error (``last_error``) and, when the
    model's output was the problem, what the model said (``raw_output``). They stay in the db;
    see ``machine.service.failures()``. Nothing learned before was lost.
    """

    def __init__(self, failures: list[Any]) -> None:
        first = failures[0]
        error = (getattr(first, "last_error", None) or "unknown error").splitlines()[0]
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        super().__init__(
            f"learning from {getattr(first, 'kind', 'work')} {getattr(first, 'id', '?')} failed "
            f"and was parked{more}: {error}. See machine.service.failures() or "
            "`learning-machines pending --status failed`; fix the cause (a missing API key, a "
            "model that cannot produce the schema …) and the work can be retried."
        )
        self.failures = failures
