"""Learning Machines: agents that learn continuously from every interaction.

Memory is learning — about the user, the task at hand, insights that hold across users, the
people and companies the agent deals with. A :class:`LearningMachine` runs the loop for a set of
stores (recall → context → answer with tools → extract → store, plus curation);
:class:`Agent` is a pydantic-ai agent wired to one.

The built-in stores' configs (and those of the decision log, feedback and lessons) are exported
here too, so the three levels of configuration
read as the design writes them: ``LearningMachine(learned_knowledge=LearnedKnowledgeConfig(...))``
with one import line. Backends stay in :mod:`learning_machines.db` (``SqliteDb``, ``PostgresDb``,
which needs the ``postgres`` extra), embedders in :mod:`learning_machines.embedders`.
"""

from ._agent import Agent, RunResult, ToolCall
from ._messages import ChatMessage
from ._modes import LearningMode
from ._turn_record import RunInfo
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
from .feedback import FeedbackConfig, LessonConfig
from .machine import LearningContext, LearningMachine, LearningService, Turn, TurnContext
from .stores import (
    DecisionLogConfig,
    EntityMemoryConfig,
    EpisodicMemoryConfig,
    Extraction,
    LearnedKnowledgeConfig,
    LearningStore,
    SessionContextConfig,
    ToolSpec,
    UserProfileConfig,
)

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "BackendError",
    "ChatMessage",
    "ConfigurationError",
    "ConflictError",
    "DecisionLogConfig",
    "EmbedderMismatchError",
    "EntityMemoryConfig",
    "EpisodicMemoryConfig",
    "Extraction",
    "FeedbackConfig",
    "IsolationError",
    "LearnedKnowledgeConfig",
    "LearningContext",
    "LearningFailedError",
    "LearningMachine",
    "LearningMachinesError",
    "LearningMode",
    "LearningService",
    "LearningStore",
    "LessonConfig",
    "ModelError",
    "NotFoundError",
    "PermissionDenied",
    "RunInfo",
    "RunResult",
    "RuntimeFailure",
    "SessionContextConfig",
    "ToolCall",
    "ToolSpec",
    "Turn",
    "TurnContext",
    "UsageError",
    "UserProfileConfig",
    "ValidationError",
    "__version__",
]
