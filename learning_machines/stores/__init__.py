"""Kinds of learning ("stores"): the protocol and the built-in stores."""

from ._base import BaseStore, StoreConfig
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

__all__ = [
    "ApplyingStore",
    "AsyncProcessingStore",
    "AsyncRecallingStore",
    "BaseStore",
    "BindableStore",
    "ExtractingStore",
    "Extraction",
    "GuidingStore",
    "LearningStore",
    "StoreConfig",
    "StoreResources",
    "WriteGate",
    "WriteOutcome",
]
