"""A machine for the CLI tests (``--machine tests.improvement._cli_machine:build``)."""

from __future__ import annotations

from learning_machines import LearningMachine
from learning_machines.embedders import HashEmbedder
from learning_machines.feedback import FeedbackConfig
from learning_machines.improvement import SelfImprovementConfig

from ._helpers import model


def build() -> LearningMachine:
    """The machine the app runs (offline: the rule-following model, the hash embedder)."""
    return LearningMachine(
        model=model(),
        embedder=HashEmbedder(),
        background=False,
        feedback=FeedbackConfig(lessons=False),
        self_improvement=SelfImprovementConfig(every_turns=None),
        curate_every_turns=None,
    )
