"""Self-improvement: an agent proposes "I should stop doing X", a person approves, it evolves.

``LearningMachine(feedback=True, self_improvement=True)`` reflects on each agent's turns and
their outcomes (one model call per reflection, scheduled through the pending-work queue or run
with ``machine.improve()``), proposes small changes to its instructions — add, replace or remove
one rule, "Stop X; do Y when Z" — with the turns they rest on, screens them, and replays turns
with and without each change before anyone sees it. A person approves (``machine.improvements
.approve(id, by=...)``); each approval makes a new content-addressed version of the agent's
instructions, which our ``Agent`` uses from its next turn; ``rollback`` goes back.
"""

from ._book import EffectReport, ImprovementBook, OutcomeStats
from ._config import SelfImprovementConfig
from ._engine import ImprovementUsage, ReflectionReport, SelfImprovement
from ._gate import JudgeVerdict
from ._model import (
    ActiveInstructions,
    EvidenceTurn,
    GateResult,
    ImprovementProposal,
    InstructionChange,
    InstructionVersion,
    ReplayCase,
    Rule,
    RuleChange,
    Scope,
    ScreenNote,
)
from ._reflect import ProposedChange, ReflectionOutput
from ._store import IMPROVEMENT_NAMESPACE, IMPROVEMENT_TYPES, ToolSchema
from ._tools import tool_schemas, tools_with_notes
from ._traces import Trace

__all__ = [
    "IMPROVEMENT_NAMESPACE",
    "IMPROVEMENT_TYPES",
    "ActiveInstructions",
    "EffectReport",
    "EvidenceTurn",
    "GateResult",
    "ImprovementBook",
    "ImprovementProposal",
    "ImprovementUsage",
    "InstructionChange",
    "InstructionVersion",
    "JudgeVerdict",
    "OutcomeStats",
    "ProposedChange",
    "ReflectionOutput",
    "ReflectionReport",
    "ReplayCase",
    "Rule",
    "RuleChange",
    "Scope",
    "ScreenNote",
    "SelfImprovement",
    "SelfImprovementConfig",
    "ToolSchema",
    "Trace",
    "tool_schemas",
    "tools_with_notes",
]
