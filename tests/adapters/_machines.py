"""The machines the adapter tests share: a user profile the model writes with a tool."""

from __future__ import annotations

from learning_machines import LearningMachine, LearningMode
from learning_machines.db import Db
from learning_machines.embedders import HashEmbedder
from learning_machines.stores import UserProfileConfig
from learning_machines.stores.decision_log import DecisionLogConfig


def agentic_machine(db: Db) -> LearningMachine:
    """A machine whose user profile is written by ``update_user_profile`` (no extraction)."""
    return LearningMachine(
        db=db,
        embedder=HashEmbedder(),
        user_profile=UserProfileConfig(mode=LearningMode.AGENTIC),
        background=False,
    )


def logging_machine(db: Db) -> LearningMachine:
    """:func:`agentic_machine` that also keeps every turn in the decision log."""
    return LearningMachine(
        db=db,
        embedder=HashEmbedder(),
        user_profile=UserProfileConfig(mode=LearningMode.AGENTIC),
        decision_log=DecisionLogConfig(mode=LearningMode.AGENTIC),
        background=False,
    )
