"""Learning Machines: agents that learn continuously from every interaction.

Memory is learning — about the user, the task at hand, insights that hold across users, the
people and companies the agent deals with. A :class:`LearningMachine` runs the loop for a set of
stores (recall → context → answer with tools → extract → store, plus curation);
:class:`Agent` is a pydantic-ai agent wired to one.
"""

from ._agent import Agent, RunResult, ToolCall
from ._messages import ChatMessage
from ._modes import LearningMode
from .exceptions import (
    BackendError,
    ConfigurationError,
    ConflictError,
    EmbedderMismatchError,
    IsolationError,
    LearningFailedError,
    LearningMachinesError,
    ModelError,
    NotFoundError,
    PermissionDenied,
    RuntimeFailure,
    UsageError,
    ValidationError,
)
from .machine import LearningContext, LearningMachine, LearningService, Turn, TurnContext
from .stores import Extraction, LearningStore, ToolSpec

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "BackendError",
    "ChatMessage",
    "ConfigurationError",
    "ConflictError",
    "EmbedderMismatchError",
    "Extraction",
    "IsolationError",
    "LearningContext",
    "LearningFailedError",
    "LearningMachine",
    "LearningMachinesError",
    "LearningMode",
    "LearningService",
    "LearningStore",
    "ModelError",
    "NotFoundError",
    "PermissionDenied",
    "RunResult",
    "RuntimeFailure",
    "ToolCall",
    "ToolSpec",
    "Turn",
    "TurnContext",
    "UsageError",
    "ValidationError",
    "__version__",
]
