"""Kinds of learning ("stores"): the protocol and the built-in stores."""

from ._base import BaseStore, StoreConfig
from ._entity_model import EntityRecall, EntityView
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
from .learned_knowledge import LearnedKnowledgeConfig, LearnedKnowledgeStore
from .session_context import SessionContext, SessionContextConfig, SessionContextStore
from .user_profile import UserProfile, UserProfileConfig, UserProfileStore

__all__ = [
    "ApplyingStore",
    "AsyncProcessingStore",
    "AsyncRecallingStore",
    "BaseStore",
    "BindableStore",
    "EntityMemoryConfig",
    "EntityMemoryStore",
    "EntityRecall",
    "EntityView",
    "Episode",
    "EpisodicMemoryConfig",
    "EpisodicMemoryStore",
    "ExtractingStore",
    "Extraction",
    "GuidingStore",
    "LearnedKnowledgeConfig",
    "LearnedKnowledgeStore",
    "LearningStore",
    "ScoredEpisode",
    "SessionContext",
    "SessionContextConfig",
    "SessionContextStore",
    "StoreConfig",
    "StoreResources",
    "UserProfile",
    "UserProfileConfig",
    "UserProfileStore",
    "WriteGate",
    "WriteOutcome",
]
