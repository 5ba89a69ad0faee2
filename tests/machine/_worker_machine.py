"""A machine factory for the worker-command test.

Used as ``--machine tests.machine._worker_machine:build``.
"""

from __future__ import annotations

from learning_machines import LearningMachine
from learning_machines.embedders import HashEmbedder
from learning_machines.testing import ScriptedModel

from ._stores import NoteStore, notes_extraction


def build() -> LearningMachine:
    return LearningMachine(
        custom_stores={"notes": NoteStore("notes")},
        embedder=HashEmbedder(),
        model=ScriptedModel(extraction=notes_extraction),
        background=False,
    )
