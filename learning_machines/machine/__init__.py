"""The learning machine: the loop that runs a set of stores, turn by turn."""

from .._turn_context import TurnContext
from ._context import LearningContext
from ._decisions import Decision, DecisionBook
from ._jobs import CurationJob, ExtractionJob
from ._machine import LearningMachine
from ._proposals import ProposalBook
from ._registry import StoreRegistry, StoreSlot
from ._service import LearningService
from ._turn import Turn
from ._worker import LearningUsage, Worker, WorkerSettings, WorkResult

__all__ = [
    "CurationJob",
    "Decision",
    "DecisionBook",
    "ExtractionJob",
    "LearningContext",
    "LearningMachine",
    "LearningService",
    "LearningUsage",
    "ProposalBook",
    "StoreRegistry",
    "StoreSlot",
    "Turn",
    "TurnContext",
    "WorkResult",
    "Worker",
    "WorkerSettings",
]
