"""The machine the adapter tests share: a user profile the model writes with a tool."""

from __future__ import annotations

from learning_machines import LearningMachine, LearningMode
from learning_machines.db import Db
from learning_machines.embedders import HashEmbedder
from learning_machines.stores import UserProfileConfig


def agentic_machine(db: Db) -> LearningMachine:
    """A machine whose user profile is written by ``update_user_profile`` (no extraction)."""
    return LearningMachine(
        db=db,
        embedder=HashEmbedder(),
        user_profile=UserProfileConfig(mode=LearningMode.AGENTIC),
        background=False,
    )
