"""Kinds of learning ("stores"): the protocol and the built-in stores."""

from ._base import BaseStore, StoreConfig
from ._entity_model import (
    EntityExtraction,
    EntityItem,
    EntityRecall,
    EntityView,
    EventItem,
    FactItem,
    RelationItem,
)
from ._episode_ranking import EpisodeRanking
from ._gate import ApplyingStore, WriteGate, WriteOutcome
from ._protocol import (
    AsyncProcessingStore,
    AsyncRecallingStore,
    BindableStore,
    ExtractingStore,
    Extraction,
    GuidingStore,
    LearningStore,
    StoreResources,
)
from .entity_memory import EntityMemoryConfig, EntityMemoryStore
from .episodic_memory import Episode, EpisodicMemoryConfig, EpisodicMemoryStore, ScoredEpisode
from .learned_knowledge import (
    KnowledgeItem,
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
    "AsyncProcessingStore",
    "AsyncRecallingStore",
    "BaseStore",
    "BindableStore",
    "EntityExtraction",
    "EntityItem",
    "EntityMemoryConfig",
    "EntityMemoryStore",
    "EntityRecall",
    "EntityView",
    "Episode",
    "EpisodeRanking",
    "EpisodicMemoryConfig",
    "EpisodicMemoryStore",
    "EventItem",
    "ExtractingStore",
    "Extraction",
    "FactItem",
    "GuidingStore",
    "KnowledgeItem",
    "LearnedKnowledgeConfig",
    "LearnedKnowledgeExtraction",
    "LearnedKnowledgeStore",
    "LearningStore",
    "RelationItem",
    "ScoredEpisode",
    "SessionContext",
    "SessionContextConfig",
    "SessionContextStore",
    "SessionPlanUpdate",
    "SessionSummaryUpdate",
    "StoreConfig",
    "StoreResources",
    "UserProfile",
    "UserProfileConfig",
    "UserProfileStore",
    "WriteGate",
    "WriteOutcome",
]
