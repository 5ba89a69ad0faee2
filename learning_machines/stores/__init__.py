"""Kinds of learning ("stores"): the protocol and the built-in stores."""

from ._base import Approval, BaseStore, StoreConfig
from ._entity_model import (
    EntityExtraction,
    EntityItem,
    EntityMemoryWrite,
    EntityRecall,
    EntityView,
    EventItem,
    FactItem,
    RelationItem,
)
from ._episode_ranking import EpisodeRanking
from ._gate import ApplyingStore, WriteGate, WriteOutcome
from ._protocol import (
    AsyncExtractingStore,
    AsyncProcessingStore,
    AsyncRecallingStore,
    BindableStore,
    ExtractingStore,
    Extraction,
    GuidingStore,
    LearningStore,
    RecallReusingStore,
    StoreResources,
    ToolSpecStore,
    TurnRecordingStore,
)
from ._tools import BoundTools, ToolSpec, tool_from_function
from .decision_log import DecisionLogConfig, DecisionLogStore
from .entity_memory import EntityMemoryConfig, EntityMemoryStore
from .episodic_memory import (
    Episode,
    EpisodesWrite,
    EpisodicMemoryConfig,
    EpisodicMemoryStore,
    ScoredEpisode,
)
from .learned_knowledge import (
    KnowledgeItem,
    KnowledgeWrite,
    LearnedKnowledgeConfig,
    LearnedKnowledgeExtraction,
    LearnedKnowledgeStore,
)
from .session_context import (
    SessionContext,
    SessionContextConfig,
    SessionContextStore,
    SessionPlanUpdate,
    SessionSummaryUpdate,
)
from .user_profile import UserProfile, UserProfileConfig, UserProfileStore

__all__ = [
    "ApplyingStore",
    "Approval",
    "AsyncExtractingStore",
    "AsyncProcessingStore",
    "AsyncRecallingStore",
    "BaseStore",
    "BindableStore",
    "BoundTools",
    "DecisionLogConfig",
    "DecisionLogStore",
    "EntityExtraction",
    "EntityItem",
    "EntityMemoryConfig",
    "EntityMemoryStore",
    "EntityMemoryWrite",
    "EntityRecall",
    "EntityView",
    "Episode",
    "EpisodeRanking",
    "EpisodesWrite",
    "EpisodicMemoryConfig",
    "EpisodicMemoryStore",
    "EventItem",
    "ExtractingStore",
    "Extraction",
    "FactItem",
    "GuidingStore",
    "KnowledgeItem",
    "KnowledgeWrite",
    "LearnedKnowledgeConfig",
    "LearnedKnowledgeExtraction",
    "LearnedKnowledgeStore",
    "LearningStore",
    "RecallReusingStore",
    "RelationItem",
    "ScoredEpisode",
    "SessionContext",
    "SessionContextConfig",
    "SessionContextStore",
    "SessionPlanUpdate",
    "SessionSummaryUpdate",
    "StoreConfig",
    "StoreResources",
    "ToolSpec",
    "ToolSpecStore",
    "TurnRecordingStore",
    "UserProfile",
    "UserProfileConfig",
    "UserProfileStore",
    "WriteGate",
    "WriteOutcome",
    "tool_from_function",
]
