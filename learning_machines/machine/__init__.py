"""The learning machine: the loop that runs a set of stores."""

from ._context import LearningContext
from ._machine import LearningMachine
from ._proposals import ProposalBook
from ._worker import LearningUsage, WorkResult

__all__ = ["LearningContext", "LearningMachine", "LearningUsage", "ProposalBook", "WorkResult"]
